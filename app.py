"""Pneumonia X-ray demo: calibrated NORMAL / PNEUMONIA with a Grad-CAM overlay.

    python app.py        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT pick the address

UI only: the model, the image checks and Grad-CAM live in `pneumonia/`.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
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
from gradio_client import handle_file  # noqa: E402

from pneumonia import config as cfg  # noqa: E402
from pneumonia.serve import loader as serving  # noqa: E402
from pneumonia.batch.answers import row as row_of  # noqa: E402
from pneumonia.batch.scoring import answer_items  # noqa: E402
from pneumonia.serve import http_api  # noqa: E402
from pneumonia.serve.response import details as details_of, file_data, refuse, respond  # noqa: E402
from pneumonia.serve.heatmap import PREDICTED  # noqa: E402
from pneumonia.serve.imaging import ImageError  # noqa: E402
from pneumonia.serve.schema import DETAILS_SCHEMA  # noqa: E402
from pneumonia.serve.subtypes import NO_COVID  # noqa: E402

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
# What a newcomer reads under each thumbnail (and its alt text): the truth, and
# where the served model answers otherwise, that too (scripts/pick_examples.py).
CAPTIONS = json.loads((cfg.ROOT / "examples" / "captions.json").read_text())


def caption(path: str) -> str:
    return CAPTIONS.get(os.path.basename(path), {}).get("caption", Path(path).stem)


stats = {"requests": 0, "errors": 0}


def _path_of(upload) -> str | None:
    """The uploaded file's path: Gradio passes a FileData dict (preprocess off)."""
    if upload is None:
        return None
    if isinstance(upload, dict):
        return upload.get("path")
    return str(upload)


# The heads under the answer are linear on the same features, so their maps are exact too.
HEATMAP_TARGETS = {"decided class": PREDICTED, "PNEUMONIA": 1, "NORMAL": 0, "bacterial": "bacterial",
                   "tuberculosis signs": "tuberculosis"}
if ((predictor.subtypes and predictor.subtypes.withheld) or {}).get("tuberculosis"):
    del HEATMAP_TARGETS["tuberculosis signs"]   # a line not shown has no map either
# What the served model reads (pneumonia.serve.lung_view), in words under the overlay.
READS = {
    "full": "The model reads the whole image, and the heatmap covers all of it.",
    "crop": "The model reads the box around the lungs, so colour is drawn only inside that box.",
    "crop+mask": "The white line is what the model reads: the lungs and a thin band around them. "
                 "Colour is drawn only inside it; the rest is your image as uploaded.",
    "crop+blur": "The white line is what the model reads sharply: the lungs and a thin band around them "
                 "(the rest of their box only blurred). Colour is drawn only inside it.",
}


def analyze(upload, heatmap_for: str = "decided class"):
    """Image file -> (label headed by the decision, Grad-CAM overlay file, JSON
    for programs). A refused image gets no label and no overlay, and the JSON
    says why (`refusal`), whatever refused it: every output is replaced."""
    stats["requests"] += 1
    start = time.perf_counter()
    try:
        result = predictor.analyze(_path_of(upload), HEATMAP_TARGETS.get(heatmap_for, PREDICTED))
    except ImageError as e:   # the page says why in the answer's place (no toast over it); programs read details
        stats["errors"] += 1
        return refuse(e, predictor.version, predictor.runtime)
    # Counts and timings only: nothing about the image is logged or kept.
    log.info("request %d answered in %.0f ms (%d errors so far)", stats["requests"],
             1000 * (time.perf_counter() - start), stats["errors"])
    return respond(result, OVERLAYS)


# Many X-rays at once: the page's second tab and /predict_batch (pneumonia.batch does any number, offline).
MANY_LIMIT = 500
MANY_COLUMNS = ("file", "answered", "decision", "probability_pneumonia", "threshold", "answered_by", "reason")


