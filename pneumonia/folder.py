"""A model folder's config, read without loading any network (no TensorFlow)."""
from __future__ import annotations

import json
from pathlib import Path

from pneumonia.config import CONFIG_FILE

REQUIRED_KEYS = ("class_names", "threshold", "temperature", "input_size")


class ModelFolderError(ValueError):
    """A model folder that is missing files or holds something we can't load."""


def read_config(folder: str | Path, needs: tuple[str, ...] = ()) -> dict:
    """`config.json` of a model folder, checked; `needs` are files that must be there too."""
    folder = Path(folder)
    missing = [f for f in (*needs, CONFIG_FILE) if not (folder / f).is_file()]
    if missing:
        raise ModelFolderError(f"Model folder {folder} is missing {', '.join(missing)}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{folder / CONFIG_FILE} is not valid JSON ({e})") from None
    for key in REQUIRED_KEYS:
        if key not in config:
            raise ModelFolderError(f"{folder / CONFIG_FILE} lacks the key {key!r}")
    return config
