"""Does the answer come from the lungs? Five tests of a classifier and its lung view.

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
- ROAD (Rong et al. 2022), restricted to what the model reads: the view's
  pixels ranked by Grad-CAM are removed most relevant first, in steps of 10%
  up to 90% of the read region, and filled by noisy linear imputation (each
  removed pixel the weighted mean of its 8 neighbours, plus a little noise),
  so the removal neither paints a grey shape nor leaks its outline. The mean
  probability of the decided class over the steps is compared with random
  and centre-first orders, per image, with a paired bootstrap interval.
- pointing game: the hottest point of the map, on the image, lies inside the
  dilated lungs.
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

from .calibration import sigmoid
from .config import IMAGE_SIZE
from .config import LUNG_DILATION
from .lung_view import crop, dilate, lung_box, lung_view, to_image

# Goals (issue "Read the lungs, not the leads").
GOALS = {"swap_surroundings_auc_max": 0.60, "swap_lungs_auc_min": 0.90, "hidden_auc_max": 0.65,
         "heat_in_lungs_min": 0.85, "pointing_game_min": 0.95, "silhouette_auc_max": 0.65}
OUTLINED = ("crop+mask", "crop+blur")   # views whose dilated-mask outline shows (black or blurred outside)
SILHOUETTE_SIZE = 32   # the silhouette's side, in cells, for its classifier
CELLS = 7
DELETION_STEPS = (0, 3, 7, 12, 18, 25, 35, 49)
ROAD_STEPS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ROAD_NOISE = 2.55   # grey levels: the ROAD paper's 0.01 on a [0, 1] image
# The weights of a removed pixel's 8 neighbours in its imputed value (edges 1/6, corners 1/12).
NEIGHBOURS = [((dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

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