def uploaded(files: list) -> list:
    """The files of an upload as batch items, a zip's X-rays unpacked next to it; at most MANY_LIMIT."""
    from pneumonia.batch.inputs import ArchiveError, Item, unpack_zip

    def refused(error: Exception):
        def read():
            raise ImageError(str(error), "unreadable")
        return read

    out = []
    for f in files or []:
        path = Path(_path_of(f))
        name = (f.get("orig_name") if isinstance(f, dict) else None) or path.name
        try:
            pairs = unpack_zip(path, MANY_LIMIT) if path.suffix.lower() == ".zip" else [(name, path)]
            out += [Item(n, Path(p).read_bytes) for n, p in pairs]
        except ArchiveError as e:
            out.append(Item(name, refused(e)))
    if len(out) > MANY_LIMIT:
        raise gr.Error(f"{len(out)} files: the page takes up to {MANY_LIMIT} at once; "
                       "python -m pneumonia.batch takes any number.")
    return out


def analyze_many(files: list, labels: str | None = None, progress=gr.Progress()):
    """The second tab: a table of answers and answers.csv; with a labels file,
    the report on them (its HTML and files)."""
    from pneumonia.batch.answers import Answers
    answered = answer_items(uploaded(files), predictor, progress=progress)
    folder = OVERLAYS.parent / "many" / uuid.uuid4().hex
    answers = Answers(folder)
    for name, d in answered:
        answers.add(name, d)
    answers.close()
    def cell(v):
        return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
    table = [[cell(r[c]) for c in MANY_COLUMNS] for r in (row_of({"file": name, **d}) for name, d in answered)]
    report, files = "", [str(answers.csv)]
    if labels:
        from pneumonia.batch.labelled import labelled_report
        try:
            report, more = labelled_report(folder, _path_of(labels))
        except ValueError as e:   # the labels file's columns or values
            raise gr.Error(f"The labels file: {e}") from None
        files += more
    return table, files, gr.update(value=report, visible=bool(report))


def predict_batch(files: list[gr.FileData]) -> list[dict]:
    """Many X-ray files -> the details of each, in order (as /predict's third output; no overlays)."""
    answered = answer_items(uploaded(files), predictor)
    return [{"file": name, **d} for name, d in answered]


def show_example(heatmap_for: str, evt: gr.SelectData):
    """A click on an example thumbnail: the X-ray goes into the upload box and is answered."""
    path = EXAMPLES[evt.index]
    return (file_data(path), *analyze(path, heatmap_for))


