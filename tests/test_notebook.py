"""The Colab notebook: cleared outputs, a badge that points at it, and every cell run on the tiny data.

The run uses the notebook's own parameter cell's names, set for a CPU: the
tiny data in tests/data, random weights, one epoch, and the local Hub
stand-in for the segmenter download, the push and the app's pull. On this
machine nothing in it is GPU- or network-bound: the install and the Kaggle
download are Colab-only (`IN_COLAB`) or skipped when the data is there.
"""
import json

import nbformat
import pytest
from conftest import DATA, MODEL_DIR, ROOT, free_port
from hub_server import TOKEN, FakeHub

from pneumonia.config import GITHUB_REPO, NOTEBOOK_FILE

NOTEBOOK = ROOT / NOTEBOOK_FILE
BADGE = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/{NOTEBOOK_FILE}"


def read():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_outputs_are_cleared_in_git():
    nb = read()
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def test_the_badge_opens_this_file_and_the_readme_links_it():
    assert BADGE in read().cells[0].source
    assert BADGE in (ROOT / "README.md").read_text()


def test_the_notebook_is_thin():
    """It calls the package: no function or class of its own beyond the curves' redraw."""
    code = "\n".join(c.source for c in read().cells if c.cell_type == "code")
    import re
    assert len(re.findall(r"^\s*def ", code, re.M)) == 1 and not re.search(r"^\s*class ", code, re.M)
    assert "train.main(" in code and "pneumonia.train.publish" in code and "import app" in code


@pytest.fixture()
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


def test_every_cell_runs_on_the_tiny_data(hub, tmp_path, monkeypatch):
    from huggingface_hub import HfApi
    from nbclient import NotebookClient
    seg = tmp_path / "segmenter"
    seg.mkdir()
    (seg / "lungs.keras").write_bytes((MODEL_DIR / "lungs.keras").read_bytes())
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo("tester/segmenter", exist_ok=True)
    api.upload_folder(folder_path=seg, repo_id="tester/segmenter")
    for k in [k for k in list(__import__("os").environ) if k.startswith("HF_")]:
        monkeypatch.delenv(k)
    for k, v in {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf"),
                 "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
                 "GRADIO_SERVER_PORT": str(free_port()), "GRADIO_ANALYTICS_ENABLED": "False",
                 "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "model"
    nb = read()
    i = next(n for n, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(
        f"DATA = {str(DATA)!r}\nSEGMENTER_REPO = 'tester/segmenter'\nOUT = {str(out)!r}\n"
        "PUSH_TO = 'tester/notebook'\nWEIGHTS = 'none'\nLIMIT = 6\nEPOCHS, HEAD_EPOCHS, BATCH_SIZE = 1, 1, 8\n"
        "VAL_FRACTION = 0.34\nLAUNCH = True"))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert "precision mixed_bfloat16" in text or "precision float32" in text
    assert (out / "metrics.json").is_file() and (out / "classifier.xml").is_file()
    assert "Test split" in text and "swap test" in text            # the evidence tables
    assert text.count("image/png") >= 5                            # curves, figures, overlays
    repo = hub.state.repos[("model", "tester/notebook")]          # pushed
    assert "metrics.json" in repo.commits[repo.refs["main"]]
    assert "the app answers:" in text and "Hub repo `tester/notebook`" in text   # the app served the pushed model
