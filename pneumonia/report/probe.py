"""Screen lung-view variants with a frozen probe, on validation only, before training one.

    python -m pneumonia.report.probe --data path/to/chest_xray --segmenter runs/lungs/lungs.keras \
        --weights path/to/resnet50_notop.h5 [--variants crop crop+mask crop+mask@0.08 crop+blur] [--train-images 1600]

A variant is a lung view, optionally with its dilation (fraction of the image
side) after "@": crop+mask@0.08 reads the lungs dilated by 8%.

A full training run costs ~45 minutes of this CPU, so variants are compared
with a cheap stand-in first: ImageNet ResNet50 pooled features (frozen) and a
logistic regression fitted on a seeded, stratified subset of the training
part of the patient split. Each variant is measured on the validation part:
ROC AUC, the swap test, the lungs-hidden test and the silhouette test
(`pneumonia.report.validity`). The rule (SELECTION_RULE, SCREEN_RULE in config) then
names the variant to train.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pneumonia.config import LUNG_DILATION, LUNG_MARGIN
from pneumonia.rules import SCREEN_RULE, SELECTION_RULE
from pneumonia.report import validity
from pneumonia.serve.lung_view import LungReader
from pneumonia.train import cli, data
from pneumonia.train.cli import log
from pneumonia.train.model import build_model, grey_to_rgb, predict_batched
from pneumonia.train.segmenter import load_segmenter


def choose(results: dict[str, dict]) -> str:
    """Among variants meeting the goals, the best validation AUC; else the smallest shortfall."""
    meeting = [v for v, r in results.items() if validity.shortfall(r) == 0]
    if meeting:
        return max(meeting, key=lambda v: results[v]["auc"])
    return min(results, key=lambda v: validity.shortfall(results[v]))


def screen(data_dir: str | Path, segmenter: str | Path, weights: str, variants: list[str],
           train_images: int = 1600, seed: int = 0, out: str | Path | None = None) -> dict:
    split = data.load_train_split(data_dir, None, seed, 0.15)
    rng = np.random.default_rng([seed, 0x9B])
    tr = np.concatenate([rng.permutation(split.train_idx[split.labels[split.train_idx] == c])
                         [:train_images // 2] for c in (0, 1)])
    seg = load_segmenter(segmenter)
    net = build_model(weights)
    features = keras.Model(net.input, net.get_layer("avg_pool").output)
    pooled = lambda v: predict_batched(features, grey_to_rgb(v), 32)  # noqa: E731
    results = {}
    for spec in variants:
        variant, _, d = spec.partition("@")
        dilation = float(d) if d else LUNG_DILATION
        reader = LungReader(seg, variant, dilation=dilation)
        x_tr, _, lungs_tr, ok_tr = reader.read(split.images[tr])
        _, _, lungs_val, ok_val = reader.read(split.images[split.val_idx])
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000, class_weight="balanced"))
        probe.fit(pooled(x_tr[ok_tr]), split.labels[tr][ok_tr])
        val = split.val_idx[ok_val]
        masks = np.stack([lungs_val[i].mask for i in np.flatnonzero(ok_val)])
        tests = validity.auc_tests(lambda v: probe.decision_function(pooled(v)), split.images[val], masks,
                                   split.labels[val], variant, seed=seed, dilation=dilation)
        fit_masks = np.stack([lungs_tr[i].mask for i in np.flatnonzero(ok_tr)])
        sil = validity.silhouette_auc(fit_masks, split.labels[tr][ok_tr], {"validation": (masks, split.labels[val])},
                                      variant, LUNG_MARGIN, dilation, seed)
        tests.update(silhouette_auc=sil["validation"]["auc"], silhouette_ci95=sil["validation"]["ci95"],
                     dilation=dilation)
        tests["shortfall"] = validity.shortfall(tests)
        tests["without_lungs"] = {"train": int((~ok_tr).sum()), "validation": int((~ok_val).sum())}
        results[spec] = tests
        log(f"probe {spec}: AUC {tests['auc']:.3f}, swap lungs {tests['swap_lungs_auc']:.3f} / surroundings "
            f"{tests['swap_surroundings_auc']:.3f}, hidden {tests['hidden_auc']:.3f}, silhouette "
            f"{tests['silhouette_auc']:.3f}; shortfall {tests['shortfall']:.3f}")
    report = {"probe": "frozen ImageNet ResNet50 avg_pool + standardised logistic regression (C=0.05)",
              "train_images": int(len(tr)), "goals": validity.GOALS, "rule": SELECTION_RULE, "screen_rule": SCREEN_RULE, "variants": results,
              "chosen": choose(results)}
    log(f"Chosen by the rule: {report['chosen']}")
    if out:
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--segmenter", required=True, help="lungs.keras")
    p.add_argument("--weights", default="imagenet")
    p.add_argument("--variants", nargs="+", default=["crop", "crop+mask"])
    p.add_argument("--train-images", type=int, default=1600)
    p.add_argument("--out", default="runs/probe.json")
    args = p.parse_args(argv)
    return cli.run(lambda: screen(args.data, args.segmenter, args.weights, args.variants,
                                  args.train_images, out=args.out))


if __name__ == "__main__":
    sys.exit(main())
