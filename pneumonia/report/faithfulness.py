"""Is the heatmap faithful? Grad-CAM's tests on a classifier's lung view.

- heat in the lungs: the share of Grad-CAM mass inside the dilated lung mask.
- deletion (Petsiuk et al. 2018): Grad-CAM's cells removed hottest first must
  lower the decided class's probability faster than a random order and a
  centre-first order; the area under each curve is reported (lower = faster).
- ROAD (Rong et al. 2022), restricted to what the model reads: the view's
  pixels ranked by Grad-CAM are removed most relevant first, in steps of 10%
  up to 90% of the read region, and filled by noisy linear imputation (each
  removed pixel the weighted mean of its 8 neighbours, plus a little noise),
  so the removal neither paints a grey shape nor leaks its outline. The mean
  probability of the decided class over the steps is compared with random
  and centre-first orders, per image, with a paired bootstrap interval.
- pointing game: the hottest point of the map, on the image, lies inside the
  dilated lungs.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pneumonia.calibration import sigmoid
from pneumonia.config import IMAGE_SIZE
from pneumonia.report.validity import LogitFn, views
from pneumonia.serve.lung_view import dilate, lung_view, to_image

CELLS = 7
DELETION_STEPS = (0, 3, 7, 12, 18, 25, 35, 49)
ROAD_STEPS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ROAD_NOISE = 2.55   # grey levels: the ROAD paper's 0.01 on a [0, 1] image
# The weights of a removed pixel's 8 neighbours in its imputed value (edges 1/6, corners 1/12).
NEIGHBOURS = [((dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


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
    """Heat in the lungs and the pointing game (per true class), deletion curves
    and ROAD on a seeded subset.

    `cam(views) -> (logits, maps)` for the decided class."""
    inputs, boxes = views(canons, masks, variant)
    raw, maps = cam(inputs)
    shares = np.asarray([heat_share(to_image(m, b, (IMAGE_SIZE, IMAGE_SIZE)), mask)
                         for m, b, mask in zip(maps, boxes, masks)])
    pick = np.random.default_rng([seed, 0xC0]).permutation(len(inputs))[:n_deletion]
    hits = pointing(maps, boxes, masks)
    positive = raw[pick] >= decision_logit
    return {"heat_in_lungs": {"NORMAL": float(np.nanmean(shares[labels == 0])),
                              "PNEUMONIA": float(np.nanmean(shares[labels == 1])),
                              "all": float(np.nanmean(shares))},
            "pointing_game": {"NORMAL": float(hits[labels == 0].mean()) if (labels == 0).any() else float("nan"),
                              "PNEUMONIA": float(hits[labels == 1].mean()) if (labels == 1).any() else float("nan"),
                              "all": float(hits.mean())},
            "deletion_n": int(len(pick)),
            "deletion": deletion(logits, temperature, inputs[pick], maps[pick], positive, seed),
            "road": road(logits, temperature, inputs[pick], maps[pick], positive,
                         read_regions(masks[pick], variant), seed)}


def impute(image: np.ndarray, removed: np.ndarray, rng: np.random.Generator, noise: float = ROAD_NOISE) -> np.ndarray:
    """Fill the `removed` pixels of a (H, W) uint8 image: each is the weighted
    mean of its neighbours (a sparse linear system over all removed pixels at
    once, so large holes fill smoothly from their edges), plus Gaussian noise."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve
    h, w = image.shape
    idx = np.flatnonzero(removed)
    if len(idx) == 0:
        return image.copy()
    var = np.full(h * w, -1)
    var[idx] = np.arange(len(idx))
    ys, xs = np.divmod(idx, w)
    rows, cols, vals = [np.arange(len(idx))], [np.arange(len(idx))], []
    diag = np.zeros(len(idx))
    rhs = np.zeros(len(idx))
    flat = image.astype(np.float64).ravel()
    for (dy, dx), weight in NEIGHBOURS:
        y, x = ys + dy, xs + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        j = np.where(inside, y * w + x, 0)
        diag += np.where(inside, weight, 0.0)
        unknown = inside & (var[j] >= 0)
        known = inside & (var[j] < 0)
        rows.append(np.flatnonzero(unknown))
        cols.append(var[j[unknown]])
        vals.append(np.full(unknown.sum(), -weight))
        rhs[known] += weight * flat[j[known]]
    vals.insert(0, diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(len(idx), len(idx))).tocsc()
    out = flat.copy()
    out[idx] = spsolve(a, rhs) + rng.normal(0, noise, len(idx))
    return np.clip(out, 0, 255).reshape(h, w).astype(np.uint8)


