"""What one answer returns to the page and to programs, from one decision.

The label's headline is the class decided at the operating threshold of the
head that answered, never simply the larger probability: with thresholds
away from 0.5 the two differ, and a page that showed both would contradict
itself. Plain values in the shapes Gradio's Label and File data take, so the
app returns them as they are.
"""
from __future__ import annotations

from pathlib import Path

from pneumonia.serve.heatmap import save_jpeg


def label(result: dict) -> dict | None:
    """The label output: the decision as headline, both calibrated probabilities
    as bars (None when the image was refused)."""
    if result.get("decision") is None:
        return None
    return {"label": result["decision"],
            "confidences": [{"label": c, "confidence": p} for c, p in result["probabilities"].items()]}


def file_data(path: str) -> dict:
    """A file the app wrote, as Gradio's FileData."""
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def respond(result: dict, folder: str | Path) -> tuple[dict | None, dict | None, dict]:
    """A `Predictor.analyze` result -> (label, overlay file written to `folder`,
    JSON details)."""
    details = {k: v for k, v in result.items() if k not in ("overlay", "probabilities")}
    overlay = None if result.get("overlay") is None else file_data(save_jpeg(result["overlay"], folder))
    return label(result), overlay, details
