"""A reader judged by its worst source, not its average (rules.ADULT_RULE).

Each source of validation films gives the numbers it can show: specificity
where it has normal films, sensitivity where it has opacity films, ROC AUC
where it has both. The threshold is the one whose worst specificity or
sensitivity is highest; the score is the worst of those at that threshold
and of the ROC AUCs. Films of other labels (TB, nodules) are left out.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

GRID = 512   # candidate thresholds: quantiles of the logits


def per_source(logits: np.ndarray, labels: np.ndarray, sources: np.ndarray, threshold: float) -> dict[str, dict]:
    """{source: {"specificity", "sensitivity", "auc" (where it can show them), "n"}} at `threshold`."""
    out = {}
    for s in sorted(set(sources.tolist())):
        x, y = logits[sources == s], labels[sources == s]
        row: dict = {"n": int(np.isin(y, (0, 1)).sum())}
        if (y == 0).any():
            row["specificity"] = float(np.mean(x[y == 0] < threshold))
        if (y == 1).any():
            row["sensitivity"] = float(np.mean(x[y == 1] >= threshold))
        if (y == 0).any() and (y == 1).any():
            keep = np.isin(y, (0, 1))
            row["auc"] = float(roc_auc_score(y[keep], x[keep]))
        if row["n"]:
            out[s] = row
    return out


def worst(table: dict[str, dict]) -> tuple[float, str]:
    """The worst number of a `per_source` table and where it is ("source specificity")."""
    items = [(v, f"{s} {k}") for s, row in table.items() for k, v in row.items() if k != "n"]
    return min(items) if items else (float("nan"), "")


def choose_threshold(logits: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> float:
    """The threshold whose worst per-source specificity or sensitivity is highest
    (the middle of the best run of grid points on a tie)."""
    keep = np.isin(labels, (0, 1))
    x, y, s = logits[keep], labels[keep], sources[keep]
    grid = np.unique(np.quantile(x, np.linspace(0, 1, GRID)))
    cells = [(x[(s == src) & (y == k)], k) for src in np.unique(s) for k in (0, 1) if ((s == src) & (y == k)).any()]
    worst_rate = np.full(len(grid), np.inf)
    for values, k in cells:
        below = np.searchsorted(np.sort(values), grid, side="left") / len(values)  # share < t
        worst_rate = np.minimum(worst_rate, below if k == 0 else 1 - below)
    best = np.flatnonzero(worst_rate == worst_rate.max())
    return float(grid[best[len(best) // 2]])


def score(logits: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> dict:
    """{"score", "where", "threshold", "sources"}: the rule's number for one set of validation logits."""
    t = choose_threshold(logits, labels, sources)
    table = per_source(logits, labels, sources, t)
    value, where = worst(table)
    return {"score": value, "where": where, "threshold": t, "sources": table}
