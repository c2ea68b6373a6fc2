"""The JSON schema of `details`, the answer for programs: field by field.

The app gives it to Gradio as the details output's API type (the API page and
`client.view_api()` show it), docs/details.schema.json holds the same schema
(tests check both, and validate real answers and refusals against it).
"""
from __future__ import annotations

from pneumonia.pixels import REASONS


def _nullable(schema: dict, description: str) -> dict:
    # anyOf rather than a type list: gradio_client's type reader takes only anyOf.
    return {"anyOf": [schema, {"type": "null"}], "description": description}


_NUMBER, _STRING, _BOOL = {"type": "number"}, {"type": "string"}, {"type": "boolean"}
_BOX = {"type": "object", "description": "pixels of the uploaded image, x1 and y1 exclusive",
        "properties": {k: {"type": "integer"} for k in ("x0", "y0", "x1", "y1")}}
_POLYGONS = {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}

def _subtype(decisions: list[str], description: str) -> dict:
    """A head under the answer: a number where it applies, else none and the reason; null for a refusal."""
    return _nullable({"type": "object", "properties": {
        "probability": _nullable(_NUMBER, "null where the head does not apply"),
        "threshold": _nullable(_NUMBER, "fixed on validation"),
        "decision": _nullable({"type": "string", "enum": decisions}, "at the threshold"),
        "head": _nullable(_STRING, "which head answered"),
        "reason": _nullable(_STRING, "why there is no number (null when there is one)"),
        "measured": _nullable(_STRING, "what it was measured on, in one line")}}, description + " (null for a refusal)")


