"""The committed model folder is the real trained model, not a placeholder."""
import json

import numpy as np
from conftest import DATA, MODEL_DIR
from sklearn.metrics import roc_auc_score

from pneumonia.calibration import sigmoid
from pneumonia.data import list_split, load_images
from pneumonia.model import grey_to_rgb
from pneumonia.training import predict_logits


def test_shipped_model_is_accurate_on_120_test_images(shipped):
    net, config = shipped
    paths, labels = list_split(DATA, "test")
    images, kept, _ = load_images(paths)
    assert len(kept) == 120
    probs = sigmoid(predict_logits(net, grey_to_rgb(images)) / config["temperature"])
    pred = probs >= config["threshold"]
    accuracy = np.mean(pred == labels)
    print(f"accuracy {accuracy:.3f}, AUC {roc_auc_score(labels, probs):.3f} on 120 test images")
    assert accuracy >= 0.88
    assert roc_auc_score(labels, probs) >= 0.95
    assert np.mean(pred[labels == 1]) >= 0.9


def test_shipped_folder_is_complete(shipped):
    _, config = shipped
    assert config["threshold_rule"].startswith("highest threshold with validation sensitivity")
    assert config["data"]["limit_per_class"] is None
    # Chosen and calibrated on validation (with its stressed copies) only.
    assert "stressed copies" in config["temperature_rule"]
    assert config["selection"]["this_model"]["val_auc_stressed"] > config["selection"]["previous_model"]["val_auc_stressed"]
    metrics = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert metrics["n"] == 624 and metrics["split"] == "test"
    for name in ("README.md", "confusion_matrix.png", "roc_curve.png", "reliability_diagram.png",
                 "training_curves.png"):
        assert (MODEL_DIR / name).is_file()
