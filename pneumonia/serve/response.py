"""What one answer returns to the page and to programs, from one decision.

The label's headline is the class decided at the operating threshold of the
head that answered, never simply the larger probability: with thresholds
away from 0.5 the two differ, and a page that showed both would contradict
itself. A refusal (no image, not an image, too small, no lungs, not a chest
X-ray) has one shape whatever refused it: no label, no overlay, and details
with the same keys as an answer, `answered` false, `refusal` saying why and
every answer field null.
Plain values in the shapes Gradio's Label and File data take, so the app
returns them as they are.
"""
from __future__ import annotations

from pathlib import Path

from pneumonia.pixels import ImageError
from pneumonia.serve.heatmap import save_jpeg
from pneumonia.serve.schema import DETAILS_SCHEMA

# Every response's details hold these keys, answered or refused (None where
# they do not apply): the schema's, in its order (docs/api.md documents them).
FIELDS = tuple(DETAILS_SCHEMA["properties"])
NOT_DETAILS = ("overlay", "probabilities")


def label(result: dict) -> dict | None:
    """The label output: the decision as headline, both calibrated probabilities
    as bars (None when the image was refused)."""
    if result.get("decision") is None:
        return None
    return {"label": result["decision"],
            "confidences": [{"label": c, "confidence": p} for c, p in result["probabilities"].items()]}


# What a refusal keeps: why, and which model and runtime refused it. Every answer field is null.
REFUSAL_KEEPS = ("refusal", "model_version", "runtime")


def details(result: dict) -> dict:
    """The JSON for programs: FIELDS in order, then any further keys of `result`.
    A refusal says why and nothing else: no head's number, routing or guard
    score that could be read as half an answer."""
    answered = result.get("decision") is not None
    if not answered:
        return {k: (result.get(k) if k in REFUSAL_KEEPS else None) for k in FIELDS} | {"answered": False}
    out = {k: result.get(k) for k in FIELDS}
    out["answered"] = True
    out.update({k: v for k, v in result.items() if k not in out and k not in NOT_DETAILS})
    return out


def file_data(path: str) -> dict:
    """A file the app wrote, as Gradio's FileData."""
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def respond(result: dict, folder: str | Path) -> tuple[dict | None, dict | None, dict]:
    """A `Predictor.analyze` result -> (label, overlay file written to `folder`,
    JSON details)."""
    overlay = None if result.get("overlay") is None else file_data(save_jpeg(result["overlay"], folder))
    return label(result), overlay, details(result)


def refuse(error: ImageError, model_version: str, runtime: dict | None = None) -> tuple[None, None, dict]:
    """An image refused before an answer, in the same shape as the guard's refusal."""
    return None, None, details({"refusal": {"reason": error.reason, "message": str(error)},
                                "model_version": model_version, "runtime": runtime})
