"""The JavaScript client (@gradio/client, as an embedding page calls the app)
against the real app: a label, an overlay and the JSON; a refusal in the same
shape as for Python programs for a non-image. Needs Node and `npm ci --prefix tests/js` (scripts/test.sh runs it)."""
import json
import shutil
import subprocess

import pytest
from conftest import EXAMPLES, ROOT

JS = ROOT / "tests" / "js"
UNSURE = "ADULT-NIH-pneumonia_nih_00000591_004.png"   # P(PNEUMONIA) in the adult reader's can't-tell band


def test_js_client_gets_the_answer_and_the_message(app_url, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed")
    if not (JS / "node_modules" / "@gradio" / "client").is_dir():
        pytest.fail("@gradio/client is not installed: run npm ci --prefix tests/js")
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not an image")
    files = [EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg", junk,
             EXAMPLES / "ADULT-NIH-no-finding_nih_00001305_001.png", EXAMPLES / UNSURE]
    proc = subprocess.run([node, str(JS / "client.mjs"), app_url, *map(str, files)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    child, bad, adult, unsure = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert child["ok"] and child["label"] == "PNEUMONIA" and child["details"]["decision"] == "PNEUMONIA"
    assert child["overlay_url"].endswith(".jpg")
    assert len(child["details"]["lungs"]["outline"]) == 2 and len(child["details"]["heatmap"]["grid"]) == 7
    assert bad["ok"] and bad["label"] is None and bad["overlay_url"] is None
    assert bad["details"]["answered"] is False and bad["details"]["refusal"]["reason"] == "not_an_image"
    assert bad["details"]["refusal"]["message"].startswith("This file is not an image we can read")
    assert child["details"]["pneumonia_type"]["decision"] in ("bacterial", "viral")
    assert child["details"]["tuberculosis"]["probability"] is None
    assert bad["details"]["pneumonia_type"] is None and bad["details"]["tuberculosis"] is None
    assert adult["ok"] and adult["details"]["looks_adult"] is True
    assert adult["details"]["tuberculosis"]["decision"] is None                # the TB line is not shown:
    assert adult["details"]["tuberculosis"]["reason"].startswith("not shown")  # it fails on a new hospital
    assert adult["label"] == adult["details"]["decision"]
    # the adult reader can't tell: the label is headed UNCERTAIN, the numbers are all there
    d = unsure["details"]
    assert unsure["label"] == d["decision"] == "UNCERTAIN" and d["answered"] is True
    assert d["band"]["low"] <= d["probability_pneumonia"] < d["band"]["high"] and 0 < d["threshold"] < 1
