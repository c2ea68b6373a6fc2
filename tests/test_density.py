"""Lung density (rules.WHITE_RULE 8): a ratio of one film's greys that a whitened
lung raises and contrast, a darker lung or a rib band do not; the rule built
from validation films by its committed formula; the served answer takes it."""
import math

import numpy as np
import pytest
from conftest import EXAMPLES
from test_opacity import two_lungs

from pneumonia.serve.density import OpacityRule, lung_density
from pneumonia.serve.imaging import canonical, load_image
from pneumonia.train import non_opacity, opacity, opacity_rule


def textured_lungs() -> tuple[np.ndarray, np.ndarray]:
    """two_lungs with the greys spread, as on a film (the 5th percentile below the median)."""
    image, mask = two_lungs()
    noise = np.random.default_rng(0).normal(0, 12, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), mask


def test_an_aerated_lung_is_light_and_a_whitened_one_dense():
    image, mask = textured_lungs()
    assert max(lung_density(image, mask)) < 0.35
    for strength, low in ((0.85, 0.8), (1.0, 0.95)):
        left, right = lung_density(opacity.whiten_lung(image, mask, 0, strength), mask)
        assert left >= low and right < 0.35, (strength, left, right)


@pytest.mark.parametrize("name", non_opacity.EDITS)
def test_non_opacities_leave_both_lungs_light(name):
    image, mask = textured_lungs()
    before = max(lung_density(image, mask))
    after = max(lung_density(non_opacity.edit(image, mask, name), mask))
    assert after < 0.5 and abs(after - before) < 0.2, (name, before, after)


def test_density_does_not_move_with_contrast_or_brightness():
    image, mask = textured_lungs()
    base = np.asarray(lung_density(image, mask))
    for gain, shift in ((1.3, -20), (0.7, 30)):
        edited = np.clip(image.astype(float) * gain + shift, 0, 255).astype(np.uint8)
        assert np.abs(np.asarray(lung_density(edited, mask)) - base).max() < 0.03


def test_the_rule_fires_at_its_threshold_and_names_the_side():
    rule = OpacityRule(0.75, 0.97, 35, 35)
    assert rule.judge([0.4, 0.3]) == {"densities": [0.4, 0.3], "threshold": 0.75, "opaque": False, "side": None,
                                      "probability": None}
    fired = rule.judge([0.3, 0.75])
    assert fired["opaque"] and fired["side"] == "image right" and fired["probability"] == 0.97
    assert not rule.judge([])["opaque"]


def test_the_rule_is_fitted_by_its_committed_formula():
    rng = np.random.default_rng(1)
    dens = {"children": np.r_[rng.uniform(0.2, 0.45, 400), rng.uniform(0.3, 0.9, 100)],
            "nih": np.r_[rng.uniform(0.2, 0.62, 200), [0.95]]}
    labels = {"children": np.r_[np.zeros(400), np.ones(100)].astype(int), "nih": np.r_[np.zeros(200), [1]].astype(int)}
    rule, table = opacity_rule.fit_rule(dens, labels)
    top = max(np.percentile(dens[k][labels[k] == 0], 99.5) for k in dens)
    assert rule.threshold == pytest.approx(math.ceil((top + 0.10) / 0.05) * 0.05) and rule.threshold > top + 0.1 - 1e-9
    d, y = np.concatenate(list(dens.values())), np.concatenate(list(labels.values()))
    n, k = int((d >= rule.threshold).sum()), int(y[d >= rule.threshold].sum())
    assert (rule.n, rule.k) == (n, k) and rule.probability == pytest.approx((k + 1) / (n + 2))
    assert table["reaching"]["nih"] == {"n": 1, "disease": 1, "films": 201}


def test_the_shipped_rule_holds_its_recorded_numbers(shipped_served):
    """The committed folder's rule is what its validation table says, and the
    bundled healthy child is light while one lung whitened is opaque, as served."""
    cfg = shipped_served.predictor.config["opacity_rule"]
    rule = shipped_served.predictor.opacity_rule
    assert cfg["shipped"] and rule is not None
    top = max(cfg["percentile_99_5"].values())
    assert rule.threshold == pytest.approx(math.ceil((top + 0.10) / 0.05 - 1e-9) * 0.05)
    assert rule.probability == pytest.approx((rule.k + 1) / (rule.n + 2))
    assert rule.n == sum(r["n"] for r in cfg["reaching"].values())
    canon = canonical(load_image(EXAMPLES / "NORMAL_IM-0001-0001.jpeg"))
    mask = shipped_served.predictor.reader.find(canon[None])[0].mask
    assert max(lung_density(canon, mask)) < rule.threshold - 0.2
    clean, white = shipped_served.predictor.analyze_arrays([canon, opacity.whiten_lung(canon, mask, 0, 0.85)])
    assert not clean["opacity"]["opaque"] and clean["probability_pneumonia"] == clean["opacity"]["model_probability"]
    assert white["opacity"]["opaque"] and white["opacity"]["side"] == "image left"
    assert white["probability_pneumonia"] == max(rule.probability, white["opacity"]["model_probability"])
    assert white["decision"] == "PNEUMONIA"
    # The rule decided (the network alone below the threshold): the map is the opaque lung, and no
    # bacterial/viral reading is offered for a pneumonia the network did not see.
    assert white["opacity"]["model_probability"] < white["threshold"] and white["heatmap_class"] == "opaque lung"
    grid = np.asarray(white["heatmap"]["grid"])
    assert grid[:, :3].mean() > 0.5 > grid[:, 4:].mean()                  # warm over the image's left lung
    assert white["pneumonia_type"]["probability"] is None and "density rule" in white["pneumonia_type"]["reason"]
    asked = shipped_served.predictor.analyze_array(opacity.whiten_lung(canon, mask, 0, 0.85), target=1)
    assert asked["heatmap_class"] == "PNEUMONIA"                           # the networks' own map, when asked


def test_the_committed_card_says_the_rule_and_the_layer_it_chose():
    """The model card's section is written from the folder's own record of the rule."""
    import json
    from conftest import MODEL_DIR
    from pneumonia.report.white_card import rule_lines
    rule = json.loads((MODEL_DIR / "config.json").read_text())["opacity_rule"]
    lines = rule_lines(rule)
    text = "\n".join(lines)
    assert f"**{rule['rule']['threshold']:.2f}**" in text and f"**{rule['rule']['probability']:.3f}**" in text
    assert "written after the refit's test numbers" in text                      # the disclosure
    chosen = [line for line in lines if "(**chosen**)" in line]
    assert len(chosen) == 1 and chosen[0].startswith("| layer before the refit") == (rule["layer"] == "before")
    card = (MODEL_DIR / "README.md").read_text()
    assert all(line in card for line in lines if line)
