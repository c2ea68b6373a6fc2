"""Temperature scaling and the operating threshold, fitted on validation only."""
from __future__ import annotations

import math

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of sigmoid(logits / T), computed stably."""
    z = np.asarray(logits, np.float64) / temperature
    y = np.asarray(labels, np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising validation NLL of sigmoid(logit / T) (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar
    res = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t)),
                          bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def decision_logit(temperature: float, threshold: float) -> float:
    """The raw logit at which sigmoid(logit / temperature) equals `threshold`."""
    t = min(max(threshold, 1e-12), 1 - 1e-12)
    return temperature * math.log(t / (1 - t))


def threshold_for_sensitivity(probs: np.ndarray, labels: np.ndarray, target: float) -> float:
    """The highest threshold t with sensitivity(prob >= t) >= target.

    The most specific operating point that still finds `target` of positives.
    """
    positives = np.sort(np.asarray(probs, np.float64)[np.asarray(labels) == 1])[::-1]
    if positives.size == 0:
        raise ValueError("no positive examples to set a sensitivity threshold on")
    needed = math.ceil(target * positives.size - 1e-9)
    return float(positives[max(needed, 1) - 1])


def fit_operating_point(val_logits: np.ndarray, val_labels: np.ndarray, stressed_logits: np.ndarray,
                        target_sensitivity: float) -> tuple[float, float]:
    """(temperature, threshold) from validation only.

    The temperature minimises NLL over the clean validation logits and their
    stressed copies (`stressed_logits`: whole copies of the validation set, in
    its order); the threshold keeps `target_sensitivity` on clean validation.
    """
    copies = len(stressed_logits) // max(len(val_logits), 1)
    temperature = fit_temperature(np.concatenate([val_logits, stressed_logits]),
                                  np.tile(val_labels, 1 + copies))
    threshold = threshold_for_sensitivity(sigmoid(np.asarray(val_logits) / temperature),
                                          val_labels, target_sensitivity)
    return temperature, threshold
