"""What the notebook shows of a trained model folder: the test table with intervals, the validity table, Grad-CAM overlays."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pneumonia.config import METRICS_FILE
from pneumonia.report import card, sections
from pneumonia.report.figures import FIGURES, plt
from pneumonia.serve.imaging import load_image
from pneumonia.train import data


def results_markdown(folder: str | Path) -> str:
    """The model card's test table (95% bootstrap intervals) and validity table, as Markdown."""
    m = json.loads((Path(folder) / METRICS_FILE).read_text())
    lines = [f"**Test split** ({m['n']} X-rays, at the threshold fixed on validation)", "", *card.test_table_lines(m)]
    validity = sections.validity_lines(m)
    if validity:   # without the card's own heading
        lines += ["", "**Where the answers come from** (swap test, lungs hidden, heat in the lungs)",
                  *validity[1:]]
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


def white_lung_row(predictor, data_dir: str | Path, strengths=(0.0, 0.5, 0.85, 1.0)):
    """A healthy test X-ray with one lung whitened toward the mediastinum's grey
    at each strength (pneumonia.train.opacity.whiten_lung, the check no training
    saw), each as the app answers it."""
    from pneumonia.serve.imaging import canonical
    from pneumonia.train.opacity import whiten_lung   # cv2: imported only for this figure
    paths, labels = data.list_split(data_dir, "test")
    canon = canonical(load_image(paths[int(np.flatnonzero(labels == 0)[0])]))
    mask = predictor.reader.find(canon[None])[0].mask
    fig, axes = plt.subplots(1, len(strengths), figsize=(2.6 * len(strengths), 3.0), squeeze=False)
    for ax, s in zip(axes.ravel(), strengths):
        r = predictor.analyze_array(whiten_lung(canon, mask, 0, s) if s else canon)
        ax.imshow(r["overlay"] if r.get("decision") else canon, cmap="gray")
        answer = f"{r['decision']} (P = {r['probability_pneumonia']:.2f})" if r.get("decision") else "refused"
        ax.set_title(f"one lung whitened {s:.0%}\n{answer}", fontsize=9)
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
