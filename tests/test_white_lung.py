"""A white lung is not NORMAL (issue 35): the painted non-opacities add no density,
the refit's training paint never uses the held-out family, the refitted last
layer is the logistic regression it claims, and the served model calls a
whitened test X-ray something other than NORMAL."""
import numpy as np
import pytest
from conftest import EXAMPLES
from test_opacity import two_lungs

from pneumonia.serve.imaging import canonical, load_image
from pneumonia.train import non_opacity, opacity, opacity_heads, painted_features, white_conditions


@pytest.mark.parametrize("name", non_opacity.EDITS)
def test_non_opacities_add_no_density_to_a_lung(name):
    image, mask = two_lungs()
    image[:, :12] = 5                                               # air beside the chest, as on a film
    out = non_opacity.edit(image, mask, name).astype(int)
    left, right = opacity.lungs_of(mask)
    assert not np.array_equal(out, image), name                   # it did something
    if name == "darker_lung":
        assert out[left].mean() < image[left].mean() - 5 and np.abs(out[right] - image[right]).mean() < 1
    if name == "contrast":                                          # the lungs darker, the rest brighter
        assert out[mask > 0].mean() < 60 and out[(mask == 0) & (image > 100)].mean() > 170
    if name == "rib_band":                                          # a thin band: most of each lung untouched
        for lung in (left, right):
            assert np.mean(out[lung] == image[lung]) > 0.85
            assert out[lung].max() >= 60 + 30


def test_training_paint_is_never_the_held_out_family(monkeypatch):
    image, mask = two_lungs()
    drawn = []
    monkeypatch.setattr(opacity, "whiten_lung", lambda *a, **k: pytest.fail("whiten_lung used in training"))
    real = opacity.paint
    monkeypatch.setattr(opacity, "paint", lambda im, m, rng, family=None: drawn.append(family) or real(im, m, rng, family))
    out = painted_features.paint(np.stack([image] * 40), [mask] * 40, [0, 35, 0])
    assert out.shape == (40, 224, 224) and out[:, mask > 0].mean() > image[mask > 0].mean() + 5
    assert set(drawn) <= {"consolidation", "effusion", "haze"} and "white_lung" not in drawn
    assert 0 < len(drawn) < 40                                      # patchy drawn too, by its own function
    half = painted_features.at_strength(image[None], out[:1], 0.5)
    assert np.abs(half.astype(float) - (image + 0.5 * (out[0].astype(float) - image))).max() <= 0.5


def test_refitted_layer_is_the_logistic_regression_on_raw_features():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, [0.5] * 4 + [4.0] * 4, (300, 8))
    y = (x[:, 0] + 0.2 * x[:, 5] + rng.normal(0, 0.5, 300) > 3.6).astype(int)
    w, b = opacity_heads.fit_linear(x, y, np.ones(300), 1.0)
    mean, std = x.mean(0), x.std(0) + 1e-6
    ref = LogisticRegression(C=1.0, max_iter=3000).fit((x - mean) / std, y)
    assert np.allclose(x @ w + b, ref.decision_function((x - mean) / std), atol=1e-6)


def test_conditions_need_every_number():
    good = {"white_normal_0.85": 0.95, "white_disease_stays_1.0": 0.97, "rib_band_stays": 0.96, "painted_called": 0.1}
    assert white_conditions.meets(good)
    assert not white_conditions.meets({**good, "white_normal_0.85": 0.89})
    assert not white_conditions.meets({**good, "contrast_stays": 0.94})
    assert not white_conditions.meets({**good, "white_disease_stays_0.85": None})   # nothing measured meets nothing


def test_a_whitened_bundled_xray_is_not_called_normal_through_predict(app_url, shipped_served, tmp_path):
    """The bundled healthy child's X-ray (the page's NORMAL example), one lung
    whitened 85% and then 100% toward the mediastinum's grey, uploaded to the
    running app: /predict does not answer NORMAL (the clean film is NORMAL, so
    the answer moved with the opacity)."""
    from gradio_client import Client, handle_file
    from PIL import Image
    client = Client(app_url, verbose=False)
    canon = canonical(load_image(EXAMPLES / "NORMAL_IM-0001-0001.jpeg"))
    mask = shipped_served.predictor.reader.find(canon[None])[0].mask
    for side in (0, 1):
        for strength in (0.85, 1.0):
            path = tmp_path / f"white_{side}_{strength}.png"
            Image.fromarray(opacity.whiten_lung(canon, mask, side, strength)).save(path)
            _, _, d = client.predict(handle_file(str(path)), api_name="/predict")
            assert d["answered"] is True and d["decision"] != "NORMAL", (side, strength, d["probability_pneumonia"])
            # The lung-density rule saw it (rules.WHITE_RULE 8), on the side whitened.
            assert d["opacity"]["opaque"] and d["opacity"]["side"] == ("image left", "image right")[side]
            assert d["probability_pneumonia"] >= d["opacity"]["probability"]
