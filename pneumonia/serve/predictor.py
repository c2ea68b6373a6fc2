"""From an image file to a calibrated answer, who it is valid for, and its Grad-CAM overlay.

No TensorFlow here: the networks come in as plain callables (the OpenVINO
runtime at serving, `gradcam.Activations` over a Keras model elsewhere).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumonia.config import NO_LUNGS
from pneumonia.serve.density import OpacityRule, lung_density, opaque_map
from pneumonia.serve.guard import VERDICT, OODGuard
from pneumonia.serve.heatmap import PREDICTED, for_display, linear_cam, overlay
from pneumonia.serve.imaging import ImageError, canonical, grey_to_rgb, load_image
from pneumonia.serve.lung_view import LungReader, mask_to_image, outline_polygons, to_image
from pneumonia.serve.routing import ANSWERED_BY, AdultReader, LinearHead, Population, answer, reader_share
from pneumonia.serve.subtypes import Subtypes, describe, opacity_decided

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
                 subtypes: Subtypes | None = None, adult_reader: AdultReader | None = None,
                 reader_forward: Forward | None = None, opacity_rule: OpacityRule | None = None):
        self.forward = forward
        self.head = head
        self.config = config
        self.guard = guard
        self.population = population
        self.notice = notice
        self.subtypes = subtypes
        self.opacity_rule = opacity_rule   # lung density beside the classifier (rules.WHITE_RULE 8)
        # The adult reader (rules.ADULT_RULE): its own network, run only for
        # the X-rays whose answer it has a share in.
        self.adult_reader = adult_reader if population is not None and reader_forward is not None else None
        self.reader_forward = reader_forward
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
            if self.adult_reader is not None:
                share = float(reader_share(self.population, p_adult))
                if 0 < share < 1:
                    by, why = ANSWERED_BY["reader_blend"], (
                        f"the two weighted by P(adult) = {p_adult:.1%}: {share:.1%} adult reader, "
                        f"{1 - share:.1%} children's model")
                else:
                    by = ANSWERED_BY["reader" if share else "children"]
                    why = f"P(adult) = {p_adult:.1%} is {'above' if adult else 'at or below'} {threshold:.1%}"
            elif self.population.blend:
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
        canons = np.stack([canonical(g) for g in greys])
        views, boxes, lungs, found = self.reader.read(canons)
        read = np.flatnonzero(found)
        out: list[dict | ImageError] = [NoLungsError() for _ in greys]
        if len(read):
            rgb = grey_to_rgb(views[read])
            activations, pooled = self.forward(rgb)
            adult = self._read_adults(rgb, pooled)
            for k, i in enumerate(read):
                out[i] = self._answer(greys[i], canons[i], lungs[i], boxes[i], activations[k:k + 1], pooled[k:k + 1],
                                      target, adult[k])
        return out

    def _read_adults(self, rgb: np.ndarray, pooled: np.ndarray) -> list[tuple | None]:
        """The adult reader's (share, conv block, pooled) for each X-ray it has a
        share in (accepted by the guard), None for the rest."""
        out: list[tuple | None] = [None] * len(rgb)
        if self.adult_reader is None:
            return out
        share = reader_share(self.population, self.population.adult_probability(pooled))
        if self.guard is not None:
            share = np.where(self.guard.score(pooled) <= self.guard.threshold, share, 0.0)
        ask = np.flatnonzero(share > 0)
        if len(ask):
            acts, feats = self.reader_forward(rgb[ask])
            for j, k in enumerate(ask):
                out[k] = (float(share[k]), acts[j:j + 1], feats[j:j + 1])
        return out

    def _answer(self, grey: np.ndarray, canon: np.ndarray, lung, box, activations: np.ndarray, pooled: np.ndarray,
                target: int | str, adult: tuple | None = None) -> dict:
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
        if self.adult_reader is not None:
            p, threshold, heads, cams = self._with_reader(activations, pooled, adult)
        else:
            probs, thresholds, share, weights = answer(pooled, self.head, self.population)
            p, threshold = float(probs[0]), float(thresholds[0])
            heads = [{"head": ANSWERED_BY["children"], "share": 1.0 - float(share[0]),
                      "probability": float(self.head.probability(pooled)[0]), "threshold": self.head.threshold}]
            if self.population is not None:
                head = self.population.adult
                heads.append({"head": ANSWERED_BY["adult"], "share": float(share[0]),
                              "probability": float(head.probability(pooled)[0]), "threshold": head.threshold})
            cams = [(1.0, activations, weights[0])]
        opacity = None if self.opacity_rule is None or lung is None else (
            self.opacity_rule.judge(lung_density(canon, lung.mask)) | {"model_probability": p})
        p = max(p, (opacity or {}).get("probability") or 0.0)
        decided = int(p >= threshold)
        # Can't tell: the adult reader answers (its share at least half) and P lies in its band.
        band = None
        if adult is not None and adult[0] >= 0.5:
            band = {"low": self.adult_reader.low, "high": self.adult_reader.high}
        uncertain = band is not None and self.adult_reader.uncertain(p)
        sub = getattr(self.subtypes, target, None) if target in SUBTYPE_TARGETS else None
        on_reader = target == "tuberculosis" and getattr(self.subtypes, "tuberculosis_reads", "") == "reader"
        if on_reader and adult is None:   # that line reads the adult reader's features, not run here
            sub = None
        if sub is not None:   # a head under the answer: linear on the same features, so exact too
            cam = linear_cam(adult[1] if on_reader else activations, sub.w, np.array([True]))[0]
            heatmap_class = SUBTYPE_TARGETS[target]
        else:                 # a class, or the decided one (also for a head this folder lacks)
            explained = target if target in (0, 1) else decided
            # Each network's map of the class, weighed by its share (one network: its map).
            cam = sum(share * linear_cam(acts, w, np.array([explained == 1]))[0] for share, acts, w in cams)
            heatmap_class = self.classes[explained]
            if target == PREDICTED and opacity_decided({"opacity": opacity, "threshold": threshold}):
                # The density rule decided, not the networks: its evidence is the opaque lung.
                cam = opaque_map(lung.mask, opacity["side"], box.pixels(*lung.mask.shape[::-1]), len(cam))
                heatmap_class = "opaque lung"
        result = {
            "refusal": None,
            **who,
            "probabilities": {self.classes[0]: 1.0 - p, self.classes[1]: p},
            "probability_pneumonia": p,
            "threshold": threshold,
            "heads": heads,
            "band": band,
            "opacity": opacity,
            "decision": "UNCERTAIN" if uncertain else self.classes[decided],
            "heatmap_class": heatmap_class,
            "lungs": lung_info,
            # The map's cells over the box the classifier read, for programs
            # that draw it themselves (at any resolution).
            "heatmap": {"grid": np.round(cam, 3).tolist(), "box": box.as_dict(w, h)},
            "model_version": self.version,
            "runtime": self.runtime,
            "overlay": self._overlay(grey, cam, box, seen if lung is not None else None),
        }
        return {**result, **describe(self.subtypes, pooled, result, None if adult is None else adult[2])}

    def _with_reader(self, activations: np.ndarray, pooled: np.ndarray, adult: tuple | None
                     ) -> tuple[float, float, list[dict], list[tuple]]:
        """(P(PNEUMONIA), threshold, heads, Grad-CAM parts) when the adult reader
        may answer: the children's model and the reader mixed by the reader's share."""
        child = self.head
        pc = float(child.probability(pooled)[0])
        heads = [{"head": ANSWERED_BY["children"], "share": 1.0, "probability": pc, "threshold": child.threshold}]
        if adult is None:
            return pc, child.threshold, heads, [(1.0, activations, child.w)]
        share, acts, feats = adult
        reader = self.adult_reader.head
        pr = float(reader.probability(feats)[0])
        heads[0]["share"] = 1.0 - share
        heads.append({"head": ANSWERED_BY["reader"], "share": share, "probability": pr, "threshold": reader.threshold})
        cams = [(1.0 - share, activations, child.w), (share, acts, reader.w)]
        return ((1 - share) * pc + share * pr, (1 - share) * child.threshold + share * reader.threshold, heads,
                [c for c in cams if c[0] > 0])

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
