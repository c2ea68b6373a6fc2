"""The README is a valid Hugging Face Space card that matches the pins."""
import re

from conftest import ROOT
from huggingface_hub import metadata_load

from pneumonia.config import HUB_MODEL_REPO, SPACE_FILES


def pinned(name):
    text = (ROOT / "requirements.txt").read_text()
    return re.search(rf"^{name}==(\S+)", text, re.M).group(1)


def test_space_front_matter():
    meta = metadata_load(ROOT / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pinned("gradio")
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    assert str(meta["python_version"]) == "3.11"
    assert meta["suggested_hardware"] == "cpu-basic"
    assert HUB_MODEL_REPO in meta["models"]
    from pneumonia.serve.hub import SERVED_PATTERNS
    entry = next(e for e in meta["preload_from_hub"] if e.startswith(HUB_MODEL_REPO))
    # Every file the app serves (the segmenter too) is fetched at build time.
    assert set(entry.split()[1].split(",")) == set(SERVED_PATTERNS)
    assert len(meta["short_description"]) <= 60
    for key in ("title", "emoji", "colorFrom", "colorTo", "license"):
        assert meta[key]


def test_space_files_exist():
    for pattern in SPACE_FILES:
        assert list(ROOT.glob(pattern)), pattern
