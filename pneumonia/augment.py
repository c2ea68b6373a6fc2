"""Training-time augmentation: what varies between radiographs of other sites.

Small geometric changes (rotation, shift, zoom/crop) and exposure changes
(brightness, contrast, gamma). Works on (224, 224) uint8 greyscale images.
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_ROTATION_DEG = 10.0
MAX_SHIFT = 0.08          # fraction of the side
ZOOM_RANGE = (0.9, 1.2)   # > 1 crops in
MAX_BRIGHTNESS = 0.15     # fraction of the full range
CONTRAST_RANGE = (0.75, 1.3)
GAMMA_RANGE = (0.75, 1.35)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of a (H, W) uint8 image."""
    h, w = image.shape
    angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)
    zoom = rng.uniform(*ZOOM_RANGE)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * (w, h)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x = out.astype(np.float32) / 255.0
    x = x ** rng.uniform(*GAMMA_RANGE)
    x = (x - 0.5) * rng.uniform(*CONTRAST_RANGE) + 0.5 + rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
