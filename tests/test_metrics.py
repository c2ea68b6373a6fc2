import numpy as np
import pytest

from pneumonia import metrics

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
PROBS = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.8, 0.4, 0.7, 0.95, 0.55])


def test_threshold_metrics_hand_computed():
    m = metrics.threshold_metrics(LABELS, PROBS, 0.5)
    # Predicted positive: 0.6 (FP), 0.9 0.8 0.7 0.95 0.55 (TP); 0.4 is a FN.
    assert m["confusion_matrix"]["rows_true_cols_pred"] == [[3, 1], [1, 5]]
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["precision"] == pytest.approx(5 / 6)
    assert m["sensitivity"] == pytest.approx(5 / 6)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 1))


def test_auc_brier_ece_hand_computed():
    r = metrics.evaluate_probs(LABELS, PROBS, 0.5, bootstrap=50)
    # 24 (pos, neg) pairs; ranked wrong: 0.4 < 0.6 and 0.55 < 0.6.
    assert r["roc_auc"] == pytest.approx(22 / 24)
    assert r["brier"] == pytest.approx(np.mean((PROBS - LABELS) ** 2))
    assert r["n"] == 10 and r["n_normal"] == 4


def test_ece_known_cases():
    # Perfectly calibrated bins give 0; all-wrong confident predictions give ~1.
    assert metrics.expected_calibration_error([0, 1], [0.0, 0.999]) == pytest.approx(0.0005, abs=1e-6)
    assert metrics.expected_calibration_error([1, 0], [0.0, 1.0]) == pytest.approx(1.0)
    # One bin holding 0.5 predictions of which 3/4 are positive: |0.75 - 0.5|.
    assert metrics.expected_calibration_error([1, 1, 1, 0], [0.5] * 4) == pytest.approx(0.25)


def test_bootstrap_interval_contains_estimate():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.6
    p = np.clip(y * 0.6 + rng.random(300) * 0.5, 0, 1)
    r = metrics.evaluate_probs(y, p, 0.5, bootstrap=300, seed=0)
    for key in ("accuracy", "sensitivity", "specificity"):
        lo, hi = r["ci95_at_threshold"][key]
        assert lo <= r["at_threshold"][key] <= hi
    lo, hi = r["ci95_at_threshold"]["roc_auc"]
    assert lo <= r["roc_auc"] <= hi and hi - lo < 0.2
