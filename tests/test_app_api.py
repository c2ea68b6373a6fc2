"""The real app in a subprocess, called over HTTP by gradio_client."""
import json

import numpy as np
import pytest
from conftest import EXAMPLES, MODEL_DIR
from gradio_client import Client, handle_file
from PIL import Image


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.mark.parametrize("name, expected", [
    ("NORMAL_IM-0001-0001.jpeg", "NORMAL"),
    ("PNEUMONIA-bacterial_person100_bacteria_475.jpeg", "PNEUMONIA"),
    ("PNEUMONIA-viral_person10_virus_35.jpeg", "PNEUMONIA"),
])
def test_predict_labels_bundled_examples(client, name, expected):
    label, overlay_path, details = client.predict(handle_file(str(EXAMPLES / name)), api_name="/predict")
    assert details["decision"] == expected
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert probs["PNEUMONIA"] == pytest.approx(details["probability_pneumonia"])
    assert probs["NORMAL"] + probs["PNEUMONIA"] == pytest.approx(1.0)
    assert (probs["PNEUMONIA"] >= details["threshold"]) == (expected == "PNEUMONIA")
    assert label["label"] == expected
    assert details["model_version"]
    assert Image.open(overlay_path).size == Image.open(EXAMPLES / name).size


def test_label_and_decision_agree_on_every_bundled_xray(client):
    """Children and adults (whose reader's threshold is far from 0.5): the label's
    headline is always the decided class, or UNCERTAIN inside the reader's band."""
    from conftest import DATA
    files = sorted(EXAMPLES.glob("*.jp*g")) + sorted(EXAMPLES.glob("*.png")) + \
        sorted((DATA.parent / "adults").glob("*.png"))
    assert len(files) >= 20
    answered = uncertain = 0
    for f in files:
        label, _, details = client.predict(handle_file(str(f)), api_name="/predict")
        if not details["answered"]:   # refused (the guard, or no lungs found): no label and no decision
            assert label is None and details["decision"] is None and details["refusal"]["message"], f.name
            continue
        p, t, band = details["probability_pneumonia"], details["threshold"], details["band"]
        unsure = band is not None and band["low"] <= p < band["high"]   # the adult reader's can't-tell band
        assert label["label"] == details["decision"] == (
            "UNCERTAIN" if unsure else "PNEUMONIA" if p >= t else "NORMAL"), f.name
        answered += 1
        uncertain += unsure
    assert answered >= len(files) - 2 and 0 < uncertain < answered


