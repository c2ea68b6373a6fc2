"""Synthetic lung opacities: white lung that is still lung, for training and testing the segmenter.

A pixel-wise lung segmenter trained on films whose lungs are dark learns that
lung is dark, and leaves consolidated (white) lung out of the mask (Nishio et
al., arXiv 1908.07704; Selvan et al. 2020 train with synthetic opacities).
The outline then carries the diagnosis. Here opacities are painted *inside*
the true lungs of a training pair and the mask is left unchanged, so the
network has to find the lung field from the anatomy around it.

Training families (`paint`): a lobar consolidation with air-bronchogram
streaks, an effusion rising from the lung's base with a meniscus, a diffuse
haze over both lungs, a whole lung whitened toward the mediastinum's grey.
The held-out family (`patchy`), used only to measure: multifocal Gaussian
patches carrying real radiograph texture (the image's own mediastinal strip),
another shape and edge profile and another seed, so a segmenter that only
learnt our painter's look does not pass. All work on (224, 224) uint8.
"""
from __future__ import annotations

import cv2
import numpy as np

from pneumonia.serve.density import lungs_of, mediastinum_grey  # noqa: F401 (re-exported: the painters' helpers)

TRAIN_FAMILIES = ("consolidation", "effusion", "haze", "white_lung")
HELD_OUT_FAMILY = "patchy"
DESCRIPTION = ("synthetic opacities inside the true lungs, mask unchanged: lobar consolidation with "
               "air bronchograms, basal effusion with a meniscus, diffuse haze, one lung whitened to the "
               "mediastinum's grey; soft edges, low-frequency texture, detector noise and blur")


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish low-frequency noise: `cells` random values per side, upsampled smoothly."""
    small = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(small, shape[::-1], interpolation=cv2.INTER_CUBIC)


def feather(alpha: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigma) if sigma > 0 else alpha


def _bronchograms(shape: tuple[int, int], region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin branching dark streaks (air in bronchi inside white lung), 0..1."""
    out = np.zeros(shape, np.float32)
    ys, xs = np.nonzero(region)
    if not len(ys):
        return out
    for _ in range(rng.integers(2, 6)):
        i = rng.integers(len(ys))
        pts = [(int(xs[i]), int(ys[i]))]
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(rng.integers(4, 10)):
            angle += rng.normal(0, 0.35)
            step = rng.uniform(3, 7)
            pts.append((int(pts[-1][0] + step * np.cos(angle)), int(pts[-1][1] + step * np.sin(angle))))
        cv2.polylines(out, [np.asarray(pts, np.int32)], False, 1.0, 1, cv2.LINE_AA)
    return cv2.GaussianBlur(out, (0, 0), 0.6) * region


def _consolidation(image, lung, rng):
    ys, xs = np.nonzero(lung)
    h = ys.max() - ys.min() + 1
    w = xs.max() - xs.min() + 1
    i = rng.integers(len(ys))
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]].astype(np.float32)
    a, b = rng.uniform(0.3, 0.75) * w, rng.uniform(0.25, 0.6) * h
    t = rng.uniform(0, np.pi)
    dx, dy = xx - xs[i], yy - ys[i]
    r = ((dx * np.cos(t) + dy * np.sin(t)) / a) ** 2 + ((-dx * np.sin(t) + dy * np.cos(t)) / b) ** 2
    blob = (r + 0.45 * smooth_noise(image.shape, rng, 6) < 1.0) & lung
    alpha = feather(blob, rng.uniform(1.5, 5.0)) * lung * rng.uniform(0.55, 0.95)
    return alpha, _bronchograms(image.shape, blob, rng) * rng.uniform(15, 40)


def _effusion(image, lung, rng):
    ys, xs = np.nonzero(lung)
    top, bottom = ys.min(), ys.max()
    left, right = xs.min(), xs.max()
    level = bottom - rng.uniform(0.15, 0.55) * (bottom - top)
    xx = np.arange(image.shape[1], dtype=np.float32)
    # A meniscus: the fluid climbs the chest wall, on the lateral side.
    lateral = right if xs.mean() > image.shape[1] / 2 else left
    climb = rng.uniform(0.05, 0.2) * (bottom - top) * (1 - np.abs(xx - lateral) / max(1, right - left)).clip(0, 1)
    edge = rng.uniform(1.5, 5.0)
    yy = np.arange(image.shape[0], dtype=np.float32)[:, None]
    alpha = 1.0 / (1.0 + np.exp(-(yy - (level - climb[None, :])) / edge))
    return alpha * lung * rng.uniform(0.7, 1.0), None


