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
