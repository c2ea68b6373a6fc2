"""Is this a chest X-ray at all? The out-of-distribution guard as served.

The score is the Mahalanobis distance of an image's pooled ResNet50 features
(the 2048 values the classifier head reads) to the training X-rays, under a
probabilistic-PCA covariance: the top `k` principal directions with their own
variances, plus one shared variance for the rest (Tipping & Bishop 1999),
stored in about 2 MB. Its fitting is `pneumonia.train.guard_fit`.
"""
from __future__ import annotations

from dataclasses import dataclass
import functools
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

OOD_FILE = "ood.npz"
VERDICT = "This does not look like a chest X-ray"


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@dataclass
class OODGuard:
    mean: np.ndarray          # (d,)
    components: np.ndarray    # (k, d) principal directions
    variances: np.ndarray     # (k,)
    residual_variance: float  # per dimension, outside the k directions
    threshold: float

    def score(self, features: np.ndarray) -> np.ndarray:
        """(n, d) pooled features -> (n,) distances, scaled so that a typical
        training X-ray scores about 1 (squared distance divided by d)."""
        z = np.atleast_2d(np.asarray(features, np.float64)) - self.mean
        # One BLAS thread: idle OpenBLAS threads spin after a product and
        # slowed the next TensorFlow call by ~40 ms on 2 cores.
        with _blas().limit(limits=1, user_api="blas"):
            p = z @ self.components.T
        residual = np.maximum((z * z).sum(1) - (p * p).sum(1), 0.0)
        d2 = (p * p / self.variances).sum(1) + residual / self.residual_variance
        return np.sqrt(d2 / z.shape[1])

    def accepts(self, score: float) -> bool:
        return bool(score <= self.threshold)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
                 variances=self.variances, residual_variance=self.residual_variance, threshold=self.threshold)

    @classmethod
    def load(cls, path: str | Path) -> "OODGuard":
        with np.load(path) as f:
            return cls(f["mean"].astype(np.float64), f["components"].astype(np.float64),
                       f["variances"].astype(np.float64), float(f["residual_variance"]), float(f["threshold"]))
