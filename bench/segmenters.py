"""Lung segmenters side by side in one run: do they outline the lung field, opaque or not?

    python bench/segmenters.py --masks path/to/lung_masks --data path/to/chest_xray \
        --segmenters model/lungs.keras,runs/lungs23/lungs.keras [--sheet runs/segmenters.jpg] [--out runs/seg.json]

For each segmenter (Keras `lungs.keras` or OpenVINO `lungs.xml`):
- Dice on the held-out hand-drawn masks (pneumonia.train.lung_pairs.split:
  Shenzhen/Montgomery adults, the 24 Shenzhen children). Goals >= 0.95 / 0.94.
- Opaque Dice: the same held-out images given opacities of the family no
  training used (pneumonia.train.opacity.patchy, its own seed), scored against
  the original masks; a refusal scores 0. Goals >= 0.93, lungs found >= 98%.
- One lung whitened to the mediastinum's grey (opacity.whiten_lung, each side
  in turn): on the held-out hand-drawn images, and on the chest_xray test
  X-rays (the lung placed by the first segmenter's mask of the clean film).
  Goal: the pair still found on >= 90%.
- What the mask says about the class, on chest_xray's validation part (the
  training split's, grouped by patient): box fill, smaller/larger lung,
  solidity, each number's AUC alone (pneumonia.report.mask_shape), and the
  silhouette (pneumonia.report.validity, fitted on the training part, for the
  crop+blur view). Goals: silhouette <= 0.75; smaller/larger within 0.03
  between the classes. Test split masks are reported beside it.
`--sheet` draws the hardest cases (whitened lungs, patchy and effusion
opacities, adults, children), one row per case, each segmenter's outline in
its own colour (first red, second green).
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

from pneumonia.config import LUNG_DILATION, LUNG_MARGIN  # noqa: E402
from pneumonia.report import mask_shape, validity  # noqa: E402
from pneumonia.serve.lung_view import draw_outline  # noqa: E402
from pneumonia.serve.lungs import postprocess  # noqa: E402
from pneumonia.train import data, opacity  # noqa: E402
from pneumonia.train.lung_pairs import load_pairs, opaque_copies, split  # noqa: E402
from pneumonia.train.segmenter import dice, load_segmenter  # noqa: E402

HELD_OUT_SEED = 2023
GOALS = {"dice_adults": 0.95, "dice_children": 0.94, "opaque_dice": 0.93, "opaque_found": 0.98,
         "white_lung_found": 0.90, "silhouette_max": 0.75, "ratio_gap_max": 0.03}
COLOURS = [(255, 40, 40), (40, 255, 40), (60, 140, 255)]


def found_masks(seg, images: np.ndarray) -> list[np.ndarray | None]:
    return [postprocess(p).mask for p in seg.probability(images)]


def dice_found(masks: list, truth: np.ndarray) -> dict:
    d = [dice(m if m is not None else np.zeros(t.shape, bool), t) for m, t in zip(masks, truth)]
    return {"n": len(d), "dice_mean": float(np.mean(d)), "dice_min": float(np.min(d)),
            "found": float(np.mean([m is not None for m in masks]))}


def white_lungs(images: np.ndarray, masks: list) -> np.ndarray:
    """Each image twice, its left then its right lung whitened (where a mask places them)."""
    out = [opacity.whiten_lung(im, np.uint8(m), side) for side in (0, 1) for im, m in zip(images, masks)
           if m is not None]
    return np.stack(out)


def measure(seg, held: dict, xray: dict, opaque: np.ndarray, white_held: np.ndarray,
            white_test: np.ndarray) -> dict:
    r = {"dice_adults": dice_found(found_masks(seg, held["adult_images"]), held["adult_masks"]),
         "dice_children": dice_found(found_masks(seg, held["child_images"]), held["child_masks"]),
         "opaque": dice_found(found_masks(seg, opaque), held["masks"]),
         "white_lung_held_out_found": float(np.mean([m is not None for m in found_masks(seg, white_held)])),
         "white_lung_test_found": float(np.mean([m is not None for m in found_masks(seg, white_test)]))}
    masks = {name: found_masks(seg, images) for name, images in xray["images"].items()}
    r["class_signal"] = {name: mask_shape.class_signal(masks[name], xray["labels"][name])
                         for name in ("validation", "test")}
    parts = {}
    for name in masks:
        ok = np.array([m is not None for m in masks[name]])
        parts[name] = (np.stack([m for m in masks[name] if m is not None]), xray["labels"][name][ok])
    sil = validity.silhouette_auc(*parts["train"], {k: parts[k] for k in ("validation", "test")},
                                  "crop+blur", LUNG_MARGIN, LUNG_DILATION)
    r["silhouette"] = {k: sil[k]["auc"] for k in ("validation", "test")}
    return r


def sheet(segs: list, rows: list[tuple[str, np.ndarray]], out: Path, per_row: int = 8) -> None:
    lines = []
    for name, images in rows:
        tiles = []
        for im in images[:per_row]:
            rgb = cv2.cvtColor(im, cv2.COLOR_GRAY2RGB)
            for seg, colour in zip(segs, COLOURS):
                m = postprocess(seg.probability(im[None])[0]).mask
                if m is not None:
                    rgb = draw_outline(rgb, m, colour)
            cv2.putText(rgb, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
            tiles.append(rgb)
        tiles += [np.zeros_like(tiles[0])] * (per_row - len(tiles))
        lines.append(np.hstack(tiles))
    cv2.imwrite(str(out), cv2.cvtColor(np.vstack(lines), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--masks", required=True, help="lung_masks folder")
    p.add_argument("--data", required=True, help="chest_xray folder")
    p.add_argument("--segmenters", required=True, help="comma-separated lungs.keras / lungs.xml files")
    p.add_argument("--train-sample", type=int, default=1600, help="training-part X-rays the silhouette is fitted on")
    p.add_argument("--sheet", help="write a contact sheet of the hardest cases here (.jpg)")
    p.add_argument("--out", help="write the numbers here (.json)")
    args = p.parse_args(argv)
    files = args.segmenters.split(",")
    segs = [load_segmenter(f) for f in files]

    images, masks, rows = load_pairs(args.masks)
    parts = split(rows)
    adults, children = parts["test_adults"], parts["test_children"]
    both = np.concatenate([adults, children])
    held = {"adult_images": images[adults], "adult_masks": masks[adults],
            "child_images": images[children], "child_masks": masks[children], "masks": masks[both]}
    opaque = opaque_copies(images[both], masks[both], HELD_OUT_SEED, held_out=True)
    white_held = white_lungs(images[both], list(masks[both]))

    tr = data.load_train_split(args.data, None, 0, 0.15)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.permutation(tr.train_idx)[:args.train_sample])
    test_paths, test_labels = data.list_split(args.data, "test")
    test_images, kept, _ = data.load_images(test_paths)
    xray = {"images": {"train": tr.images[sample], "validation": tr.images[tr.val_idx], "test": test_images},
            "labels": {"train": tr.labels[sample], "validation": tr.labels[tr.val_idx],
                       "test": test_labels[kept]}}
    white_test = white_lungs(test_images, found_masks(segs[0], test_images))

    report = {"goals": GOALS, "segmenters": {}}
    for f, seg in zip(files, segs):
        r = measure(seg, held, xray, opaque, white_held, white_test)
        report["segmenters"][f] = r
        cs = r["class_signal"]["validation"]
        print(f"\n{f}")
        print(f"  held-out Dice: adults {r['dice_adults']['dice_mean']:.4f} (goal >= 0.95), children "
              f"{r['dice_children']['dice_mean']:.4f} (>= 0.94)")
        print(f"  opaque Dice (held-out family): {r['opaque']['dice_mean']:.4f} (>= 0.93), lungs found "
              f"{r['opaque']['found']:.1%} (>= 98%)")
        print(f"  one lung whitened, pair found: held-out {r['white_lung_held_out_found']:.1%}, test X-rays "
              f"{r['white_lung_test_found']:.1%} (>= 90%)")
        for k in mask_shape.NUMBERS:
            print(f"  validation {k}: NORMAL {cs[k]['NORMAL']:.3f} PNEUMONIA {cs[k]['PNEUMONIA']:.3f} "
                  f"AUC {cs[k]['auc']:.3f}   (test AUC {r['class_signal']['test'][k]['auc']:.3f})")
        gap = cs["smaller_larger"]["NORMAL"] - cs["smaller_larger"]["PNEUMONIA"]
        print(f"  smaller/larger gap {gap:+.3f} (goal within 0.03); silhouette validation "
              f"{r['silhouette']['validation']:.3f} (<= 0.75), test {r['silhouette']['test']:.3f}")
    if args.sheet:
        rng = np.random.default_rng(1)
        pick = rng.permutation(len(both))[:8]
        effusion = np.stack([opacity.paint(images[i], masks[i], rng, "effusion") for i in both[pick]])
        pn = np.flatnonzero(xray["labels"]["test"] == 1)[::37][:8]
        rows_ = [("white lung", white_test[::79][:8]), ("white lung", white_test[len(white_test) // 2::79][:8]),
                 ("patchy", opaque[pick]), ("effusion", effusion), ("adult", images[adults][::13][:8]),
                 ("child", images[children][::3][:8]), ("test PNEU", test_images[pn])]
        sheet(segs, rows_, Path(args.sheet))
        print(f"\ncontact sheet: {args.sheet} (outlines: " + ", ".join(
            f"{f} {'red green blue'.split()[i]}" for i, f in enumerate(files)) + ")")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
