"""The pooled features of the training split's children, computed once per
model folder and shared by every head fitted on them (the guard and routing,
`population`; the heads under the answer, `subtypes`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CACHE: dict[tuple[str, str], "ChildFeatures"] = {}


@dataclass
class ChildFeatures:
    net: object               # the folder's keras.Model
    config: dict
    reader: object            # its LungReader (Keras segmenter)
    split: object             # data.TrainSplit of lung views (X-rays without lungs left out)
    canons: np.ndarray        # the canonical images behind those views
    pooled: np.ndarray        # (n, 2048), one row per view of `split`
    stressed: np.ndarray      # STRESS_COPIES stressed copies of the validation part, seen through their own lungs


def child_features(model_dir: str | Path, data_dir: str | Path) -> ChildFeatures:
    """The folder's network, config and lung reader, with the training split's
    pooled features (cached for this process: one pass however many heads)."""
    key = (str(Path(model_dir).resolve()), str(Path(data_dir).resolve()))
    if key in _CACHE:
        return _CACHE[key]
    from pneumonia.config import STRESS_COPIES
    from pneumonia.train import augment, data
    from pneumonia.train.cli import log
    from pneumonia.train.model import load_model_folder, pooled_features
    from pneumonia.train.segmenter import keras_reader
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    reader = keras_reader(folder, config)
    tr = config["training"]
    split = data.load_train_split(data_dir, tr.get("limit"), tr["seed"], tr["val_fraction"])
    split, _, canons = data.lung_split(reader, split)
    log(f"Pooled features of {len(split.images)} training-split X-rays and their stressed validation copies")
    pooled = pooled_features(net, split.images)
    stressed = pooled_features(net, augment.lung_stressed(reader.read, canons[split.val_idx],
                                                          split.images[split.val_idx], STRESS_COPIES, tr["seed"]))
    _CACHE[key] = ChildFeatures(net, config, reader, split, canons, pooled, stressed)
    return _CACHE[key]
