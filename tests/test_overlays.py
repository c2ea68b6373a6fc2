"""The adult reader's training overlays (rules.WHITE_RULE 9): bright, label-kept,
oblique inside one lung, never the check's horizontal rib band; and the step's
choice: its candidate grid and its served conditions."""
import numpy as np
import pytest

from pneumonia.train import overlays, reader_overlays
from test_opacity import two_lungs


def test_an_oblique_band_lies_inside_one_lung_and_is_not_horizontal():
    image, mask = two_lungs()
    lung = overlays.lungs_of(mask)[0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        band = overlays.oblique_band(image.shape, lung, rng)
        assert band.max() == pytest.approx(1.0) and not band[~lung].any()
        ys, xs = np.nonzero(band > 0.5)
        slope = np.polyfit(xs, ys, 1)[0] if np.ptp(xs) > 4 else np.inf
        assert 15 - 3 <= np.degrees(np.arctan(abs(slope))) <= 60 + 3   # the check's band is at 0 degrees


def test_overlay_only_brightens_in_thin_strokes():
    image, mask = two_lungs()
    left, right = overlays.lungs_of(mask)
    for seed in range(10):
        out = overlays.overlay(image, mask, np.random.default_rng(seed))
        diff = out.astype(int) - image
        assert diff.min() >= 0 and diff.max() > 10
        changed = diff > 8
        assert changed.mean() < 0.06                                  # lines and bands are thin
        assert max((changed & left).sum(), (changed & right).sum()) > 50   # at least one band in a lung


def test_overlay_is_seeded_and_leaves_a_film_without_two_lungs_alone():
    image, mask = two_lungs()
    a = overlays.overlay(image, mask, np.random.default_rng(3))
    assert np.array_equal(a, overlays.overlay(image, mask, np.random.default_rng(3)))
    assert not np.array_equal(a, overlays.overlay(image, mask, np.random.default_rng(4)))
    assert overlays.overlay(image, np.zeros_like(mask), np.random.default_rng(3)) is image


def synthetic_features(n: int = 120, dim: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    sources = np.where(np.arange(n) % 4 < 2, "rsna", "nih")
    x = rng.normal(size=(n, dim)) + y[:, None]
    g = {"a_fit": x, "ay_fit": y, "as_fit": sources, "a_overlaid": x + 0.5, "a_overlaid_y": y,
         "a_overlaid_sources": sources, "a_overlaid_found": np.arange(n) % 5 != 0}
    for s in (0.5, 1.0):
        g[f"a_fitpaint_{s}"], g[f"a_fitpaint_{s}_found"] = x[y == 0] + 2, np.ones(int((y == 0).sum()), bool)
    return g


def test_the_grid_refits_without_overlays_first_then_every_share_and_strength():
    rows = list(reader_overlays.candidates(synthetic_features()))
    settings = [r[0] for r in rows]
    assert settings[:3] == [{"share": 0.0, "C": c} for c in reader_overlays.STRENGTHS_C]
    assert {(s["share"], s["C"]) for s in settings[3:]} == {
        (a, c) for a in reader_overlays.SHARES for c in reader_overlays.STRENGTHS_C}
    w0, w1 = rows[2][1], rows[-1][1]   # C 0.03 without overlays, and share 2
    assert w0.shape == (6,) and not np.allclose(w0, w1)


def served_row(white: float, answered: float, rib: float | None) -> dict:
    row = {f"white_{s}": {"normal_called_pneumonia": white, "answered": answered} for s in (0.5, 0.85, 1.0)}
    return row | {"darker_lung_stays": 1.0, "contrast_stays": 0.97, "rib_band_stays": rib}


def test_served_conditions_need_the_whitened_lung_answered_and_every_non_opacity():
    assert reader_overlays.served_meets(served_row(0.95, 0.97, 0.96))
    assert not reader_overlays.served_meets(served_row(0.95, 0.97, 0.94))    # the rib band
    assert not reader_overlays.served_meets(served_row(0.89, 0.97, 0.99))    # whitened not called
    assert not reader_overlays.served_meets(served_row(0.95, 0.90, 0.99))    # too many refused
    assert not reader_overlays.served_meets(served_row(0.95, 0.97, None))    # not measured


def synthetic_cache(n: int = 24, seed: int = 0) -> dict:
    """Activations at the reader's last block's input for a few fit and validation films."""
    rng = np.random.default_rng(seed)
    acts = lambda k: rng.normal(0.5, 0.5, (k, 7, 7, 2048)).clip(0).astype(np.float16)   # noqa: E731
    y = np.arange(n) % 2
    s = np.where(np.arange(n) % 4 < 2, "rsna", "nih")
    three = np.arange(0, n, 4)           # validation normals standing for Shenzhen, Montgomery, JSRT
    fit = acts(n)
    c = {"fit": fit, "overlaid": (fit + acts(n) * 0.2).astype(np.float16), "overlaid_found": np.ones(n, bool),
         "y_fit": y, "s_fit": s, "val": acts(n), "y_val": y, "s_val": s, "stressed": acts(n), "three": three}
    for name in ("darker_lung", "contrast", "rib_band"):
        c[f"edit_{name}"], c[f"edit_{name}_found"] = acts(len(three)), np.ones(len(three), bool)
    return c


def test_paired_fine_tuning_trains_the_last_block_and_judges_every_epoch(untrained_model):
    import keras
    from pneumonia.train import reader_consistency as rc
    net = keras.models.clone_model(untrained_model)
    net.set_weights(untrained_model.get_weights())
    frozen = net.get_layer("conv5_block2_3_conv").get_weights()[0].copy()
    last = net.get_layer("conv5_block3_3_conv").get_weights()[0].copy()
    history, weights = rc.train(net, synthetic_cache(), np.random.default_rng(0), lambda *_: None)
    assert [r["epoch"] for r in history] == list(range(rc.EPOCHS + 1)) and len(weights) == rc.EPOCHS + 1
    assert set(history[0]["stays"]) == {"darker_lung", "contrast", "rib_band"} and "loss" in history[1]
    assert np.array_equal(net.get_layer("conv5_block2_3_conv").get_weights()[0], frozen)   # below the block: frozen
    assert not np.allclose(net.get_layer("conv5_block3_3_conv").get_weights()[0], last)
    served = history[0]
    assert not rc.eligible(served, served)                                    # epoch 0 never ships
    better = served | {"epoch": 1, "stays": {"darker_lung": 1.0, "contrast": 0.96, "rib_band": 0.95}}
    assert rc.eligible(better, served)
    assert not rc.eligible(better | {"score": served["score"] - 0.02}, served)
    assert not rc.eligible(better | {"stays": better["stays"] | {"rib_band": 0.94}}, served)
