"""Classification and calibration metrics, with bootstrap intervals."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def confusion(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, int]:
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(probs) >= threshold
    return {"tp": int(np.sum(pred & y)), "fp": int(np.sum(pred & ~y)),
            "tn": int(np.sum(~pred & ~y)), "fn": int(np.sum(~pred & y))}


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def threshold_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray) -> dict:
    """Accuracy, precision, sensitivity, specificity, F1 and the confusion matrix.

    `threshold`: one for all, or one per image (answers from two heads, each
    with its own operating point); then "threshold" is recorded as None."""
    c = confusion(labels, probs, threshold)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    sensitivity = _ratio(c["tp"], c["tp"] + c["fn"])
    return {
        "threshold": float(threshold) if np.ndim(threshold) == 0 else None,
        "accuracy": _ratio(c["tp"] + c["tn"], sum(c.values())),
        "precision": precision,
        "sensitivity": sensitivity,
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
        "f1": _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        "confusion_matrix": {"labels": ["NORMAL", "PNEUMONIA"], "rows_true_cols_pred":
                             [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]},
    }


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE over `bins` equal-width bins of the predicted PNEUMONIA probability:
    sum over bins of (bin share) * |mean label - mean probability|."""
    y = np.asarray(labels, np.float64)
    p = np.asarray(probs, np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def reliability_bins(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> list[dict]:
    y = np.asarray(labels, np.float64)
    p = np.asarray(probs, np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return [{"lo": b / bins, "hi": (b + 1) / bins, "count": int((idx == b).sum()),
             "mean_prob": float(p[idx == b].mean()) if (idx == b).any() else None,
             "frac_positive": float(y[idx == b].mean()) if (idx == b).any() else None}
            for b in range(bins)]


def bootstrap_ci(labels: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray,
                 n: int = 2000, seed: int = 0) -> dict[str, list[float]]:
    """95% percentile intervals for accuracy, sensitivity, specificity, ROC AUC,
    resampling images with replacement."""
    y = np.asarray(labels)
    p = np.asarray(probs)
    rng = np.random.default_rng(seed)
    stats: dict[str, list[float]] = {"accuracy": [], "sensitivity": [], "specificity": [], "roc_auc": []}
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        yi, pi = y[i], p[i]
        if yi.min() == yi.max():
            continue
        m = threshold_metrics(yi, pi, threshold if np.ndim(threshold) == 0 else np.asarray(threshold)[i])
        for k in ("accuracy", "sensitivity", "specificity"):
            stats[k].append(m[k])
        stats["roc_auc"].append(roc_auc_score(yi, pi))
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in stats.items()}


def evaluate_probs(labels: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray,
                   bootstrap: int = 2000, seed: int = 0) -> dict:
    """Every reported metric at `threshold` and at 0.5."""
    y = np.asarray(labels)
    p = np.asarray(probs, np.float64)
    return {
        "n": int(len(y)), "n_normal": int((y == 0).sum()), "n_pneumonia": int((y == 1).sum()),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(np.mean((p - y) ** 2)),
        "ece_15": expected_calibration_error(y, p, 15),
        "at_threshold": threshold_metrics(y, p, threshold),
        "at_0.5": threshold_metrics(y, p, 0.5),
        "ci95_at_threshold": bootstrap_ci(y, p, threshold, bootstrap, seed),
        "reliability": reliability_bins(y, p, 15),
    }
