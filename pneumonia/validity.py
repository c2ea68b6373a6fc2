"""Does the answer come from the lungs? Four tests of a classifier and its lung view.

All work on canonical 224x224 images with their lung masks (found by the
segmenter), and run the classifier the way it is served (`lung_view`):
- swap test: the lungs (dilated mask) of one X-ray, moved onto the lungs' box
  of another, classes drawn independently. AUC of P(pneumonia) against the
  label of the pasted lungs and against the label of the surroundings; a
  model that reads the lungs scores high on the first and ~0.5 on the second.
- lungs hidden: the dilated lung region filled with the image's median grey;
  a model that reads the lungs falls to ~0.5.
- heat in the lungs: the share of Grad-CAM mass inside the dilated lung mask.
- deletion (Petsiuk et al. 2018): Grad-CAM's cells removed hottest first must
  lower the decided class's probability faster than a random order and a
  centre-first order; the area under each curve is reported (lower = faster).
The geometry is held fixed (the composite's lungs are the pasted ones), so
the tests measure the classifier, not the segmenter.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from .calibration import sigmoid
from .config import IMAGE_SIZE
from .lung_view import dilate, lung_box, lung_view, to_image

# Goals (issue "Read the lungs, not the leads").
GOALS = {"swap_surroundings_auc_max": 0.60, "swap_lungs_auc_min": 0.90, "hidden_auc_max": 0.65,
         "heat_in_lungs_min": 0.85}
CELLS = 7
DELETION_STEPS = (0, 3, 7, 12, 18, 25, 35, 49)

LogitFn = Callable[[np.ndarray], np.ndarray]   # (n, 224, 224) uint8 views -> (n,) logits


def views(canons: np.ndarray, masks: np.ndarray, variant: str) -> tuple[np.ndarray, list]:
    """The classifier inputs and boxes of a stack of canonical images."""
    out = [lung_view(c, m, variant) for c, m in zip(canons, masks)]
    return np.stack([v for v, _ in out]), [b for _, b in out]


def _box_to_box(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine map taking the tight box of mask `src` onto that of `dst`."""
    a, b = lung_box(src, 0.0), lung_box(dst, 0.0)
    sx, sy = (b.x1 - b.x0) / (a.x1 - a.x0), (b.y1 - b.y0) / (a.y1 - a.y0)
    return np.float32([[sx, 0, (b.x0 - a.x0 * sx) * IMAGE_SIZE], [0, sy, (b.y0 - a.y0 * sy) * IMAGE_SIZE]])


