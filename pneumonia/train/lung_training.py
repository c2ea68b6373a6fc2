"""Train the lung segmenter and measure it on held-out hand-drawn masks.

    python -m pneumonia.train.lung_training --data path/to/lung_masks --out runs/lungs \
        [--xrays path/to/chest_xray] [--adults path/to/adult_cxr]

The pairs, their split and the training views: `pneumonia.train.lung_pairs`.
Writes `lungs.keras`, `lungs_report.json` and, with `--xrays`, a contact sheet
of predicted outlines on test X-rays of both classes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from pneumonia.config import SEG_SIZE, SEG_WIDTH, SEGMENTER_FILE
from pneumonia.serve.imaging import canonical, load_image
from pneumonia.serve.lung_view import draw_outline
from pneumonia.serve.lungs import Segmenter, postprocess, shrink
from pneumonia.train import augment, cli, data, opacity
from pneumonia.train.lung_pairs import (ASPECT_RANGE, HELD_OUT_ADULTS, P_OPACITY, SEMI_AUTOMATIC, VAL_FRACTION,
                                        VAL_SEED, load_pairs, opaque_copies, split, training_pair)
from pneumonia.train.segmenter import KerasForward, build_segmenter, dice, iou, load_keras

REPORT_FILE = "lungs_report.json"
SHEET_FILE = "lungs_contact_sheet.jpg"


def soft_dice_bce(y_true, y_pred):
    """Binary cross-entropy plus (1 - soft Dice): BCE alone under-weights thin lung edges.

    `y_true` carries the target in channel 0 and each pixel's weight in channel 1
    (0 where a semi-automatic mask is unsure)."""
    y_true = tf.cast(y_true, y_pred.dtype)
    target, weight = y_true[..., :1], y_true[..., 1:]
    inter = tf.reduce_sum(weight * target * y_pred, axis=(1, 2, 3))
    total = tf.reduce_sum(weight * (target + y_pred), axis=(1, 2, 3))
    soft_dice = (2 * inter + 1.0) / (total + 1.0)
    bce = keras.losses.binary_crossentropy(target, y_pred)[..., None]
    bce = tf.reduce_sum(weight * bce, axis=(1, 2, 3)) / (tf.reduce_sum(weight, axis=(1, 2, 3)) + 1.0)
    return bce + 1.0 - soft_dice


def _targets(masks: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    def small(a):
        return cv2.resize(a.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.stack([np.stack([small(m), small(w)], -1) for m, w in zip(masks, weights)])


def measure(seg: Segmenter, images: np.ndarray, masks: np.ndarray) -> dict:
    """Dice and IoU of the post-processed masks; a refusal counts as 0 (no mask)."""
    probs = seg.probability(images)
    d, j, found = [], [], 0
    for p, m in zip(probs, masks):
        lungs = postprocess(p)
        pred = lungs.mask if lungs.found else np.zeros_like(m, bool)
        found += lungs.found
        d.append(dice(pred, m))
        j.append(iou(pred, m))
    return {"n": len(images), "dice_mean": float(np.mean(d)), "dice_median": float(np.median(d)),
            "dice_min": float(np.min(d)), "iou_mean": float(np.mean(j)), "found": int(found)}


def train_segmenter(data_dir: str | Path, out_dir: str | Path, epochs: int = 40, batch_size: int = 16,
                    seed: int = 0, log=print, init: str | Path | None = None,
                    lr: float = 2e-3) -> tuple[Segmenter, dict]:
    """Train (from `init`, a lungs.keras, if given), keep the epoch with the best
    validation score (mean Dice on the hand-drawn validation pairs, clean and
    with fixed training-family opacities), save and report."""
    t0 = time.time()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, masks, rows = load_pairs(data_dir)
    parts = split(rows, seed)
    log("Lung masks: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))
    net = load_keras(init) if init else build_segmenter(SEG_SIZE, SEG_WIDTH)
    net.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        lr, epochs * -(-len(parts["train"]) // batch_size))), loss=soft_dice_bce)
    seg = Segmenter(KerasForward(net))
    tr = parts["train"]
    semi = np.array([SEMI_AUTOMATIC in r["dataset"] for r in rows])
    drawn = parts["val"][~semi[parts["val"]]]
    val_opaque = opaque_copies(images[drawn], masks[drawn], VAL_SEED)
    best = {"dice": -1.0}
    history = []
    for epoch in range(1, epochs + 1):
        pairs = [training_pair(images[i], masks[i], semi[i], rng) for i in tr]
        x = shrink(np.stack([p[0] for p in pairs]))
        y = _targets(np.stack([p[1] for p in pairs]), np.stack([p[2] for p in pairs]), SEG_SIZE)
        loss = net.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0).history["loss"][-1]
        clean = measure(seg, images[drawn], masks[drawn])
        opaque = measure(seg, val_opaque, masks[drawn])
        score = (clean["dice_mean"] + opaque["dice_mean"]) / 2
        history.append({"epoch": epoch, "loss": float(loss), "val_dice": clean["dice_mean"],
                        "val_opaque_dice": opaque["dice_mean"]})
        log(f"  segmenter epoch {epoch}: loss {loss:.4f} hand-drawn val Dice {clean['dice_mean']:.4f}, "
            f"with opacities {opaque['dice_mean']:.4f} (found {opaque['found']}/{opaque['n']})")
        if score > best["dice"]:
            best = {"dice": score, "epoch": epoch, "weights": [w.copy() for w in net.get_weights()]}
    net.set_weights(best["weights"])
    net.save(out / SEGMENTER_FILE)
    report = {
        "architecture": f"U-Net, 4 levels, {SEG_WIDTH} filters doubling per level, input {SEG_SIZE}x{SEG_SIZE}, "
                        f"{net.count_params()} parameters",
        "split": {k: int(len(v)) for k, v in parts.items()},
        "split_rule": ("by dataset and patient (seed %d): all 24 Shenzhen children held out; %d%% of Shenzhen "
                       "adults and of Montgomery held out; %d%% of the rest for validation"
                       % (seed, HELD_OUT_ADULTS * 100, VAL_FRACTION * 100)),
        "best_epoch": best["epoch"], "epochs": epochs, "history": history,
        "augmentation": (f"{augment.DESCRIPTION}; aspect {ASPECT_RANGE} for the segmenter; "
                         f"{opacity.DESCRIPTION} (p {P_OPACITY})"),
        "semi_automatic_masks": "pixels inside each lung's convex hull but outside the mask carry no loss",
        "epoch_rule": "best mean Dice on the hand-drawn validation pairs, clean and with fixed opacities",
        "init": str(init) if init else None,
        "val": measure(seg, images[parts["val"]], masks[parts["val"]]),
        "test_adults": measure(seg, images[parts["test_adults"]], masks[parts["test_adults"]]),
        "test_children": measure(seg, images[parts["test_children"]], masks[parts["test_children"]]),
        "seconds": round(time.time() - t0, 1),
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    for k in ("test_adults", "test_children"):
        r = report[k]
        log(f"Held-out {k}: Dice {r['dice_mean']:.4f} (median {r['dice_median']:.4f}, min {r['dice_min']:.4f}), "
            f"IoU {r['iou_mean']:.4f}, lungs found {r['found']}/{r['n']}")
    return seg, report


def outline(grey: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(H, W) uint8 -> RGB with the mask's outline in red (none drawn: no lungs found)."""
    rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return rgb if mask is None else draw_outline(rgb, mask, (255, 40, 40))


