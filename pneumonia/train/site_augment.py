"""Augmentation that takes away what tells one hospital from another.

On top of `augment.augment` (framing, exposure, gamma, CLAHE, blur, noise) a
site differs in how its films were processed and stored: equalised
histograms, edge enhancement, the detector's or the scanner's resolution, and
JPEG re-encoding. A reader trained through these cannot lean on them to tell
a source, and so a class that came from one source. (224, 224) uint8 in and out.
"""
from __future__ import annotations

import cv2
import numpy as np

from pneumonia.train import augment

P_EQUALISE = 0.2
P_SHARPEN, SHARPEN_AMOUNT = 0.25, (0.3, 1.2)
P_RESOLUTION, RESOLUTION_SCALE = 0.35, (0.25, 0.7)
P_JPEG, JPEG_QUALITY = 0.4, (25, 90)
DESCRIPTION = (f"{augment.DESCRIPTION}; histogram equalisation (p {P_EQUALISE}), unsharp masking (p {P_SHARPEN}), "
               f"resolution down to {RESOLUTION_SCALE} and back (p {P_RESOLUTION}), JPEG re-encoding at quality "
               f"{JPEG_QUALITY} (p {P_JPEG})")


def site_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of a (H, W) uint8 film as another hospital might have stored it."""
    out = augment.augment(image, rng)
    h, w = out.shape
    if rng.random() < P_EQUALISE:
        out = cv2.equalizeHist(out)
    if rng.random() < P_SHARPEN:
        soft = cv2.GaussianBlur(out, (0, 0), 2.0)
        out = cv2.addWeighted(out, 1 + (a := rng.uniform(*SHARPEN_AMOUNT)), soft, -a, 0)
    if rng.random() < P_RESOLUTION:
        s = rng.uniform(*RESOLUTION_SCALE)
        small = cv2.resize(out, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < P_JPEG:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*JPEG_QUALITY))])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def site_views(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random site view of each image in a (N, H, W) uint8 stack."""
    return np.stack([site_view(im, rng) for im in images]) if len(images) else images.copy()
