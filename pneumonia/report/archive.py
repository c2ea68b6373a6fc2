"""How the model does on your data: a report on an archive run's answers against your own labels.

    python -m pneumonia.batch FOLDER --out DIR --labels labels.csv      (scores, then reports)
    python -m pneumonia.report.archive DIR --labels labels.csv          (reports on answers already there)

`labels.csv` has `file` (as answers.csv names it, or its file name alone) and
`label` (NORMAL / PNEUMONIA, or 0 / 1); every other column is a group (a site,
an age band) reported apart. Writes DIR/report.json, DIR/report.html and its
PNGs: ROC and PR curves with 95% bands, accuracy, sensitivity and specificity
at the served threshold with 95% intervals, calibration (reliability diagram,
ECE), the confusion matrix, and the shares refused and "can't tell", for all
and per group. The numbers come from `pneumonia.metrics` and the figures from
`pneumonia.report.figures`, the code behind the model card's.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.metrics import evaluate_probs

LABELS = {"normal": 0, "0": 0, "pneumonia": 1, "1": 1}
GRID = np.linspace(0, 1, 101)


class LabelsError(ValueError):
    """A labels file without `file` and `label`, or with a label that is neither class."""


def read_labels(path: str | Path) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """({file: 0 or 1}, {file: {group column: value}})."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"file", "label"} <= set(reader.fieldnames or []):
            raise LabelsError(f"{path} needs the columns 'file' and 'label' (it has {', '.join(reader.fieldnames or [])})")
        rows = list(reader)
    bad = sorted({r["label"] for r in rows if r["label"].strip().lower() not in LABELS})
    if bad:
        raise LabelsError(f"labels must be NORMAL/PNEUMONIA or 0/1, not {', '.join(map(repr, bad[:5]))}")
    return ({r["file"]: LABELS[r["label"].strip().lower()] for r in rows},
            {r["file"]: {k: v for k, v in r.items() if k not in ("file", "label")} for r in rows})


def join(records: list[dict], labels: dict[str, int], groups: dict[str, dict]) -> list[dict]:
    """Each labelled answer: file, label, groups, answered, decision, probability, threshold."""
    by_name = {Path(k).name: k for k in labels}
    out = []
    for r in records:
        key = r["file"] if r["file"] in labels else by_name.get(Path(r["file"]).name)
        if key is not None:
            out.append({"file": r["file"], "label": labels[key], "groups": groups[key], "answered": r["answered"],
                        "decision": r.get("decision"), "p": r.get("probability_pneumonia"),
                        "threshold": r.get("threshold")})
    return out


def curve_bands(y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0) -> dict:
    """ROC (sensitivity at each 1 - specificity of GRID) and PR (precision at each recall of GRID),
    each as the curve and its 2.5 / 97.5 percentiles over resampled films."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    def both(yy, pp):
        fpr, tpr, _ = roc_curve(yy, pp)
        prec, rec, _ = precision_recall_curve(yy, pp)
        return np.interp(GRID, fpr, tpr), np.interp(GRID, rec[::-1], prec[::-1])
    rng, rocs, prs = np.random.default_rng(seed), [], []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            r, q = both(y[i], p[i])
            rocs.append(r), prs.append(q)
    roc, pr = both(y, p)
    return {"grid": GRID.tolist(), "roc": roc.tolist(), "roc_band": np.percentile(rocs, [2.5, 97.5], 0).tolist(),
            "pr": pr.tolist(), "pr_band": np.percentile(prs, [2.5, 97.5], 0).tolist()}


def summarise(rows: list[dict]) -> dict:
    """Shares refused and can't tell, then every metric on the answered films (where both classes are there)."""
    n = len(rows)
    said = [r for r in rows if r["answered"] and r["decision"] in ("NORMAL", "PNEUMONIA")]
    out = {"films": n, "refused": sum(not r["answered"] for r in rows) / n if n else float("nan"),
           "cant_tell": sum(r["decision"] == "UNCERTAIN" for r in rows) / n if n else float("nan"),
           "answered": len(said)}
    y = np.asarray([r["label"] for r in said])
    if len(said) and y.min() != y.max():
        p, t = np.asarray([r["p"] for r in said]), np.asarray([r["threshold"] for r in said])
        out["metrics"] = evaluate_probs(y, p, t)
    return out


def report(records: list[dict], labels_path: str | Path) -> dict:
    labels, groups = read_labels(labels_path)
    rows = join(records, labels, groups)
    out = {"title": "How the model does on your data", "labelled_answers": len(rows),
           "labels_without_an_answer": len(labels) - len(rows), "all": summarise(rows), "groups": {}}
    said = [r for r in rows if r["answered"] and r["decision"] in ("NORMAL", "PNEUMONIA")]
    if "metrics" in out["all"]:
        out["all"]["curves"] = curve_bands(np.asarray([r["label"] for r in said]), np.asarray([r["p"] for r in said]))
    for column in sorted({k for r in rows for k in r["groups"]}):
        for value in sorted({r["groups"].get(column, "") for r in rows}):
            out["groups"][f"{column} = {value}"] = summarise([r for r in rows if r["groups"].get(column, "") == value])
    return out


def write_report(folder: str | Path, labels_path: str | Path) -> Path:
    """Report on DIR/answers.jsonl against the labels; returns report.html's path."""
    from pneumonia.report.archive_page import write
    lines = (Path(folder) / "answers.jsonl").read_text().splitlines()
    return write(folder, report([json.loads(line) for line in lines if line.strip()], labels_path))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="DIR", help="an archive run's --out folder (answers.jsonl)")
    p.add_argument("--labels", required=True, help="CSV with file and label (and any group columns)")
    args = p.parse_args(argv)
    try:
        print(write_report(args.folder, args.labels))
    except (LabelsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
