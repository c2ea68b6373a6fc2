import math

import numpy as np
import pytest

from pneumonia import calibration
from pneumonia.train import operating_point


def test_nll_known_values():
    assert calibration.nll([0.0], [1]) == pytest.approx(math.log(2))
    assert calibration.nll([2.0, -2.0], [1, 0]) == pytest.approx(math.log1p(math.exp(-2)))
    assert calibration.nll([4.0], [1], temperature=2.0) == pytest.approx(math.log1p(math.exp(-2)))


def test_fit_temperature_recovers_true_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 6, 200_000)
    labels = rng.random(z.size) < calibration.sigmoid(z / 3.0)
    assert operating_point.fit_temperature(z, labels) == pytest.approx(3.0, rel=0.03)


def test_temperature_one_for_calibrated_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 200_000)
    labels = rng.random(z.size) < calibration.sigmoid(z)
    assert operating_point.fit_temperature(z, labels) == pytest.approx(1.0, rel=0.03)


def test_threshold_for_sensitivity_hand_computed():
    probs = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0])
    # 4 positives: sensitivity >= 0.75 needs 3 of them -> the third highest, 0.7.
    assert calibration.threshold_for_sensitivity(probs, labels, 0.75) == 0.7
    assert calibration.threshold_for_sensitivity(probs, labels, 0.95) == 0.6
    assert calibration.threshold_for_sensitivity(probs, labels, 0.25) == 0.9


def test_threshold_meets_target_on_random_data():
    rng = np.random.default_rng(2)
    probs, labels = rng.random(1000), rng.random(1000) < 0.7
    t = calibration.threshold_for_sensitivity(probs, labels, 0.95)
    sens = np.mean(probs[labels] >= t)
    assert sens >= 0.95
    # The highest such threshold: any higher one drops below the target.
    assert np.mean(probs[labels] >= np.nextafter(t, 1)) < 0.95


def test_operating_point_without_stressed_copies_is_temperature_then_threshold():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 4, 4000)
    labels = (rng.random(z.size) < calibration.sigmoid(z / 2.0)).astype(int)
    t, thr = operating_point.fit_operating_point(z, labels, z[:0], 0.95)
    assert t == pytest.approx(operating_point.fit_temperature(z, labels))
    assert thr == calibration.threshold_for_sensitivity(calibration.sigmoid(z / t), labels, 0.95)


def test_operating_point_stressed_copies_soften_the_temperature_not_the_decisions():
    rng = np.random.default_rng(3)
    labels = np.tile([0, 1], 2000)
    clean = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 1, labels.size)
    stressed = clean + rng.normal(0, 6, labels.size)  # one copy, in the same order
    t_clean, thr_clean = operating_point.fit_operating_point(clean, labels, clean[:0], 0.95)
    t_both, thr_both = operating_point.fit_operating_point(clean, labels, stressed, 0.95)
    assert t_both > 1.5 * t_clean
    # The threshold is the same logit on clean validation, whatever the temperature.
    assert np.array_equal(calibration.sigmoid(clean / t_clean) >= thr_clean,
                          calibration.sigmoid(clean / t_both) >= thr_both)
