"""Chest X-rays from outside the training hospital, split by patient into three
parts that never share a patient: NIH ChestX-ray14 adults (`adult_cxr/`), and
the Shenzhen and Montgomery X-rays of `lung_masks/` (adults and Shenzhen's
children; normal or tuberculosis). The parts:

- `fit`: what the chest-X-ray guard and the classifier's last layer learn from,
- `validation`: what thresholds and the keep-or-drop decision are made on,
- `report`: read only to report, like the pediatric test split.

Labels are NIH's text-mined findings: `No Finding` = NORMAL (0), any finding
containing `Pneumonia` = PNEUMONIA (1). They are noisy. Shenzhen and
Montgomery file names end `_0` (normal: NORMAL, 0) or `_1` (tuberculosis:
TB, 2, neither of the model's classes). Montgomery's age is not given: its
X-rays are of a county TB programme's adults and count as adult.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from pneumonia.serve.imaging import canonical, load_image

PARTS = ("fit", "validation", "report")
# Quarters of the patients: two to fit, one to validate, one to report.
_QUARTER_OF = {"validation": 0, "report": 1}
TB = 2   # a label that is neither class: tuberculosis (Shenzhen, Montgomery)
HOSPITALS = ("Shenzhen", "Montgomery")
SOURCE = ("NIH ChestX-ray14 adults (NIH Clinical Center, Bethesda, USA; one hospital), "
          "labels text-mined from reports: noisy")


@dataclass
class Adults:
    files: list[str]
    canons: np.ndarray        # (n, 224, 224) uint8, as `imaging.canonical` makes them
    labels: np.ndarray        # (n,) 0 NORMAL, 1 PNEUMONIA
    groups: list[str]         # patient of each image
    parts: dict[str, np.ndarray]
    sources: list[str] | None = None   # hospital of each image (None: all NIH)
    adult: np.ndarray | None = None    # (n,) bool (None: all adults)

    def part(self, name: str) -> np.ndarray:
        return self.parts[name]


def split_parts(labels: np.ndarray, groups: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of each part, stratified by label, grouped by patient."""
    folds = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=seed)
    quarters = [test for _, test in folds.split(np.zeros(len(labels)), labels, groups)]
    held = {name: np.sort(quarters[q]) for name, q in _QUARTER_OF.items()}
    rest = np.setdiff1d(np.arange(len(labels)), np.concatenate(list(held.values())))
    return {"fit": rest, **held}


def load_adults(folder: str | Path, seed: int = 0) -> Adults:
    """Read `labels.csv` and the images it lists (rows with other findings are left out)."""
    root = Path(folder)
    with open(root / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["finding"] == "No Finding" or "Pneumonia" in r["finding"]]
    labels = np.asarray([int("Pneumonia" in r["finding"]) for r in rows])
    groups = [r["patient_id"] for r in rows]
    canons = np.stack([canonical(load_image(root / r["file"])) for r in rows])
    return Adults([r["file"] for r in rows], canons, labels, groups, split_parts(labels, groups, seed))


def load_hospitals(folder: str | Path, seed: int = 0) -> Adults:
    """The Shenzhen and Montgomery X-rays of a `lung_masks` folder (labels 0
    normal, TB tuberculosis), split into parts by patient, stratified by
    hospital, age group and label."""
    root = Path(folder)
    with open(root / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] in HOSPITALS]
    labels = np.asarray([0 if Path(r["file"]).stem.endswith("_0") else TB for r in rows])
    adult = np.asarray([r["age_group"] != "pediatric" for r in rows])
    groups = [r["patient_id"] for r in rows]
    strata = np.asarray([f"{r['dataset']}{a}{y}" for r, a, y in zip(rows, adult, labels)])
    canons = np.stack([canonical(load_image(root / "images" / r["file"])) for r in rows])
    _, codes = np.unique(strata, return_inverse=True)
    return Adults([r["file"] for r in rows], canons, labels, groups, split_parts(codes, groups, seed),
                  [r["dataset"] for r in rows], adult)