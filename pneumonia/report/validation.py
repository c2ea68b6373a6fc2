"""Model folders on the validation split: ROC AUC on its clean images and on
their stressed copies, and training's temperature rule applied to a folder.

    python -m pneumonia.report.validation --data path/to/chest_xray model runs/other
    python -m pneumonia.report.validation --data path/to/chest_xray model --refit-temperature

The clean validation split is nearly separable, so it cannot tell models
apart; its stressed copies (`augment.lung_stressed`: the same X-rays for
every model, each view cut from the stressed X-ray's own lungs) stand in for
radiographs acquired elsewhere. Only the training split is read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia import calibration
from pneumonia.config import CONFIG_FILE, STRESS_COPIES, TARGET_SENSITIVITY, TEMPERATURE_RULE
from pneumonia.serve.lung_view import LungReader
from pneumonia.train import augment, cli, data, operating_point
from pneumonia.train.cli import log
from pneumonia.train.model import grey_to_rgb, load_model_folder
from pneumonia.train.phases import predict_logits, val_stats
from pneumonia.train.segmenter import keras_reader


def split_key(config: dict) -> tuple:
    """What fixes a folder's validation split: its training seed, fraction and limit."""
    tr = config.get("training", {})
    return tr.get("seed", 0), tr.get("val_fraction", 0.15), tr.get("limit")


def validation_logits(net, reader: LungReader, canons: np.ndarray, split: data.TrainSplit, seed: int,
                      copies: int = STRESS_COPIES) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the clean validation views and of their `copies` stressed
    copies, each cut from the stressed X-ray's own lungs, as training makes them
    (`canons`: the canonical images behind `split.images`)."""
    clean = split.images[split.val_idx]
    stressed = augment.lung_stressed(reader.read, canons[split.val_idx], clean, copies, seed)
    return (predict_logits(net, grey_to_rgb(clean), 32), predict_logits(net, grey_to_rgb(stressed), 32))


def report(folder: str | Path, data_dir: str | Path, splits: dict | None = None,
           refit: bool = False) -> dict:
    """Validation numbers of one folder; with `refit`, rewrite its temperature and
    threshold by training's rule (the threshold moves with the temperature, so
    the decisions on validation stay those of the threshold rule)."""
    net, config = load_model_folder(folder)
    seed, fraction, limit = key = split_key(config)
    splits = {} if splits is None else splits
    if key not in splits:
        splits[key] = data.load_train_split(data_dir, limit, seed, fraction)
    reader = keras_reader(folder, config)
    split, _, canons = data.lung_split(reader, splits[key])
    y_val = split.labels[split.val_idx]
    clean, stressed = validation_logits(net, reader, canons, split, seed)
    y_stressed = np.tile(y_val, STRESS_COPIES)
    temperature, threshold = operating_point.fit_operating_point(clean, y_val, stressed, TARGET_SENSITIVITY)
    aucs = val_stats(clean, y_val, stressed)
    out = {"folder": str(folder), "val_images": int(len(y_val)),
           "val_auc": aucs["val_auc"], "val_auc_stressed": aucs["val_auc_stressed"],
           "val_nll": calibration.nll(clean, y_val, config["temperature"]),
           "val_nll_stressed": calibration.nll(stressed, y_stressed, config["temperature"]),
           "temperature": config["temperature"], "refitted_temperature": temperature,
           "refitted_threshold": threshold}
    log(f"{folder}: validation ROC AUC {out['val_auc']:.4f}, stressed {out['val_auc_stressed']:.4f}; "
        f"NLL at T={config['temperature']:.3f}: {out['val_nll']:.4f}, stressed {out['val_nll_stressed']:.4f}; "
        f"temperature by the stressed rule {temperature:.4f} (threshold {threshold:.4f})")
    if refit:
        config["refit"] = {"temperature_before": config["temperature"], "threshold_before": config["threshold"],
                           "temperature_rule_before": config.get("temperature_rule", "validation NLL")}
        config.update(temperature=temperature, threshold=threshold,
                      temperature_rule=TEMPERATURE_RULE.format(copies=STRESS_COPIES))
        config.setdefault("validation", {}).update(auc_stressed=out["val_auc_stressed"],
                                                   stress_copies=STRESS_COPIES)
        (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        log(f"Rewrote {Path(folder) / CONFIG_FILE}: temperature {temperature:.4f}, threshold {threshold:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model folders")
    p.add_argument("--data", required=True, help="dataset folder holding train/NORMAL and train/PNEUMONIA")
    p.add_argument("--refit-temperature", action="store_true",
                   help="rewrite each folder's temperature and threshold by training's rule")
    args = p.parse_args(argv)
    splits: dict = {}
    return cli.run(lambda: [report(folder, args.data, splits, args.refit_temperature)
                            for folder in args.models])


if __name__ == "__main__":
    sys.exit(main())
