"""Does the forward-only runtime give the Keras model's answers? On the
validation part of the training split (patient-grouped, as in training: this
is where a precision is chosen) and on the 624 test-split X-rays (reported),
for each OpenVINO precision against Keras fp32 (TensorFlow):

- classifier (same lung views): decisions agreeing, ROC AUC difference, the
  correlation of the Grad-CAM maps (Keras: tape-based `gradcam.GradCAM`;
  runtime: `heatmap.linear_cam` from its conv block), largest logit difference,
- segmenter: Dice of the post-processed lung masks, lungs found on both.

    python bench/precision.py --model model --data path/to/chest_xray [--precisions f32,bf16]

A precision other than fp32 may serve only if, on validation, decisions agree
on >= 99.5% of images, ROC AUC is within 0.002 and the maps correlate >= 0.99
(mean and 1st percentile are printed). The test split is read to report
agreement with the reference model, never to choose.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.train import data  # noqa: E402
from pneumonia.calibration import decision_logit, sigmoid  # noqa: E402
from pneumonia.train.gradcam import PREDICTED, GradCAM  # noqa: E402
from pneumonia.serve.heatmap import linear_cam  # noqa: E402
from pneumonia.serve.imaging import grey_to_rgb  # noqa: E402
from pneumonia.train.segmenter import keras_reader  # noqa: E402
from pneumonia.train.model import load_model_folder  # noqa: E402
from pneumonia.serve.runtime import Network, SegmenterNet, ir_files  # noqa: E402
from pneumonia.serve.lungs import Segmenter, postprocess  # noqa: E402
from pneumonia.train.segmenter import dice  # noqa: E402

GOALS = {"decisions_agree": 0.995, "auc_within": 0.002, "cam_correlation": 0.99}


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of maps (flat maps: 1 if both are flat)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--data", required=True)
    p.add_argument("--precisions", default="f32,bf16")
    args = p.parse_args()
    folder = Path(args.model)
    net, config = load_model_folder(folder)
    if "runtime" not in config:
        sys.exit(f"{folder} has no exported networks: run python -m pneumonia.train.export --model {folder}")
    tr = config["training"]
    split = data.load_train_split(args.data, tr.get("limit"), tr["seed"], tr["val_fraction"])
    paths, labels = data.list_split(args.data, "test")
    canons, kept, _ = data.load_images(paths)
    print(f"Files {', '.join(ir_files(config))}")
    compare(folder, net, config, "validation (chooses)", split.images[split.val_idx], split.labels[split.val_idx],
            args.precisions.split(","))
    compare(folder, net, config, "test (reports)", canons, labels[kept], args.precisions.split(","))


def compare(folder: Path, net, config: dict, name: str, canons: np.ndarray, labels: np.ndarray,
            precisions: list[str]) -> None:
    reader = keras_reader(folder, config)
    views, _, lungs, found = reader.read(canons)
    views, labels = views[found], labels[found]
    x = grey_to_rgb(views)
    t, thr = float(config["temperature"]), float(config["threshold"])
    cut = decision_logit(t, thr)
    cam = GradCAM(net)
    ref = [cam(x[i:i + 32], PREDICTED, cut) for i in range(0, len(x), 32)]
    ref_logits, ref_maps = np.concatenate([r[0] for r in ref]), np.concatenate([r[1] for r in ref])
    with np.load(folder / config["runtime"]["head"]) as f:
        w, b = f["w"].astype(np.float64), float(f["b"])
    print(f"\n{name}: {len(x)} X-rays with lungs found; reference: Keras fp32 (TensorFlow), ROC AUC "
          f"{roc_auc_score(labels, ref_logits):.4f}")
    print("| runtime | decisions agree | ROC AUC diff | CAM correlation mean / 1st pct / min | max logit diff "
          "| max probability diff | lung masks Dice mean / min | lungs found on both |")
    print("|---|---|---|---|---|---|---|---|")
    rt = config["runtime"]
    for precision in precisions:
        classifier = Network(folder / rt["classifier"], precision)
        acts = np.concatenate([classifier(x[i:i + 32])[0] for i in range(0, len(x), 32)])
        logits = acts.mean(axis=(1, 2)).astype(np.float64) @ w + b
        decided = logits >= cut
        maps = linear_cam(acts, w, decided)
        agree = float(np.mean(decided == (ref_logits >= cut)))
        auc_diff = roc_auc_score(labels, logits) - roc_auc_score(labels, ref_logits)
        r = correlations(maps, ref_maps)
        dp = np.abs(sigmoid(logits / t) - sigmoid(ref_logits / t)).max()
        line = (f"| OpenVINO {precision} | {agree:.2%} | {auc_diff:+.4f} | {r.mean():.4f} / "
                f"{np.percentile(r, 1):.4f} / {r.min():.4f} | {np.abs(logits - ref_logits).max():.4f} | {dp:.4f}")
        seg_file = rt.get("segmenter")
        if seg_file:
            seg = Segmenter(SegmenterNet(folder / seg_file, precision))
            ov_lungs = [postprocess(q) for q in seg.probability(canons)]
            both = [(a, c) for a, c in zip(lungs, ov_lungs) if a.found and c.found]
            d = np.array([dice(c.mask, a.mask) for a, c in both])
            line += f" | {d.mean():.4f} / {d.min():.4f} | {len(both)} of {len(canons)} |"
        else:
            line += " | | |"
        meets = agree >= GOALS["decisions_agree"] and abs(auc_diff) <= GOALS["auc_within"] \
            and r.mean() >= GOALS["cam_correlation"]
        print(line + ("" if meets else "  (misses the goals)"))


if __name__ == "__main__":
    main()
