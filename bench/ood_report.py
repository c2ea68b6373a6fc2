"""How the out-of-distribution guard behaves, on images nobody tuned it on.

    python bench/ood_report.py --model model --data path/to/chest_xray

- the 624 test-split X-rays (share accepted; goal >= 99%),
- non-X-ray images: the sample photos shipped inside scikit-image and
  matplotlib, plus synthetic ones (blank, noise, gradients, patterns, text)
  (share refused; goal >= 95%),
- test X-rays under edits a real upload may have: rotated 90 degrees,
  inverted, cropped to one lung, blurred.
"Accepted" means answered with a diagnosis: for a lung model, lungs found
and the guard's yes; "No lung fields found" counts as refused.
Writes `ood_report.json` into the model folder (the model card shows it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia import card, data  # noqa: E402
from pneumonia.card import OOD_REPORT_FILE  # noqa: E402
from pneumonia.config import METRICS_FILE  # noqa: E402
from pneumonia.imaging import ImageError, load_image  # noqa: E402
from pneumonia.predictor import NoLungsError  # noqa: E402
from pneumonia.serving import load  # noqa: E402


def package_photos() -> dict[str, np.ndarray]:
    """Sample images that ship inside installed packages (no download)."""
    import matplotlib
    folders = [Path(matplotlib.get_data_path()) / "sample_data"]
    try:
        import skimage
        folders.append(Path(skimage.__file__).parent / "data")
    except ImportError:
        print("scikit-image not installed: its sample images are skipped", file=sys.stderr)
    out = {}
    for folder in folders:
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() not in {".png", ".jpg", ".jpeg", ".gif", ".tif"}:
                continue
            try:
                out[f"{folder.parent.name}/{path.name}"] = load_image(path)
            except ImageError:
                pass  # too small to be served anyway (the app refuses it with a size message)
    return out


def synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h, w = 512, 512
    yy, xx = np.mgrid[0:h, 0:w] / 511.0
    images = {
        "black": np.zeros((h, w)), "white": np.full((h, w), 255.0), "grey": np.full((h, w), 128.0),
        "uniform noise": rng.uniform(0, 255, (h, w)), "gaussian noise": rng.normal(128, 40, (h, w)),
        "horizontal gradient": xx * 255, "vertical gradient": yy * 255,
        "radial gradient": np.clip(255 - 360 * np.hypot(xx - 0.5, yy - 0.5), 0, 255),
        "checkerboard": ((np.floor(xx * 8) + np.floor(yy * 8)) % 2) * 255,
        "stripes": (np.sin(xx * 60) > 0) * 255.0,
    }
    for name, (bg, fg) in {"text on white": (255, 0), "text on black": (0, 255)}.items():
        img = Image.new("L", (w, h), bg)
        draw = ImageDraw.Draw(img)
        for i in range(14):
            draw.text((20, 20 + 34 * i), "Chest X-ray report: no acute findings. " * 2, fill=fg,
                      font_size=22)
        images[name] = np.asarray(img)
    shapes = np.zeros((h, w), np.uint8)
    for _ in range(25):
        cv2.circle(shapes, tuple(int(v) for v in rng.integers(0, 512, 2)), int(rng.integers(10, 80)),
                   int(rng.integers(60, 255)), -1)
    images["random discs"] = shapes
    return {k: np.clip(v, 0, 255).astype(np.uint8) for k, v in images.items()}


def edits(grey: np.ndarray) -> dict[str, np.ndarray]:
    h, w = grey.shape
    return {
        "rotated 90 degrees": np.ascontiguousarray(np.rot90(grey)),
        "inverted": 255 - grey,
        "cropped to one lung": np.ascontiguousarray(grey[:, : w // 2]),
        "blurred (sigma 4)": cv2.GaussianBlur(grey, (0, 0), 4),
    }


def main() -> None:

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--data", required=True)
    p.add_argument("--edited", type=int, default=100, help="test X-rays per edit")
    args = p.parse_args()
    predictor = load(args.model).predictor
    if predictor.guard is None:
        sys.exit(f"{args.model} has no OOD guard: run python -m pneumonia.ood first")

    def accepted(grey: np.ndarray) -> bool:
        """Answered with a diagnosis: lungs found (lung models) and the guard's yes."""
        try:
            return bool(predictor.analyze_array(grey).get("is_chest_xray"))
        except NoLungsError:
            return False

    paths, _ = data.list_split(args.data, "test")
    xrays = [load_image(p) for p in paths]
    test_ok = [accepted(g) for g in xrays]
    others = {**package_photos(), **synthetic()}
    refused = {name: not accepted(g) for name, g in others.items()}
    rng = np.random.default_rng(0)
    picked = [xrays[i] for i in rng.choice(len(xrays), args.edited, replace=False)]
    edit_names = list(edits(picked[0]))
    edited = {name: float(np.mean([accepted(edits(g)[name]) for g in picked])) for name in edit_names}
    report = {
        "test_xrays": {"n": len(xrays), "accepted": float(np.mean(test_ok))},
        "non_xrays": {"n": len(others), "refused": float(np.mean(list(refused.values()))),
                      "missed": sorted(k for k, v in refused.items() if not v)},
        "edited_test_xrays_accepted": {"n_per_edit": args.edited, **edited},
        "not_measured": "phone photos of a screen: no honest set of them could be made here",
    }
    folder = Path(args.model)
    (folder / OOD_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    card.write_card(folder, predictor.config, json.loads((folder / METRICS_FILE).read_text()))
    print("| images | n | guard says X-ray | goal |")
    print("|---|---|---|---|")
    print(f"| test-split chest X-rays | {len(xrays)} | {report['test_xrays']['accepted']:.1%} accepted | >= 99% |")
    print(f"| non-X-rays (package photos + synthetic) | {len(others)} | "
          f"{report['non_xrays']['refused']:.1%} refused | >= 95% |")
    for name, share in edited.items():
        print(f"| test X-rays, {name} | {args.edited} | {share:.1%} accepted | |")
    print("missed non-X-rays:", ", ".join(report["non_xrays"]["missed"]) or "none")


if __name__ == "__main__":
    main()
