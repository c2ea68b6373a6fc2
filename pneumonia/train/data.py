"""The Chest X-Ray Images (Pneumonia) dataset on disk: listing, patients, split."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import re

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from pneumonia.config import CLASS_NAMES, IMAGE_SIZE
from pneumonia.serve.imaging import ImageError, load_image, to_model_input
from pneumonia.serve.lung_view import LungReader

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# personNNN_bacteria_MMM.jpeg | IM-NNNN-....jpeg | NORMAL2-IM-NNNN-....jpeg
_PATIENT = re.compile(r"^(person\d+)_|^((?:NORMAL2-)?IM-\d+)-")


class DataError(ValueError):
    """The dataset folder is not usable; the message names what is wrong."""


def patient_id(filename: str) -> str:
    """The patient a file belongs to, from the dataset's naming rules.

    Unknown names are their own patient (their stem), so they never leak.
    """
    name = Path(filename).name
    m = _PATIENT.match(name)
    if m:
        return m.group(1) or m.group(2)
    return Path(name).stem


def list_split(data_dir: str | Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files and labels (0 NORMAL, 1 PNEUMONIA) of DATA_DIR/split/{class}/."""
    root = Path(data_dir) / split
    if not root.is_dir():
        raise DataError(f"Missing folder: {root} (expected {split}/NORMAL and {split}/PNEUMONIA)")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(CLASS_NAMES):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"Missing class folder: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"Empty class folder (no images): {folder}")
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def limit_per_class(paths: list[Path], labels: np.ndarray, limit: int | None,
                    seed: int) -> tuple[list[Path], np.ndarray]:
    """At most `limit` files per class, drawn with a seed (for smoke runs)."""
    if not limit:
        return paths, labels
    rng = np.random.default_rng(seed)
    keep = np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:limit] for c in np.unique(labels)
    ])
    keep.sort()
    return [paths[i] for i in keep], labels[keep]


def grouped_split(labels: np.ndarray, groups: list[str], val_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices, stratified by class, no patient on both sides."""
    n_splits = max(2, round(1 / val_fraction))
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise DataError(f"Too few patients ({n_groups}) for a {val_fraction:.0%} validation split")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_idx, val_idx = next(folds.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train_idx), np.sort(val_idx)


@dataclass
class TrainSplit:
    """The readable training images with their patient split."""
    images: np.ndarray        # (n, 224, 224) uint8
    labels: np.ndarray        # (n,)
    groups: list[str]         # patient of each image
    train_idx: np.ndarray
    val_idx: np.ndarray
    skipped: list[tuple[Path, str]]
    names: list[str] = field(default_factory=list)   # file name of each image (its kind: bacteria/virus)

    def subset(self, keep: np.ndarray, images: np.ndarray | None = None) -> "TrainSplit":
        """The images where `keep` is True (optionally replaced by `images`, one per
        original image), with the split's indices renumbered to match."""
        keep = np.asarray(keep, bool)
        position = np.cumsum(keep) - 1
        source = self.images if images is None else images
        return TrainSplit(source[keep], self.labels[keep], [g for g, k in zip(self.groups, keep) if k],
                          position[self.train_idx[keep[self.train_idx]]],
                          position[self.val_idx[keep[self.val_idx]]], self.skipped,
                          [n for n, k in zip(self.names, keep) if k])


def load_train_split(data_dir: str | Path, limit: int | None, seed: int,
                     val_fraction: float) -> TrainSplit:
    """DATA_DIR/train read and split by patient: training and every later step
    that must see the same split (the OOD guard) call this one function."""
    paths, labels = limit_per_class(*list_split(data_dir, "train"), limit, seed)
    images, kept, skipped = load_images(paths)
    labels = labels[kept]
    groups = [patient_id(paths[i].name) for i in kept]
    train_idx, val_idx = grouped_split(labels, groups, val_fraction, seed)
    return TrainSplit(images, labels, groups, train_idx, val_idx, skipped, [paths[i].name for i in kept])


def load_images(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """Read files as (N, 224, 224) uint8 greyscale model inputs.

    Returns the images, the indices of `paths` that were read, and the skipped
    files with the reason, so a few bad files don't stop a training run.
    """
    images = np.zeros((len(paths), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    for i, path in enumerate(paths):
        try:
            images[len(kept)] = to_model_input(load_image(path))[:, :, 0]
            kept.append(i)
        except ImageError as e:
            skipped.append((path, str(e)))
    return images[: len(kept)], np.asarray(kept, dtype=np.int64), skipped


def lung_split(reader: LungReader, split: TrainSplit) -> tuple[TrainSplit, dict[str, int], np.ndarray]:
    """A split of canonical images -> (the same split of classifier inputs
    without the images whose lungs were not found, how many were left out per
    part, the canonical images behind the kept views, for views cut again from
    augmented copies)."""
    if reader.variant == "full":
        return split, {"train": 0, "validation": 0}, split.images
    views, _, _, found = reader.read(split.images)
    without = {"train": int((~found[split.train_idx]).sum()),
               "validation": int((~found[split.val_idx]).sum())}
    return split.subset(found, views), without, split.images[found]
