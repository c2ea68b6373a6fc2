"""The validity tests on hand-made images and models whose answers we know."""
import numpy as np
import pytest
from test_lungs import two_lungs

from pneumonia.report import faithfulness, validity
from pneumonia.serve.lungs import postprocess

MASK = postprocess(two_lungs()).mask


def make_xrays(n=60, seed=0):
    """Images whose lungs are bright when label 1 and whose corners are bright
    when an independent 'site' label is 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    site = rng.integers(0, 2, n)
    canons = np.full((n, 224, 224), 60, np.uint8)
    for i in range(n):
        canons[i][MASK] = 150 if labels[i] else 90
        canons[i][:20, :20] = 230 if site[i] else 20
        canons[i] = np.clip(canons[i] + rng.integers(0, 10, (224, 224)), 0, 255)
    return canons, np.repeat(MASK[None], n, 0), labels, site


def lung_reader(views):
    """A model that reads the lungs: mean grey of the middle of the image."""
    return views[:, 60:160, 40:180].mean(axis=(1, 2)).astype(np.float64)


def corner_reader(views):
    """A model that reads a marker in the corner."""
    return views[:, :20, :20].mean(axis=(1, 2)).astype(np.float64)


def test_a_lung_reader_passes_and_a_corner_reader_fails():
    canons, masks, labels, site = make_xrays()
    good = validity.auc_tests(lung_reader, canons, masks, labels, "full", n_swaps=200)
    assert good["auc"] == 1.0 and good["swap_lungs_auc"] > 0.95
    assert abs(good["swap_surroundings_auc"] - 0.5) < 0.12
    assert good["hidden_auc"] < 0.65 and validity.shortfall(good) == 0
    bad = validity.auc_tests(corner_reader, canons, masks, site, "full", n_swaps=200)
    assert bad["swap_surroundings_auc"] > 0.95 and bad["hidden_auc"] > 0.95
    assert validity.shortfall(bad) > 0.5
    # Blacking out everything but the lungs makes even the corner reader blind to the marker.
    masked = validity.auc_tests(corner_reader, canons, masks, site, "crop+mask", n_swaps=200)
    assert masked["auc"] == pytest.approx(0.5, abs=0.1)


def test_swap_composites_put_the_donor_lungs_on_the_recipient():
    canons, masks, labels, _ = make_xrays(10)
    comp, comp_masks, donors, recipients = validity.swap_composites(canons, masks, 20, seed=0)
    assert comp.shape == (20, 224, 224) and (donors != recipients).all()
    for c, m, a, b in zip(comp, comp_masks, donors, recipients):
        # Same geometry here, so the pasted lungs sit where the recipient's were.
        assert abs(c[m].mean() - canons[a][MASK].mean()) < 3
        assert abs(c[:20, :20].mean() - canons[b][:20, :20].mean()) < 1e-9


def test_hidden_lungs_are_flat_grey():
    canons, masks, _, _ = make_xrays(2)
    hidden = validity.hide_lungs(canons[0], masks[0])
    assert len(np.unique(hidden[masks[0]])) == 1
    assert np.array_equal(hidden[:20, :20], canons[0][:20, :20])


def test_heat_share():
    heat = np.zeros((224, 224))
    heat[MASK] = 1.0
    assert faithfulness.heat_share(heat, MASK) == 1.0
    heat[:10, :10] = 1.0
    assert faithfulness.heat_share(heat, MASK) == pytest.approx(MASK.sum() / (MASK.sum() + 100))
    assert np.isnan(faithfulness.heat_share(np.zeros((224, 224)), MASK))


def test_deletion_ranks_a_faithful_map_first():
    """A model whose logit is the brightness of one cell: deleting that cell
    first (a faithful map) drops the score faster than random or centre-first."""
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 40, (8, 224, 224)).astype(np.uint8)
    inputs[:, 0:32, 192:224] = 250          # cell (0, 6), far from the centre
    cams = np.zeros((8, 7, 7))
    cams[:, 0, 6] = 1.0

    def logits(v):
        return (v[:, 0:32, 192:224].mean(axis=(1, 2)) - 100.0) / 20.0
    out = faithfulness.deletion(logits, 1.0, inputs, cams, np.ones(8, bool))
    assert out["gradcam"]["auc"] < out["random"]["auc"] < out["centre"]["auc"] + 1e-9
    assert out["gradcam"]["curve"][0] > 0.99 and out["gradcam"]["curve"][1] < 0.05


def lungs_mask(rng, shrink_right: bool):
    """Two lungs of random size; when `shrink_right`, the right lung is shorter
    (a consolidated lung segmented small): the outline then carries the label."""
    import cv2
    m = np.zeros((224, 224), np.uint8)
    a, b = rng.integers(22, 30), rng.integers(60, 76)
    cv2.ellipse(m, (67, 112), (int(a), int(b)), 0, 0, 360, 1, -1)
    cv2.ellipse(m, (157, 112), (int(a), int(b * (0.55 if shrink_right else 1.0))), 0, 0, 360, 1, -1)
    return m.astype(bool)


@pytest.mark.parametrize("leaks", [True, False])
def test_silhouette_says_when_the_outline_alone_tells_the_class(leaks):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 160)
    masks = np.stack([lungs_mask(rng, leaks and y == 1) for y in labels])
    out = validity.silhouette_auc(masks[:100], labels[:100], {"held out": (masks[100:], labels[100:])},
                                  "crop+mask", 0.08, 0.04)
    auc = out["held out"]["auc"]
    assert out["fit_n"] == 100 and out["held out"]["n"] == 60
    assert auc > 0.9 if leaks else 0.3 < auc < 0.7, auc
    lo, hi = out["held out"]["ci95"]
    assert lo <= auc <= hi


def test_silhouette_shows_the_outline_only_where_the_view_has_one():
    """"crop" shows the box only: the same silhouette for every X-ray; "crop+mask"
    and "crop+blur" keep detail inside the lungs only, so theirs follow the masks."""
    rng = np.random.default_rng(1)
    masks = np.stack([lungs_mask(rng, bool(i % 2)) for i in range(6)])
    crop = validity.silhouettes(masks, "crop", 0.08, 0.04)
    assert crop.shape == (6, validity.SILHOUETTE_SIZE ** 2) and (crop == 1.0).all()
    for variant in ("crop+mask", "crop+blur"):
        s = validity.silhouettes(masks, variant, 0.08, 0.04)
        assert np.abs(s[1] - s[0]).mean() > 0.02, variant   # the shorter right lung shows
        grid = s[0].reshape(validity.SILHOUETTE_SIZE, -1)
        assert grid[0, 0] == 0 and grid[16, 8] == 1, variant    # a box corner outside, a lung inside


def test_imputation_fills_a_hole_from_its_edges_without_painting_a_shape():
    """A smooth ramp with a square removed: the fill continues the ramp (a grey
    or mean fill would leave a flat patch), and pixels not removed stay."""
    ramp = np.tile(np.linspace(20, 220, 224), (224, 1)).astype(np.uint8)
    removed = np.zeros((224, 224), bool)
    removed[80:140, 60:160] = True
    out = faithfulness.impute(ramp, removed, np.random.default_rng(0), noise=0.0)
    assert np.array_equal(out[~removed], ramp[~removed])
    assert np.abs(out[removed].astype(int) - ramp[removed].astype(int)).max() <= 2
    noisy = faithfulness.impute(ramp, removed, np.random.default_rng(0))
    assert 1.5 < (noisy[removed].astype(float) - out[removed]).std() < 3.5


def test_road_ranks_a_faithful_map_first():
    """A model whose logit is the brightness of a spot off centre: removing the
    spot first (a faithful map) lowers the score sooner than random or centre-first."""
    rng = np.random.default_rng(0)
    inputs = rng.integers(60, 80, (6, 224, 224)).astype(np.uint8)
    inputs[:, 16:48, 176:208] = 250
    cams = np.zeros((6, 7, 7))
    cams[:, 0:2, 5:7] = 1.0

    def logits(v):
        return (v[:, 16:48, 176:208].mean(axis=(1, 2)) - 120.0) / 20.0
    read = np.ones((6, 224, 224), bool)
    out = faithfulness.road(logits, 1.0, inputs, cams, np.ones(6, bool), read)
    assert out["gradcam"] < out["random"] and out["gradcam"] < out["centre"]
    assert out["gradcam_minus_random"]["ci95"][1] < 0


def test_pointing_game():
    maps = np.zeros((2, 7, 7))
    maps[0, 3, 1] = 1.0   # over the left lung
    maps[1, 0, 3] = 1.0   # top centre, above the lungs
    from pneumonia.serve.lung_view import FULL
    hits = faithfulness.pointing(maps, [FULL, FULL], np.stack([MASK, MASK]))
    assert hits.tolist() == [True, False]


def test_shortfall_counts_the_silhouette_when_measured():
    met = {"swap_surroundings_auc": 0.55, "swap_lungs_auc": 0.95, "hidden_auc": 0.6}
    assert validity.shortfall(met) == 0
    assert validity.shortfall({**met, "silhouette_auc": 0.60}) == 0
    assert validity.shortfall({**met, "silhouette_auc": 0.75}) == pytest.approx(0.10)
    from pneumonia.report.probe import choose
    results = {"a": {**met, "silhouette_auc": 0.9, "auc": 0.99}, "b": {**met, "silhouette_auc": 0.6, "auc": 0.97},
               "c": {**met, "silhouette_auc": 0.62, "auc": 0.98}}
    assert choose(results) == "c"   # among those meeting every goal, the best AUC


def test_selection_puts_reliance_first_then_stressed_auc():
    from pneumonia.report.selection import TOLERANCE, decide
    old = {"reliance_shortfall": 0.05, "shortfall": 0.40, "val_auc_stressed": 0.98}
    assert decide({"reliance_shortfall": 0.05 - 2 * TOLERANCE, "val_auc_stressed": 0.90}, old)      # relies on the lungs more
    assert not decide({"reliance_shortfall": 0.05 + 2 * TOLERANCE, "val_auc_stressed": 0.999}, old)  # less: no
    assert decide({"reliance_shortfall": 0.06, "val_auc_stressed": 0.985}, old)                       # a tie, more robust
    assert not decide({"reliance_shortfall": 0.04, "val_auc_stressed": 0.975}, old)                   # a tie, less robust
    # Lungs hidden and the silhouette no longer choose: a model that answers with
    # the lungs hidden but uses them when they are there is not turned away.
    assert decide({"reliance_shortfall": 0.0, "shortfall": 0.9, "val_auc_stressed": 0.99}, old)


def test_reliance_shortfall_is_the_swap_test_alone():
    tests = {"swap_surroundings_auc": 0.65, "swap_lungs_auc": 0.88, "hidden_auc": 0.92, "silhouette_auc": 0.95}
    assert validity.reliance_shortfall(tests) == pytest.approx(0.07)
    assert validity.shortfall(tests) > validity.reliance_shortfall(tests) + 0.5
