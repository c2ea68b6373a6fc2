"""The adults' tuberculosis line, refitted on the adult reader's features, and
whether it holds on a hospital it never saw (rules.TB_RULE).

    python -m pneumonia.train.tb_line --model model --adults adult_cxr --hospitals lung_masks --more adult_more

TB films of three hospitals (Shenzhen, Montgomery, TBX11K) against the normal
films of five sources (NIH, RSNA, JSRT, Shenzhen, Montgomery), by the parts
of `pneumonia.train.adult_sources`: fit parts fit, validation parts choose
(`pneumonia.train.subtypes.fit_head`: C, temperature; threshold for
sensitivity TB_SENSITIVITY), report parts report, per source. Then each TB
hospital is left out of every part in turn and the line refitted: on that
hospital's films, ROC AUC and specificity where it has both classes, the
sensitivity where it has TB only (TBX11K: one class cannot show disease vs
health by itself). Where the map points: the peak of the line's Grad-CAM on
TBX11K report-part films, inside a lesion box or not, beside the share of the
lung view the boxes cover (what a random point would score).

Writes the line into the folder's subtypes.npz (as `tuberculosis`, on the
reader's pooled features) and its numbers under config `subtypes.tuberculosis`;
`pneumonia.serve.subtypes.withheld_reason` decides from them whether it is shown.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.calibration import threshold_for_sensitivity
from pneumonia.config import CONFIG_FILE
from pneumonia.rules import TB_RULE
from pneumonia.folder import read_config
from pneumonia.serve.heatmap import linear_cam
from pneumonia.serve.imaging import grey_to_rgb
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.runtime import Network
from pneumonia.serve.subtypes import SUBTYPES_FILE, Subtypes
from pneumonia.train.adult_sources import NORMAL, TB
from pneumonia.train.quantize import conv_block
from pneumonia.train.subtypes import TB_SENSITIVITY, fit_head, report

TB_HOSPITALS = ("shenzhen", "montgomery", "tbx11k")


def fit_line(x: np.ndarray, y: np.ndarray, parts: np.ndarray, keep: np.ndarray):
    """The line fitted on the fit parts within `keep`, chosen on their validation parts."""
    f, v = keep & (parts == "fit"), keep & (parts == "validation")
    head, info = fit_head(x[f], y[f], x[v], y[v])
    head.threshold = threshold_for_sensitivity(head.probability(x[v]), y[v], TB_SENSITIVITY)
    return head, {**info, "fit": int(f.sum()), "validation": int(v.sum())}


def on_source(head, x: np.ndarray, y: np.ndarray) -> dict:
    """Two classes: the full report; one: the share called TB (sensitivity or 1 - specificity)."""
    if len(np.unique(y)) == 2:
        return report(head, x, y)
    called = float(np.mean(head.probability(x) >= head.threshold))
    key = ("sensitivity", called) if y[0] == 1 else ("specificity", 1 - called)
    return {"n": int(len(y)), key[0]: key[1], "roc_auc": None}


def boxes_of(more: Path) -> dict[str, list[tuple[float, ...]]]:
    with open(more / "tbx11k" / "labels.csv") as f:
        return {r["file"]: [tuple(map(float, b.split())) for b in r["boxes_fraction_x0_y0_x1_y1"].split(";") if b]
                for r in csv.DictReader(f)}


def pointing(cams: np.ndarray, view_boxes: list, lesions: list[list[tuple]]) -> dict:
    """The map's peak cell (its centre, in the film's fractions) inside a lesion box, per film;
    `chance`: the mean share of the read box the lesion boxes cover."""
    hits, chance = [], []
    for cam, vb, boxes in zip(cams, view_boxes, lesions):
        if not boxes:
            continue
        i, j = np.unravel_index(np.argmax(cam), cam.shape)
        x = vb["x0"] + (j + 0.5) / cam.shape[1] * (vb["x1"] - vb["x0"])
        y = vb["y0"] + (i + 0.5) / cam.shape[0] * (vb["y1"] - vb["y0"])
        hits.append(any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes))
        gx, gy = np.meshgrid(np.linspace(vb["x0"], vb["x1"], 50), np.linspace(vb["y0"], vb["y1"], 50))
        chance.append(np.mean(np.any([(b[0] <= gx) & (gx <= b[2]) & (b[1] <= gy) & (gy <= b[3]) for b in boxes], 0)))
    return {"n": len(hits), "peak_in_box": float(np.mean(hits)) if hits else None,
            "chance": float(np.mean(chance)) if chance else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--model", "--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    args = p.parse_args(argv)
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.cli import log
    folder = Path(args.model)
    config = read_config(folder)
    films = load_films(args.adults, args.hospitals, args.more, config["adult_reader"]["training"]["seed"])
    rows = np.flatnonzero(np.isin(films.labels, (NORMAL, TB)) & (films.sources != "bimcv"))
    lungs = LungReader.exported(folder, config, "f32")
    views, boxes, _, found = lungs.read(films.canons[rows])
    rows, views = rows[found], views[found]
    boxes = [boxes[k] for k in np.flatnonzero(found)]
    net = Network(folder / config["adult_reader"]["runtime"]["classifier"], "f32")
    acts = conv_block(net, grey_to_rgb(views))
    x = acts.mean(axis=(1, 2)).astype(np.float64)
    y = (films.labels[rows] == TB).astype(int)
    src, parts = films.sources[rows], films.parts[rows]
    log(f"TB line: {len(rows)} films read ({int(y.sum())} TB)")
    head, info = fit_line(x, y, parts, np.ones(len(y), bool))
    rep = parts == "report"
    info["per_source"] = {s: on_source(head, x[rep & (src == s)], y[rep & (src == s)]) for s in np.unique(src)}
    info["report"] = report(head, x[rep & np.isin(src, ("shenzhen", "montgomery"))],
                            y[rep & np.isin(src, ("shenzhen", "montgomery"))])
    cross = {}
    for held in TB_HOSPITALS:   # left out of fit and choice, scored on all its films
        h, _ = fit_line(x, y, parts, src != held)
        r = on_source(h, x[src == held], y[src == held])
        others = rep & (src != held) & (y == 0)
        r["other_normals_specificity"] = float(np.mean(h.probability(x[others]) < h.threshold))
        cross[f"fitted without {held}, scored on all of {held}"] = r
        log(f"  without {held}: {json.dumps({k: v for k, v in r.items() if not isinstance(v, list)})}")
    info["cross_hospital"] = cross
    tbx = np.flatnonzero(rep & (src == "tbx11k"))
    lesions = boxes_of(Path(args.more))
    cams = linear_cam(acts[tbx], head.w, np.ones(len(tbx), bool))
    view_boxes = [vars(boxes[k]) for k in tbx]   # fractions of the film, as the lesion boxes
    info["pointing_tbx11k"] = pointing(cams, view_boxes, [lesions.get(Path(films.files[rows[k]]).name, [])
                                                          for k in tbx])
    info.update(features="the adult reader's pooled features", rule=TB_RULE,
                threshold=head.threshold, temperature=head.temperature)
    sub = Subtypes.load(folder / SUBTYPES_FILE)
    r = info["report"]
    sub.tuberculosis, sub.tuberculosis_reads = head, "reader"
    sub.measured["tuberculosis"] = (f"measured on {r['n']} held-out Shenzhen and Montgomery adults: ROC AUC "
                                    f"{r['roc_auc']:.2f}, sensitivity {r['sensitivity']:.0%}, specificity "
                                    f"{r['specificity']:.0%}")
    sub.save(folder / SUBTYPES_FILE)
    config = read_config(folder)
    config["subtypes"]["tuberculosis"] = info
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"TB line: report ROC AUC {r['roc_auc']:.3f}; pointing {info['pointing_tbx11k']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