def test_outputs_are_named_in_the_api(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/predict"]
    assert [r["label"] for r in info["returns"]] == ["label (for programs): the decision, P(NORMAL) and P(PNEUMONIA)",
                                                    "Grad-CAM overlay", "details"]
    # the API page's example is a bundled X-ray, not Gradio's bus photo
    assert info["parameters"][0]["example_input"]["path"].endswith("examples/PNEUMONIA-viral_person10_virus_35.jpeg")
    # details is typed field by field (docs/details.schema.json), not as "any valid json".
    from pneumonia.serve.schema import DETAILS_SCHEMA
    details = info["returns"][2]
    assert details["type"] == DETAILS_SCHEMA
    assert "refusal: dict(reason: Literal['no_image'" in details["python_type"]["type"]
    import json
    from conftest import ROOT
    assert json.loads((ROOT / "docs" / "details.schema.json").read_text()) == DETAILS_SCHEMA


def test_identical_concurrent_requests_all_succeed(client, app_url):
    """Eight clients sending the same X-ray at once, downloading the overlay
    each time (gradio_client's default): each gets a whole file of its own.
    With overlays named by a hash of their bytes and rewritten per request,
    about 1 in 100 of these downloads came back truncated or empty."""
    from concurrent.futures import ThreadPoolExecutor
    image = str(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg")

    def run(_):
        c = Client(app_url, verbose=False, ssl_verify=False)
        out = []
        for _ in range(10):
            _, overlay_path, details = c.predict(handle_file(image), api_name="/predict")
            with Image.open(overlay_path) as im:
                im.load()  # a truncated download fails here
                out.append((overlay_path, im.size, details["decision"]))
        return out
    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(run, range(8)) for a in batch]
    assert len(answers) == 80
    assert {(size, decision) for _, size, decision in answers} == {((224, 224), "PNEUMONIA")}
    assert len({path for path, _, _ in answers}) == 80  # never one file for two answers


def test_overlay_has_the_uploaded_resolution(client, tmp_path):
    big = Image.open(EXAMPLES / "NORMAL_IM-0003-0001.jpeg").convert("L").resize((640, 512))
    path = tmp_path / "large.png"
    big.save(path)
    _, overlay_path, details = client.predict(handle_file(str(path)), api_name="/predict")
    overlay = Image.open(overlay_path)
    assert overlay.size == (640, 512) and overlay.mode == "RGB"
    assert np.asarray(overlay).std() > 0


def refused(client, upload) -> dict:
    """One refusal, as a program gets it: no label, no overlay, the reason in details."""
    label, overlay, details = client.predict(upload, api_name="/predict")
    assert label is None and overlay is None and details["answered"] is False
    assert details["decision"] is None and details["probability_pneumonia"] is None
    return details["refusal"]


def test_every_refusal_reaches_a_program_in_one_shape(client, tmp_path):
    """Not an image, too small, no image, no lungs, not a chest X-ray: the same
    outputs, the same keys, a reason code and a message; the server keeps serving."""
    from pneumonia.serve.schema import DETAILS_SCHEMA
    import jsonschema
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not an image")
    tiny = tmp_path / "tiny.png"
    Image.new("L", (20, 20)).save(tiny)
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).uniform(0, 255, (300, 300)).astype(np.uint8)).save(noise)
    cases = [(handle_file(str(junk)), "not_an_image", "not an image we can read"),
             (handle_file(str(tiny)), "too_small", "too small"),
             (None, "no_image", "No image was given"),
             (handle_file(str(noise)), "no_lungs", "No lung fields found: upload a frontal chest X-ray")]
    keys = None
    for upload, reason, message in cases:
        _, _, details = client.predict(upload, api_name="/predict")
        jsonschema.validate(details, DETAILS_SCHEMA)
        r = refused(client, upload)
        assert r["reason"] == reason and message in r["message"], r
        keys = keys or list(details)
        assert list(details) == keys
        # a refusal says why and nothing else: every answer field null
        from pneumonia.serve.response import REFUSAL_KEEPS
        assert [k for k, v in details.items() if v is not None and k not in ("answered", *REFUSAL_KEEPS)] == []
    _, _, details = client.predict(handle_file(str(EXAMPLES / "PNEUMONIA-viral_person11_virus_38.jpeg")),
                                   api_name="/predict")
    jsonschema.validate(details, DETAILS_SCHEMA)
    assert details["decision"] == "PNEUMONIA" and details["answered"] is True and details["refusal"] is None
    assert list(details)[:len(keys)] == keys


def test_the_answer_says_which_precision_served_it(client):
    """details.runtime: the precision this server's CPU runs, chosen at start-up
    among those offered, the same in answers and refusals."""
    from pneumonia.serve.runtime import PRECISIONS, bf16_arithmetic
    _, _, answered = client.predict(handle_file(str(EXAMPLES / "NORMAL_IM-0001-0001.jpeg")), api_name="/predict")
    _, _, refused_ = client.predict(None, api_name="/predict")
    rt = answered["runtime"]
    assert rt == refused_["runtime"] and rt["precision"] in PRECISIONS and rt["cpu_bf16"] == bf16_arithmetic()
    assert rt["precision"] != "bf16" or bf16_arithmetic()
    if rt["timings"]:   # several were timed: the fastest of them was chosen
        assert "the fastest of" in rt["chosen"] and rt["precision"] in rt["timings"]


