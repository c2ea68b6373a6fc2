"""Does the answer hold when the upload changes a little? Test X-rays, each
re-submitted with one mild change a real upload carries, through the served
path (`Predictor.analyze_array`: lungs, lung view, guard, population routing,
the head that answers), for each model folder given, side by side in one run.

    python bench/stability.py --data path/to/chest_xray [--models model,runs/model] [--per-class 100]

Prints, per change: the share of decisions unchanged (goal >= 0.95 under
each), accuracy before -> after, how many answers moved across P(adult)'s threshold,
and how many changed images were refused (no lungs, not a chest X-ray).
The images are a seeded draw of the test split, which this only reports on.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.train import data  # noqa: E402
from pneumonia.serve.imaging import ImageError, load_image  # noqa: E402
from pneumonia.serve.loader import load_folder  # noqa: E402

GOAL = 0.95


def _jpeg(g: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)


def _scale(g: np.ndarray, f: float) -> np.ndarray:
    h, w = g.shape
    return cv2.resize(g, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def _rotate(g: np.ndarray, degrees: float) -> np.ndarray:
    h, w = g.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(g, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _pad(g: np.ndarray, f: float) -> np.ndarray:
    h, w = g.shape
    return cv2.copyMakeBorder(g, round(h * f), round(h * f), round(w * f), round(w * f), cv2.BORDER_CONSTANT, value=0)


def _crop(g: np.ndarray, f: float) -> np.ndarray:
    h, w = g.shape
    return g[round(h * f):h - round(h * f), round(w * f):w - round(w * f)]


def _gamma(g: np.ndarray, gamma: float) -> np.ndarray:
    return np.uint8(np.clip(255 * (g / 255.0) ** gamma, 0, 255))


def _contrast(g: np.ndarray, c: float) -> np.ndarray:
    m = g.mean()
    return np.uint8(np.clip(m + c * (g.astype(np.float32) - m), 0, 255))


CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "JPEG quality 40": lambda g: _jpeg(g, 40),
    "half size": lambda g: _scale(g, 0.5),
    "4x upscale": lambda g: _scale(g, 4.0),
    "gamma 1.3": lambda g: _gamma(g, 1.3),
    "contrast 0.8": lambda g: _contrast(g, 0.8),
    "rotation +5 deg": lambda g: _rotate(g, 5),
    "rotation -5 deg": lambda g: _rotate(g, -5),
    "10% black padding": lambda g: _pad(g, 0.10),
    "5% cropped off each side": lambda g: _crop(g, 0.05),
}


def answer(predictor, grey: np.ndarray) -> tuple[str | None, bool | None]:
    """(decision, whether it looked like an adult's), or (None, None) when refused."""
    try:
        r = predictor.analyze_array(grey)
    except ImageError:
        return None, None
    return r["decision"], r.get("looks_adult")


def measure(folder: str, greys: list[np.ndarray], labels: np.ndarray) -> dict[str, dict]:
    predictor = load_folder(folder, folder, folder).predictor
    truth = np.where(labels == 1, "PNEUMONIA", "NORMAL")
    before = [answer(predictor, g) for g in greys]
    out = {}
    for name, change in CHANGES.items():
        after = [answer(predictor, change(g)) for g in greys]
        same = np.mean([a[0] == b[0] for a, b in zip(before, after)])
        out[name] = {
            "unchanged": float(same),
            "accuracy_before": float(np.mean([b[0] == t for b, t in zip(before, truth)])),
            "accuracy_after": float(np.mean([a[0] == t for a, t in zip(after, truth)])),
            "head_moved": int(sum(a[1] != b[1] for a, b in zip(before, after) if a[0] is not None)),
            "refused": int(sum(a[0] is None for a in after)),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--models", default=str(ROOT / "model"), help="comma-separated model folders")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    paths, labels = data.list_split(args.data, "test")
    rng = np.random.default_rng(args.seed)
    pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), args.per_class, replace=False) for c in (0, 1)])
    greys = [load_image(paths[i]) for i in pick]
    results = {m: measure(m, greys, labels[pick]) for m in args.models.split(",")}
    print(f"\n{len(greys)} test X-rays ({args.per_class} per class, seed {args.seed}); share of decisions "
          f"unchanged (goal >= {GOAL}), accuracy before -> after, answers moved across P(adult)'s threshold, refused\n")
    models = list(results)
    print("| change | " + " | ".join(Path(m).name for m in models) + " |")
    print("|---|" + "---|" * len(models))
    for name in CHANGES:
        cells = []
        for m in models:
            r = results[m][name]
            mark = "" if r["unchanged"] >= GOAL else " (below goal)"
            cells.append(f"**{r['unchanged']:.3f}**{mark}; {r['accuracy_before']:.3f} -> {r['accuracy_after']:.3f}; "
                         f"{r['head_moved']} moved; {r['refused']} refused")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