def _haze(image, mask, rng):
    alpha = (0.75 + 0.25 * smooth_noise(image.shape, rng, 5)).clip(0, 1) * rng.uniform(0.2, 0.55)
    return feather(mask, rng.uniform(1.0, 3.0)) * alpha * mask, None


def _white_lung(image, lung, rng):
    return feather(lung, rng.uniform(1.0, 4.0)) * lung * rng.uniform(0.75, 0.95), None


def _compose(image: np.ndarray, alpha: np.ndarray, target: float, rng: np.random.Generator,
             texture: np.ndarray | None = None, streaks: np.ndarray | None = None) -> np.ndarray:
    """Blend toward `target` grey by `alpha`, with texture, streaks, noise and the detector's blur."""
    x = image.astype(np.float32)
    grain = 8.0 * smooth_noise(image.shape, rng, 24) + rng.normal(0, 2.0, image.shape)
    fill = target + (grain if texture is None else texture)
    x = x * (1 - alpha) + alpha * fill
    if streaks is not None:
        x -= streaks
    blurred = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.2))
    x = np.where(alpha > 0.02, blurred, x)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def paint(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, family: str | None = None) -> np.ndarray:
    """`image` with one training-family opacity inside `mask`'s lungs (the mask stays the truth)."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return image
    family = family or TRAIN_FAMILIES[rng.integers(len(TRAIN_FAMILIES))]
    target = mediastinum_grey(image, mask) + rng.uniform(-10, 15)
    lung = lungs[rng.integers(2)]
    if family == "consolidation":
        alpha, streaks = _consolidation(image, lung, rng)
    elif family == "effusion":
        alpha, streaks = _effusion(image, lung, rng)
    elif family == "haze":
        alpha, streaks = _haze(image, mask > 0, rng)
    elif family == "white_lung":
        alpha, streaks = _white_lung(image, lung, rng)
    else:
        raise ValueError(f"unknown opacity family {family!r}; one of {TRAIN_FAMILIES}")
    return _compose(image, alpha, target, rng, streaks=streaks)


def whiten_lung(image: np.ndarray, mask: np.ndarray, side: int = 0, strength: float = 0.85) -> np.ndarray:
    """One lung (0: the image's left one) blended `strength` toward the
    mediastinum's grey, the ribs faintly through, a feathered edge: the
    deterministic white-lung check."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return image
    alpha = feather(lungs[side], 3.0) * strength
    x = image.astype(np.float32) * (1 - alpha) + alpha * mediastinum_grey(image, mask)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def patchy(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The held-out family: 3-7 Gaussian patches over one or both lungs, filled
    with the image's own mediastinal texture (real radiograph grain), never
    used in training."""
    lungs = lungs_of(mask)
    if len(lungs) < 2:
        return image
    region = lungs[rng.integers(2)] if rng.random() < 0.6 else (mask > 0)
    ys, xs = np.nonzero(region)
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]].astype(np.float32)
    alpha = np.zeros(image.shape, np.float32)
    for _ in range(rng.integers(3, 8)):
        i = rng.integers(len(ys))
        s = rng.uniform(8, 26)
        alpha = np.maximum(alpha, np.exp(-((xx - xs[i]) ** 2 + (yy - ys[i]) ** 2) / (2 * s * s)))
    alpha = (alpha * 1.3).clip(0, 1) * feather(region, 2.0) * rng.uniform(0.6, 0.95)
    # Texture: the column strip between the lungs, high-passed, tiled across.
    target = mediastinum_grey(image, mask)
    strip = image.astype(np.float32)
    texture = strip - cv2.GaussianBlur(strip, (0, 0), 6.0)
    texture = np.roll(texture, (rng.integers(-40, 40), rng.integers(-60, 60)), axis=(0, 1))
    return _compose(image, alpha, target, rng, texture=0.8 * texture)
