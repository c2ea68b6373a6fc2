"""The committed model folder is the real trained lung-reading model, not a placeholder:
its exported networks as the app serves them (model.keras is on the Hub, not in git)."""
import json

import numpy as np
from conftest import DATA, MODEL_DIR
from sklearn.metrics import roc_auc_score

from pneumonia.serve.imaging import grey_to_rgb
from pneumonia.train.data import list_split, load_images

# A little under what the shipped model scores on these 120 images (printed by
# `python -m pytest -s tests/test_shipped_model.py`), so a broken or swapped model fails.
ACCURACY_FLOOR = 0.80
AUC_FLOOR = 0.94


def test_shipped_model_is_accurate_on_120_test_images(shipped_served):
    predictor = shipped_served.predictor
    paths, labels = list_split(DATA, "test")
    images, kept, _ = load_images(paths)
    assert len(kept) == 120
    views, boxes, lungs, found = predictor.reader.read(images)
    assert found.all()   # the segmenter finds both lungs on every one of them
    areas = np.asarray([lu.mask.mean() for lu in lungs])
    assert (areas > 0.1).all() and (areas < 0.6).all()
    probs = predictor.head.probability(predictor.forward(grey_to_rgb(views))[1])
    pred = probs >= predictor.head.threshold
    accuracy = np.mean(pred == labels)
    print(f"accuracy {accuracy:.3f}, AUC {roc_auc_score(labels, probs):.3f} on 120 test images")
    assert accuracy >= ACCURACY_FLOOR
    assert roc_auc_score(labels, probs) >= AUC_FLOOR
    assert np.mean(pred[labels == 1]) >= 0.9


def test_shipped_folder_is_complete():
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["threshold_rule"].startswith("highest threshold with validation sensitivity")
    assert config["data"]["limit_per_class"] is None
    assert "stressed copies" in config["temperature_rule"]
    assert config["lungs"]["variant"] in ("crop", "crop+mask", "crop+blur") and (MODEL_DIR / config["lungs"]["file"]).is_file()
    # Chosen by the rule written before the runs (validation composites only).
    assert config["selection"]["rule"].startswith("Validation only")
    # The served last layer is the one WHITE_RULE chose on validation, with its own operating point:
    # step 8 chose again, with the lung-density rule, between the refit (steps 1-7) and the layer before.
    chosen = config["white_lung"]["children"]["chosen"]
    assert chosen["eligible"] and chosen["meets"] and chosen["share"] > 0
    rule = config["opacity_rule"]
    assert rule["shipped"] and rule["children"][rule["layer"]]["meets"]
    assert rule["children"][rule["layer"]]["auc"] == max(r["auc"] for r in rule["children"].values() if r["meets"])
    refit = (chosen["threshold"], chosen["temperature"])
    if rule["layer"] == "refit":
        assert refit == (config["threshold"], config["temperature"])
    else:   # the refit's operating point kept as its record; the one before served again
        withdrawn = config["white_lung"]["withdrawn_by_step_8"]
        assert (withdrawn["threshold"], withdrawn["temperature"]) == refit != (config["threshold"], config["temperature"])
    # WHITE_RULE 9: the adult reader's last layer changes only for a candidate that met every condition.
    step9, ar = config["white_lung"].get("reader_overlays"), config["adult_reader"]
    if step9:
        with np.load(MODEL_DIR / ar["file"]) as f:
            served = (float(f["threshold"]), float(f["temperature"]), float(f["low"]), float(f["high"]))
        assert served == (ar["threshold"], ar["temperature"], ar["band"]["low"], ar["band"]["high"])
        step10 = config["white_lung"].get("reader_consistency") or {}
        if step10.get("shipped"):   # WHITE_RULE 10: the fine-tuned network, at the epoch the rule kept
            kept = step10["history"][step10["kept"]]
            assert kept["epoch"] > 0 and step10["served_path"]["meets"]
            assert kept["score"] >= step10["history"][0]["score"] - 0.01 and min(kept["stays"].values()) >= 0.95
            assert served[:2] == (kept["threshold"], kept["temperature"])
            assert ar["exported_from"] != step10["before"]["exported_from"]   # the network itself is new
        elif step9["chosen"] is None:
            assert not any(c["eligible"] and c["meets_features"] and c.get("served_path", {}).get("meets")
                           for c in step9["candidates"])
            assert served[:2] == (step9["served"]["threshold"], step9["served"]["temperature"])
        else:
            assert step9["chosen"]["served_path"]["meets"] and served[0] == step9["chosen"]["threshold"]
    metrics = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert metrics["n"] + metrics["without_lungs"] == 624 and metrics["split"] == "test"
    assert {"test", "validation"} <= set(metrics["validity"]) and metrics["adult_transfer"]["served"]["n"] > 100
    report = json.loads((MODEL_DIR / "lungs_report.json").read_text())
    assert report["test_adults"]["dice_mean"] >= 0.95 and report["test_children"]["dice_mean"] >= 0.92
    for name in ("README.md", "confusion_matrix.png", "roc_curve.png", "reliability_diagram.png",
                 "training_curves.png", "lungs_contact_sheet.jpg", "ood.npz", "population.npz", "ood_report.json"):
        assert (MODEL_DIR / name).is_file()
