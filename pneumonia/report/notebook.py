"""What the notebook shows of a trained model folder: the test table with intervals, the validity table, Grad-CAM overlays."""
from __future__ import annotations

import json
from pathlib import Path

from pneumonia.config import METRICS_FILE
from pneumonia.report.figures import FIGURES, plt
from pneumonia.serve.imaging import load_image
from pneumonia.train import data

TEST_ROWS = (("accuracy", "accuracy"), ("sensitivity", "sensitivity (recall)"), ("specificity", "specificity"),
             ("roc_auc", "ROC AUC"))
VALIDITY_ROWS = (("swap_lungs_auc", "swap test, AUC against the pasted lungs' label", ">= 0.90"),
                 ("swap_surroundings_auc", "swap test, AUC against the surroundings' label", "<= 0.60"),
                 ("hidden_auc", "ROC AUC with the lungs hidden", "<= 0.65"))


def _cell(value: float, ci: list[float] | None) -> str:
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def results_markdown(folder: str | Path) -> str:
    """The test split's numbers at the operating threshold (95% bootstrap
    intervals) and the validity tests on test and validation, as Markdown."""
    m = json.loads((Path(folder) / METRICS_FILE).read_text())
    t, ci = {**m["at_threshold"], "roc_auc": m["roc_auc"]}, m["ci95_at_threshold"]
    lines = [f"**Test split** ({m['n']} X-rays, at the threshold fixed on validation; 95% CI)", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_cell(t[key], ci.get(key))} |" for key, name in TEST_ROWS]
    lines += [f"| ECE (15 bins) | {m['ece_15']:.3f} |", ""]
    v = m.get("validity")
    if v:
        lines += ["**Where the answers come from** (`pneumonia.report.validity`)", "",
                  "| test | test split | validation split | goal |", "|---|---|---|---|"]
        for key, name, goal in VALIDITY_ROWS:
            cells = [_cell(v[part][key], v[part]["ci95"].get(key)) if key in v.get(part, {}) else ""
                     for part in ("test", "validation")]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} | {goal} |")
        heat = v["test"].get("heat_in_lungs")
        if heat:
            lines.append(f"| Grad-CAM mass inside the dilated lungs | {heat['all']:.3f} | | >= 0.85 |")
    return "\n".join(lines)


def figure_files(folder: str | Path) -> list[Path]:
    """The evaluation figures the folder holds: confusion matrix, ROC, reliability diagram, training curves."""
    return [Path(folder) / f for f in FIGURES.values() if (Path(folder) / f).is_file()]


def overlay_grid(predictor, data_dir: str | Path, per_class: int = 4, seed: int = 0):
    """Grad-CAM overlays (with the lungs' outline) of `per_class` seeded test
    X-rays of each class, as the app answers them, titled with the true class
    and the decision."""
    paths, labels = data.list_split(data_dir, "test")
    paths, labels = data.limit_per_class(paths, labels, per_class, seed)
    fig, axes = plt.subplots(2, per_class, figsize=(2.6 * per_class, 5.6), squeeze=False)
    for ax, path, label in zip(axes.ravel(), paths, labels):
        r = predictor.analyze(path)
        if r.get("decision"):
            ax.imshow(r["overlay"])
            title = f"{r['decision']} (P = {r['probability_pneumonia']:.2f})"
        else:   # the guard's refusal: the X-ray as uploaded, no answer
            ax.imshow(load_image(path), cmap="gray")
            title = "refused: not like the training X-rays"
        ax.set_title(f"true {predictor.classes[label]}\n{title}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    """A figure as PNG bytes, closed (shown the same under any matplotlib backend)."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
