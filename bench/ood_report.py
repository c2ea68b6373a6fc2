"""Is it a chest X-ray, and is it like the training children? Measured on
images nobody fitted or tuned the guard or the population score on.

    python bench/ood_report.py --model model --data path/to/chest_xray \
        --adults path/to/adult_cxr --lung-masks path/to/lung_masks

- chest X-rays (share recognised): the 624 test-split children (goal >= 99%),
  the NIH adults' report part (goal >= 97%), and the Shenzhen and Montgomery
  X-rays the lung segmenter held out (adults and children of two more hospitals),
- non-X-rays (share refused; goal >= 95%): the sample photos shipped inside
  scikit-image and matplotlib, synthetic images (blank, noise, gradients,
  patterns, text) and the CT, MR, ultrasound, nuclear-medicine and
  segmentation images among pydicom's test files,
- test X-rays under edits a real upload may have: rotated 90 degrees,
  inverted, cropped to one lung, blurred.
"Recognised" means answered with a diagnosis; refusals are counted by where
they happen (the file check, "No lung fields found", the guard). For the
X-rays it also counts how many P(adult) calls an adult's. Writes `ood_report.json` into the model folder (the
model card shows it).
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

from pneumonia.report import card
from pneumonia.train import data
from pneumonia.train import lung_pairs  # noqa: E402
from pneumonia.train.adults import load_adults  # noqa: E402
from pneumonia.report.card import OOD_REPORT_FILE  # noqa: E402
from pneumonia.config import METRICS_FILE  # noqa: E402
from pneumonia.serve.imaging import ImageError, load_image  # noqa: E402
from pneumonia.serve.predictor import NoLungsError  # noqa: E402
from pneumonia.serve.loader import load  # noqa: E402


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


# pydicom's test files that hold one image of another modality (the MR_small
# variants are one image: listed once). Some are refused by the file check (size, shape).
DICOM_NON_XRAYS = ("CT_small.dcm", "MR_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm",
                   "examples_overlay.dcm", "examples_palette.dcm", "examples_rgb_color.dcm",
                   "examples_jpeg2k.dcm", "liver_1frame.dcm", "JPGExtended.dcm", "JPEG2000.dcm",
                   "image_dfl.dcm", "GDCMJ2K_TextGBR.dcm")


def dicom_slices() -> dict[str, bytes]:
    from pydicom.data import get_testdata_file
    return {f"pydicom/{name}": Path(get_testdata_file(name, download=False)).read_bytes()
            for name in DICOM_NON_XRAYS}


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
    p.add_argument("--adults", required=True, help="adult_cxr folder (its report part is read)")
    p.add_argument("--lung-masks", required=True, help="lung_masks folder (the segmenter's held-out X-rays)")
    p.add_argument("--edited", type=int, default=100, help="test X-rays per edit")
    args = p.parse_args()
    predictor = load(args.model).predictor
    if predictor.guard is None:
        sys.exit(f"{args.model} has no guard: run python -m pneumonia.train.population first")

    def outcome(source) -> str:
        """'answered' or where it was refused; answered X-rays that look like an adult's are 'adult'."""
        try:
            r = predictor.analyze_array(source) if isinstance(source, np.ndarray) else predictor.analyze(source)
        except NoLungsError:
            return "no lungs"
        except ImageError:
            return "file check"
        if not r.get("is_chest_xray"):
            return "guard"
        return "answered, adult" if r.get("looks_adult", False) else "answered"

    def tally(outcomes: list[str]) -> dict:
        n = len(outcomes)
        answered = sum(o.startswith("answered") for o in outcomes)
        return {"n": n, "recognised": answered / n, "looks_adult": sum(o.endswith("adult")
                                                                               for o in outcomes) / max(answered, 1),
                "refused_by": {k: outcomes.count(k) for k in ("file check", "no lungs", "guard") if k in outcomes}}

    paths, _ = data.list_split(args.data, "test")
    xrays = [load_image(p) for p in paths]
    adults = load_adults(args.adults)
    images, _, rows = lung_pairs.load_pairs(args.lung_masks)
    held = lung_pairs.split(rows)
    sets = {
        "test-split children (Guangzhou)": [outcome(g) for g in xrays],
        "NIH adults, report part": [outcome(adults.canons[i]) for i in adults.part("report")],
        "Shenzhen and Montgomery adults (segmenter held out)": [outcome(images[i]) for i in held["test_adults"]],
        "Shenzhen children aged 1-17 (segmenter held out)": [outcome(images[i]) for i in held["test_children"]],
    }
    others = {name: outcome(g) for name, g in {**package_photos(), **synthetic()}.items()}
    others.update({name: outcome(raw) for name, raw in dicom_slices().items()})
    rng = np.random.default_rng(0)
    picked = [xrays[i] for i in rng.choice(len(xrays), args.edited, replace=False)]
    edit_names = list(edits(picked[0]))
    edited = {name: tally([outcome(edits(g)[name]) for g in picked])["recognised"] for name in edit_names}
    refused = [o for o in others.values() if not o.startswith("answered")]
    report = {
        "xrays": {name: tally(o) for name, o in sets.items()},
        "non_xrays": {"n": len(others), "refused": len(refused) / len(others),
                      "refused_by": {k: refused.count(k) for k in ("file check", "no lungs", "guard")},
                      "missed": sorted(k for k, v in others.items() if v.startswith("answered"))},
        "edited_test_xrays_accepted": {"n_per_edit": args.edited, **edited},
        "not_measured": "phone photos of a screen, other body parts' radiographs: no honest set of them "
                        "could be made here",
    }
    report["test_xrays"] = {"n": len(xrays), "accepted": report["xrays"]["test-split children (Guangzhou)"]["recognised"]}
    folder = Path(args.model)
    (folder / OOD_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    card.write_card(folder, predictor.config, json.loads((folder / METRICS_FILE).read_text()))
    print("| images | n | recognised as chest X-rays | of those, looking like an adult's | goal |")
    print("|---|---|---|---|---|")
    goals = {"test-split children (Guangzhou)": ">= 99% recognised", "NIH adults, report part": ">= 97% recognised"}
    for name, t in report["xrays"].items():
        print(f"| {name} | {t['n']} | {t['recognised']:.1%} | {t['looks_adult']:.1%} | {goals.get(name, '')} |")
    n = report["non_xrays"]
    print(f"| non-X-rays (package photos, synthetic, pydicom CT/MR/US/NM) | {n['n']} | "
          f"{1 - n['refused']:.1%} ({n['refused']:.1%} refused: {n['refused_by']}) | | >= 95% refused |")
    for name, share in edited.items():
        print(f"| test X-rays, {name} | {args.edited} | {share:.1%} | | |")
    print("missed non-X-rays:", ", ".join(n["missed"]) or "none")


if __name__ == "__main__":
    main()
