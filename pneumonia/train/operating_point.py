"""Fitting the operating point on validation only: the temperature (SciPy) and the threshold."""
from __future__ import annotations

import math

import numpy as np

from pneumonia.calibration import nll, sigmoid, threshold_for_sensitivity


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising validation NLL of sigmoid(logit / T) (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar
    res = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t)),
                          bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


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
