"""Heatmap options, measured: the served 7x7 Grad-CAM against shift-averaged Grad-CAM.

    python bench/heatmap_options.py --model model --data path/to/chest_xray [--out runs/heatmap_options.json]

Shift-averaged Grad-CAM runs the classifier on the lung view and on copies
shifted by half a cell (16 px: down, right, or both), moves each 7x7 map back
by its shift and averages them: a map with a finer effective grid, from the
same network, at 2 or 4 forward passes a request instead of 1. Each option is
measured on the validation part of the patient split (where a choice may be
made) and on the test split (reported): heat in the dilated lungs per true
class, the pointing game, and ROAD (pneumonia.report.faithfulness, 60 seeded
X-rays, most relevant first, against random and centre-first orders; the
decisions are the served model's own, so the orders are the only change).

Rule, written before the run: an option replaces the served map only if on
validation it raises both the heat in the lungs and the pointing game, keeps
ROAD's Grad-CAM-minus-random interval below zero, and its extra forward
passes fit the serving budget of the issue "One answer" (they do not while
throughput is short of its goal: the classifier is most of a request's CPU).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.calibration import decision_logit, sigmoid  # noqa: E402
from pneumonia.config import IMAGE_SIZE  # noqa: E402
from pneumonia.report.faithfulness import heat_share, pointing, read_regions, road  # noqa: E402
from pneumonia.serve.heatmap import linear_cam  # noqa: E402
from pneumonia.serve.imaging import grey_to_rgb  # noqa: E402
from pneumonia.serve.lung_view import to_image  # noqa: E402
from pneumonia.train import data  # noqa: E402
from pneumonia.train.gradcam import Activations  # noqa: E402
from pneumonia.train.model import load_model_folder, pediatric_head  # noqa: E402
from pneumonia.train.phases import predict_logits  # noqa: E402
from pneumonia.train.segmenter import keras_reader  # noqa: E402

HALF = IMAGE_SIZE // 7 // 2   # half a cell of the 7x7 map, in view pixels
OPTIONS = {"served 7x7": [(0, 0)],
           "shift-averaged, 2 passes": [(0, 0), (HALF, HALF)],
           "shift-averaged, 4 passes": [(0, 0), (0, HALF), (HALF, 0), (HALF, HALF)]}
MAP_SIDE = 56   # the averaged map is kept at this resolution


def shift(views: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(views)
    out[:, dy:, dx:] = views[:, :IMAGE_SIZE - dy, :IMAGE_SIZE - dx]
    return out


def maps_for(forward, head, views: np.ndarray, positive: np.ndarray, shifts) -> np.ndarray:
    """(n, MAP_SIDE, MAP_SIDE) maps in [0, 1]: each shift's Grad-CAM moved back, averaged."""
    total = np.zeros((len(views), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for dy, dx in shifts:
        for start in range(0, len(views), 32):
            acts, _ = forward(grey_to_rgb(shift(views[start:start + 32], dy, dx)))
            cams = linear_cam(acts, head.w, positive[start:start + 32])
            for i, cam in enumerate(cams):
                up = cv2.resize(cam, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
                total[start + i, :IMAGE_SIZE - dy, :IMAGE_SIZE - dx] += up[dy:, dx:]
    peak = total.max(axis=(1, 2), keepdims=True)
    total = np.divide(total, peak, out=np.zeros_like(total), where=peak > 0)
    return np.stack([cv2.resize(m, (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_AREA) for m in total])


def measure(net, config: dict, reader, canons: np.ndarray, labels: np.ndarray, n_road: int, seed: int) -> dict:
    views, boxes, lungs, found = reader.read(canons)
    views, labels = views[found], labels[found]
    boxes = [b for b, ok in zip(boxes, found) if ok]
    masks = np.stack([lu.mask for lu, ok in zip(lungs, found) if ok])
    forward, head = Activations(net), pediatric_head(net, config)
    threshold_logit = decision_logit(config["temperature"], config["threshold"])

    def logits(v):
        return predict_logits(net, grey_to_rgb(v), 32)

    raw = logits(views)
    positive = raw >= threshold_logit
    pick = np.random.default_rng([seed, 0xC0]).permutation(len(views))[:n_road]
    out = {"n": int(len(views)), "decided_pneumonia": float(positive.mean()),
           "mean_probability": float(sigmoid(raw / config["temperature"]).mean())}
    for name, shifts in OPTIONS.items():
        maps = maps_for(forward, head, views, positive, shifts)
        shares = np.asarray([heat_share(to_image(m, b, (IMAGE_SIZE, IMAGE_SIZE)), mask)
                             for m, b, mask in zip(maps, boxes, masks)])
        hits = pointing(maps, boxes, masks)
        r = road(logits, config["temperature"], views[pick], maps[pick], positive[pick],
                 read_regions(masks[pick], reader.variant), seed)
        out[name] = {"forward_passes": len(shifts),
                     "heat_in_lungs": {"NORMAL": float(np.nanmean(shares[labels == 0])),
                                       "PNEUMONIA": float(np.nanmean(shares[labels == 1]))},
                     "pointing_game": float(hits.mean()), "road": r}
        print(f"  {name}: heat NORMAL {out[name]['heat_in_lungs']['NORMAL']:.3f} PNEUMONIA "
              f"{out[name]['heat_in_lungs']['PNEUMONIA']:.3f}, pointing {hits.mean():.3f}, ROAD G-random "
              f"{r['gradcam_minus_random']['mean']:+.3f} {[round(v, 3) for v in r['gradcam_minus_random']['ci95']]}",
              flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="model")
    p.add_argument("--data", required=True)
    p.add_argument("--road", type=int, default=60, help="X-rays ROAD runs on, per split")
    p.add_argument("--out", help="write the numbers here as JSON")
    args = p.parse_args()
    net, config = load_model_folder(args.model)
    reader = keras_reader(args.model, config)
    tr = config["training"]
    split = data.load_train_split(args.data, tr.get("limit"), tr["seed"], tr["val_fraction"])
    paths, labels = data.list_split(args.data, "test")
    test, kept, _ = data.load_images(paths)
    result = {}
    for name, canons, y in (("validation", split.images[split.val_idx], split.labels[split.val_idx]),
                            ("test", test, labels[kept])):
        print(f"{name}: {len(canons)} X-rays", flush=True)
        result[name] = measure(net, config, reader, canons, y, args.road, tr["seed"])
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
