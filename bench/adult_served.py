"""The adult sources as users get them: every report-part film of the seven
adult sources through the served model (the archive CLI, `pneumonia.batch`,
the app's own Predictor), source by source. Report only: nothing is chosen here.

    python bench/adult_served.py --adults adult_cxr --hospitals lung_masks --more adult_more \\
        --out runs/adult_served [--model model] [--record model]

Per source: recognised (not refused as "not a chest X-ray"), answered (not
refused, not "can't tell"; of the normal and opacity films where a source has them), and among the answered, normals called NORMAL and
opacity called PNEUMONIA; ROC AUC with a 95% interval where a source has both
classes; what TB and nodule films are called. `--record FOLDER` writes the
table to FOLDER/metrics.json under `adult_reader.served`; with `--run`
(the adult_reader run folder) also its report's held-out sources, Keras
report-part numbers and source probe (`pneumonia.report.adult_report`).
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.metrics import bootstrap_ci  # noqa: E402
from pneumonia.train.adult_sources import LABEL_NAMES, NORMAL, OPACITY, load_films  # noqa: E402

# A film's first path part -> where its file lies: (the --flag, the subfolder)
FOLDERS = {"adult_cxr": ("adults", ""), "lung_masks": ("hospitals", "images")}


def film_path(name: str, args) -> Path:
    top, rest = name.split("/", 1)
    if top in FOLDERS:
        flag, sub = FOLDERS[top]
        return Path(getattr(args, flag)) / sub / rest
    return Path(args.more) / top / rest


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def table(answers: dict[str, dict], films: list[tuple[str, str, int]]) -> dict:
    out: dict = {}
    for source in sorted({s for _, s, _ in films}):
        rows = [(answers[f], y) for f, s, y in films if s == source and f in answers]
        r: dict = {"n": len(rows)}
        refused = [a["reason"] for a, _ in rows if a["answered"] != "True"]
        r["recognised"] = 1 - sum(x == "not_chest_xray" for x in refused) / len(rows)
        r["refused"] = {k: refused.count(k) for k in sorted(set(refused))}
        said = [(a["decision"], y) for a, y in rows if a["answered"] == "True"]
        # answered (neither refused nor "can't tell"): among the normal and opacity films, where there are any
        two = [y for _, y in rows if y in (NORMAL, OPACITY)]
        r["answered"] = (sum(d != "UNCERTAIN" for d, y in said if y in (NORMAL, OPACITY) or not two)
                         / (len(two) or len(rows)))
        for y, name, right in ((NORMAL, "normals_called_normal", "NORMAL"), (OPACITY, "opacity_called_pneumonia",
                                                                                "PNEUMONIA")):
            given = [d for d, yy in said if yy == y and d != "UNCERTAIN"]
            if given:
                r[name] = sum(d == right for d in given) / len(given)
        for y in sorted({y for _, y in rows} - {NORMAL, OPACITY}):
            decided = [d for d, yy in said if yy == y]
            r[f"{LABEL_NAMES[y]} films"] = {d: decided.count(d) / len(decided) for d in sorted(set(decided))}
        two = [(float(a["probability_pneumonia"]), y) for a, y in rows if a["answered"] == "True" and y in (0, 1)]
        if len({y for _, y in two}) == 2:
            p, y = np.array([t[0] for t in two]), np.array([t[1] for t in two])
            r["roc_auc_ci95"] = bootstrap_ci(y, p, 0.5)["roc_auc"]
            from sklearn.metrics import roc_auc_score
            r["roc_auc"] = float(roc_auc_score(y, p))
        out[source] = r
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--adults", "--hospitals", "--more", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--record", help="model folder whose metrics.json gets the table")
    p.add_argument("--run", help="the adult_reader run folder (its adult_report.json joins the record)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    f = load_films(args.adults, args.hospitals, args.more, 0)
    rows = f.rows("report")
    films = [(str(film_path(f.files[i], args).resolve()), str(f.sources[i]), int(f.labels[i])) for i in rows]
    with open(out / "films.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "source", "finding"])
        w.writerows([(a, s, LABEL_NAMES[y]) for a, s, y in films])
    subprocess.run([sys.executable, "-m", "pneumonia.batch", str(out / "films.csv"), "--out", str(out / "answers"),
                    "--model", args.model, "--quiet"], check=True, cwd=ROOT)
    with open(out / "answers" / "answers.csv", newline="") as fh:
        answers = {r["file"]: r for r in csv.DictReader(fh)}
    result = {"what": "report parts of the adult sources through the served model (pneumonia.batch), by source",
              "cpu": cpu_name(), "sources": table(answers, films)}
    (out / "table.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.record:
        m = Path(args.record) / "metrics.json"
        metrics = json.loads(m.read_text())
        metrics.setdefault("adult_reader", {})["served"] = result
        if args.run:
            rep = json.loads((Path(args.run) / "adult_report.json").read_text())
            metrics["adult_reader"].update(held_out=rep["held_out"]["held_out_whole"],
                                           keras_report=rep["reader"]["report"], source_probe=rep["source_probe"])
        m.write_text(json.dumps(metrics, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
