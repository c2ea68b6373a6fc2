"""Does bf16 training lose anything? fp32 vs Keras `mixed_bfloat16`, side by side.

    python bench/bf16_training.py --data chest_xray --segmenter model/lungs.keras \
        --weights resnet50_notop.h5 [--limit 250] [--epochs 2]

Two short runs of the shipped recipe (fine-tuning from conv4, the lung view
of config), identical but for the compute precision: the same seeded images,
validation part and initial weights. Prints, per precision, the validation
ROC AUC (clean and stressed) of the kept epoch, the fine-tuning speed, and
the ratios. Validation only: the test split is not read.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.train.training import TrainOptions, train  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")


def run(args: argparse.Namespace, precision: str, out: Path) -> dict:
    folder = train(TrainOptions(
        data_dir=args.data, out_dir=str(out / precision), weights=args.weights, segmenter=args.segmenter,
        lung_view=args.lung_view, lung_dilation=args.lung_dilation, fine_tune_from="conv4", views=1,
        head_epochs=5, epochs=args.epochs, limit=args.limit, precision=precision))
    config = json.loads((folder / "config.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    speeds = [row["images_per_s"] for row in history if "images_per_s" in row]
    return {"val_auc": config["validation"]["auc"], "val_auc_stressed": config["validation"]["auc_stressed"],
            "images_per_s": max(speeds), "val_images": config["validation"]["images"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--lung-view", default="crop+blur")
    p.add_argument("--lung-dilation", type=float, default=0.04)
    p.add_argument("--limit", type=int, default=250, help="images per class (default %(default)s)")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {precision: run(args, precision, Path(tmp)) for precision in PRECISIONS}
    print(f"\n| precision | validation ROC AUC | stressed | fine-tuning images/s |\n|---|---|---|---|")
    for precision, r in results.items():
        print(f"| {precision} | {r['val_auc']:.4f} | {r['val_auc_stressed']:.4f} | {r['images_per_s']:.1f} |")
    f, b = (results[k] for k in PRECISIONS)
    print(f"\nbf16 - fp32: validation AUC {b['val_auc'] - f['val_auc']:+.4f}, stressed "
          f"{b['val_auc_stressed'] - f['val_auc_stressed']:+.4f}; speed x{b['images_per_s'] / f['images_per_s']:.2f} "
          f"({f['val_images']} validation images)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