def test_the_guards_refusal_has_the_same_shape(client):
    """Adult and child X-rays the guard refuses come back as refusals too (the
    bundled adults and NIH test files are answered or refused, never an error).
    Besides the guard, the lung finder may refuse a film whose lungs it cannot
    find: one bundled adult (nih_00000506_016: edema, effusion, pneumonia; one
    lung white) is refused so by the opacity-trained finder."""
    from conftest import DATA
    for f in sorted((DATA.parent / "adults").glob("*.png")):
        _, _, details = client.predict(handle_file(str(f)), api_name="/predict")
        if not details["answered"]:
            reason = details["refusal"]["reason"]
            assert reason in ("not_chest_xray", "no_lungs") and details["refusal"]["message"], f.name
            assert details["probability_pneumonia"] is None and details["decision"] is None, f.name
            # a refusal says why and nothing else (the guard's own numbers stay in process)
            assert details["is_chest_xray"] is None and details["answered_by"] is None, f.name


def test_oversized_upload_is_refused_cleanly(client, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(26 * 1024 * 1024))  # over the 25 MB limit
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(str(big)), api_name="/predict")
    _, _, details = client.predict(handle_file(str(EXAMPLES / "NORMAL_IM-0003-0001.jpeg")),
                                   api_name="/predict")
    assert details["is_chest_xray"] is True


def test_dicom_through_the_api(client, tmp_path):
    from test_dicom import make_dicom

    from pneumonia.serve.imaging import load_image
    grey = load_image(EXAMPLES / "PNEUMONIA-bacterial_person101_bacteria_483.jpeg")
    path = tmp_path / "xray.dcm"
    path.write_bytes(make_dicom(grey.astype(np.uint16) * 16, 12, photometric="MONOCHROME2"))
    _, overlay_path, details = client.predict(handle_file(str(path)), api_name="/predict")
    assert details["decision"] == "PNEUMONIA"
    assert Image.open(overlay_path).size == (grey.shape[1], grey.shape[0])


def test_json_carries_the_lungs_box_and_area(client, tmp_path):
    grey = Image.open(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg").convert("L").resize((900, 700))
    path = tmp_path / "wide.png"
    grey.save(path)
    _, overlay_path, details = client.predict(handle_file(str(path)), api_name="/predict")
    lungs = details["lungs"]
    box = lungs["box"]
    assert 0 <= box["x0"] < box["x1"] <= 900 and 0 <= box["y0"] < box["y1"] <= 700
    assert 0.1 < lungs["area_fraction"] < 0.7
    assert lungs["area_pixels"] == pytest.approx(lungs["area_fraction"] * 900 * 700, abs=1)
    # The lungs sit in the middle, not at the image's edge.
    assert box["x0"] > 10 and box["x1"] < 890
    overlay = np.asarray(Image.open(overlay_path).convert("RGB")).astype(int)
    assert overlay.shape == (700, 900, 3)
    # Outside the lungs' box the model read nothing: the overlay is the plain X-ray there
    # (the white lung outline lies inside the box).
    outside = np.ones((700, 900), bool)
    outside[box["y0"]:box["y1"], box["x0"]:box["x1"]] = False
    plain = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2).astype(int)
    assert np.abs(overlay[outside] - plain[outside]).mean() < 1.5  # the JPEG's rounding only
    inside = ~outside
    assert np.abs(overlay[inside] - plain[inside]).mean() > 5   # coloured where it read
    assert len(lungs["outline"]) == 2 and np.asarray(details["heatmap"]["grid"]).shape == (7, 7)


ADULT = "ADULT-NIH-no-finding_nih_00001305_001.png"


