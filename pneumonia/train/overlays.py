"""Bright structures over the lungs that are not disease, for training a reader to ignore them.

A normal adult's film carries bright things across its lungs: posterior
ribs running obliquely, the scapulae's edges, tubes and ECG leads. A reader
that reads any brightness inside the lungs as opacity moves normal films
toward PNEUMONIA. These overlays are painted on films of *both* classes and
keep the label (rules.WHITE_RULE 9), so brightness of this kind carries no
class. They are not `non_opacity.rib_band`, the check's family: that one is
horizontal, at the lungs' mid-height, one band across both lungs; these are
oblique bands (15 to 60 degrees off horizontal, either way) at any height of
one lung, and thin curved lines crossing the film. All work on (224, 224)
uint8 with the lung mask found on the clean film.
"""
from __future__ import annotations

import cv2
import numpy as np

from pneumonia.train.opacity import feather, lungs_of

DESCRIPTION = ("label-kept bright overlays, both classes: 1-3 soft oblique bands (15-60 degrees off horizontal, "
               "3-8% of the lung height thick, +15-45 grey) inside one lung, and 0-2 thin curved lines "
               "(tubes, leads: 1-2 px, +40-90 grey) across the film")


def oblique_band(shape: tuple[int, int], lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One soft straight band through a random point of `lung`, 0..1, inside that lung only."""
    ys, xs = np.nonzero(lung)
    i = rng.integers(len(ys))
    height = ys.max() - ys.min() + 1
    half = max(1.5, rng.uniform(0.015, 0.04) * height)
    angle = np.deg2rad(rng.uniform(15, 60) * rng.choice((-1, 1)))
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    distance = np.abs(-(xx - xs[i]) * np.sin(angle) + (yy - ys[i]) * np.cos(angle))
    return np.clip(half + 1.5 - distance, 0, 1.5) / 1.5 * (lung > 0)


def curved_line(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A thin quadratic curve from one edge of the film to another, 0..1."""
    h, w = shape
    ends = rng.uniform(0, 1, (2, 2)) * (w - 1, h - 1)
    ends[0, rng.integers(2)] = 0
    ends[1, rng.integers(2)] = (w - 1, h - 1)[rng.integers(2)]
    mid = rng.uniform(0.2, 0.8, 2) * (w, h)
    t = np.linspace(0, 1, 64)[:, None]
    pts = (1 - t) ** 2 * ends[0] + 2 * (1 - t) * t * mid + t ** 2 * ends[1]
    out = np.zeros(shape, np.float32)
    cv2.polylines(out, [np.round(pts).astype(np.int32)], False, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
    return out


def overlay(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` with 1-3 oblique bands in one lung and 0-2 curved lines; unchanged without two lungs."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return image
    lung = lungs[rng.integers(2)]
    x = image.astype(np.float32)
    for _ in range(rng.integers(1, 4)):
        x += rng.uniform(15, 45) * feather(oblique_band(image.shape, lung, rng), 1.0)
    for _ in range(rng.integers(0, 3)):
        x += rng.uniform(40, 90) * curved_line(image.shape, rng)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
