"""Evaluation figures written into the model folder (PNG, matplotlib/seaborn)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

FIGURES = {
    "confusion": "confusion_matrix.png",
    "roc": "roc_curve.png",
    "reliability": "reliability_diagram.png",
    "training": "training_curves.png",
}


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(metrics: dict, path: Path, where: str = "Test split") -> None:
    m = metrics["at_threshold"]
    cm = np.asarray(m["confusion_matrix"]["rows_true_cols_pred"])
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    names = m["confusion_matrix"]["labels"]
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False,
                xticklabels=names, yticklabels=names, ax=ax)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(f"{where}, " + (f"threshold {m['threshold']:.3f}" if m["threshold"] is not None
                                   else "each head's own threshold"))
    _save(fig, path)


def roc(labels: np.ndarray, probs: np.ndarray, metrics: dict, path: Path) -> None:
    fpr, tpr, _ = roc_curve(labels, probs)
    m = metrics["at_threshold"]
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(fpr, tpr, label=f"ROC AUC {metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
    ax.scatter([1 - m["specificity"]], [m["sensitivity"]], color="red", zorder=3,
               label="operating threshold")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("Sensitivity")
    ax.set_title("ROC, test split")
    ax.legend(loc="lower right")
    _save(fig, path)


def reliability(metrics: dict, path: Path, where: str = "test split") -> None:
    bins = [b for b in metrics["reliability"] if b["count"]]
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8, label="perfect calibration")
    ax.bar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["frac_positive"] for b in bins],
           width=1 / 15, edgecolor="black", alpha=0.7, label="fraction PNEUMONIA")
    ax.set_xlabel("Predicted PNEUMONIA probability (15 bins)")
    ax.set_ylabel("Observed fraction PNEUMONIA")
    ax.set_title(f"Reliability, {where} (ECE {metrics['ece_15']:.3f})")
    ax.legend(loc="upper left")
    _save(fig, path)


def training_curves(history: list[dict], path: Path) -> None:
    _save(curves_figure(history), path)


def curves_figure(history: list[dict]):
    """Loss and validation ROC AUC per epoch (a notebook redraws it as epochs come)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.4))
    step = np.arange(1, len(history) + 1)
    ax1.plot(step, [h["loss"] for h in history], label="train loss")
    ax1.plot(step, [h["val_loss"] for h in history], label="validation loss")
    ax2.plot(step, [h["val_auc"] for h in history], color="green", label="validation ROC AUC")
    n_head = sum(h["phase"] == "head" for h in history)
    for ax in (ax1, ax2):
        ax.axvline(n_head + 0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("epoch (head, then fine-tuning after the dotted line)")
        ax.legend()
    ax1.set_title("Loss")
    ax2.set_title("Validation ROC AUC")
    fig.tight_layout()
    return fig


def write_all(folder: Path, labels: np.ndarray, probs: np.ndarray, metrics: dict,
              history: list[dict] | None) -> list[str]:
    confusion_matrix(metrics, folder / FIGURES["confusion"])
    roc(labels, probs, metrics, folder / FIGURES["roc"])
    reliability(metrics, folder / FIGURES["reliability"])
    written = [FIGURES["confusion"], FIGURES["roc"], FIGURES["reliability"]]
    if history:
        training_curves(history, folder / FIGURES["training"])
        written.append(FIGURES["training"])
    return written