DETAILS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "details",
    "description": ("One answer or one refusal; every key is always present (null where it does not apply). "
                    "A refusal keeps only `answered` (false), `refusal`, `model_version` and `runtime`."),
    "type": "object",
    "required": ["answered", "refusal", "decision", "probability_pneumonia", "threshold", "model_version"],
    "properties": {
        "answered": {**_BOOL, "description": "true: a decision was made; false: the image was refused"},
        "refusal": _nullable({"type": "object", "required": ["reason", "message"], "properties": {
            "reason": {"type": "string", "enum": list(REASONS)},
            "message": {"type": "string", "description": "what the page shows, in words"}}},
            "why the image got no answer (null when answered)"),
        "decision": _nullable({"type": "string", "enum": ["NORMAL", "PNEUMONIA", "UNCERTAIN"]},
                              "the class decided at `threshold`, or UNCERTAIN (can't tell) where "
                              "probability_pneumonia lies in `band`; the label output's headline"),
        "band": _nullable({"type": "object", "properties": {"low": _NUMBER, "high": _NUMBER}},
                          "the can't-tell band of the head that answered, fixed on validation: a probability "
                          "with low <= P < high is answered UNCERTAIN (null where the head has none)"),
        "probability_pneumonia": _nullable(_NUMBER, "calibrated P(PNEUMONIA) of the head that answered"),
        "threshold": _nullable(_NUMBER, "the operating threshold of the head that answered"),
        "heads": _nullable({"type": "array", "items": {"type": "object", "properties": {
            "head": {"type": "string", "enum": ["children's head", "adult head", "adult reader"]},
            "share": {**_NUMBER, "description": "its weight in the answer: 1 alone, 0 unused"},
            "probability": {**_NUMBER, "description": "its own calibrated P(PNEUMONIA)"},
            "threshold": {**_NUMBER, "description": "its own fixed threshold"}}}},
            "each head that could answer, with its share: probability_pneumonia and threshold are the "
            "share-weighted sums of theirs"),
        "opacity": _nullable({"type": "object", "properties": {
            "densities": {"type": "array", "items": _NUMBER,
                          "description": "each lung's density, the image's left first: where its median grey sits "
                                         "between the lungs' darkest and the mediastinum's grey (about 0.3 aerated, "
                                         "about 1 as dense as the mediastinum)"},
            "threshold": {**_NUMBER, "description": "a lung at or above it is opaque (fixed on validation)"},
            "opaque": {**_BOOL, "description": "a lung reaches the threshold"},
            "side": _nullable({"type": "string", "enum": ["image left", "image right"]}, "the opaque lung"),
            "probability": _nullable(_NUMBER, "the share of validation X-rays with a lung that dense that had the "
                                              "disease: probability_pneumonia is at least this (null when not opaque)"),
            "model_probability": {**_NUMBER, "description": "P(PNEUMONIA) of the head(s) alone, before the rule"}}},
            "the lung-density rule beside the classifier (null where the model has none or no lungs were read)"),
        "answered_by": _nullable({"type": "string", "enum": ["children's head", "adult head", "both heads, blended",
                                                             "adult reader",
                                                             "children's model and adult reader, blended"]},
                                 "which head answered"),
        "routing": _nullable(_STRING, "why that head answered, in words"),
        "looks_adult": _nullable(_BOOL, "adult_probability is above adult_threshold"),
        "adult_probability": _nullable(_NUMBER, "P(adult) from the population score"),
        "adult_threshold": _nullable(_NUMBER, "the P(adult) above which the adult head answers"),
        "population_notice": _nullable(_STRING, "the notice the page shows above an adult's answer"),
        "is_chest_xray": _nullable(_BOOL, "the guard's verdict (null when refused before it ran)"),
        "ood_score": _nullable(_NUMBER, "the guard's out-of-distribution score"),
        "ood_threshold": _nullable(_NUMBER, "scores above this are refused"),
        "heatmap_class": _nullable({"type": "string", "enum": ["NORMAL", "PNEUMONIA", "bacterial",
                                                               "tuberculosis signs", "opaque lung"]},
                                   "the class the Grad-CAM map explains; \"opaque lung\" where the lung-density "
                                   "rule decided: the map is then that lung"),
        "heatmap": _nullable({"type": "object", "properties": {
            "grid": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                     "description": "7x7 Grad-CAM cells in [0, 1], row 0 at the top"},
            "box": _BOX}}, "the map, laid over `box`"),
        "lungs": _nullable({"type": "object", "properties": {
            "view": {**_STRING, "description": "what the classifier reads (pneumonia.serve.lung_view)"},
            "box": _BOX,
            "area_pixels": {"type": "integer"}, "area_fraction": _NUMBER,
            "outline": {**_POLYGONS, "description": "each lung's contour, [x, y] pixels, the image's left first"},
            "read_outline": {**_POLYGONS, "description": "what the classifier reads sharply: the page's "
                                                         "white line and the edge of its colour"}}},
            "the lung fields found"),
        "pneumonia_type": _subtype(["bacterial", "viral"], "bacterial or viral, for a child answered PNEUMONIA; "
                                   "probability is P(bacterial)"),
        "tuberculosis": _subtype(["signs", "no signs"], "tuberculosis signs, for an adult's X-ray whatever the "
                                 "pneumonia answer; probability is P(TB signs)"),
        "model_version": {**_STRING, "description": "the model revision that answered"},
        "runtime": _nullable({"type": "object", "properties": {
            "precision": {"type": "string", "enum": ["f32", "bf16", "int8"],
                          "description": "what the classifier computes in on this server"},
            "chosen": {**_STRING, "description": "how that precision was chosen, in words"},
            "timings": _nullable({"type": "object", "additionalProperties": {"type": "object", "properties": {
                "alone_ms": _NUMBER, "batched_ms_per_image": _NUMBER}}},
                "each candidate's start-up timing on this CPU (null when only one was offered)"),
            "cpu_bf16": {**_BOOL, "description": "this CPU computes in bf16"},
            "adult_reader_precision": {"type": "string", "enum": ["f32", "bf16", "int8"],
                                       "description": "what the adult reader's network computes in (absent "
                                                      "without a reader)"}}},
            "the classifier's precision on this server and why (null for a runtime that does not say)"),
    },
}
