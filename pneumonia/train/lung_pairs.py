"""The lung segmenter's data: the image/mask pairs, their split by dataset and
patient, and the training views (geometry, synthetic opacities, pixel weights).

Split by dataset and patient (every patient has one image): the 24 Shenzhen
children are all held out (the real check on children), 15% of the Shenzhen
adults and of Montgomery are held out, and 10% of the rest is the validation
part that picks the epoch. The semi-automatic pediatric masks (Kermany train
split) are only trained and validated on, never reported as ground truth.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from pneumonia.config import IMAGE_SIZE
from pneumonia.serve.imaging import canonical, load_image
from pneumonia.train import augment, data, opacity

ASPECT_RANGE = (0.6, 1.6)   # uploads of any shape are squashed to a square
HELD_OUT_ADULTS = 0.15
VAL_FRACTION = 0.10
P_OPACITY = 0.5            # share of training pairs given a synthetic opacity inside their true lungs
# The semi-automatic pediatric masks leave opaque lung out (lung_masks/README):
# inside each lung's convex hull but outside the mask, their pixels do not count.
SEMI_AUTOMATIC = "Kermany"
VAL_SEED = 12345           # the fixed opacities of the validation score


def hull_gap(mask: np.ndarray) -> np.ndarray:
    """Pixels inside a lung's convex hull but outside the mask (where a carved mask is unsure)."""
    gap = np.zeros(mask.shape, bool)
    for lung in opacity.lungs_of(mask):
        pts = cv2.findNonZero(np.uint8(lung))
        hull = np.zeros(mask.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        gap |= (hull > 0) & ~lung
    return gap & (mask == 0)


def load_pairs(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Images as canonical (N, 224, 224) uint8, masks (N, 224, 224) uint8 {0, 1}, labels.csv rows."""
    root = Path(data_dir)
    if not (root / "labels.csv").is_file():
        raise data.DataError(f"{root} has no labels.csv (expected images/, masks/ and labels.csv)")
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    images = np.stack([canonical(load_image(root / "images" / r["file"])) for r in rows])
    masks = np.stack([
        cv2.resize(load_image(root / "masks" / r["file"]), (IMAGE_SIZE, IMAGE_SIZE),
                   interpolation=cv2.INTER_AREA) > 127 for r in rows]).astype(np.uint8)
    return images, masks, rows


def split(rows: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train / val / test_adults / test_children, by dataset and patient."""
    rng = np.random.default_rng(seed)
    children = [i for i, r in enumerate(rows) if r["dataset"] == "Shenzhen" and r["age_group"] == "pediatric"]
    held: list[int] = []
    for dataset in ("Shenzhen", "Montgomery"):
        patients = sorted({r["patient_id"] for i, r in enumerate(rows)
                           if r["dataset"] == dataset and i not in children})
        chosen = set(rng.permutation(patients)[:round(HELD_OUT_ADULTS * len(patients))])
        held += [i for i, r in enumerate(rows) if r["patient_id"] in chosen and i not in children]
    rest = sorted(set(range(len(rows))) - set(children) - set(held))
    patients = sorted({rows[i]["patient_id"] for i in rest})
    val_patients = set(rng.permutation(patients)[:round(VAL_FRACTION * len(patients))])
    val = [i for i in rest if rows[i]["patient_id"] in val_patients]
    train = [i for i in rest if rows[i]["patient_id"] not in val_patients]
    return {k: np.asarray(sorted(v), np.int64) for k, v in
            {"train": train, "val": val, "test_adults": held, "test_children": children}.items()}


def training_pair(image: np.ndarray, mask: np.ndarray, semi_automatic: bool,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training view: (image, mask, pixel weights), moved by the same
    geometry, with a synthetic opacity inside the true lungs half the time."""
    if rng.random() < 0.8:
        image, mask = augment.augment(image, rng, mask, ASPECT_RANGE)
    if rng.random() < P_OPACITY:
        image = opacity.paint(image, mask, rng)
    weight = ~hull_gap(mask) if semi_automatic else np.ones(mask.shape, bool)
    return image, mask, weight


def opaque_copies(images: np.ndarray, masks: np.ndarray, seed: int, held_out: bool = False) -> np.ndarray:
    """Each image with a fixed opacity inside its mask: a training family, or the held-out one."""
    rng = np.random.default_rng(seed)
    draw = opacity.patchy if held_out else opacity.paint
    return np.stack([draw(im, m, rng) for im, m in zip(images, masks)])


