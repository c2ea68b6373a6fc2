"""Training-time augmentation: what varies between radiographs of other sites.

The test split was acquired apart from train, and what a validation split
drawn from train cannot show is exactly that shift. So the views vary what
differs between acquisitions: framing (rotation, shift, zoom in and out,
aspect ratio), exposure (brightness, contrast, gamma), local contrast
processing (CLAHE), sharpness (blur) and detector noise. Works on (224, 224)
uint8 greyscale images.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

MAX_ROTATION_DEG = 10.0
MAX_SHIFT = 0.08          # fraction of the side
ZOOM_RANGE = (0.8, 1.25)  # > 1 crops in, < 1 shows more surroundings
ASPECT_RANGE = (0.9, 1.1)
MAX_BRIGHTNESS = 0.15     # fraction of the full range
CONTRAST_RANGE = (0.65, 1.4)
GAMMA_RANGE = (0.6, 1.6)
P_CLAHE, CLAHE_CLIP = 0.3, (1.0, 3.0)
P_BLUR, BLUR_SIGMA = 0.3, (0.3, 1.2)
P_NOISE, NOISE_SIGMA = 0.3, (2.0, 8.0)  # grey levels
DESCRIPTION = (f"rotation (+-{MAX_ROTATION_DEG:g} deg), shift, zoom {ZOOM_RANGE}, aspect {ASPECT_RANGE}, "
               f"brightness, contrast {CONTRAST_RANGE}, gamma {GAMMA_RANGE}, CLAHE (p {P_CLAHE}), "
               f"Gaussian blur (p {P_BLUR}), detector noise (p {P_NOISE})")


def augment(image: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None,
            aspect_range: tuple[float, float] = ASPECT_RANGE):
    """One random view of a (H, W) uint8 image; with `mask`, (view, mask moved
    by the same geometry) so a segmentation target stays on its image."""
    h, w = image.shape
    angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)
    zoom, aspect = rng.uniform(*ZOOM_RANGE), np.sqrt(rng.uniform(*aspect_range))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[0, :2] *= zoom * aspect
    matrix[1, :2] *= zoom / aspect
    # Keep the image centre fixed under the anisotropic scale, then shift.
    matrix[:, 2] = (w / 2, h / 2) - matrix[:, :2] @ (w / 2, h / 2)
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * (w, h)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if rng.random() < P_CLAHE:
        out = cv2.createCLAHE(clipLimit=rng.uniform(*CLAHE_CLIP), tileGridSize=(8, 8)).apply(out)
    if rng.random() < P_BLUR:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*BLUR_SIGMA))
    x = out.astype(np.float32) / 255.0
    x = x ** rng.uniform(*GAMMA_RANGE)
    x = (x - 0.5) * rng.uniform(*CONTRAST_RANGE) + 0.5 + rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS)
    if rng.random() < P_NOISE:
        x = x + rng.normal(0.0, rng.uniform(*NOISE_SIGMA) / 255.0, x.shape)
    view = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    if mask is None:
        return view
    return view, cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def views(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of each image in a (N, H, W) uint8 stack."""
    return np.stack([augment(img, rng) for img in images]) if len(images) else images.copy()


def stressed(images: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """`copies` fixed random views of each image, the same for every model.

    Validation images seen through acquisition changes: a validation-only
    stand-in for another site, used to fit the temperature and to compare
    models (the clean validation split is nearly separable, so it cannot).
    """
    rng = np.random.default_rng([seed, 0x57E55])
    return np.concatenate([views(images, rng) for _ in range(copies)]) if copies else images[:0]


# A lung view is cut from the canonical image by its own mask, so a view of an
# augmented upload is found *after* augmenting: a reframed or re-exposed
# upload moves the mask too, and the model should learn that the answer does
# not follow the mask. `read` is a LungReader's read.
Read = Callable[[np.ndarray], tuple]


def lung_views(read: Read, canons: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """What the classifier reads of each (augmented) canonical image; where no
    lungs are found in it, the matching `fallback` view (the clean one)."""
    if not len(canons):
        return fallback[:0]
    out, _, _, found = read(canons)
    return np.where(found[:, None, None], out, fallback)


def lung_augmented(read: Read, canons: np.ndarray, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random lung view of each canonical image, augmented before the lungs are found."""
    return lung_views(read, views(canons, rng), clean)


def lung_stressed(read: Read, canons: np.ndarray, clean: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """`stressed` copies of canonical images, seen through their own lungs."""
    return lung_views(read, stressed(canons, copies, seed), np.tile(clean, (copies, 1, 1)))
