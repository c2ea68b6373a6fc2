"""Fitting the out-of-distribution guard (`pneumonia.serve.guard`) on a model folder's own patient split.

It is fitted on the training part's pooled features; its threshold is a
quantile of the validation X-rays' scores. No non-X-ray image is used to fit
or tune it. (`pneumonia.train.population` refits it with adults too.)

    python -m pneumonia.train.guard_fit --model model --data path/to/chest_xray
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.config import CONFIG_FILE
from pneumonia.serve.guard import OOD_FILE, OODGuard

COMPONENTS = 256
# Share of validation X-rays the threshold lets through.
ACCEPT_QUANTILE = 0.995


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
    from pneumonia.train import data
    from pneumonia.train.cli import log
    from pneumonia.train.model import load_model_folder, pooled_features
    from pneumonia.train.segmenter import keras_reader
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    split = data.load_train_split(data_dir, config["data"].get("limit_per_class"),
                                  config["training"]["seed"], config["training"]["val_fraction"])
    # The guard reads what the classifier reads: the lung view, for lung models.
    split, _, _ = data.lung_split(keras_reader(folder, config), split)
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
    from pneumonia.train import cli
    return cli.run(lambda: fit_folder(args.model, args.data))


if __name__ == "__main__":
    sys.exit(main())
