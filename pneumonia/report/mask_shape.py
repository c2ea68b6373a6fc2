"""What a lung mask's shape alone says about the class: simple numbers of each mask, no pixels.

A segmenter that leaves consolidated lung out draws PNEUMONIA lungs smaller,
lopsided and carved; a classifier reading a masked view can then answer from
the outline. These are the numbers of `lung_masks/README.md`'s table,
measured on predicted masks, with the ROC AUC of each number alone.
"""
from __future__ import annotations

import cv2
import numpy as np

from pneumonia.train.opacity import lungs_of

NUMBERS = ("box_fill", "smaller_larger", "solidity")


def shape_numbers(mask: np.ndarray) -> dict[str, float]:
    """Box fill (share of the two lungs' box they cover), smaller/larger lung
    area, solidity (area / convex-hull area) of the less solid lung."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return {k: float("nan") for k in NUMBERS}
    areas = np.array([lung.sum() for lung in lungs], float)
    ys, xs = np.nonzero(lungs[0] | lungs[1])
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    solidity = [lung.sum() / max(1.0, cv2.contourArea(cv2.convexHull(cv2.findNonZero(np.uint8(lung)))))
                for lung in lungs]
    return {"box_fill": float(areas.sum() / box), "smaller_larger": float(areas.min() / areas.max()),
            "solidity": float(min(solidity))}


def class_signal(masks: list[np.ndarray | None], labels: np.ndarray) -> dict:
    """Per number: its mean per class and the ROC AUC of the number alone
    (oriented so 0.5 means no signal, read as max(AUC, 1 - AUC)). Masks that
    are None (no lungs found) are left out and counted."""
    from sklearn.metrics import roc_auc_score
    keep = [i for i, m in enumerate(masks) if m is not None]
    table = [shape_numbers(masks[i]) for i in keep]
    y = np.asarray(labels)[keep]
    out: dict = {"n": len(keep), "no_lungs": len(masks) - len(keep)}
    for k in NUMBERS:
        v = np.array([t[k] for t in table])
        ok = np.isfinite(v)
        auc = float(roc_auc_score(y[ok], v[ok])) if len(set(y[ok])) == 2 else float("nan")
        out[k] = {"NORMAL": float(np.mean(v[ok & (y == 0)])), "PNEUMONIA": float(np.mean(v[ok & (y == 1)])),
                  "auc": max(auc, 1 - auc)}
    return out
