"""From an image file to a calibrated answer, who it is valid for, and its Grad-CAM overlay.

No TensorFlow here: the networks come in as plain callables (the OpenVINO
runtime at serving, `gradcam.Activations` over a Keras model elsewhere).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumonia.config import NO_LUNGS
from pneumonia.serve.guard import VERDICT, OODGuard
from pneumonia.serve.heatmap import PREDICTED, for_display, linear_cam, overlay
from pneumonia.serve.imaging import ImageError, canonical, grey_to_rgb, load_image
from pneumonia.serve.lung_view import LungReader, mask_to_image, outline_polygons, to_image
from pneumonia.serve.routing import ANSWERED_BY, LinearHead, Population, answer
from pneumonia.serve.subtypes import Subtypes, describe

# Heatmap targets besides the classes: a head under the answer (a Subtypes attribute) -> the class it explains.
SUBTYPE_TARGETS = {"bacterial": "bacterial", "tuberculosis": "tuberculosis signs"}
# RGB (n, 224, 224, 3) -> (last conv block (n, 7, 7, C), pooled features (n, C))
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class NoLungsError(ImageError):
    """No plausible pair of lungs: the image is refused like any unreadable input."""

    def __init__(self, message: str = NO_LUNGS + "."):
        super().__init__(message, "no_lungs")


class Predictor:
    """Wraps a loaded model folder: `analyze(file)` -> plain values for the UI/API.

    One forward pass gives the last conv block and the pooled features; the
    guard, the population score, the head's logit and its Grad-CAM (exact for
    this head, `heatmap.linear_cam`) are all read from those.
    """

    def __init__(self, forward: Forward, head: LinearHead, config: dict, version: str = "local",
                 guard: OODGuard | None = None, reader: LungReader | None = None,
                 population: Population | None = None, notice: str | None = None,
                 subtypes: Subtypes | None = None):
        self.forward = forward
        self.head = head
        self.config = config
        self.guard = guard
        self.population = population
        self.notice = notice
        self.subtypes = subtypes
        self.version = version
        self.reader = reader or LungReader(None)
        # Which precision the classifier runs at, and why (pneumonia.serve.runtime.choose).
        self.runtime = getattr(forward, "runtime", None)
        self.classes = list(config["class_names"])
        self.threshold = head.threshold

    def _who(self, pooled: np.ndarray) -> dict:
        """Is it a chest X-ray (guard), is it an adult's, and which head answers?"""
        out: dict = {}
        if self.guard is not None:
            score = float(self.guard.score(pooled)[0])
            out.update(is_chest_xray=self.guard.accepts(score), ood_score=score,
                       ood_threshold=self.guard.threshold)
        if self.population is not None:
            p_adult = float(self.population.adult_probability(pooled)[0])
            adult = bool(self.population.looks_adult(p_adult))
            threshold = self.population.gate.threshold
            if self.population.blend:
                by, why = ANSWERED_BY["blend"], (f"the two heads weighted by P(adult) = {p_adult:.1%}: "
                                                 f"{p_adult:.1%} adult head, {1 - p_adult:.1%} children's head")
            else:
                by = ANSWERED_BY["adult" if adult else "children"]
                why = f"P(adult) = {p_adult:.1%} is {'above' if adult else 'at or below'} {threshold:.1%}"
            out.update(looks_adult=adult, adult_probability=p_adult, adult_threshold=threshold,
                       answered_by=by, routing=why, population_notice=self.notice if adult else None)
        return out

    def analyze_array(self, grey: np.ndarray, target: int | str = PREDICTED) -> dict:
        """(H, W) uint8 X-ray -> probabilities, decision, lungs, Grad-CAM cells and
        the overlay (at the X-ray's size up to `config.OVERLAY_MAX_SIDE`, RGB).

        Raises NoLungsError when the model reads lungs and none are found. An
        image the guard refuses gets the verdict and its score, and no
        probabilities, decision or overlay.
        """
        (out,) = self.analyze_arrays([grey], target)
        if isinstance(out, ImageError):
            raise out
        return out

    def analyze_arrays(self, greys: list[np.ndarray], target: int | str = PREDICTED) -> list[dict | ImageError]:
        """`analyze_array` for many X-rays at once: one segmenter call and one
        classifier call for all (what an archive needs), each answer the same as
        alone. An X-ray without lungs gets its NoLungsError in its place."""
        views, boxes, lungs, found = self.reader.read(np.stack([canonical(g) for g in greys]))
        read = np.flatnonzero(found)
        out: list[dict | ImageError] = [NoLungsError() for _ in greys]
        if len(read):
            activations, pooled = self.forward(grey_to_rgb(views[read]))
            for k, i in enumerate(read):
                out[i] = self._answer(greys[i], lungs[i], boxes[i], activations[k:k + 1], pooled[k:k + 1], target)
        return out

    def _answer(self, grey: np.ndarray, lung, box, activations: np.ndarray, pooled: np.ndarray,
                target: int | str) -> dict:
        """One X-ray's answer from its lungs and its classifier outputs (batch of one)."""
        h, w = grey.shape[:2]
        if lung is not None and not lung.found:  # the whole-image view reads on without lungs
            lung = None
        # What the classifier reads sharply: the overlay's colour and its white line.
        seen = self.reader.seen(lung, box)
        lung_info = None if lung is None else {
            "view": self.reader.variant, "box": box.as_dict(w, h),
            "area_pixels": int(round(lung.mask.mean() * h * w)), "area_fraction": float(lung.mask.mean()),
            "outline": outline_polygons(lung.mask, (h, w)),
            "read_outline": outline_polygons(seen, (h, w))}
        who = self._who(pooled)
        if not who.get("is_chest_xray", True):
            return {"refusal": {"reason": "not_chest_xray", "message": VERDICT}, **who, "probabilities": None,
                    "probability_pneumonia": None, "threshold": None, "decision": None, "heatmap_class": None,
                    "lungs": lung_info, "heatmap": None, "model_version": self.version, "runtime": self.runtime,
                    "overlay": None}
        probs, thresholds, share, weights = answer(pooled, self.head, self.population)
        p, threshold = float(probs[0]), float(thresholds[0])
        heads = [{"head": ANSWERED_BY["children"], "share": 1.0 - float(share[0]),
                  "probability": float(self.head.probability(pooled)[0]), "threshold": self.head.threshold}]
        if self.population is not None:
            adult = self.population.adult
            heads.append({"head": ANSWERED_BY["adult"], "share": float(share[0]),
                          "probability": float(adult.probability(pooled)[0]), "threshold": adult.threshold})
        decided = int(p >= threshold)
        sub = getattr(self.subtypes, target, None) if target in SUBTYPE_TARGETS else None
        if sub is not None:   # a head under the answer: linear on the same features, so exact too
            cam = linear_cam(activations, sub.w, np.array([True]))[0]
            heatmap_class = SUBTYPE_TARGETS[target]
        else:                 # a class, or the decided one (also for a head this folder lacks)
            explained = target if target in (0, 1) else decided
            cam = linear_cam(activations, weights[0], np.array([explained == 1]))[0]
            heatmap_class = self.classes[explained]
        result = {
            "refusal": None,
            **who,
            "probabilities": {self.classes[0]: 1.0 - p, self.classes[1]: p},
            "probability_pneumonia": p,
            "threshold": threshold,
            "heads": heads,
            "decision": self.classes[decided],
            "heatmap_class": heatmap_class,
            "lungs": lung_info,
            # The map's cells over the box the classifier read, for programs
            # that draw it themselves (at any resolution).
            "heatmap": {"grid": np.round(cam, 3).tolist(), "box": box.as_dict(w, h)},
            "model_version": self.version,
            "runtime": self.runtime,
            "overlay": self._overlay(grey, cam, box, seen if lung is not None else None),
        }
        return {**result, **describe(self.subtypes, pooled, result)}

    def _overlay(self, grey: np.ndarray, cam: np.ndarray, box, seen: np.ndarray | None) -> np.ndarray:
        """The map over the X-ray at display size, coloured only inside `seen`
        (what the classifier reads, at 224) and that region outlined: the white
        line and the colour's edge are one line, so no colour falls outside it.
        `seen` None (the whole-image view): coloured all over, no line."""
        shown = for_display(grey)
        shape = shown.shape[:2]
        region = None if seen is None else mask_to_image(seen, shape)
        return overlay(shown, to_image(cam, box, shape), region, region)

    def analyze(self, source: str | Path | bytes, target: int | str = PREDICTED) -> dict:
        """Read and validate an image file, then `analyze_array`. Raises ImageError."""
        return self.analyze_array(load_image(source), target)
