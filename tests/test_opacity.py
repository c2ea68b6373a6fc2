"""Synthetic opacities paint inside the true lungs only, and the served segmenter
still outlines a lung that pneumonia has whitened."""
import numpy as np
import pytest
from conftest import DATA

from pneumonia.serve.imaging import canonical, load_image
from pneumonia.serve.lungs import postprocess
from pneumonia.train import opacity
from pneumonia.train.lung_pairs import hull_gap

TEST_XRAYS = sorted((DATA / "test").glob("*/*.jpeg"))


def two_lungs() -> tuple[np.ndarray, np.ndarray]:
    """A grey image with two dark ellipse 'lungs' and their mask."""
    import cv2
    mask = np.zeros((224, 224), np.uint8)
    cv2.ellipse(mask, (70, 110), (35, 70), 0, 0, 360, 1, -1)
    cv2.ellipse(mask, (154, 110), (35, 70), 0, 0, 360, 1, -1)
    image = np.where(mask > 0, 60, 170).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize("family", [*opacity.TRAIN_FAMILIES, opacity.HELD_OUT_FAMILY])
def test_opacities_whiten_inside_the_lungs_and_nowhere_else(family):
    image, mask = two_lungs()
    rng = np.random.default_rng(0)
    changed = []
    for _ in range(5):
        out = opacity.patchy(image, mask, rng) if family == "patchy" else opacity.paint(image, mask, rng, family)
        diff = out.astype(int) - image
        import cv2
        far = cv2.dilate(mask, np.ones((15, 15), np.uint8)) == 0
        assert np.abs(diff[far]).max() <= 3, family            # outside the lungs only the detector blur
        changed.append(diff[mask > 0].mean())
    assert np.mean(changed) > 5, family                      # the lungs got whiter on average


def test_whiten_lung_brings_one_lung_to_the_mediastinum_grey():
    image, mask = two_lungs()
    out = opacity.whiten_lung(image, mask, side=0, strength=0.85)
    left, right = opacity.lungs_of(mask)
    grey = opacity.mediastinum_grey(image, mask)
    assert grey == pytest.approx(170, abs=1)
    assert out[left].mean() == pytest.approx(60 + 0.85 * (grey - 60), abs=8)
    assert np.array_equal(out[right & (np.roll(right, 6, 1) & np.roll(right, -6, 1))],
                          image[right & (np.roll(right, 6, 1) & np.roll(right, -6, 1))])


def test_hull_gap_is_what_a_carved_mask_left_out():
    _, mask = two_lungs()
    carved = mask.copy()
    carved[120:150, 40:60] = 0           # a bite out of the left lung's side
    gap = hull_gap(carved)
    bite = np.zeros_like(gap)
    bite[120:150, 40:60] = True
    assert gap[125:145, 45:58].mean() > 0.8 and not gap[carved > 0].any()
    assert gap[~bite].sum() < 0.5 * bite.sum()          # elsewhere only the hull's edge pixels


def test_the_served_segmenter_finds_both_lungs_with_one_whitened(shipped_served):
    """Test X-rays, each with its left and then its right lung blended 85% toward
    the mediastinum's grey (placed by the segmenter's own mask of the clean
    film): the pair is still found on at least 90%."""
    reader = shipped_served.predictor.reader
    canons = np.stack([canonical(load_image(p)) for p in TEST_XRAYS])
    clean = reader.find(canons)
    whitened = [opacity.whiten_lung(c, np.uint8(l.mask), side) for side in (0, 1)
                for c, l in zip(canons, clean) if l.found]
    assert len(whitened) >= 0.95 * 2 * len(canons)
    found = [postprocess(p).found for p in reader.segmenter.probability(np.stack(whitened))]
    assert np.mean(found) >= 0.90, np.mean(found)