def test_adult_xray_is_recognised_and_read_by_the_adult_reader_with_a_notice(client):
    _, _, child = client.predict(handle_file(str(EXAMPLES / "NORMAL_IM-0001-0001.jpeg")),
                                 api_name="/predict")
    assert child["is_chest_xray"] is True and child["looks_adult"] is False
    assert child["population_notice"] is None and child["answered_by"] == "children's head"
    assert child["adult_probability"] <= child["adult_threshold"] and "P(adult)" in child["routing"]
    assert [h["head"] for h in child["heads"]] == ["children's head"] and child["band"] is None
    _, overlay_path, adult = client.predict(handle_file(str(EXAMPLES / ADULT)), api_name="/predict")
    assert adult["is_chest_xray"] is True and adult["ood_score"] <= adult["ood_threshold"]
    assert adult["looks_adult"] is True and adult["adult_probability"] > adult["adult_threshold"]
    assert adult["answered_by"] in ("adult reader", "children's model and adult reader, blended")
    assert adult["decision"] == "NORMAL"   # a healthy adult (NIH "no finding"), far below the reader's band
    reader = next(h for h in adult["heads"] if h["head"] == "adult reader")
    assert reader["share"] > 0.5 and adult["band"]["low"] < adult["band"]["high"]
    assert adult["probability_pneumonia"] < adult["band"]["low"]
    notice = adult["population_notice"]
    assert "second network" in notice and "can't tell" in notice and "found" in notice, notice
    assert Image.open(overlay_path).size == Image.open(EXAMPLES / ADULT).size


def test_the_adult_reader_says_it_cannot_tell_inside_its_band(client):
    """UNCERTAIN: the label headed the same, the probability, threshold and band all given."""
    label, overlay_path, d = client.predict(handle_file(str(EXAMPLES / "ADULT-NIH-pneumonia_nih_00000591_004.png")),
                                            api_name="/predict")
    assert d["answered"] is True and d["decision"] == "UNCERTAIN" and label["label"] == "UNCERTAIN"
    assert d["band"]["low"] <= d["probability_pneumonia"] < d["band"]["high"]
    assert d["heatmap_class"] in ("NORMAL", "PNEUMONIA") and overlay_path is not None


@pytest.mark.parametrize("size, reason, message", [
    ((30000, 30000), "too_large", r"too large \(900 megapixels; the limit is 50\)"),
    ((5000, 64), "bad_shape", r"5000x64 pixels: no chest X-ray is more than 3 times as wide"),
])
def test_shapes_no_radiograph_has_get_a_message_naming_the_problem(client, tmp_path, size, reason, message):
    import re
    path = tmp_path / "odd.png"
    if size[0] == 30000:
        Image.new("1", size).save(path)  # 109 KB on disk; Pillow calls it a decompression bomb
    else:
        Image.open(EXAMPLES / "NORMAL_IM-0001-0001.jpeg").convert("L").resize(size).save(path)
    r = refused(client, handle_file(str(path)))
    assert r["reason"] == reason and re.search(message, r["message"]), r


def test_overload_is_told_to_come_back_and_the_queue_stays_bounded():
    """A second app with room for one waiting request: a burst gets Gradio's
    queue-full refusal for the excess, and the app answers afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import start_app
    proc, url = start_app({"PNEUMONIA_QUEUE_SIZE": "1"})
    try:
        image = handle_file(str(EXAMPLES / "NORMAL_IM-0001-0001.jpeg"))

        def call(_):
            try:
                Client(url, verbose=False, ssl_verify=False).predict(image, api_name="/predict")
                return "ok"
            except Exception as e:  # the refusals are what this test is about
                return str(e)
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(call, range(8)))
        refused = [o for o in outcomes if o != "ok"]
        assert refused and all("Queue is full" in o for o in refused), outcomes
        assert "ok" in outcomes
        _, _, details = Client(url, verbose=False).predict(image, api_name="/predict")
        assert details["decision"] == "NORMAL"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_readme_drawing_script_runs_and_draws_what_the_app_draws(app_url, tmp_path):
    """The README's matplotlib script, run as a script against the app: it saves
    the X-ray with the smooth map clipped to the white line, and that line."""
    import re
    import subprocess
    import sys
    from conftest import ROOT
    readme = (ROOT / "README.md").read_text()
    script = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "savefig" in b)
    script = script.replace("http://127.0.0.1:7860/", app_url).replace('"examples/', f'"{ROOT}/examples/')
    check = """