# Above the answer: who it is (not) valid for. On a phone the answer sits below
# the upload: bring it into view after each answer (nothing is answered before
# the user asks).
NOTICE_JS = """(d) => {
  // The overlay keeps its last picture when a refusal sends none: hide it then.
  document.getElementById("overlay")?.classList.toggle("refused", !!d && !d.answered);
  if (d && window.innerWidth < 700)
    setTimeout(() => document.getElementById("answer")?.scrollIntoView({behavior: "smooth"}), 50);
  return d && d.population_notice ? `### ⚠️ This looks like an adult's X-ray\n${d.population_notice}` : "";
}"""
# The answer as people read it, from the same details programs get: the decision,
# then P(PNEUMONIA) on one gauge with the threshold that decided it marked. No
# second bar: with a threshold away from 50% the larger of two bars can name the
# class that was not decided.
ANSWER_JS = """(d) => {
  const pc = (x, k = 1) => `${(100 * x).toFixed(k)}%`;
  // A line under the answer for a head that applies: secondary, so quiet, and its caveat first.
  const more = (o, what, p_name, words) => !o || o.probability === null ? "" :
    `<p class="more"><span class="caveat">A side reading (${o.measured}):</span> ${what}: ${words[o.decision]} ` +
    `(${p_name} = ${pc(o.probability, 0)}, threshold ${pc(o.threshold, 0)}).</p>`;
  if (!d) return "";
  if (!d.answered) {
    const r = d.refusal || {message: "No answer."};
    return `<div class="refused"><div class="headline">Not answered</div><p>${r.message}</p>` +
           `<p>No diagnosis is given for this image.</p></div>`;
  }
  const p = 100 * d.probability_pneumonia, t = 100 * d.threshold;
  const side = p >= t ? "at or above" : "below";
  const says = `<b>P(PNEUMONIA) = ${p.toFixed(1)}%</b>`, answer = `the answer is <b>${d.decision}</b>.`;
  const name = {"children's head": "the children's model", "adult head": "the adult head",
                "adult reader": "the adult reader"};
  // Which head answered, with its own fixed threshold; two heads mixed by P(adult): both, in one sentence.
  const heads = (d.heads || []).filter(h => h.share >= 0.005);
  const o = d.opacity;
  let why;
  if (o && o.opaque) {   // the lung-density rule: measured on the film, beside what the models read
    why = `One lung (${o.side}) is nearly as dense as the tissue between the lungs (density ` +
      `${Math.max(...o.densities).toFixed(2)}; opaque from ${o.threshold.toFixed(2)}). Validation X-rays with a lung ` +
      `that dense had the disease ${pc(o.probability)} of the time, so ${says} (the model alone: ` +
      `${pc(o.model_probability)}), ${side} the threshold of ${t.toFixed(1)}%: ${answer}`;
  } else if (d.decision === "UNCERTAIN") {   // can't tell: the reader's band, fixed on validation
    why = `${says} lies in the adult reader's can't-tell band, ${pc(d.band.low)} to ${pc(d.band.high)}: the ` +
      `band is fixed on validation X-rays so that the answers given outside it are right at least 90% of the ` +
      `time at every hospital, and inside it none is given.`;
  } else if (heads.length === 2) {
    const [c, a] = heads;
    why = `This X-ray looks ${pc(a.share, 0)} adult, so ${name[c.head]} (P ${pc(c.probability)}, ` +
      `threshold ${pc(c.threshold)}) and ${name[a.head]} (P ${pc(a.probability)}, threshold ` +
      `${pc(a.threshold)}) are mixed ${pc(c.share, 0)} to ${pc(a.share, 0)}: ${says} is ${side} the mixed ` +
      `threshold of ${t.toFixed(1)}%, so ${answer}`;
  } else {
    const who = name[heads.length ? heads[0].head : d.answered_by] || "the model";
    const outside = d.band ? ` (outside its can't-tell band, ${pc(d.band.low)} to ${pc(d.band.high)})` : "";
    why = `${says}, ${side} ${t.toFixed(1)}%, the fixed threshold of ${who}${outside}: ${answer}`;
  }
  // The threshold's label sits on a row of its own, moved in by its own position so it never leaves the bar.
  const headline = d.decision === "UNCERTAIN" ? "Can't tell" : d.decision;
  const band = d.band ? `<div class="band" title="can't tell" style="left:${(100 * d.band.low).toFixed(1)}%;` +
    `width:${(100 * (d.band.high - d.band.low)).toFixed(1)}%"></div>` : "";
  return `<div class="verdict ${d.decision}"><div class="headline">${headline}</div>` +
    `<div class="tl"><span style="left:${t.toFixed(1)}%;transform:translateX(-${t.toFixed(1)}%)">` +
    `threshold ${t.toFixed(1)}%</span></div>` +
    `<div class="gauge" role="img" aria-label="P(PNEUMONIA) ${p.toFixed(1)}%, threshold ${t.toFixed(1)}%">` +
    `<div class="fill" style="width:${p.toFixed(1)}%"></div>${band}<div class="mark" style="left:${t.toFixed(1)}%"></div></div>` +
    `<div class="ticks"><span>0%</span><span>100%</span></div>` +
    `<p id="decision-line">${why} Heatmap for: ${d.heatmap_class}.</p>` +
    more(d.pneumonia_type, "which pneumonia", "P(bacterial)", {bacterial: "looks bacterial", viral: "looks viral"}) +
    more(d.tuberculosis, "tuberculosis", "P(TB signs)", {signs: "signs of tuberculosis", "no signs": "no sign of tuberculosis"}) +
    `</div>`;
}"""
CLEAR_UNREADABLE_JS = """(d, im) => d && d.refusal &&
  ["not_an_image", "unreadable"].includes(d.refusal.reason) ? null : im"""
