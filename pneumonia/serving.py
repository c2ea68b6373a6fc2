"""Where the served model comes from, and what the app says about it."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import EMBEDDED_MODEL_DIR, METRICS_FILE
from .model import load_model_folder
from .predictor import Predictor


@dataclass
class ServedModel:
    predictor: Predictor
    folder: Path
    source: str          # what was asked for
    origin: str          # where it was actually loaded from, in words
    revision: str
    metrics: dict | None

    def panel_markdown(self) -> str:
        cfg = self.predictor.config
        lines = [
            f"**Model**: {self.origin}  ",
            f"**Revision**: `{self.revision}`  ",
            f"**Operating threshold**: P(PNEUMONIA) >= {cfg['threshold']:.3f} "
            f"({cfg.get('threshold_rule', '')}); temperature {cfg['temperature']:.3f}.",
        ]
        m = self.metrics
        if m:
            t, ci = m["at_threshold"], m["ci95_at_threshold"]
            lines += [
                "",
                f"Test split ({m['n']} images, never used to choose anything), at the threshold:",
                "",
                "| accuracy | sensitivity | specificity | ROC AUC | PR AUC | Brier | ECE |",
                "|---|---|---|---|---|---|---|",
                f"| {t['accuracy']:.3f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}] "
                f"| {t['sensitivity']:.3f} | {t['specificity']:.3f} | {m['roc_auc']:.3f} "
                f"| {m['pr_auc']:.3f} | {m['brier']:.3f} | {m['ece_15']:.3f} |",
            ]
        lines += ["", "Trained on Chest X-Ray Images (Pneumonia), Kermany et al. 2018, CC BY 4.0; "
                  "sample images are from its test split."]
        return "\n".join(lines)


def load_folder(folder: str | Path, source: str, origin: str, revision: str) -> ServedModel:
    """Load a model folder into a ready Predictor."""
    folder = Path(folder)
    net, config = load_model_folder(folder)
    metrics_path = folder / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return ServedModel(Predictor(net, config, revision), folder, source, origin, revision, metrics)


def local_revision(config_commit: str | None) -> str:
    return f"embedded@{(config_commit or 'unknown')[:12]}"


def load(source: str | Path | None = None, revision: str | None = None) -> ServedModel:
    """Load the model named by `source`: a local model folder (default: the
    committed `model/`)."""
    folder = Path(source) if source else EMBEDDED_MODEL_DIR
    served = load_folder(folder, str(source or folder), f"local folder `{folder}`", "local")
    served.revision = served.predictor.version = local_revision(served.predictor.config.get("git_commit"))
    return served


def load_from_environment() -> ServedModel:
    """`PNEUMONIA_MODEL` / `PNEUMONIA_MODEL_REVISION`, else the default."""
    return load(os.environ.get("PNEUMONIA_MODEL") or None, os.environ.get("PNEUMONIA_MODEL_REVISION") or None)
