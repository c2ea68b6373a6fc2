"""The validity tests on hand-made images and models whose answers we know."""
import numpy as np
import pytest
from test_lungs import two_lungs

from pneumonia import validity
from pneumonia.segmentation import postprocess

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
    assert validity.heat_share(heat, MASK) == 1.0
    heat[:10, :10] = 1.0
    assert validity.heat_share(heat, MASK) == pytest.approx(MASK.sum() / (MASK.sum() + 100))
    assert np.isnan(validity.heat_share(np.zeros((224, 224)), MASK))


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
    out = validity.deletion(logits, 1.0, inputs, cams, np.ones(8, bool))
    assert out["gradcam"]["auc"] < out["random"]["auc"] < out["centre"]["auc"] + 1e-9
    assert out["gradcam"]["curve"][0] > 0.99 and out["gradcam"]["curve"][1] < 0.05
