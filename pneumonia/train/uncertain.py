"""The band of P(PNEUMONIA) where the adult reader says "can't tell" (rules.ADULT_RULE step 5).

A film whose probability lies in [low, high) (the threshold inside it) gets
no NORMAL or PNEUMONIA. The band is chosen on validation films: among bands
whose answers are right at least TARGET of the time on every source, the one
that answers the most films of the source it answers least; none reaching
TARGET, the one whose worst source is right most often while still answering
at least MIN_COVER of every source.
"""
from __future__ import annotations

import numpy as np

TARGET = 0.90
MIN_COVER = 0.50
GRID = 120   # candidate edges: quantiles of the validation probabilities on each side of the threshold


def per_source(p: np.ndarray, y: np.ndarray, s: np.ndarray, low: float, high: float, threshold: float) -> dict:
    """{source: {"answered": share outside the band, "right": share of those answered right, "n"}}."""
    out = {}
    for src in sorted(set(s.tolist())):
        keep = (s == src) & np.isin(y, (0, 1))
        if not keep.any():
            continue
        pp, yy = p[keep], y[keep]
        said = (pp < low) | (pp >= high)
        right = (pp[said] >= threshold) == (yy[said] == 1)
        out[src] = {"n": int(keep.sum()), "answered": float(said.mean()),
                    "right": float(right.mean()) if said.any() else float("nan")}
    return out


def choose_band(p: np.ndarray, y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    """{"low", "high", "rule_met", "sources"}: the band by the rule above, on validation."""
    two = np.isin(y, (0, 1))
    below, above = p[two & (p < threshold)], p[two & (p >= threshold)]
    lows = np.unique(np.r_[threshold, np.quantile(below, np.linspace(0, 1, GRID)) if len(below) else []])
    highs = np.unique(np.r_[threshold, np.quantile(above, np.linspace(0, 1, GRID)) + 1e-9 if len(above) else []])
    best, fallback = None, None
    for low in lows:
        for high in highs:
            table = per_source(p, y, s, low, high, threshold)
            cover = min(r["answered"] for r in table.values())
            right = min((r["right"] for r in table.values() if r["answered"] > 0), default=0.0)
            total = float(np.mean([r["answered"] for r in table.values()]))
            if right >= TARGET and (best is None or (cover, total) > best[0]):
                best = ((cover, total), low, high, table)
            if cover >= MIN_COVER and (fallback is None or (right, cover) > fallback[0]):
                fallback = ((right, cover), low, high, table)
    chosen, met = (best, True) if best is not None else (fallback, False)
    if chosen is None:   # nothing answers half of every source: no band at all
        return {"low": threshold, "high": threshold, "rule_met": False,
                "sources": per_source(p, y, s, threshold, threshold, threshold)}
    _, low, high, table = chosen
    return {"low": float(low), "high": float(high), "rule_met": met, "sources": table}
