"""Where the served model comes from, and what the app says about it."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .config import EMBEDDED_MODEL_DIR, HUB_MODEL_REPO, METRICS_FILE
from .hub import HubError, fetch_model
from .lung_view import LungReader
from .model import ModelFolderError, load_model_folder
from .ood import OOD_FILE, OODGuard
from .predictor import Predictor
from .segmentation import SegmenterError

log = logging.getLogger(__name__)


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
        v = (m or {}).get("validity", {}).get("test")
        if v:
            lines += ["", f"Where its answers come from (test split): pasting one X-ray's lungs into another, "
                      f"the answer follows the lungs (AUC {v['swap_lungs_auc']:.2f}) rather than the "
                      f"surroundings ({v['swap_surroundings_auc']:.2f}); with the lungs hidden its AUC is "
                      f"{v['hidden_auc']:.2f}; {v['heat_in_lungs']['all']:.0%} of the heatmap falls on the lungs."]
        a = (m or {}).get("adult_transfer")
        if a:
            lines += ["", f"On adult X-rays from another hospital (NIH, noisy labels) its ROC AUC is "
                      f"{a['roc_auc']:.2f}: it was trained on children aged 1-5 and is not meant for adults."]
        lines += ["", "Trained on Chest X-Ray Images (Pneumonia), Kermany et al. 2018, CC BY 4.0; "
                  "sample images are from its test split."]
        return "\n".join(lines)


def local_revision(config_commit: str | None) -> str:
    return f"embedded@{(config_commit or 'unknown')[:12]}"


def load_folder(folder: str | Path, source: str, origin: str, revision: str | None = None) -> ServedModel:
    """Load a model folder into a ready Predictor. A folder that did not come
    from the Hub is versioned by the code commit that trained it."""
    folder = Path(folder)
    net, config = load_model_folder(folder)
    revision = revision or local_revision(config.get("git_commit"))
    metrics_path = folder / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    guard = OODGuard.load(folder / OOD_FILE) if (folder / OOD_FILE).is_file() else None
    try:
        reader = LungReader.from_config(folder, config)
    except SegmenterError as e:
        raise ModelFolderError(str(e)) from None
    return ServedModel(Predictor(net, config, revision, guard, reader), folder, source, origin, revision,
                       metrics)


def load(source: str | Path | None = None, revision: str | None = None) -> ServedModel:
    """Load the model named by `source`: a local model folder, or a Hub repo id
    (default `HUB_MODEL_REPO`) at `revision`. When the Hub model can't be had
    (no network and nothing cached, unknown repo, incomplete download), serve
    the committed `model/` folder and say why."""
    requested = str(source or HUB_MODEL_REPO)
    if Path(requested).is_dir():
        return load_folder(requested, requested, f"local folder `{requested}`")
    try:
        folder, commit = fetch_model(requested, revision)
        return load_folder(folder, requested, f"Hub repo `{requested}`", commit)
    except (HubError, ModelFolderError) as e:
        log.warning("serving the committed model: %s", e)
        return load_folder(EMBEDDED_MODEL_DIR, requested, f"the committed `model/` folder (fallback: {e})")


def load_from_environment() -> ServedModel:
    """`PNEUMONIA_MODEL` (Hub repo id or folder) and `PNEUMONIA_MODEL_REVISION`."""
    return load(os.environ.get("PNEUMONIA_MODEL") or None, os.environ.get("PNEUMONIA_MODEL_REVISION") or None)
