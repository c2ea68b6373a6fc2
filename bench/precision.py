"""Does the forward-only runtime give the Keras model's answers? On the
validation part of the training split (patient-grouped, as in training: this
is where a precision is judged) and on the 624 test-split X-rays (reported),
for each OpenVINO precision against Keras fp32 (TensorFlow):

- classifier (same lung views): decisions agreeing, ROC AUC difference, the
  correlation of the Grad-CAM maps (Keras: tape-based `gradcam.GradCAM`;
  runtime: `heatmap.linear_cam` from its conv block), the change in
  P(PNEUMONIA) (99th percentile and largest), largest logit difference,
- segmenter: Dice of the post-processed lung masks, lungs found on both.

    python bench/precision.py --model model --data path/to/chest_xray [--precisions f32,bf16,int8]

The bar (`config.PRECISION_BAR`, written before the runs it judges): a
precision other than fp32 may serve only if, on validation, decisions agree
on >= 99.5% of images, ROC AUC is within 0.002, the maps correlate >= 0.98 on
average and >= 0.90 at the 1st percentile, and the 99th percentile of the
change in P(PNEUMONIA) is <= 0.05. The test split is read to report
agreement with the reference model, never to choose. "bf16" on a CPU without
bf16 arithmetic runs fp32 (the table says what ran); "int8" is the folder's
`classifier.int8.xml` (`pneumonia.train.quantize`), its float layers at fp32.
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
from pneumonia.calibration import decision_logit  # noqa: E402
from pneumonia.train.gradcam import PREDICTED, GradCAM  # noqa: E402
from pneumonia.serve.imaging import grey_to_rgb  # noqa: E402
from pneumonia.train.segmenter import keras_reader  # noqa: E402
from pneumonia.train.model import load_model_folder  # noqa: E402
from pneumonia.serve.runtime import Network, SegmenterNet, candidates, ir_files  # noqa: E402
from pneumonia.serve.lungs import Segmenter, postprocess  # noqa: E402
from pneumonia.train.segmenter import dice  # noqa: E402
from pneumonia.train.quantize import agreement, conv_block, head_of  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--data", required=True)
    p.add_argument("--precisions", default="f32,bf16,int8")
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
    head = head_of(folder, config)
    print(f"\n{name}: {len(x)} X-rays with lungs found; reference: Keras fp32 (TensorFlow), ROC AUC "
          f"{roc_auc_score(labels, ref_logits):.4f}")
    print("| runtime (ran at) | decisions agree | ROC AUC diff | CAM correlation mean / 1st pct / min "
          "| P change 99th pct / max | max logit diff | lung masks Dice mean / min | lungs found on both | bar |")
    print("|---|---|---|---|---|---|---|---|---|")
    rt = config["runtime"]
    offered = {"f32": (folder / rt["classifier"], "f32"), "bf16": (folder / rt["classifier"], "bf16"),
               **candidates(folder, config)}
    for precision in precisions:
        if precision not in offered:
            print(f"| {precision} | (no export of this precision in {folder}) |")
            continue
        path, hint = offered[precision]
        classifier = Network(path, hint)
        m = agreement((ref_logits, ref_maps), conv_block(classifier, x), labels, head)
        line = (f"| OpenVINO {precision} ({classifier.precision}, {path.name}) | {m['decisions_agree']:.2%} "
                f"| {m['auc_diff']:+.4f} | {m['cam_mean']:.4f} / {m['cam_p1']:.4f} / {m['cam_min']:.4f} "
                f"| {m['dp_p99']:.4f} / {m['dp_max']:.4f} | {m['logit_max_diff']:.4f}")
        seg_file = rt.get("segmenter")
        if seg_file and precision != "int8":   # the int8 export is the classifier's only
            seg = Segmenter(SegmenterNet(folder / seg_file, hint))
            ov_lungs = [postprocess(q) for q in seg.probability(canons)]
            both = [(a, c) for a, c in zip(lungs, ov_lungs) if a.found and c.found]
            d = np.array([dice(c.mask, a.mask) for a, c in both])
            line += f" | {d.mean():.4f} / {d.min():.4f} | {len(both)} of {len(canons)}"
        else:
            line += " | | "
        print(line + f" | {'meets' if m['passes'] else 'misses'} |")


if __name__ == "__main__":
    main()
