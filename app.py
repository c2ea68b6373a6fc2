"""Pneumonia X-ray demo: calibrated NORMAL / PNEUMONIA with a Grad-CAM overlay.

    python app.py        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT pick the address

UI only: the model, the image checks and Grad-CAM live in `pneumonia/`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gradio as gr  # noqa: E402

from pneumonia import config as cfg  # noqa: E402
from pneumonia import serving  # noqa: E402
from pneumonia.heatmap import PREDICTED  # noqa: E402
from pneumonia.imaging import ImageError  # noqa: E402

# Only our own counts and timings at INFO; libraries' request logs stay quiet.
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
log = logging.getLogger("pneumonia.app")
log.setLevel(logging.INFO)

model = serving.load_from_environment()
predictor = model.predictor
log.info("serving %s, revision %s", model.origin, model.revision)
# Cached example outputs belong to one model: key the cache by its config so a
# different model never shows another model's answers.
_model_key = hashlib.sha1(json.dumps(predictor.config, sort_keys=True).encode()).hexdigest()[:12]
os.environ["GRADIO_EXAMPLES_CACHE"] = os.path.join(
    os.environ.get("GRADIO_EXAMPLES_CACHE", ".gradio/cached_examples"), _model_key)
# The training population's X-rays first, then the adults that show the population notice.
EXAMPLES = sorted((str(p) for p in (cfg.ROOT / "examples").iterdir() if p.suffix.lower() in {".jpeg", ".jpg", ".png"}),
                  key=lambda p: (os.path.basename(p).startswith("ADULT"), p))


def _examples_caption(paths: list[str]) -> str:
    """"PNEUMONIA-viral_person1_virus_12.jpeg", ... -> "Examples: 2 NORMAL, 1 PNEUMONIA-viral"."""
    kinds = Counter(os.path.basename(p).split("_")[0] for p in paths)
    return "Examples (click one): " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())


stats = {"requests": 0, "errors": 0}


def _path_of(upload) -> str | None:
    """The uploaded file's path: Gradio passes a FileData dict (preprocess off)."""
    if upload is None:
        return None
    if isinstance(upload, dict):
        return upload.get("path")
    return str(upload)


HEATMAP_TARGETS = {"decided class": PREDICTED, "PNEUMONIA": 1, "NORMAL": 0}
# What the served model reads (pneumonia.lung_view), in words under the overlay.
READS = {
    "full": "The model reads the whole image, and the heatmap covers all of it.",
    "crop": "The white line is where the lungs were found; the model reads the box around them, "
            "and its heatmap is mapped back onto your image inside that box.",
    "crop+mask": "The white line is where the lungs were found; the model reads only what lies in "
                 "them (and a thin band around), and its heatmap is mapped back onto your image "
                 "inside their box.",
}


def analyze(upload, heatmap_for: str = "decided class"):
    """Image file -> (label, Grad-CAM overlay, JSON for programs)."""
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
    details = {k: v for k, v in result.items() if k not in ("overlay", "probabilities")}
    # A refused image (not a chest X-ray) has no probabilities and no overlay.
    return result["probabilities"], result["overlay"], details


# Set when the user first touches the page: answers after that are theirs.
ON_LOAD_JS = """() => { document.addEventListener("pointerdown", () => { window.pneumoniaAsked = true; }); }"""
# Above the answer: why there is none, or who it is (not) valid for.
NOTICE_JS = """(d) => {
  const text = !d ? "" : d.verdict ? `### ${d.verdict}\nNo diagnosis is given for this image.` :
    d.population_notice ? `### ⚠️ Outside the training population\n${d.population_notice}` : "";
  // On a phone the answer sits below the upload: bring it into view once the
  // user has asked (not for the example Gradio preloads when the page opens).
  if (d && window.pneumoniaAsked && window.innerWidth < 700)
    document.getElementById("answer")?.scrollIntoView({behavior: "smooth"});
  return text;
}"""
DECISION_JS = """(d) => !d ? "" : d.verdict ?
  `**${d.verdict}**: no diagnosis given (out-of-distribution score ${d.ood_score.toFixed(2)}, ` +
  `limit ${d.ood_threshold.toFixed(2)}). Upload a frontal chest radiograph.` :
  !d.decision ? "" :
  `**Decision: ${d.decision}** (P(PNEUMONIA) = ${(100 * d.probability_pneumonia).toFixed(1)}%, ` +
  `operating threshold ${(100 * d.threshold).toFixed(1)}%). Heatmap for: ${d.heatmap_class}.`"""

with gr.Blocks(title="Pneumonia X-ray classifier with Grad-CAM", analytics_enabled=False,
               delete_cache=(600, 900)) as demo:
    gr.Markdown(
        "# Pneumonia on a chest X-ray, with where the model looked\n"
        "A small U-Net finds the lungs on a frontal chest radiograph; a fine-tuned ResNet50 reads "
        "them and gives a calibrated probability of pneumonia, with a Grad-CAM heatmap of the "
        "regions that drove its answer.\n\n"
        f"> ⚠️ **{cfg.DISCLAIMER}**"
    )
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Chest X-ray (upload, drop or paste)", type="filepath",
                             image_mode=None, sources=["upload", "clipboard"], height=340)
            examples_row = gr.Column()  # filled below, once the outputs exist
            heatmap_for = gr.Radio(list(HEATMAP_TARGETS), value="decided class", label="Heatmap for")
            button = gr.Button("Analyze", variant="primary")
            dicom = gr.File(label="...or a DICOM file (.dcm)", file_types=[".dcm", ".dicom"],
                            type="filepath", height=120)
        with gr.Column(elem_id="answer"):
            notice = gr.Markdown(elem_id="notice")
            label = gr.Label(label="Calibrated probability", num_top_classes=2, elem_id="label")
            decision = gr.Markdown(elem_id="decision")
            heatmap = gr.Image(label="Grad-CAM overlay", type="numpy", format="png",
                               interactive=False, height=340)
            gr.Markdown(
                READS[predictor.reader.variant] + " Red marks the regions that pushed the score most "
                "towards the decided class, blue the least; it shows what drove the answer, not where "
                "disease is. The map is coarse (7x7 cells)."
            )
            with gr.Accordion("For programs (JSON)", open=False):
                details = gr.JSON(show_label=False)
    with examples_row:
        gr.Examples(examples=EXAMPLES, inputs=image, outputs=[label, heatmap, details], fn=analyze,
                    cache_examples=True, cache_mode="eager", preprocess=False, label=_examples_caption(EXAMPLES))
    with gr.Accordion("About the model", open=False):
        gr.Markdown(model.panel_markdown())
    button.click(analyze, inputs=[image, heatmap_for], outputs=[label, heatmap, details], api_name="predict",
                 preprocess=False, concurrency_limit=cfg.CONCURRENCY, concurrency_id="model")
    dicom.upload(analyze, inputs=[dicom, heatmap_for], outputs=[label, heatmap, details], api_visibility="private",
                 concurrency_id="model")
    details.change(None, inputs=details, outputs=decision, js=DECISION_JS, queue=False,
                   api_visibility="private")
    details.change(None, inputs=details, outputs=notice, js=NOTICE_JS, queue=False, api_visibility="private")

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
    demo.launch(max_file_size=cfg.MAX_UPLOAD, footer_links=["api"], js=ON_LOAD_JS, prevent_thread_lock=True)
    warm_up(demo.local_url)
    demo.block_thread()
