"""Pneumonia X-ray demo: calibrated NORMAL / PNEUMONIA with a Grad-CAM overlay.

    python app.py        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT pick the address

UI only: the model, the image checks and Grad-CAM live in `pneumonia/`.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Gradio's queue rebuilds a pandas table of its last 10,000 events after every
# request for its monitoring summary (unused here), a cost that grows with the
# requests served: every 1,000 events over the last 1,000 instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import gradio as gr  # noqa: E402

from pneumonia import config as cfg  # noqa: E402
from pneumonia.serve import loader as serving  # noqa: E402
from pneumonia.serve.response import file_data, respond  # noqa: E402
from pneumonia.serve.heatmap import PREDICTED  # noqa: E402
from pneumonia.serve.imaging import ImageError  # noqa: E402

# Only our own counts and timings at INFO; libraries' request logs stay quiet.
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
log = logging.getLogger("pneumonia.app")
log.setLevel(logging.INFO)

model = serving.load_from_environment()
predictor = model.predictor
log.info("serving %s, revision %s", model.origin, model.revision)
# The training population's X-rays first, then the adults that show the population notice.
EXAMPLES = sorted((str(p) for p in (cfg.ROOT / "examples").iterdir() if p.suffix.lower() in {".jpeg", ".jpg", ".png"}),
                  key=lambda p: (os.path.basename(p).startswith("ADULT"), p))
# A file name's first part -> what a newcomer reads under its thumbnail (and its alt text).
CAPTIONS = {"NORMAL": "Child, NORMAL", "PNEUMONIA-bacterial": "Child, bacterial pneumonia",
            "PNEUMONIA-viral": "Child, viral pneumonia", "ADULT-NIH-no-finding": "Adult, no finding",
            "ADULT-NIH-pneumonia": "Adult, pneumonia"}


def caption(path: str) -> str:
    return CAPTIONS.get(os.path.basename(path).split("_")[0], Path(path).stem)


stats = {"requests": 0, "errors": 0}


def _path_of(upload) -> str | None:
    """The uploaded file's path: Gradio passes a FileData dict (preprocess off)."""
    if upload is None:
        return None
    if isinstance(upload, dict):
        return upload.get("path")
    return str(upload)


HEATMAP_TARGETS = {"decided class": PREDICTED, "PNEUMONIA": 1, "NORMAL": 0}
# What the served model reads (pneumonia.serve.lung_view), in words under the overlay.
READS = {
    "full": "The model reads the whole image, and the heatmap covers all of it.",
    "crop": "The white line is where the lungs were found. The model reads only the box around them, "
            "so colour is drawn only inside that box.",
    "crop+mask": "The white line is where the lungs were found. The model reads only the lungs and a thin "
                 "band around them, so colour is drawn only there; the rest is your image as uploaded.",
    "crop+blur": "The white line is where the lungs were found. The model reads the box around them, sharp "
                 "inside the lungs and a thin band around them, blurred outside; colour is drawn only in the box.",
}


def analyze(upload, heatmap_for: str = "decided class"):
    """Image file -> (label headed by the decision, Grad-CAM overlay file, JSON for programs)."""
    stats["requests"] += 1
    start = time.perf_counter()
    path = _path_of(upload)
    if not path:
        stats["errors"] += 1
        raise gr.Error("No image was given: upload a chest X-ray first.", print_exception=False)
    try:
        result = predictor.analyze(path, HEATMAP_TARGETS.get(heatmap_for, PREDICTED))
    except ImageError as e:
        stats["errors"] += 1
        raise gr.Error(str(e), print_exception=False) from None
    # Counts and timings only: nothing about the image is logged or kept.
    log.info("request %d answered in %.0f ms (%d errors so far)", stats["requests"],
             1000 * (time.perf_counter() - start), stats["errors"])
    # A refused image (not a chest X-ray) has no label and no overlay.
    return respond(result, OVERLAYS)


def show_example(heatmap_for: str, evt: gr.SelectData):
    """A click on an example thumbnail: the X-ray goes into the upload box and is answered."""
    path = EXAMPLES[evt.index]
    return (file_data(path), *analyze(path, heatmap_for))


# Above the answer: why there is none, or who it is (not) valid for. On a
# phone the answer sits below the upload: bring it into view after each answer
# (nothing is answered before the user asks).
NOTICE_JS = """(d) => {
  const text = !d ? "" : d.verdict ? `### ${d.verdict}\nNo diagnosis is given for this image.` :
    d.population_notice ? `### ⚠️ This looks like an adult's X-ray\n${d.population_notice}` : "";
  if (d && window.innerWidth < 700)
    setTimeout(() => document.getElementById("answer")?.scrollIntoView({behavior: "smooth"}), 50);
  return text;
}"""
# Under the label, from the same decision the label is headed by.
DECISION_JS = """(d) => !d ? "" : d.verdict ?
  `**${d.verdict}**: no diagnosis given (out-of-distribution score ${d.ood_score.toFixed(2)}, ` +
  `limit ${d.ood_threshold.toFixed(2)}). Upload a frontal chest radiograph.` :
  !d.decision ? "" :
  `**Decision: ${d.decision}**: P(PNEUMONIA) = ${(100 * d.probability_pneumonia).toFixed(1)}% is ` +
  `${d.probability_pneumonia >= d.threshold ? "at or above" : "below"} the operating threshold ` +
  `${(100 * d.threshold).toFixed(1)}%` + (d.answered_by === "adult head" ? " (the adult head's)" :
   d.answered_by === "both heads, blended" ? " (the two heads' blended by P(adult))" : "") +
  `. Heatmap for: ${d.heatmap_class}.`"""
