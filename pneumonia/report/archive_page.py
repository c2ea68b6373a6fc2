"""The archive report as files: report.json, report.html and its figures (pneumonia.report.archive computes it)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from pneumonia.report import figures

FILES = {"roc": "report_roc.png", "pr": "report_pr.png", "confusion": "report_confusion.png",
         "reliability": "report_reliability.png"}


def _band_figure(curves: dict, key: str, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    plt = figures.plt
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    x = np.asarray(curves["grid"])
    lo, hi = curves[f"{key}_band"]
    ax.fill_between(x, lo, hi, alpha=0.25, label="95% band (resampled films)")
    ax.plot(x, curves[key], label=title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right" if key == "roc" else "lower left")
    figures._save(fig, path)


def _cell(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}" if isinstance(v, float) else str(v)


def _row(name: str, s: dict) -> str:
    m = s.get("metrics")
    if m:
        t, ci = m["at_threshold"], m["ci95_at_threshold"]
        nums = [f"{t[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" for k in ("accuracy", "sensitivity", "specificity")]
        nums += [f"{m['roc_auc']:.3f} [{ci['roc_auc'][0]:.3f}, {ci['roc_auc'][1]:.3f}]", f"{m['ece_15']:.3f}"]
    else:
        nums = ["needs both classes among the answered"] + ["-"] * 4
    cells = [name, str(s["films"]), _cell(s["refused"]), _cell(s["cant_tell"]), *nums]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def write(folder: str | Path, rep: dict) -> Path:
    """report.json, the figures (for all films) and report.html in `folder`."""
    folder = Path(folder)
    (folder / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    m = rep["all"].get("metrics")
    images = ""
    if m:
        c = rep["all"]["curves"]
        _band_figure(c, "roc", "1 - specificity", "sensitivity", f"ROC AUC {m['roc_auc']:.3f}", folder / FILES["roc"])
        _band_figure(c, "pr", "recall (sensitivity)", "precision", f"PR AUC {m['pr_auc']:.3f}", folder / FILES["pr"])
        figures.confusion_matrix(m, folder / FILES["confusion"], "Your data")
        figures.reliability(m, folder / FILES["reliability"], "your data")
        images = ('<div style="display:flex;flex-wrap:wrap;gap:8px">'
                  + "".join(f'<img src="{f}" alt="{k}" width="420">' for k, f in FILES.items()) + "</div>")
    head = ("<tr><th>which</th><th>X-rays</th><th>refused</th><th>can't tell</th><th>accuracy [95% CI]</th>"
            "<th>sensitivity</th><th>specificity</th><th>ROC AUC</th><th>ECE</th></tr>")
    rows = _row("all", rep["all"]) + "".join(_row(name, s) for name, s in rep["groups"].items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{rep['title']}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>
<h1>{rep['title']}</h1>
<p>{rep['labelled_answers']} of your labelled X-rays were scored ({rep['labels_without_an_answer']} labels had no
answer in this folder). Accuracy, sensitivity and specificity are at the served threshold of the head that answered each
X-ray, among the X-rays answered NORMAL or PNEUMONIA; refused and "can't tell" are shares of all. A research demo,
not a medical device: these numbers describe the model on your files, nothing more.</p>
<table>{head}{rows}</table>{images}</body></html>"""
    (folder / "report.html").write_text(page)
    return folder / "report.html"
