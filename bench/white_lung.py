"""Is a white lung ever NORMAL? Edited films through the served path, model folders side by side in one run.

    python bench/white_lung.py --data path/to/chest_xray --adults path/to/adult_cxr --hospitals path/to/lung_masks \
        --more path/to/adult_more [--models model,runs/model_before] [--out runs/white_lung.json] \
        [--record model] [--sheet artifacts/white_lung.png]

Each film is edited on its canonical image, inside the lungs the (first)
model's lung finder finds on the clean film, and submitted as an upload
(`Predictor.analyze_arrays`: lungs found again, guard, routing, the head
that answers):
- one lung whitened to the mediastinum's grey (pneumonia.train.opacity.whiten_lung,
  the held-out family, side alternating by film) at 50%, 85% and 100%:
  NORMAL films called PNEUMONIA (goal >= 0.90 at 85% and 100%), films with
  the disease called PNEUMONIA clean still PNEUMONIA (goal >= 0.95), answered
  (not refused; goal >= 0.95), "can't tell" counted apart;
- painted non-opacities (pneumonia.train.non_opacity): NORMAL films called
  NORMAL clean still NORMAL (goal >= 0.95);
- real films: the test split's PNEUMONIA films with the largest opaque area
  (share of the found lungs at or above the mediastinum's grey), called PNEUMONIA;
- the swap test on the test split (pneumonia.report.validity, the exported
  fp32 network and the folder's last layer): lungs AUC >= 0.90, surroundings <= 0.65.
Sets: healthy and pneumonia children of the validation part (the training
split's, by patient) and of the test split; the report parts of the adults'
sources (normal films of Shenzhen, Montgomery, JSRT; opacity films of RSNA,
NIH, BIMCV, at most --per-set of each). Test split and report parts are
only reported here.
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

from pneumonia.serve.loader import load_folder  # noqa: E402
from pneumonia.train import data, opacity  # noqa: E402
from pneumonia.train.white_served import STRENGTHS, decisions, judge_set, share  # noqa: E402

GOALS = {"white_normal": 0.90, "white_disease_stays": 0.95, "answered": 0.95, "non_opacity_stays": 0.95,
         "swap_lungs_auc_min": 0.90, "swap_surroundings_auc_max": 0.65}
OPAQUE_FILMS = 50


def opaque_share(canon: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean(canon[mask > 0] >= opacity.mediastinum_grey(canon, mask))) if mask.any() else 0.0


def swap_test(folder: Path, canons: np.ndarray, masks: list, y: np.ndarray) -> dict:
    from pneumonia.folder import read_config
    from pneumonia.report import validity
    from pneumonia.serve.runtime import Network
    from pneumonia.train import quantize
    from pneumonia.train.reader_serving import pooled
    config = read_config(folder)
    net = Network(folder / config["runtime"]["classifier"], "f32")
    w, b, _, _ = quantize.head_of(folder, config)
    r = validity.auc_tests(lambda v: pooled(net, v).astype(np.float64) @ w + b, canons, np.stack(masks), y,
                           config["lungs"]["variant"], dilation=config["lungs"]["dilation"])
    return {k: round(r[k], 4) for k in ("auc", "swap_lungs_auc", "swap_surroundings_auc", "hidden_auc")} | {"ci95": r["ci95"]}


def load_sets(args, finder) -> dict[str, tuple]:
    """{name: (canons, masks, labels)}; the masks found on the clean films."""
    from pneumonia.folder import read_config
    from pneumonia.train.adult_sources import load_films
    config = read_config(Path(args.models.split(",")[0]))
    tr, rng = config["training"], np.random.default_rng(35)
    split = data.load_train_split(args.data, config["data"].get("limit_per_class"), tr["seed"], tr["val_fraction"])
    paths, labels = data.list_split(args.data, "test")
    test, kept, _ = data.load_images(paths)
    labels = labels[kept]
    films = load_films(args.adults, args.hospitals, args.more, config["adult_reader"]["training"]["seed"])
    raw = {"validation children": (split.images[split.val_idx], split.labels[split.val_idx]),
           "test children": (test, labels)}
    normal = films.rows("report", ("shenzhen", "montgomery", "jsrt"), (0,))
    raw["adults, report parts"] = (films.canons[normal], films.labels[normal])
    for src in ("rsna", "nih", "bimcv"):
        rows = rng.permutation(films.rows("report", (src,), (1,)))[:args.per_set]
        raw[f"adults, report parts, {src} opacity"] = (films.canons[rows], films.labels[rows])
    out = {}
    for name, (canons, y) in raw.items():
        keep = rng.permutation(np.flatnonzero(y == 1))[:args.per_set] if "children" in name else np.flatnonzero(y == 1)
        keep = np.sort(np.r_[np.flatnonzero(y == 0)[:args.limit], keep[:args.limit]])
        lungs = finder.find(canons[keep])
        found = np.asarray([l is not None and l.found for l in lungs])
        out[name] = (canons[keep][found], [l.mask for l, ok in zip(lungs, found) if ok], y[keep][found])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--data", "--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    p.add_argument("--models", default="model")
    p.add_argument("--per-set", type=int, default=150, help="films with the disease per set, at most (seeded draw)")
    p.add_argument("--limit", type=int, help="at most N films per class and set (a quick look)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--record", metavar="FOLDER", help="keep the first model's results in FOLDER/metrics.json")
    p.add_argument("--sheet", help="draw whitened films and the first model's answers here (PNG)")
    args = p.parse_args(argv)
    folders = [Path(f) for f in args.models.split(",")]
    served = [load_folder(f, str(f), str(f)).predictor for f in folders]
    sets = load_sets(args, served[0].reader)
    test = sets["test children"]
    ranks = np.argsort([-opaque_share(c, m) if y == 1 else 1.0 for c, m, y in zip(*test)])[:OPAQUE_FILMS]
    results = {"goals": GOALS, "models": {}}
    for folder, predictor in zip(folders, served):
        r = {name: judge_set(predictor, *s) for name, s in sets.items()}
        r["opaque test pneumonia"] = {"n": len(ranks), "called_pneumonia": share(
            decisions(predictor, test[0][ranks]) == "PNEUMONIA")}
        r["swap test (test split)"] = swap_test(folder, *test)
        results["models"][str(folder)] = r
        print(json.dumps({str(folder): r}, indent=1))
    if args.sheet:
        draw_sheet(served[0], sets, args.sheet)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.record:
        path = Path(args.record) / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["white_lung"] = {"command": "python bench/white_lung.py " + " ".join(argv or sys.argv[1:]),
                                 **results["models"][str(folders[0])]}
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    return 0


def draw_sheet(predictor, sets: dict, path: str) -> None:
    """One row a film (a healthy child, a normal adult): clean, whitened at each strength, with the overlay and answer."""
    rows = []
    for name in ("test children", "adults, report parts"):
        canons, masks, y = sets[name]
        i = int(np.flatnonzero(y == 0)[0])
        films = [canons[i]] + [opacity.whiten_lung(canons[i], masks[i], 0, s) for s in STRENGTHS]
        tiles = []
        for film, a in zip(films, predictor.analyze_arrays(films)):
            tile = cv2.resize(np.asarray(a["overlay"]) if isinstance(a, dict) and a.get("overlay") is not None
                              else cv2.cvtColor(film, cv2.COLOR_GRAY2RGB), (320, 320))
            text = f"{a['decision']} {a['probability_pneumonia']:.2f}" if isinstance(a, dict) and a.get("decision") else "refused"
            cv2.putText(tile, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 2)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    cv2.imwrite(path, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    sys.exit(main())