CSS = """
#notice h3 { margin: 0 0 4px 0; }
#notice { font-size: 0.9em; }
#examples .caption-label { white-space: normal; text-overflow: clip; line-height: 1.15; }
"""

with gr.Blocks(title="Pneumonia X-ray classifier with Grad-CAM", analytics_enabled=False,
               delete_cache=(600, 900)) as demo:
    gr.Markdown(
        "# Pneumonia on a chest X-ray, with where the model looked\n"
        "A small U-Net finds the lungs on a frontal chest radiograph; a fine-tuned ResNet50 reads "
        "only them and gives a calibrated probability of pneumonia, with a Grad-CAM heatmap of what "
        f"drove its answer. ⚠️ **{cfg.DISCLAIMER}**"
    )
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Chest X-ray (upload, drop or paste)", type="filepath",
                             image_mode=None, sources=["upload", "clipboard"], height=300)
            button = gr.Button("Analyze", variant="primary")
            examples = gr.Gallery([(p, caption(p)) for p in EXAMPLES], label="Examples: click one to analyze it",
                                  columns=4, rows=2, height=320, allow_preview=False, object_fit="cover",
                                  interactive=False, elem_id="examples")
            heatmap_for = gr.Radio(list(HEATMAP_TARGETS), value="decided class", label="Heatmap for")
            dicom = gr.File(label="...or a DICOM file (.dcm)", file_types=[".dcm", ".dicom"],
                            type="filepath", height=100)
        with gr.Column(elem_id="answer"):
            notice = gr.Markdown(elem_id="notice")
            label = gr.Label(label="Answer", num_top_classes=2, elem_id="label")
            decision = gr.Markdown(elem_id="decision")
            heatmap = gr.Image(label="Grad-CAM overlay", type="filepath", interactive=False, height=340,
                               elem_id="overlay")
            gr.Markdown(
                READS[predictor.reader.variant] + " Red marks the regions that pushed the score most "
                "towards the decided class, blue the least; it shows what drove the answer, not where "
                "disease is. The map is coarse (7x7 cells)."
            )
            with gr.Accordion("For programs (JSON)", open=False):
                details = gr.JSON(label="details", show_label=False)
    with gr.Accordion("About the model", open=False):
        gr.Markdown(model.panel_markdown())
    answer = [label, heatmap, details]
    # postprocess=False: `response` builds the outputs in Gradio's own shapes, so
    # the label keeps the decision as its headline (Gradio's postprocessing
    # would put the larger probability there) and the overlay file is served as written.
    button.click(analyze, inputs=[image, heatmap_for], outputs=answer, api_name="predict",
                 preprocess=False, postprocess=False, concurrency_limit=cfg.CONCURRENCY, concurrency_id="model")
    examples.select(show_example, inputs=heatmap_for, outputs=[image, *answer], postprocess=False,
                    api_visibility="private", concurrency_id="model")
    dicom.upload(analyze, inputs=[dicom, heatmap_for], outputs=answer, api_visibility="private",
                 preprocess=False, postprocess=False, concurrency_id="model")
    details.change(None, inputs=details, outputs=decision, js=DECISION_JS, queue=False,
                   api_visibility="private")
    details.change(None, inputs=details, outputs=notice, js=NOTICE_JS, queue=False, api_visibility="private")
# Each answer's overlay is written once, under a fresh name, in the folder
# Gradio serves files from (pneumonia.serve.response): nothing copies or rewrites it,
# and `delete_cache` removes it with Gradio's own files.
OVERLAYS = Path(heatmap.GRADIO_CACHE) / "overlays"

# Bounded: an overload is told to come back instead of piling up in memory.
demo.queue(max_size=int(os.environ.get("PNEUMONIA_QUEUE_SIZE", cfg.QUEUE_MAX_SIZE)),
           default_concurrency_limit=cfg.CONCURRENCY)

def warm_up(url: str) -> None:
    """One real request through the server: Gradio's first call sets up its
    queue, threads and image encoders (~0.35 s here), which the first user
    should not pay (the networks themselves ran once when the model loaded)."""
    from gradio_client import Client, handle_file
    try:
        Client(url, verbose=False, ssl_verify=False).predict(handle_file(EXAMPLES[0]), api_name="/predict")
    except Exception as e:  # the app serves anyway; the first request is just slower
        log.warning("warm-up request failed: %s", e)


if __name__ == "__main__":
    demo.launch(max_file_size=cfg.MAX_UPLOAD, footer_links=["api"], css=CSS, prevent_thread_lock=True)
    warm_up(demo.local_url)
    demo.block_thread()
