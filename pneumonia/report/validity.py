"""Does the answer come from the lungs? Composite tests of a classifier and its lung view (swap, hidden, silhouette).

All work on canonical 224x224 images with their lung masks (found by the
segmenter), and run the classifier the way it is served (`lung_view`):
- swap test: the lungs (dilated mask) of one X-ray, moved onto the lungs' box
  of another, classes drawn independently. AUC of P(pneumonia) against the
  label of the pasted lungs and against the label of the surroundings; a
  model that reads the lungs scores high on the first and ~0.5 on the second.
- lungs hidden: the dilated lung region filled with the image's median grey;
  a model that reads the lungs falls to ~0.5.
- the heatmap's tests (heat in the lungs, deletion, ROAD, pointing game) are
  `pneumonia.report.faithfulness`.
- silhouette: how much the lung view's outline alone tells the class. A small
  classifier (logistic regression) sees only where the view keeps fine detail
  (the lung box and the dilated mask, no X-ray pixels: `silhouettes`), fitted
  on the training part and scored by ROC AUC elsewhere; ~0.5 means the outline
  carries no label, high means a classifier could read the class off it.
The geometry is held fixed (the composite's lungs are the pasted ones), so
the tests measure the classifier, not the segmenter.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from pneumonia.config import IMAGE_SIZE, LUNG_DILATION
from pneumonia.serve.lung_view import crop, dilate, lung_box, lung_view

# Goals (issue "Read the lungs, not the leads").
GOALS = {"swap_surroundings_auc_max": 0.60, "swap_lungs_auc_min": 0.90, "hidden_auc_max": 0.65,
         "heat_in_lungs_min": 0.85, "pointing_game_min": 0.95, "silhouette_auc_max": 0.65}
OUTLINED = ("crop+mask", "crop+blur")   # views whose dilated-mask outline shows (black or blurred outside)
SILHOUETTE_SIZE = 32   # the silhouette's side, in cells, for its classifier
LogitFn = Callable[[np.ndarray], np.ndarray]   # (n, 224, 224) uint8 views -> (n,) logits


def views(canons: np.ndarray, masks: np.ndarray, variant: str,
          dilation: float = LUNG_DILATION) -> tuple[np.ndarray, list]:
    """The classifier inputs and boxes of a stack of canonical images."""
    out = [lung_view(c, m, variant, dilation=dilation) for c, m in zip(canons, masks)]
    return np.stack([v for v, _ in out]), [b for _, b in out]


def _box_to_box(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine map taking the tight box of mask `src` onto that of `dst`."""
    a, b = lung_box(src, 0.0), lung_box(dst, 0.0)
    sx, sy = (b.x1 - b.x0) / (a.x1 - a.x0), (b.y1 - b.y0) / (a.y1 - a.y0)
    return np.float32([[sx, 0, (b.x0 - a.x0 * sx) * IMAGE_SIZE], [0, sy, (b.y0 - a.y0 * sy) * IMAGE_SIZE]])


def swap_composites(canons: np.ndarray, masks: np.ndarray, n: int, seed: int, dilation: float = LUNG_DILATION
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
        images.append(np.where(dilate(mask, dilation), lung, canons[b]).astype(np.uint8))
        lungs.append(mask)
    return np.stack(images), np.stack(lungs), donors, recipients


def hide_lungs(canon: np.ndarray, mask: np.ndarray, dilation: float = LUNG_DILATION) -> np.ndarray:
    """The dilated lung region filled with the image's median grey."""
    return np.where(dilate(mask, dilation), np.uint8(np.median(canon)), canon).astype(np.uint8)


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
              variant: str, n_swaps: int = 200, seed: int = 0, dilation: float = LUNG_DILATION) -> dict:
    """ROC AUC on the images, on swap composites (against lungs and surroundings)
    and with the lungs hidden; the lungs are the mask dilated as the view dilates it."""
    clean = logits(views(canons, masks, variant, dilation)[0])
    comp, comp_masks, donors, recipients = swap_composites(canons, masks, n_swaps, seed, dilation)
    swapped = logits(views(comp, comp_masks, variant, dilation)[0])
    hidden = logits(views(np.stack([hide_lungs(c, m, dilation) for c, m in zip(canons, masks)]), masks, variant,
                          dilation)[0])
    pairs = {"auc": (labels, clean), "swap_lungs_auc": (labels[donors], swapped),
             "swap_surroundings_auc": (labels[recipients], swapped), "hidden_auc": (labels, hidden)}
    return {"n": int(len(labels)), "swap_n": int(n_swaps),
            **{k: _auc(y, s) for k, (y, s) in pairs.items()},
            "ci95": {k: _auc_ci(y, s, seed=seed) for k, (y, s) in pairs.items()}}


def shortfall(tests: dict) -> float:
    """How far the AUC tests are from their goals, summed (0 = all met); the
    silhouette's AUC counts too when `tests` has one."""
    return (max(0.0, tests["swap_surroundings_auc"] - GOALS["swap_surroundings_auc_max"])
            + max(0.0, GOALS["swap_lungs_auc_min"] - tests["swap_lungs_auc"])
            + max(0.0, tests["hidden_auc"] - GOALS["hidden_auc_max"])
            + max(0.0, tests.get("silhouette_auc", 0.0) - GOALS["silhouette_auc_max"]))


def reliance_shortfall(tests: dict) -> float:
    """How far the swap test alone (what the model uses) is from its goals:
    the part of `shortfall` that chooses under TRAIN_RULE (6)."""
    return (max(0.0, tests["swap_surroundings_auc"] - GOALS["swap_surroundings_auc_max"])
            + max(0.0, GOALS["swap_lungs_auc_min"] - tests["swap_lungs_auc"]))


def silhouettes(masks: np.ndarray, variant: str, margin: float, dilation: float) -> np.ndarray:
    """(n, SILHOUETTE_SIZE**2) in [0, 1]: where each lung view keeps the X-ray's
    detail, with no X-ray in it: the dilated mask inside its box for
    "crop+mask" and "crop+blur" (black or blurred outside: either way its
    outline shows), the whole box for "crop" (the same for every X-ray)."""
    outlined = variant in OUTLINED
    out = []
    for m in masks:
        keep = dilate(m, dilation) if outlined else np.ones(m.shape, bool)
        view = crop(np.uint8(keep) * 255, lung_box(m, margin))
        out.append(cv2.resize(view, (SILHOUETTE_SIZE,) * 2, interpolation=cv2.INTER_AREA))
    return np.stack(out).reshape(len(masks), -1).astype(np.float32) / 255.0


def silhouette_auc(fit_masks: np.ndarray, fit_labels: np.ndarray, parts: dict[str, tuple[np.ndarray, np.ndarray]],
                   variant: str, margin: float, dilation: float, seed: int = 0) -> dict:
    """The silhouette classifier fitted on `fit_masks`, its ROC AUC (with a 95%
    bootstrap interval) on each named part's (masks, labels)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000, class_weight="balanced"))
    clf.fit(silhouettes(fit_masks, variant, margin, dilation), fit_labels)
    out = {"fit_n": int(len(fit_masks))}
    for name, (masks, labels) in parts.items():
        score = clf.decision_function(silhouettes(masks, variant, margin, dilation))
        out[name] = {"n": int(len(masks)), "auc": _auc(labels, score), "ci95": _auc_ci(labels, score, seed=seed)}
    return out
