"""What WHITE_RULE (4)-(5) judge a refitted last layer by: decisions as served, the
held-out family and the non-opacities on validation, and the choice among candidates."""
from __future__ import annotations

import numpy as np

from pneumonia.calibration import sigmoid
from pneumonia.train import non_opacity
from pneumonia.train.painted_features import WHITE_STRENGTHS

CONDITIONS = {"white_normal": 0.90, "white_disease_stays": 0.95, "non_opacity_stays": 0.95, "specificity_drop": 0.03}


def rate(hit: np.ndarray, among: np.ndarray) -> float | None:
    return float(np.mean(hit[among])) if among.any() else None


class Decide:
    """A last layer with its operating point: decisions as served (the band only for adults)."""

    def __init__(self, w, b, temperature: float, threshold: float, low: float | None = None, high: float | None = None):
        self.w, self.b, self.t, self.thr = w, b, temperature, threshold
        self.low, self.high = (threshold, threshold) if low is None else (low, high)

    def p(self, x: np.ndarray) -> np.ndarray:
        return sigmoid((x.astype(np.float64) @ self.w + self.b) / self.t)

    def pneumonia(self, x: np.ndarray) -> np.ndarray:
        p = self.p(x)
        return (p >= self.thr) & ~((p >= self.low) & (p < self.high))

    def normal(self, x: np.ndarray) -> np.ndarray:
        p = self.p(x)
        return (p < self.thr) & ~((p >= self.low) & (p < self.high))


def edits(g, prefix: str, d: Decide, clean: np.ndarray, y: np.ndarray, whitened_normal: np.ndarray) -> dict:
    """WHITE_RULE (5)'s numbers for one layer: the held-out family and the non-opacities.
    `clean`: validation features; `whitened_normal` picks the normal films the whitened condition counts."""
    out = {}
    both = np.isin(y, (0, 1))
    yb, cb = y[both], clean[both]
    for s in WHITE_STRENGTHS:
        hit = d.pneumonia(g[f"{prefix}_white_{s}"]) & g[f"{prefix}_white_{s}_found"]
        out[f"white_normal_{s}"] = rate(hit, (yb == 0) & whitened_normal[both])
        out[f"white_disease_stays_{s}"] = rate(hit, (yb == 1) & d.pneumonia(cb))
    normal_called = d.normal(clean[y == 0])
    for name in non_opacity.EDITS:
        stays = d.normal(g[f"{prefix}_{name}"]) & g[f"{prefix}_{name}_found"]
        out[f"{name}_stays"] = rate(stays, normal_called)
    out["painted_called"] = float(np.mean((d.p(g[f"{prefix}_painted"]) >= d.thr) & g[f"{prefix}_painted_found"]))
    return out


def meets(e: dict) -> bool:
    """WHITE_RULE (5) on an `edits` table (an empty set meets nothing)."""
    limit = lambda k: CONDITIONS[k.rsplit("_", 1)[0] if k.startswith("white") else "non_opacity_stays"]   # noqa: E731
    return all(v is not None and v >= limit(k) for k, v in e.items() if k != "painted_called")


def choose(before: dict, rows: list[tuple[dict, Decide]], second: str) -> dict:
    """The best-ranked eligible candidate meeting the conditions (WHITE_RULE 4-5), or none."""
    ranked = sorted((r for r in rows if r[0]["eligible"] and r[0]["share"] > 0),
                    key=lambda r: (r[0]["edits"]["painted_called"], r[0][second]), reverse=True)
    chosen = next((r for r in ranked if r[0]["meets"]), None)
    return {"served": before, "candidates": [r for r, _ in rows],
            "ranked_first": ranked[0][0] if ranked else None,
            "chosen": chosen[0] if chosen else None, "layer": chosen[1] if chosen else None}