# The API page calls each output 'the value that appears in the "<label>" component': the
# label output appears nowhere on the page (it draws the headline and gauge), so its label says what it is.
LABEL_OUTPUT = "label (for programs): the decision, P(NORMAL) and P(PNEUMONIA)"
# The API page's example upload: a bundled child's X-ray, as the Space serves it (Gradio's default is a bus).
API_EXAMPLE = f"https://huggingface.co/spaces/{cfg.HUB_SPACE_REPO}/resolve/main/examples/PNEUMONIA-viral_person10_virus_35.jpeg"
# Gradio opens its API page from the footer link; from a URL with ?view=api it marks the
# page open without drawing it, and the first click on the link only clears the mark.
# So the head notes the wish (before Gradio's scripts run) and the link is clicked until
# the URL says the page is open again.
WANTS_API_HEAD = ('<script>window.wantsApiPage = new URLSearchParams(location.search).get("view") === "api";'
                  '</script>')
OPEN_API_JS = """() => { if (!window.wantsApiPage) return;
  let tries = 0, clicked = false;
  const wait = setInterval(() => {
    const link = document.querySelector("footer .show-api");
    if (++tries > 40 || (clicked && location.search.includes("view=api"))) return clearInterval(wait);
    if (link) { link.click(); clicked = true; }
  }, 300); }"""
