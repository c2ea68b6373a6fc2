"""Painted *non*-opacities: edits a painter could leave that are not disease.

A model taught opacity with painted films could learn the painter instead
(blending, feathered edges, blur, grain). These edits share that signature
but add no density to the lungs, so a NORMAL film must stay NORMAL under each
(rules.WHITE_RULE 5). Deterministic; all work on (224, 224) uint8 with the
lung mask found on the clean film.
"""
from __future__ import annotations

import cv2
import numpy as np

from pneumonia.train.opacity import feather, lungs_of

EDITS = ("darker_lung", "contrast", "rib_band")


def darker_lung(image: np.ndarray, mask: np.ndarray, side: int = 0, strength: float = 0.35) -> np.ndarray:
    """One lung blended `strength` toward the film's darkest grey (more air, not less), feathered like whiten_lung."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return image
    alpha = feather(lungs[side], 3.0) * strength
    x = image.astype(np.float32) * (1 - alpha) + alpha * float(np.percentile(image, 2))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def contrast(image: np.ndarray, gain: float = 1.3) -> np.ndarray:
    """The whole film's contrast raised by `gain` about its mean grey."""
    x = image.astype(np.float32)
    return np.clip(np.round((x - x.mean()) * gain + x.mean()), 0, 255).astype(np.uint8)


def rib_band(image: np.ndarray, mask: np.ndarray, lift: float = 35.0) -> np.ndarray:
    """A bright, soft-edged horizontal band across both lungs at their mid-height
    (a rib's shadow, 6% of the lung height thick, the lungs stay dark around it)."""
    rows = np.flatnonzero(mask.any(1))
    if not len(rows):
        return image
    top, bottom = rows.min(), rows.max()
    mid, half = (top + bottom) / 2, max(2.0, 0.03 * (bottom - top))
    yy = np.arange(image.shape[0], dtype=np.float32)[:, None]
    band = np.clip(half + 1.5 - np.abs(yy - mid), 0, 1.5) / 1.5 * np.ones((1, image.shape[1]), np.float32)
    band = feather(band * (mask > 0), 1.0)
    return np.clip(np.round(image.astype(np.float32) + lift * band), 0, 255).astype(np.uint8)


def edit(image: np.ndarray, mask: np.ndarray, name: str, side: int = 0) -> np.ndarray:
    """`image` with the named non-opacity."""
    if name == "darker_lung":
        return darker_lung(image, mask, side)
    if name == "contrast":
        return contrast(image)
    if name == "rib_band":
        return rib_band(image, mask)
    raise ValueError(f"unknown edit {name!r}; one of {EDITS}")
