"""One answer: the label, the decision and the JSON name the same class; the
overlay colours only what the model read; the map reaches programs as numbers."""
import json

import cv2
import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from pneumonia.serve.imaging import load_image
from pneumonia.serve.routing import LinearHead, Population
from pneumonia.serve.predictor import Predictor
from pneumonia.serve.response import label, respond

ADULT_THRESHOLD = 0.336


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def predictor_answering(served, p: float, adult: bool) -> Predictor:
    """The shipped networks with heads whose answer is P(PNEUMONIA) = p, from the
    children's head or (P(adult) pushed to 1) the adult head."""
    real = served.predictor
    n = len(real.head.w)
    child = LinearHead(np.zeros(n), logit(p), 1.0, real.head.threshold)
    gate = LinearHead(np.zeros(n), 20.0 if adult else -20.0, 1.0, 0.5)
    population = Population(gate, LinearHead(np.zeros(n), logit(p), 1.0, ADULT_THRESHOLD))
    return Predictor(real.forward, child, real.config, "test", real.guard, real.reader, population, "notice")


def sweep(threshold: float) -> list[float]:
    return [q for t in (threshold, 0.5) for q in (t - 1e-3, t - 1e-9, t, t + 1e-9, t + 1e-3)]


@pytest.mark.parametrize("adult", [False, True], ids=["children's head", "adult head"])
def test_label_names_the_class_decided_at_the_threshold_of_the_head_that_answered(shipped_served, adult, tmp_path):
    grey = load_image(EXAMPLES / "NORMAL_IM-0001-0001.jpeg")
    threshold = ADULT_THRESHOLD if adult else shipped_served.predictor.head.threshold
    between = 0
    for p in sweep(threshold):
        result = predictor_answering(shipped_served, p, adult).analyze_array(grey)
        head, overlay, details = respond(result, tmp_path)
        q = details["probability_pneumonia"]
        assert details["answered_by"] == ("adult head" if adult else "children's head")
        assert details["threshold"] == pytest.approx(threshold)
        expected = "PNEUMONIA" if q >= threshold else "NORMAL"
        assert head["label"] == details["decision"] == details["heatmap_class"] == expected, (p, q)
        # The bars stay the calibrated probabilities, whichever class heads the label.
        bars = {c["label"]: c["confidence"] for c in head["confidences"]}
        assert bars == pytest.approx({"NORMAL": 1 - q, "PNEUMONIA": q})
        between += (min(q, 0.5) < threshold <= max(q, 0.5) or min(q, threshold) < 0.5 <= max(q, threshold))
        assert Image.open(overlay["path"]).size == (grey.shape[1], grey.shape[0])
    assert between  # some answers lay between 0.5 and the threshold: the case that used to split


def test_every_refusal_has_one_shape(tmp_path):
    """The guard's refusal and an image refused before the networks ran reach a
    program the same way: no label, no overlay, the same keys, `refusal` saying
    why and every answer field null, even what the guard's pass computed (a
    wave's photo used to come back with P(adult) and "both heads, blended")."""
    from pneumonia.pixels import ImageError
    from pneumonia.serve.predictor import NoLungsError
    from pneumonia.serve.response import FIELDS, REFUSAL_KEEPS, refuse
    guard = respond({"refusal": {"reason": "not_chest_xray", "message": "This does not look like a chest X-ray"},
                     "decision": None, "probabilities": None, "overlay": None, "model_version": "v",
                     "is_chest_xray": False, "ood_score": 9.0, "adult_probability": 0.379, "looks_adult": False,
                     "answered_by": "both heads, blended", "routing": "the two heads weighted by P(adult)",
                     "lungs": {"area_fraction": 0.3}, "pneumonia_type": {"probability": None}}, tmp_path)
    shapes = [guard, refuse(NoLungsError(), "v"), refuse(ImageError("too small", "too_small"), "v")]
    for head, overlay, details in shapes:
        assert head is None and overlay is None
        assert tuple(details) == FIELDS and details["answered"] is False
        assert details["refusal"]["reason"] and details["refusal"]["message"]
        assert {k: v for k, v in details.items() if k not in ("answered", *REFUSAL_KEEPS) and v is not None} == {}
        assert details["model_version"] == "v"
    assert [d["refusal"]["reason"] for _, _, d in shapes] == ["not_chest_xray", "no_lungs", "too_small"]
    assert label({"decision": None}) is None