# What red means, under the overlay (OpenCV's JET, as the overlay is drawn).
SCALE_HTML = """<div id="heat-scale"><div class="bar"></div>
<div class="ends"><span>blue: pushed least</span><span>red: pushed most toward the heatmap's class</span></div></div>"""
CSS = """
#notice h3 { margin: 0 0 4px 0; }
#notice { font-size: 0.9em; }
#verdict .headline { font-size: 2em; font-weight: 700; line-height: 1.2; }
#verdict .PNEUMONIA .headline { color: #b91c1c; }
#verdict .NORMAL .headline { color: #15803d; }
#verdict .gauge { position: relative; height: 14px; border-radius: 7px; background: #e5e7eb; margin: 2px 0 2px; }
#verdict .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 7px; background: #6b7280; }
#verdict .PNEUMONIA .fill { background: #dc2626; }
#verdict .NORMAL .fill { background: #16a34a; }
#verdict .UNCERTAIN .headline { color: #374151; }
#verdict .band { position: absolute; top: 0; bottom: 0; border-radius: 7px;
  background: repeating-linear-gradient(45deg, rgba(55, 65, 81, .35) 0 4px, transparent 4px 8px); }
#verdict .mark { position: absolute; top: -4px; bottom: -4px; width: 3px; margin-left: -1px; background: #111827; }
#verdict .ticks { display: flex; justify-content: space-between; font-size: 0.8em; height: 1.3em; }
#verdict .tl { position: relative; font-size: 0.8em; height: 1.3em; margin-top: 6px; }
#verdict .tl span { position: absolute; white-space: nowrap; }
#heat-scale .ends { display: flex; justify-content: space-between; font-size: 0.8em; gap: 8px; }
#verdict .refused .headline { font-size: 1.5em; }
#verdict .more { margin: 8px 0 0; font-size: 0.85em; color: #4b5563; }
#verdict .caveat { color: #6b7280; }
#heat-scale .bar { height: 10px; border-radius: 5px;
  background: linear-gradient(to right, #00007f, #0000ff, #007fff, #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000); }
#examples, #examples .gallery-container { height: auto !important; min-height: 0 !important; }
#examples .grid-wrap { max-height: none !important; height: auto !important; overflow: visible !important; }
#examples .caption-label { white-space: normal; text-overflow: clip; line-height: 1.15; }
#overlay img { width: 100%; height: 100%; object-fit: contain; }
#overlay.refused .image-container { visibility: hidden; }
footer .show-api, footer .show-api-divider { display: flex !important; }   /* Gradio hides it under 640 px */
@media (max-width: 700px) {
  #examples .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
"""
# Gradio's packaged SemiBold faces (weight 600, its bold) hold a few dozen glyphs
# only: bold text took "A" and "B" from them and the rest from a synthesised
# bold, "PNEUMONIA" drawn with a small A. Regular and Bold are complete, so the
# theme declares those two weights and bold text is drawn from the Bold face.
THEME = gr.themes.Default(
    font=[gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=[gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "Consolas", "monospace"])
# How the page is served, by `python app.py` and by the notebook alike.
LAUNCH = {"max_file_size": cfg.MAX_UPLOAD, "footer_links": ["api"], "css": CSS, "theme": THEME,
          "head": WANTS_API_HEAD}

with gr.Blocks(title="Pneumonia X-ray classifier with Grad-CAM", analytics_enabled=False,
               delete_cache=(600, 900)) as demo:
    gr.Markdown(
        "# Pneumonia on a chest X-ray, with where the model looked\n"
        "Upload a frontal chest X-ray: the model finds the lungs, says NORMAL or PNEUMONIA with a "
        "probability, and colours what drove its answer. It was trained on children aged 1-5. "
        f"⚠️ **{cfg.DISCLAIMER}**"
    )
    with gr.Tabs():
        with gr.Tab("One X-ray", elem_id="one"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(label="Chest X-ray (upload, drop or paste)", type="filepath",
                                     image_mode=None, sources=["upload", "clipboard"], height=300, elem_id="upload")
                    button = gr.Button("Analyze", variant="primary")
                    gr.Markdown("**Examples**: click one to analyze it (captions give the truth)")
                    examples = gr.Gallery([(p, caption(p)) for p in EXAMPLES], show_label=False, label="Examples",
                                          columns=4, height="auto", allow_preview=False, object_fit="cover",
                                          interactive=False, buttons=[], elem_id="examples")
                    heatmap_for = gr.Radio(list(HEATMAP_TARGETS), value="decided class", label="Heatmap for")
                    dicom = gr.File(label="...or a DICOM file (.dcm)", file_types=[".dcm", ".dicom"],
                                    type="filepath", height=140)
                with gr.Column(elem_id="answer"):
                    notice = gr.Markdown(elem_id="notice")
                    verdict = gr.HTML(elem_id="verdict")
                    # The API's label output (decision + both probabilities): for programs;
                    # the page shows the gauge above instead.
                    label = gr.Label(label=LABEL_OUTPUT, num_top_classes=2, elem_id="label", visible="hidden")
                    gr.Markdown("**Grad-CAM overlay**")
                    heatmap = gr.Image(label="Grad-CAM overlay", show_label=False, type="filepath", interactive=False,
                                       height=380, buttons=[], elem_id="overlay")
                    gr.HTML(SCALE_HTML)
                    gr.Markdown(
                        READS[predictor.reader.variant] + " The colours show what drove the answer, not where "
                        "disease is; the map is coarse (7x7 cells). " + NO_COVID
                    )
                    with gr.Accordion("For programs (JSON)", open=False):
                        details = gr.JSON(label="details", show_label=False)
                        # Typed on the API page field by field (gr.JSON says only "any valid json");
                        # set on the instance, since a subclass would need a frontend of its own.
                        details.api_info = lambda: DETAILS_SCHEMA
        with gr.Tab("Many X-rays", elem_id="many"):
            gr.Markdown(
                f"Drop up to {MANY_LIMIT} X-rays, or a zip of them: each is answered as on the first tab, and "
                "the table and `answers.csv` give every answer, or why a file was refused. The same from the "
                "command line, for any number: `python -m pneumonia.batch FOLDER --out DIR`. Add a labels file "
                "(a CSV with `file` and `label`, NORMAL/PNEUMONIA or 0/1; any other column is a group, such as a "
                "site) and you also get a report on how the model does on your data.")
            many_files = gr.File(label="X-rays or a .zip", file_count="multiple", type="filepath",
                                 file_types=[".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dcm",
                                             ".zip"], elem_id="many-files")
            many_labels = gr.File(label="Your labels (optional): a .csv with file and label", type="filepath",
                                  file_types=[".csv"], elem_id="many-labels")
            many_button = gr.Button("Analyze all", variant="primary", elem_id="many-button")
            many_table = gr.Dataframe(headers=list(MANY_COLUMNS), interactive=False, wrap=True,
                                      elem_id="many-table")
            many_csv = gr.File(label="answers.csv (and the report's files)", file_count="multiple",
                               interactive=False, elem_id="many-csv")
            many_report = gr.HTML(visible=False, elem_id="many-report")
    with gr.Accordion("About the model", open=False):
        gr.Markdown(model.panel_markdown())
    image.example_payload = lambda: handle_file(API_EXAMPLE)   # the API page's example, on this instance
    image.example_value = lambda: API_EXAMPLE
    answer = [label, heatmap, details]
    # postprocess=False: `response` builds the outputs in Gradio's own shapes, so
    # the label keeps the decision as its headline (Gradio's postprocessing
    # would put the larger probability there) and the overlay file is served as written.
    button.click(analyze, inputs=[image, heatmap_for], outputs=answer, api_name="predict",
                 preprocess=False, postprocess=False, concurrency_limit=cfg.CONCURRENCY, concurrency_id="model")
    examples.select(show_example, inputs=heatmap_for, outputs=[image, *answer], postprocess=False,
                    api_visibility="private", concurrency_id="model")
    # A new upload is answered at once, so no answer of an earlier image stays beside it.
    image.upload(analyze, inputs=[image, heatmap_for], outputs=answer, api_visibility="private",
                 preprocess=False, postprocess=False, concurrency_id="model")
    dicom.upload(analyze, inputs=[dicom, heatmap_for], outputs=answer, api_visibility="private",
                 preprocess=False, postprocess=False, concurrency_id="model")
    # An upload's answer is not an example's: no thumbnail stays marked as selected.
    for upload in (image.upload, dicom.upload):
        upload(lambda: gr.Gallery(selected_index=None), outputs=examples, queue=False, api_visibility="private")
    demo.load(None, js=OPEN_API_JS)
    many_button.click(analyze_many, inputs=[many_files, many_labels], outputs=[many_table, many_csv, many_report],
                      api_visibility="private", concurrency_id="model")
    gr.api(predict_batch, api_name="predict_batch", concurrency_id="model")
    details.change(None, inputs=details, outputs=verdict, js=ANSWER_JS, queue=False,
                   api_visibility="private")
    details.change(None, inputs=details, outputs=notice, js=NOTICE_JS, queue=False, api_visibility="private")
    # A file that is no image leaves a broken picture in the upload box: clear it.
    details.change(None, inputs=[details, image], outputs=image, js=CLEAR_UNREADABLE_JS, queue=False,
                   api_visibility="private")
# Each answer's overlay is written once, under a fresh name, in the folder
# Gradio serves files from (pneumonia.serve.response): nothing copies or rewrites it,
# and `delete_cache` removes it with Gradio's own files.
OVERLAYS = Path(heatmap.GRADIO_CACHE) / "overlays"

# Bounded: an overload is told to come back instead of piling up in memory.
demo.queue(max_size=int(os.environ.get("PNEUMONIA_QUEUE_SIZE", cfg.QUEUE_MAX_SIZE)),
           default_concurrency_limit=cfg.CONCURRENCY)

def analyze_bytes(data: bytes) -> dict:
    """POST /v1/analyze: the details JSON of one X-ray's bytes (no overlay file: the JSON has the map)."""
    stats["requests"] += 1
    try:
        return details_of(predictor.analyze(data))
    except ImageError as e:
        stats["errors"] += 1
        return refuse_details(e)


def refuse_details(error: ImageError) -> dict:
    return refuse(error, predictor.version, predictor.runtime)[2]


def launch(**options):
    """Serve the page and the APIs: Gradio's, and the plain HTTP one (pneumonia.serve.http_api),
    whose route the server has from its first request (given to the app it builds)."""
    extra = http_api.routes(analyze_bytes, refuse_details, max_bytes=cfg.MAX_UPLOAD_BYTES,
                            slots=cfg.QUEUE_MAX_SIZE + cfg.CONCURRENCY)
    app, *_ = demo.launch(**LAUNCH, app_kwargs={"routes": extra}, **options)
    return app


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
    launch(prevent_thread_lock=True)
    warm_up(demo.local_url)
    demo.block_thread()
