"""Is this a chest X-ray at all? An out-of-distribution guard on backbone features.

The score is the Mahalanobis distance of an image's pooled ResNet50 features
(the 2048 values the classifier head reads) to the training X-rays, under a
probabilistic-PCA covariance: the top `k` principal directions with their own
variances, plus one shared variance for the rest (Tipping & Bishop 1999), so
that the 2048x2048 covariance is estimated stably from a few thousand images
and stored in about 2 MB. It is fitted on the training part of the patient
split; its threshold is a quantile of the validation X-rays' scores. No
non-X-ray image is used to fit or tune it.

    python -m pneumonia.ood --model model --data path/to/chest_xray
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from .config import CONFIG_FILE

OOD_FILE = "ood.npz"
COMPONENTS = 256
# Share of validation X-rays the threshold lets through.
ACCEPT_QUANTILE = 0.995
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


def fit(train_features: np.ndarray, val_features: np.ndarray, k: int = COMPONENTS,
        quantile: float = ACCEPT_QUANTILE) -> OODGuard:
    """PPCA fit on training features; threshold = `quantile` of validation scores."""
    x = np.asarray(train_features, np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    eig = s ** 2 / (len(x) - 1)
    k = min(k, len(eig) - 1)
    rest = eig[k:].sum() / (x.shape[1] - k)
    guard = OODGuard(mean, vt[:k], np.maximum(eig[:k], rest), float(max(rest, 1e-12)), np.inf)
    guard.threshold = float(np.quantile(guard.score(val_features), quantile))
    return guard


def fit_folder(model_dir: str | Path, data_dir: str | Path) -> OODGuard:
    """Fit the guard for a trained model folder on its own patient split."""
    from . import data
    from .lung_view import LungReader
    from .model import load_model_folder, pooled_features
    from .training import log
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    split = data.load_train_split(data_dir, config["data"].get("limit_per_class"),
                                  config["training"]["seed"], config["training"]["val_fraction"])
    # The guard reads what the classifier reads: the lung view, for lung models.
    split, _, _ = LungReader.from_config(folder, config).read_split(split)
    train_idx, val_idx = split.train_idx, split.val_idx
    log(f"OOD guard: features of {len(split.images)} training-split X-rays")
    feats = pooled_features(net, split.images)
    guard = fit(feats[train_idx], feats[val_idx])
    guard.save(folder / OOD_FILE)
    val_scores = guard.score(feats[val_idx])
    config["ood"] = {
        "file": OOD_FILE, "method": f"Mahalanobis distance, probabilistic PCA ({len(guard.variances)} components)",
        "features": "avg_pool (2048)", "threshold": guard.threshold,
        "threshold_rule": f"{ACCEPT_QUANTILE:.1%} quantile of validation X-ray scores",
        "fitted_on": f"{len(train_idx)} training-split X-rays; threshold on {len(val_idx)} validation X-rays",
        "validation_accepted": float(np.mean(val_scores <= guard.threshold)),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"OOD guard saved: threshold {guard.threshold:.3f}; validation X-rays accepted "
        f"{config['ood']['validation_accepted']:.3%}")
    return guard


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    args = p.parse_args(argv)
    from . import cli
    return cli.run(lambda: fit_folder(args.model, args.data))


if __name__ == "__main__":
    sys.exit(main())