def test_identical_answers_get_files_of_their_own(shipped_served, tmp_path):
    """Two identical requests never share an overlay file (a shared one is
    rewritten while the other request's download reads it)."""
    result = shipped_served.predictor.analyze(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg")
    paths = {respond(result, tmp_path)[1]["path"] for _ in range(3)}
    assert len(paths) == 3
    images = [np.asarray(Image.open(p)) for p in paths]
    assert all(np.array_equal(images[0], im) for im in images[1:])


def test_overlay_colours_only_what_the_model_read_inside_its_white_line(shipped_served):
    """Outside what the model reads sharply (the dilated lungs in their box) the
    overlay is the X-ray as uploaded; the white line is that region's edge, so
    no colour lies outside the line users see."""
    predictor = shipped_served.predictor
    grey = load_image(EXAMPLES / "PNEUMONIA-bacterial_person100_bacteria_475.jpeg")
    grey = cv2.resize(grey, (700, 600))
    result = predictor.analyze_array(grey)
    from pneumonia.serve.imaging import canonical
    from pneumonia.serve.lung_view import mask_to_image
    _, boxes, lungs, _ = predictor.reader.read(canonical(grey)[None])
    seen = mask_to_image(predictor.reader.seen(lungs[0], boxes[0]), grey.shape)
    overlay = result["overlay"].astype(int)
    plain = np.repeat(grey[:, :, None], 3, axis=2).astype(int)
    near_line = cv2.dilate(seen.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    near_line &= cv2.erode(seen.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    unseen = ~seen & ~near_line
    assert unseen.mean() > 0.1
    assert np.array_equal(overlay[unseen], plain[unseen])     # no colour outside the line
    assert np.abs(overlay[seen & ~near_line] - plain[seen & ~near_line]).mean() > 5   # colour inside it
    white = (overlay == 255).all(axis=2) & ~(plain == 255).all(axis=2)
    assert white.sum() > 100 and near_line[white].mean() > 0.95   # the white line is the region's edge
    # The region is the lungs grown a little, inside their box: not the whole box.
    box = boxes[0].region(grey.shape[1], grey.shape[0])
    assert (box & ~seen).mean() > 0.05 and not (seen & ~box).any()
    outline = result["lungs"]["read_outline"]
    assert len(outline) == 2   # the JSON carries the same line, for programs that draw it


def test_json_carries_the_map_and_the_lung_outline_in_image_pixels(shipped_served):
    grey = cv2.resize(load_image(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg"), (900, 700))
    result = shipped_served.predictor.analyze_array(grey)
    details = {k: v for k, v in result.items() if k not in ("overlay", "probabilities")}
    assert len(json.dumps(details)) < 4096
    grid = np.asarray(details["heatmap"]["grid"])
    assert grid.shape == (7, 7) and grid.min() >= 0 and grid.max() == pytest.approx(1.0, abs=1e-3)
    assert details["heatmap"]["box"] == details["lungs"]["box"]
    polygons = details["lungs"]["outline"]
    assert len(polygons) == 2  # two lungs, the image's left one first
    assert np.mean(polygons[0], axis=0)[0] < np.mean(polygons[1], axis=0)[0]
    for poly in polygons:
        xy = np.asarray(poly)
        assert len(xy) >= 8 and (xy[:, 0] >= 0).all() and (xy[:, 0] <= 900).all() and (xy[:, 1] <= 700).all()
    # The polygons enclose the lung area the JSON reports.
    area = sum(cv2.contourArea(np.asarray(p, np.float32)) for p in polygons)
    assert area == pytest.approx(details["lungs"]["area_pixels"], rel=0.1)
    # Drawn as the README shows, the hottest cell lands inside the box.
    b = details["heatmap"]["box"]
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    x = b["x0"] + (j + 0.5) * (b["x1"] - b["x0"]) / 7
    y = b["y0"] + (i + 0.5) * (b["y1"] - b["y0"]) / 7
    assert b["x0"] <= x < b["x1"] and b["y0"] <= y < b["y1"]


def test_large_uploads_get_an_overlay_sized_for_screens(shipped_served, tmp_path):
    from pneumonia.config import OVERLAY_MAX_SIDE
    grey = cv2.resize(load_image(EXAMPLES / "NORMAL_IM-0003-0001.jpeg"), (2000, 2400))
    result = shipped_served.predictor.analyze_array(grey)
    h, w = result["overlay"].shape[:2]
    assert max(h, w) == OVERLAY_MAX_SIDE and abs(w / h - 2000 / 2400) < 0.01
    # The JSON still speaks in the upload's pixels.
    assert result["lungs"]["box"]["x1"] > OVERLAY_MAX_SIDE
    _, overlay, _ = respond(result, tmp_path)
    assert Image.open(overlay["path"]).format == "JPEG"
