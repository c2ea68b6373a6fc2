"""What the adult reader does, source by source (report only; the band is chosen on validation by ADULT_RULE 5).

    python -m pneumonia.report.adult_report --run runs/adult33 --adults adult_cxr --hospitals lung_masks \\
        --more adult_more --children model

Reads the two readers' predictions.npz (pneumonia.train.adult_reader): for
each source and part, specificity on normals, sensitivity on opacity, ROC AUC
where a source has both, what tuberculosis and nodule films are called, each
with a 95% interval; the can't-tell band fixed on validation and, with it,
the share answered and the share of answers right per source; the held-out
reader on the sources it never saw. Then how much of the source the features
carry: a linear probe telling the seven sources apart (5-fold accuracy) on
the validation films' pooled features of the ImageNet start, the children's
served model and the reader. Writes RUN/adult_report.json and prints tables.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia import calibration
from pneumonia.train import uncertain, worst_source

CALLED = {2: "tuberculosis called PNEUMONIA", 3: "nodules called PNEUMONIA"}
PROBE_PER_SOURCE = 150


def interval(hits: np.ndarray, rng: np.random.Generator, n: int = 2000) -> list[float]:
    """95% bootstrap interval of a share."""
    if len(hits) == 0:
        return [float("nan")] * 2
    means = rng.choice(hits, (n, len(hits))).mean(1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def table(p: np.ndarray, y: np.ndarray, s: np.ndarray, threshold: float, band: dict | None, rng) -> dict:
    """Per source: the reader's numbers at its threshold, and with the band, answered and right."""
    out = {}
    for src in sorted(set(s.tolist())):
        k = s == src
        pp, yy, row = p[k], y[k], {}
        for label, name in ((0, "specificity"), (1, "sensitivity")):
            if (yy == label).any():
                hits = (pp[yy == label] >= threshold) == (label == 1)
                row[name] = [float(hits.mean()), *interval(hits.astype(float), rng), int(len(hits))]
        auc = worst_source.per_source(pp, yy, np.full(len(yy), src), threshold).get(src, {}).get("auc")
        if auc is not None:
            row["auc"] = auc
        for label, name in CALLED.items():
            if (yy == label).any():
                hits = (pp[yy == label] >= threshold).astype(float)
                row[name] = [float(hits.mean()), *interval(hits, rng), int(len(hits))]
        if band is not None and np.isin(yy, (0, 1)).any():
            row["with_band"] = uncertain.per_source(pp, yy, np.full(len(yy), src), band["low"], band["high"],
                                                    threshold)[src]
            said = (pp < band["low"]) | (pp >= band["high"])
            for label, name in ((0, "normals_called_normal"), (1, "opacity_called_pneumonia")):
                k2 = said & (yy == label)
                if k2.any():   # among the answered films of that class
                    row["with_band"][name] = float(np.mean((pp[k2] >= threshold) == (label == 1)))
        out[src] = row
    return out


def reader_report(folder: Path, rng) -> dict:
    config = json.loads((folder / "config.json").read_text())
    with np.load(folder / "predictions.npz") as f:
        pred = {k: f[k] for k in f.files}
    p = calibration.sigmoid(pred["logits"] / config["temperature"])
    t, val = config["threshold"], pred["parts"] == "validation"
    held = np.isin(pred["sources"], config["held_out_sources"])
    band = uncertain.choose_band(p[val & ~held], pred["labels"][val & ~held], pred["sources"][val & ~held], t)
    out = {"threshold": t, "temperature": config["temperature"], "best": config["best"], "band": band,
           "validation": table(p[val & ~held], pred["labels"][val & ~held], pred["sources"][val & ~held], t, band, rng),
           "report": table(p[(pred["parts"] == "report") & ~held], pred["labels"][(pred["parts"] == "report") & ~held],
                           pred["sources"][(pred["parts"] == "report") & ~held], t, band, rng)}
    if held.any():
        out["held_out_whole"] = table(p[held], pred["labels"][held], pred["sources"][held], t, band, rng)
    return out


def probe(x: np.ndarray, sources: np.ndarray, seed: int = 0) -> float:
    """5-fold accuracy of a logistic regression telling the sources apart from `x`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, x.astype(np.float32), sources, cv=folds).mean())


def probe_report(folder: Path, args) -> dict:
    """The source probe on validation films, at most PROBE_PER_SOURCE per source, for three sets of features."""
    from pneumonia.serve.lung_view import LungReader
    from pneumonia.serve.runtime import Classifier
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.segmenter import load_segmenter
    with np.load(folder / "predictions.npz") as f:
        rows, pooled, src = f["rows"], f["pooled"], f["sources"]
        imagenet, imagenet_rows = f["imagenet_pooled"], f["imagenet_rows"]
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.permutation(np.flatnonzero(src[np.isin(rows, imagenet_rows)] == s))[:PROBE_PER_SOURCE]
                           for s in np.unique(src)])
    chosen = rows[np.isin(rows, imagenet_rows)][pick]
    films = load_films(args.adults, args.hospitals, args.more)
    children = json.loads((Path(args.children) / "config.json").read_text())
    views, _, _, _ = LungReader(load_segmenter(args.segmenter), "crop+blur").read(films.canons[chosen])
    from pneumonia.serve.imaging import grey_to_rgb
    _, child_pooled = Classifier.load(args.children, children, "f32")(grey_to_rgb(views))
    labels = films.sources[chosen]
    return {"films": {s: int((labels == s).sum()) for s in np.unique(labels)}, "chance": float(1 / len(set(labels))),
            "imagenet": probe(imagenet[np.searchsorted(imagenet_rows, chosen)], labels),
            "children_served": probe(child_pooled, labels),
            "adult_reader": probe(pooled[np.searchsorted(rows, chosen)], labels)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the adult_reader --out folder")
    for flag in ("--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    p.add_argument("--children", default="model", help="the served children's model folder (for the probe)")
    p.add_argument("--segmenter", default="model/lungs.keras")
    args = p.parse_args(argv)
    run, rng = Path(args.run), np.random.default_rng(0)
    report = {name: reader_report(run / name, rng) for name in ("reader", "held_out") if (run / name).is_dir()}
    report["source_probe"] = probe_report(run / "reader", args)
    (run / "adult_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1)[:20000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
