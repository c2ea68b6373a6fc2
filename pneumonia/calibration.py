"""Calibration arithmetic: the sigmoid, NLL, the decision logit and the sensitivity threshold (NumPy only;
the fitting, with SciPy, is `pneumonia.train.operating_point`)."""
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
