"""The seven adult sources, one table: every film with its source, label, patient and part.

NIH (`adult_cxr/`), Shenzhen and Montgomery (`lung_masks/`, adults only) keep
the parts `pneumonia.train.adults` gives them (by patient), so nothing the
children's model was fitted or judged on changes part. The four sources of
`adult_more/` carry no patient ids: they are split by file, into the same
quarters (two to fit, one to validate, one to report), stratified by label.

Labels: 0 normal, 1 pneumonia-like opacity (RSNA opacity, NIH pneumonia,
BIMCV COVID-19), 2 tuberculosis, 3 nodule. Only 0 and 1 are the reader's
classes; TB and nodule films are read and reported, never trained on.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumonia.serve.imaging import canonical, load_image
from pneumonia.train.adults import PARTS, TB, load_adults, load_hospitals, split_parts

NORMAL, OPACITY, NODULE = 0, 1, 3
LABEL_NAMES = {NORMAL: "normal", OPACITY: "opacity", TB: "tuberculosis", NODULE: "nodule"}
# folder under adult_more/, the labels.csv column that is 1 for the film's finding, the label it means
MORE = {"rsna": ("opacity", OPACITY), "bimcv": ("pneumonia", OPACITY), "jsrt": ("nodule", NODULE),
        "tbx11k": ("tb", TB)}
SOURCES = ("nih", "rsna", "bimcv", "jsrt", "shenzhen", "montgomery", "tbx11k")
WHERE = {"nih": "NIH Clinical Center, USA (text-mined labels)", "rsna": "NIH Clinical Center, USA (radiologists)",
         "bimcv": "Valencian hospitals, Spain (COVID-19, PCR)", "jsrt": "Japanese hospitals (digitised film)",
         "shenzhen": "Shenzhen No.3 People's Hospital, China", "montgomery": "Montgomery County, USA",
         "tbx11k": "Chinese hospitals (TBX11K)"}


@dataclass
class Films:
    """Every adult film: aligned arrays, one row a film."""
    files: list[str]
    canons: np.ndarray        # (n, 224, 224) uint8
    labels: np.ndarray        # (n,) NORMAL, OPACITY, TB, NODULE
    sources: np.ndarray       # (n,) source names
    groups: list[str]         # patient (or file, where a source has no patient ids)
    parts: np.ndarray         # (n,) "fit", "validation", "report"

    def rows(self, part: str | None = None, sources=None, labels=None) -> np.ndarray:
        keep = np.ones(len(self.labels), bool)
        if part is not None:
            keep &= self.parts == part
        if sources is not None:
            keep &= np.isin(self.sources, list(sources))
        if labels is not None:
            keep &= np.isin(self.labels, list(labels))
        return np.flatnonzero(keep)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """{source: {part: {label name: films}}}."""
        out: dict = {}
        for s in SOURCES:
            for p in PARTS:
                rows = self.rows(p, [s])
                if len(rows):
                    names, n = np.unique(self.labels[rows], return_counts=True)
                    out.setdefault(s, {})[p] = {LABEL_NAMES[int(k)]: int(c) for k, c in zip(names, n)}
        return out


def _more(folder: Path, name: str, seed: int) -> Films:
    column, positive = MORE[name]
    with open(folder / name / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = np.asarray([positive if r[column] == "1" else NORMAL for r in rows])
    files = [r["file"] for r in rows]
    parts = np.empty(len(rows), object)
    for part, idx in split_parts(labels, files, seed).items():
        parts[idx] = part
    canons = np.stack([canonical(load_image(folder / name / f)) for f in files])
    return Films([f"{name}/{f}" for f in files], canons, labels, np.full(len(rows), name, object), files, parts)


def _parted(files, canons, labels, sources, groups, part_idx: dict, keep: np.ndarray) -> Films:
    parts = np.empty(len(labels), object)
    for part, idx in part_idx.items():
        parts[idx] = part
    k = np.flatnonzero(keep)
    return Films([files[i] for i in k], canons[k], labels[k], np.asarray(sources, object)[k],
                 [groups[i] for i in k], parts[k])


def load_films(adult_cxr: str | Path, lung_masks: str | Path, adult_more: str | Path, seed: int = 0) -> Films:
    """All seven sources (Shenzhen's children left out: this is the adults' table)."""
    nih = load_adults(adult_cxr, seed)
    hosp = load_hospitals(lung_masks, seed)
    pieces = [_parted([f"adult_cxr/{f}" for f in nih.files], nih.canons, nih.labels, ["nih"] * len(nih.labels),
                      nih.groups, nih.parts, np.ones(len(nih.labels), bool)),
              _parted([f"lung_masks/{f}" for f in hosp.files], hosp.canons, hosp.labels,
                      [s.lower() for s in hosp.sources], hosp.groups, hosp.parts, hosp.adult)]
    pieces += [_more(Path(adult_more), name, seed) for name in MORE]
    return Films([f for p in pieces for f in p.files], np.concatenate([p.canons for p in pieces]),
                 np.concatenate([p.labels for p in pieces]), np.concatenate([p.sources for p in pieces]),
                 [g for p in pieces for g in p.groups], np.concatenate([p.parts for p in pieces]))
