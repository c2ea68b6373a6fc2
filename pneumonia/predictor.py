"""From an image file to a calibrated answer and its Grad-CAM overlay."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from .calibration import decision_logit, sigmoid
from .gradcam import PREDICTED, GradCAM, overlay
from .imaging import ImageError, canonical, load_image
from .lung_view import LungReader, mask_to_image, to_image
from .model import grey_to_rgb
from .ood import VERDICT, OODGuard
from .config import NO_LUNGS


class NoLungsError(ImageError):
    """No plausible pair of lungs: the image is refused like any unreadable input."""


class Predictor:
    """Wraps a loaded model folder: `analyze(file)` -> plain values for the UI/API."""

    def __init__(self, model: keras.Model, config: dict, version: str = "local",
                 guard: OODGuard | None = None, reader: LungReader | None = None):
        self.config = config
        self.guard = guard
        self.version = version
        self.reader = reader or LungReader(None)
        self.classes = list(config["class_names"])
        self.temperature = float(config["temperature"])
        self.threshold = float(config["threshold"])
        self.decision_logit = decision_logit(self.temperature, self.threshold)
        self.cam = GradCAM(model, config.get("last_conv_layer", "conv5_block3_out"))

    def analyze_array(self, grey: np.ndarray, target: int = PREDICTED) -> dict:
        """(H, W) uint8 X-ray -> probabilities, decision, lungs and overlay (H, W, 3).

        Raises NoLungsError when the model reads lungs and none are found. An
        image the guard refuses gets the verdict and its score, and no
        probabilities, decision or overlay.
        """
        views, boxes, lungs, found = self.reader.read(canonical(grey)[None])
        if not found[0]:
            raise NoLungsError(NO_LUNGS + ".")
        logits, maps, pooled = self.cam(grey_to_rgb(views), target, self.decision_logit)
        h, w = grey.shape[:2]
        outline = mask_to_image(lungs[0].mask, (h, w)) if lungs[0] is not None else None
        lung_info = None if outline is None else {
            "view": self.reader.variant, "box": boxes[0].as_dict(w, h),
            "area_pixels": int(outline.sum()), "area_fraction": float(outline.mean())}
        ood = {}
        if self.guard is not None:
            score = float(self.guard.score(pooled)[0])
            ood = {"is_chest_xray": self.guard.accepts(score), "ood_score": score,
                   "ood_threshold": self.guard.threshold}
            if not ood["is_chest_xray"]:
                return {"verdict": VERDICT, **ood, "probabilities": None, "probability_pneumonia": None,
                        "threshold": self.threshold, "decision": None, "heatmap_class": None,
                        "lungs": lung_info, "model_version": self.version, "overlay": None}
        p = float(sigmoid(logits[0] / self.temperature))
        decision = self.classes[1] if p >= self.threshold else self.classes[0]
        return {
            **ood,
            "probabilities": {self.classes[0]: 1.0 - p, self.classes[1]: p},
            "probability_pneumonia": p,
            "threshold": self.threshold,
            "decision": decision,
            "heatmap_class": decision if target == PREDICTED else self.classes[target],
            "lungs": lung_info,
            "model_version": self.version,
            "overlay": overlay(grey, to_image(maps[0], boxes[0], (h, w)), outline, boxes[0].region(w, h)),
        }

    def analyze(self, source: str | Path | bytes, target: int = PREDICTED) -> dict:
        """Read and validate an image file, then `analyze_array`. Raises ImageError."""
        return self.analyze_array(load_image(source), target)