ax = fig.axes[0]
assert len(ax.images) == 2 and ax.images[1].get_clip_path() is not None
assert ax.images[1].get_interpolation() == "bicubic"
assert len(ax.lines) == len(outline) == 2
print("drawn", details["decision"])
"""
    proc = subprocess.run([sys.executable, "-c", script + check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("drawn PNEUMONIA")
    drawn = np.asarray(Image.open(tmp_path / "gradcam.png").convert("RGB")).astype(int)
    assert drawn.shape[0] > 300 and drawn.std() > 20


def test_the_heads_under_the_answer_reach_programs_where_they_apply(client):
    """A child answered PNEUMONIA gets pneumonia_type, an adult's film gets
    tuberculosis, whatever the pneumonia answer; elsewhere no number, a reason."""
    def ask(name):
        return client.predict(handle_file(str(EXAMPLES / name)), api_name="/predict")[2]
    child = ask("PNEUMONIA-bacterial_person100_bacteria_475.jpeg")
    t = child["pneumonia_type"]
    assert 0 <= t["probability"] <= 1 and t["decision"] in ("bacterial", "viral") and t["reason"] is None
    assert (t["probability"] >= t["threshold"]) == (t["decision"] == "bacterial") and "measured on" in t["measured"]
    assert child["tuberculosis"]["probability"] is None and "adults" in child["tuberculosis"]["reason"]
    healthy = ask("NORMAL_IM-0001-0001.jpeg")
    if not healthy["looks_adult"]:
        assert healthy["pneumonia_type"]["probability"] is None and "PNEUMONIA" in healthy["pneumonia_type"]["reason"]
    cross = json.loads((MODEL_DIR / "config.json").read_text())["subtypes"]["tuberculosis"]["cross_hospital"]
    shenzhen = cross["fitted without shenzhen, scored on all of shenzhen"]["roc_auc"]   # the shipped line's own record
    for name in sorted(p.name for p in EXAMPLES.glob("ADULT-*.png")):
        adult = ask(name)
        if adult["answered"] and adult["looks_adult"]:
            # the served TB line does not hold on a hospital it was not fitted on: not shown, the numbers say why
            tb = adult["tuberculosis"]
            assert tb["probability"] is None and tb["decision"] is None, name
            assert tb["reason"].startswith("not shown") and f"shenzhen ROC AUC {shenzhen:.3f}" in tb["reason"], tb["reason"]
            assert adult["pneumonia_type"]["probability"] is None, name


def test_the_heads_under_the_answer_have_exact_heatmaps_of_their_own(client):
    """'Heatmap for' takes the new classes too: their heads are linear on the
    pooled features, so the map is exact, and it differs from PNEUMONIA's."""
    image = handle_file(str(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg"))
    _, _, main = client.predict(image, "PNEUMONIA", api_name="/predict")
    _, overlay, bact = client.predict(image, "bacterial", api_name="/predict")
    assert main["heatmap_class"] == "PNEUMONIA" and bact["heatmap_class"] == "bacterial"
    grid, other = np.asarray(bact["heatmap"]["grid"]), np.asarray(main["heatmap"]["grid"])
    assert grid.shape == (7, 7) and grid.max() == pytest.approx(1.0, abs=1e-3) and not np.allclose(grid, other)
    assert bact["decision"] == main["decision"] and overlay is not None
    # a line not shown has no map to ask for
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/predict"]
    assert "tuberculosis signs" not in str(info["parameters"][1]["type"])


def test_predict_batch_answers_a_list_of_files_in_order(client, tmp_path):
    """/predict_batch: a list of files in, each one's details out, as /predict gives them."""
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not an image")
    names = ["NORMAL_IM-0003-0001.jpeg", "PNEUMONIA-viral_person11_virus_38.jpeg"]
    out = client.predict([handle_file(str(EXAMPLES / n)) for n in names] + [handle_file(str(junk))],
                         api_name="/predict_batch")
    assert [d["file"] for d in out] == names + ["notes.png"]
    for name, d in zip(names, out):
        one = client.predict(handle_file(str(EXAMPLES / name)), api_name="/predict")[2]
        assert d["decision"] == one["decision"] and abs(d["probability_pneumonia"] - one["probability_pneumonia"]) < 0.02
    assert out[2]["answered"] is False and out[2]["refusal"]["reason"] == "not_an_image"