def swap_composites(canons: np.ndarray, masks: np.ndarray, n: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`n` composites: (images, their lung masks, donor index, recipient index)."""
    rng = np.random.default_rng([seed, 0x5A7])
    donors = rng.integers(0, len(canons), n)
    recipients = (donors + rng.integers(1, len(canons), n)) % len(canons)
    images, lungs = [], []
    size = (IMAGE_SIZE, IMAGE_SIZE)
    for a, b in zip(donors, recipients):
        m = _box_to_box(masks[a], masks[b])
        lung = cv2.warpAffine(canons[a], m, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(masks[a].astype(np.uint8), m, size, flags=cv2.INTER_NEAREST) > 0
        images.append(np.where(dilate(mask), lung, canons[b]).astype(np.uint8))
        lungs.append(mask)
    return np.stack(images), np.stack(lungs), donors, recipients


def hide_lungs(canon: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The dilated lung region filled with the image's median grey."""
    return np.where(dilate(mask), np.uint8(np.median(canon)), canon).astype(np.uint8)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def _auc_ci(labels: np.ndarray, scores: np.ndarray, n: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the ROC AUC (resampling images or composites)."""
    rng = np.random.default_rng([seed, 0xB007])
    values = []
    for _ in range(n):
        i = rng.integers(0, len(labels), len(labels))
        if len(np.unique(labels[i])) == 2:
            values.append(roc_auc_score(labels[i], scores[i]))
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values else [float("nan")] * 2


def auc_tests(logits: LogitFn, canons: np.ndarray, masks: np.ndarray, labels: np.ndarray,
              variant: str, n_swaps: int = 200, seed: int = 0) -> dict:
    """ROC AUC on the images, on swap composites (against lungs and surroundings)
    and with the lungs hidden."""
    clean = logits(views(canons, masks, variant)[0])
    comp, comp_masks, donors, recipients = swap_composites(canons, masks, n_swaps, seed)
    swapped = logits(views(comp, comp_masks, variant)[0])
    hidden = logits(views(np.stack([hide_lungs(c, m) for c, m in zip(canons, masks)]), masks, variant)[0])
    pairs = {"auc": (labels, clean), "swap_lungs_auc": (labels[donors], swapped),
             "swap_surroundings_auc": (labels[recipients], swapped), "hidden_auc": (labels, hidden)}
    return {"n": int(len(labels)), "swap_n": int(n_swaps),
            **{k: _auc(y, s) for k, (y, s) in pairs.items()},
            "ci95": {k: _auc_ci(y, s, seed=seed) for k, (y, s) in pairs.items()}}


def shortfall(tests: dict) -> float:
    """How far the AUC tests are from their goals, summed (0 = all met)."""
    return (max(0.0, tests["swap_surroundings_auc"] - GOALS["swap_surroundings_auc_max"])
            + max(0.0, GOALS["swap_lungs_auc_min"] - tests["swap_lungs_auc"])
            + max(0.0, tests["hidden_auc"] - GOALS["hidden_auc_max"]))


def heat_share(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of a (224, 224) heatmap's mass inside the dilated lung mask."""
    total = float(heat.sum())
    return float((heat * dilate(mask)).sum() / total) if total > 0 else float("nan")


def _delete(view: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Cells (indices into the 7x7 grid) of a view filled with its mean grey."""
    out = view.copy()
    step = IMAGE_SIZE // CELLS
    for c in cells:
        r, k = divmod(int(c), CELLS)
        out[r * step:(r + 1) * step, k * step:(k + 1) * step] = np.uint8(view.mean())
    return out


def deletion(logits: LogitFn, temperature: float, inputs: np.ndarray, cams: np.ndarray,
             positive: np.ndarray, seed: int = 0) -> dict:
    """Area under the deletion curve of the decided class's probability for
    three cell orders: Grad-CAM's (hottest first), random, and centre first."""
    if len(inputs) == 0:
        raise ValueError("deletion curves need at least one image")
    rng = np.random.default_rng([seed, 0xDE1])
    yy, xx = np.mgrid[:CELLS, :CELLS]
    centre = np.argsort(np.hypot(yy - CELLS // 2, xx - CELLS // 2).ravel(), kind="stable")
    orders = {"gradcam": [np.argsort(-c.ravel(), kind="stable") for c in cams],
              "random": [rng.permutation(CELLS * CELLS) for _ in cams],
              "centre": [centre] * len(cams)}
    out = {}
    fractions = np.asarray(DELETION_STEPS) / (CELLS * CELLS)
    for name, per_image in orders.items():
        batch = np.stack([_delete(v, order[:k]) for v, order in zip(inputs, per_image) for k in DELETION_STEPS])
        p = sigmoid(logits(batch) / temperature).reshape(len(inputs), len(DELETION_STEPS))
        score = np.where(positive[:, None], p, 1.0 - p)
        curve = score.mean(0)
        out[name] = {"auc": float(np.trapezoid(curve, fractions)), "curve": [float(v) for v in curve]}
    return out


def heat_tests(cam: Callable, logits: LogitFn, temperature: float, decision_logit: float,
               canons: np.ndarray, masks: np.ndarray, labels: np.ndarray, variant: str,
               n_deletion: int = 60, seed: int = 0) -> dict:
    """Heat in the lungs (per true class) and deletion curves on a seeded subset.

    `cam(views) -> (logits, maps)` for the decided class."""
    inputs, boxes = views(canons, masks, variant)
    raw, maps = cam(inputs)
    shares = np.asarray([heat_share(to_image(m, b, (IMAGE_SIZE, IMAGE_SIZE)), mask)
                         for m, b, mask in zip(maps, boxes, masks)])
    pick = np.random.default_rng([seed, 0xC0]).permutation(len(inputs))[:n_deletion]
    return {"heat_in_lungs": {"NORMAL": float(np.nanmean(shares[labels == 0])),
                              "PNEUMONIA": float(np.nanmean(shares[labels == 1])),
                              "all": float(np.nanmean(shares))},
            "deletion_n": int(len(pick)),
            "deletion": deletion(logits, temperature, inputs[pick], maps[pick], raw[pick] >= decision_logit, seed)}
