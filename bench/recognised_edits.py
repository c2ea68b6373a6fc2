"""Is an X-ray recognised as its original is, once bordered or re-saved as lossy WebP?
(issue 33, point 5: the guard refitted with the adult sources.) Report only.

    python bench/recognised_edits.py --data chest_xray --adults adult_cxr --hospitals lung_masks \\
        --more adult_more [--models model,path/to/model_before] [--per-source 50]

Films: test-split children and the report parts of the seven adult sources,
PER_SOURCE of each (seeded). For each model folder and each edit (a 10% black
border; WebP at quality 50 and 25), the share of films whose verdict
(answered, or refused and why) is the original's, and how many the guard
refuses before and after.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adult_served import film_path  # noqa: E402
from pneumonia.pixels import ImageError  # noqa: E402
from pneumonia.serve.imaging import load_image  # noqa: E402
from pneumonia.serve.loader import load_folder  # noqa: E402


def border(g: np.ndarray) -> np.ndarray:
    h, w = g.shape
    return cv2.copyMakeBorder(g, round(h * 0.1), round(h * 0.1), round(w * 0.1), round(w * 0.1),
                              cv2.BORDER_CONSTANT, value=0)


def webp(quality: int):
    def edit(g: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(g).save(buf, "WEBP", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    return edit


EDITS = {"10% black border": border, "WebP quality 50": webp(50), "WebP quality 25": webp(25)}


def verdict(predictor, grey: np.ndarray) -> str:
    try:
        r = predictor.analyze_array(grey)
    except ImageError as e:
        return e.reason
    return "answered" if r["decision"] is not None else r["refusal"]["reason"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--data", "--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    p.add_argument("--models", default="model")
    p.add_argument("--per-source", type=int, default=50)
    args = p.parse_args()
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.data import list_split
    rng = np.random.default_rng(0)
    paths, _ = list_split(args.data, "test")
    films = {"children (test split)": [Path(x) for x in rng.permutation([str(q) for q in paths])[:args.per_source]]}
    f = load_films(args.adults, args.hospitals, args.more, 0)
    for s in np.unique(f.sources):
        rows = rng.permutation(f.rows("report", [s]))[:args.per_source]
        films[str(s)] = [film_path(f.files[i], args) for i in rows]
    greys = {k: [load_image(x) for x in v] for k, v in films.items()}
    folders = args.models.split(",")
    print(f"{args.per_source} films a source; share whose verdict is the original's (guard refusals before -> after)\n")
    print("| films | edit | " + " | ".join(folders) + " |")
    print("|---|---|" + "---|" * len(folders))
    predictors = {m: load_folder(m, m, m).predictor for m in folders}
    for source, gs in greys.items():
        base = {m: [verdict(pr, g) for g in gs] for m, pr in predictors.items()}
        for name, edit in EDITS.items():
            cells = []
            for m, pr in predictors.items():
                after = [verdict(pr, edit(g)) for g in gs]
                same = np.mean([a == b for a, b in zip(base[m], after)])
                cells.append(f"{same:.3f} ({base[m].count('not_chest_xray')} -> {after.count('not_chest_xray')})")
            print(f"| {source} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