def _stress_variants(image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """What users upload: other aspect ratios (squashed back to a square) and exposures."""
    wide = cv2.copyMakeBorder(image, 0, 0, 60, 60, cv2.BORDER_CONSTANT, value=0)
    tall = cv2.copyMakeBorder(image, 70, 70, 0, 0, cv2.BORDER_CONSTANT, value=0)
    dark = np.uint8(255 * (image / 255.0) ** 2.0)
    bright = np.uint8(255 * (image / 255.0) ** 0.5)
    return [("wide", canonical(wide)), ("tall", canonical(tall)), ("dark", dark), ("bright", bright)]


def contact_sheet(seg: Segmenter, xray_dir: str | Path, out_file: str | Path, adults_dir: str | Path | None = None,
                  per_row: int = 8, seed: int = 0) -> dict:
    """Outlines on test X-rays: a row per class, a row of stressed copies, a row of adults.

    Also reports how often a pair of lungs is found on the whole test split."""
    paths, labels = data.list_split(xray_dir, "test")
    images, kept, _ = data.load_images(paths)
    labels = labels[kept]
    found = [postprocess(p) for p in seg.probability(images)]
    rng = np.random.default_rng(seed)
    tiles, names = [], []
    for c in (0, 1):
        for i in rng.permutation(np.flatnonzero(labels == c))[:per_row]:
            tiles.append(outline(images[i], found[i].mask))
            names.append(paths[kept[i]].parent.name)
    stressed = [v for i in rng.permutation(len(images))[:per_row // 4] for v in _stress_variants(images[i])]
    for name, im in stressed:
        tiles.append(outline(im, postprocess(seg.probability(im[None])[0]).mask))
        names.append(name)
    stats = {"test_xrays": len(images), "test_xrays_lungs_found": int(sum(f.found for f in found))}
    if adults_dir:
        files = sorted(Path(adults_dir).glob("*.png"))
        adults = np.stack([canonical(load_image(f)) for f in files])
        adult_found = [postprocess(p) for p in seg.probability(adults)]
        stats.update(adult_xrays=len(adults), adult_xrays_lungs_found=int(sum(f.found for f in adult_found)))
        for i in rng.permutation(len(adults))[:per_row]:
            tiles.append(outline(adults[i], adult_found[i].mask))
            names.append("adult")
    for tile, name in zip(tiles, names):
        cv2.putText(tile, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    rows = [np.hstack(tiles[i:i + per_row]) for i in range(0, len(tiles), per_row)
            if len(tiles[i:i + per_row]) == per_row]
    cv2.imwrite(str(out_file), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="lung_masks folder (images/, masks/, labels.csv)")
    p.add_argument("--out", default="runs/lungs", help="folder to write lungs.keras and the report into")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="a lungs.keras to start from (fine-tune) instead of random weights")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--xrays", help="chest_xray folder: contact sheet and lungs-found rate on its test split")
    p.add_argument("--adults", help="adult_cxr folder: add adults to the contact sheet")
    args = p.parse_args(argv)

    def run():
        seg, report = train_segmenter(args.data, args.out, args.epochs, seed=args.seed, init=args.init, lr=args.lr)
        if args.xrays:
            report["contact_sheet"] = contact_sheet(seg, args.xrays, Path(args.out) / SHEET_FILE, args.adults)
            (Path(args.out) / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report["contact_sheet"]))
    return cli.run(run)


if __name__ == "__main__":
    sys.exit(main())