def road(logits: LogitFn, temperature: float, inputs: np.ndarray, cams: np.ndarray, positive: np.ndarray,
         read: np.ndarray, seed: int = 0) -> dict:
    """ROAD, most relevant first, inside each view's read region (`read`,
    (n, 224, 224) bool): per order, the mean over ROAD_STEPS of the decided
    class's probability, averaged over images (lower = the order found what
    mattered sooner), and Grad-CAM minus each other order with a 95% paired
    bootstrap interval (below zero throughout = Grad-CAM beats it)."""
    if len(inputs) == 0:
        raise ValueError("ROAD needs at least one image")
    rng = np.random.default_rng([seed, 0x20AD])
    yy, xx = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    centre = -np.hypot(yy - IMAGE_SIZE / 2, xx - IMAGE_SIZE / 2)
    per_order: dict[str, np.ndarray] = {}
    for name in ("gradcam", "random", "centre"):
        batch = []
        for view, cam, region in zip(inputs, cams, read):
            rank = {"gradcam": cv2.resize(np.asarray(cam, np.float32), (IMAGE_SIZE,) * 2,
                                          interpolation=cv2.INTER_LINEAR),
                    "random": rng.random((IMAGE_SIZE, IMAGE_SIZE)), "centre": centre}[name]
            pixels = np.flatnonzero(region)
            order = pixels[np.argsort(-rank.ravel()[pixels], kind="stable")]
            for step in ROAD_STEPS:
                removed = np.zeros(IMAGE_SIZE * IMAGE_SIZE, bool)
                removed[order[:round(step * len(order))]] = True
                batch.append(impute(view, removed.reshape(IMAGE_SIZE, IMAGE_SIZE), rng))
        p = sigmoid(logits(np.stack(batch)) / temperature).reshape(len(inputs), len(ROAD_STEPS))
        per_order[name] = np.where(positive[:, None], p, 1.0 - p).mean(1)
    out: dict = {name: float(v.mean()) for name, v in per_order.items()}
    boot = np.random.default_rng([seed, 0xB00])
    for other in ("random", "centre"):
        d = per_order["gradcam"] - per_order[other]
        means = [d[boot.integers(0, len(d), len(d))].mean() for _ in range(1000)]
        out[f"gradcam_minus_{other}"] = {"mean": float(d.mean()),
                                         "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]}
    return out


def pointing(maps: np.ndarray, boxes: list, masks: np.ndarray) -> np.ndarray:
    """(n,) bool: the map's hottest point, on the canonical image, lies inside the dilated lungs."""
    hits = []
    for m, b, mask in zip(maps, boxes, masks):
        heat = to_image(m, b, (IMAGE_SIZE, IMAGE_SIZE))
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        hits.append(bool(dilate(mask)[y, x]))
    return np.asarray(hits)


def read_regions(masks: np.ndarray, variant: str) -> np.ndarray:
    """(n, 224, 224) bool: the part of each view that shows the X-ray (for
    "crop+mask" the dilated lungs inside the box; the whole view otherwise)."""
    blank = np.full((IMAGE_SIZE, IMAGE_SIZE), 255, np.uint8)
    return np.stack([lung_view(blank, m, variant)[0] > 127 for m in masks])
