"""Train the lung segmenter and measure it on held-out hand-drawn masks.

    python -m pneumonia.train.lung_training --data path/to/lung_masks --out runs/lungs \
        [--xrays path/to/chest_xray] [--adults path/to/adult_cxr]

Split by dataset and patient (every patient has one image): the 24 Shenzhen
children are all held out (the real check on children), 15% of the Shenzhen
adults and of Montgomery are held out, and 10% of the rest is the validation
part that picks the epoch. The semi-automatic pediatric masks (Kermany train
split) are only trained and validated on, never reported as ground truth.
Writes `lungs.keras`, `lungs_report.json` and, with `--xrays`, a contact sheet
of predicted outlines on test X-rays of both classes.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
import sys
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from pneumonia.config import IMAGE_SIZE, SEG_SIZE, SEG_WIDTH, SEGMENTER_FILE
from pneumonia.serve.imaging import canonical, load_image
from pneumonia.serve.lung_view import draw_outline
from pneumonia.serve.lungs import Segmenter, postprocess, shrink
from pneumonia.train import augment, cli, data, opacity
from pneumonia.train.segmenter import KerasForward, build_segmenter, dice, iou, load_keras

REPORT_FILE = "lungs_report.json"
SHEET_FILE = "lungs_contact_sheet.jpg"
ASPECT_RANGE = (0.6, 1.6)   # uploads of any shape are squashed to a square
HELD_OUT_ADULTS = 0.15
VAL_FRACTION = 0.10
P_OPACITY = 0.5            # share of training pairs given a synthetic opacity inside their true lungs
# The semi-automatic pediatric masks leave opaque lung out (lung_masks/README):
# inside each lung's convex hull but outside the mask, their pixels do not count.
SEMI_AUTOMATIC = "Kermany"
VAL_SEED = 12345           # the fixed opacities of the validation score


def hull_gap(mask: np.ndarray) -> np.ndarray:
    """Pixels inside a lung's convex hull but outside the mask (where a carved mask is unsure)."""
    gap = np.zeros(mask.shape, bool)
    for lung in opacity.lungs_of(mask):
        pts = cv2.findNonZero(np.uint8(lung))
        hull = np.zeros(mask.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        gap |= (hull > 0) & ~lung
    return gap & (mask == 0)


def load_pairs(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Images as canonical (N, 224, 224) uint8, masks (N, 224, 224) uint8 {0, 1}, labels.csv rows."""
    root = Path(data_dir)
    if not (root / "labels.csv").is_file():
        raise data.DataError(f"{root} has no labels.csv (expected images/, masks/ and labels.csv)")
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    images = np.stack([canonical(load_image(root / "images" / r["file"])) for r in rows])
    masks = np.stack([
        cv2.resize(load_image(root / "masks" / r["file"]), (IMAGE_SIZE, IMAGE_SIZE),
                   interpolation=cv2.INTER_AREA) > 127 for r in rows]).astype(np.uint8)
    return images, masks, rows


def split(rows: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train / val / test_adults / test_children, by dataset and patient."""
    rng = np.random.default_rng(seed)
    children = [i for i, r in enumerate(rows) if r["dataset"] == "Shenzhen" and r["age_group"] == "pediatric"]
    held: list[int] = []
    for dataset in ("Shenzhen", "Montgomery"):
        patients = sorted({r["patient_id"] for i, r in enumerate(rows)
                           if r["dataset"] == dataset and i not in children})
        chosen = set(rng.permutation(patients)[:round(HELD_OUT_ADULTS * len(patients))])
        held += [i for i, r in enumerate(rows) if r["patient_id"] in chosen and i not in children]
    rest = sorted(set(range(len(rows))) - set(children) - set(held))
    patients = sorted({rows[i]["patient_id"] for i in rest})
    val_patients = set(rng.permutation(patients)[:round(VAL_FRACTION * len(patients))])
    val = [i for i in rest if rows[i]["patient_id"] in val_patients]
    train = [i for i in rest if rows[i]["patient_id"] not in val_patients]
    return {k: np.asarray(sorted(v), np.int64) for k, v in
            {"train": train, "val": val, "test_adults": held, "test_children": children}.items()}


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


def training_pair(image: np.ndarray, mask: np.ndarray, semi_automatic: bool,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training view: (image, mask, pixel weights), moved by the same
    geometry, with a synthetic opacity inside the true lungs half the time."""
    if rng.random() < 0.8:
        image, mask = augment.augment(image, rng, mask, ASPECT_RANGE)
    if rng.random() < P_OPACITY:
        image = opacity.paint(image, mask, rng)
    weight = ~hull_gap(mask) if semi_automatic else np.ones(mask.shape, bool)
    return image, mask, weight


def opaque_copies(images: np.ndarray, masks: np.ndarray, seed: int, held_out: bool = False) -> np.ndarray:
    """Each image with a fixed opacity inside its mask: a training family, or the held-out one."""
    rng = np.random.default_rng(seed)
    draw = opacity.patchy if held_out else opacity.paint
    return np.stack([draw(im, m, rng) for im, m in zip(images, masks)])


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
