"""Lung post-processing, the lung view's geometry and the segmenter's file, on hand-made masks."""
import cv2
import keras
import numpy as np
import pytest

from pneumonia.serve import lung_view
from pneumonia.serve.lung_view import FULL, Box, LungReader, crop, lung_box, to_image
from pneumonia.serve.lungs import postprocess
from pneumonia.train.segmenter import build_segmenter, dice, iou, load_segmenter


def two_lungs(h=224, w=224, hole=False, speck=False):
    """Two upright ellipses side by side, like a frontal radiograph's lungs."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w * 3 // 10, h // 2), (w // 8, h // 3), 0, 0, 360, 1, -1)
    cv2.ellipse(m, (w * 7 // 10, h // 2), (w // 9, h // 3), 0, 0, 360, 1, -1)
    if hole:
        cv2.circle(m, (w * 3 // 10, h // 2), 6, 0, -1)
    if speck:
        m[5:8, 5:8] = 1
    return m.astype(np.float32)


def test_two_lungs_are_kept_holes_filled_specks_dropped():
    lungs = postprocess(two_lungs(hole=True, speck=True))
    assert lungs.found and lungs.reason == ""
    assert not lungs.mask[5:8, 5:8].any()                # the speck is gone
    assert lungs.mask[112, 67]                           # the hole is filled
    assert dice(lungs.mask, two_lungs() > 0) > 0.999


@pytest.mark.parametrize("mask, why", [
    (np.zeros((224, 224), np.float32), "need two"),
    (cv2.ellipse(np.zeros((224, 224), np.float32), (112, 112), (80, 90), 0, 0, 360, 1, -1), "need two"),
    (np.vstack([two_lungs(112, 224)[:, :112].T[:112], two_lungs(112, 224)[:, :112].T[:112]]), "side by side"),
])
def test_no_plausible_pair_is_refused_with_a_reason(mask, why):
    lungs = postprocess(mask)
    assert not lungs.found and lungs.mask is None and why in lungs.reason


def test_an_unsure_lung_map_is_refused():
    """Lung-shaped but unsure (the U-Net's prior on noise or a blank image): refused."""
    unsure = 0.35 + 0.3 * two_lungs()
    lungs = postprocess(unsure)
    assert not lungs.found and "uncertain" in lungs.reason
    assert postprocess(0.05 + 0.9 * two_lungs()).found


def test_a_lung_much_smaller_than_the_other_is_refused():
    m = np.zeros((224, 224), np.float32)
    cv2.ellipse(m, (70, 112), (30, 80), 0, 0, 360, 1, -1)
    cv2.circle(m, (160, 112), 4, 1, -1)
    assert "too small" in postprocess(m).reason


def test_dice_and_iou_on_known_overlaps():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True   # 50 pixels
    b[:, 2:7] = True  # 50 pixels, 30 shared
    assert dice(a, b) == pytest.approx(0.6)
    assert iou(a, b) == pytest.approx(30 / 70)
    assert dice(a[:0], b[:0]) == 1.0 and iou(a, a) == 1.0


def test_box_of_a_mask_with_margin_and_clipping():
    m = np.zeros((200, 100), bool)
    m[50:150, 20:60] = True                      # 40 wide, 100 high
    box = lung_box(m, 0.1)                       # 4 px and 10 px of margin
    assert box.pixels(100, 200) == (16, 40, 64, 160)
    assert lung_box(m, 1.0).pixels(100, 200) == (0, 0, 100, 200)  # clipped to the image


def test_a_known_box_maps_back_exactly():
    box = Box(0.25, 0.1, 0.75, 0.9)
    for h, w in [(224, 224), (1000, 800), (333, 517)]:
        heat = to_image(np.ones((7, 7)), box, (h, w))
        x0, y0, x1, y1 = box.pixels(w, h)
        assert (x0, y0, x1, y1) == (round(0.25 * w), round(0.1 * h), round(0.75 * w), round(0.9 * h))
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        assert np.array_equal(heat > 0.5, inside) and (heat[~inside] == 0).all()
        np.testing.assert_allclose(heat[inside], 1.0, atol=1e-6)
        assert box.as_dict(w, h) == {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
    # A map with one hot cell lands in the matching part of the box.
    cam = np.zeros((7, 7))
    cam[0, 6] = 1.0
    heat = to_image(cam, box, (700, 700))
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 0.6 * 700 < x < 0.75 * 700 and 0.1 * 700 <= y < 0.25 * 700


def test_lung_views():
    rng = np.random.default_rng(0)
    canon = rng.integers(1, 255, (224, 224)).astype(np.uint8)
    mask = postprocess(two_lungs()).mask
    view, box = lung_view.lung_view(canon, mask, "full")
    assert view is canon and box == FULL
    view, box = lung_view.lung_view(canon, mask, "crop", margin=0.0)
    assert view.shape == (224, 224) and np.array_equal(view, crop(canon, lung_box(mask, 0.0)))
    masked, box2 = lung_view.lung_view(canon, mask, "crop+mask", margin=0.0)
    assert box2 == box
    # Outside the dilated mask everything is black; inside, the image is kept.
    # (Pixels next to the dilated edge are blended by the resize.)
    far = crop((~lung_view.dilate(mask, 0.06)).astype(np.uint8), box) > 0
    assert far.any() and (masked[far] == 0).all()
    assert (masked[crop(mask.astype(np.uint8), box) > 0] > 0).all()
    # crop+blur: the lungs as they are, the outside smoothed, not blacked out.
    blurred, box3 = lung_view.lung_view(canon, mask, "crop+blur", margin=0.0)
    assert box3 == box
    inside = crop(mask.astype(np.uint8), box) > 0
    assert np.abs(blurred[inside].astype(int) - view[inside].astype(int)).mean() < 1
    assert blurred[far].min() > 0 and blurred[far].std() < 0.25 * view[far].std()
    with pytest.raises(ValueError, match="unknown lung variant"):
        lung_view.lung_view(canon, mask, "lungs please")
    with pytest.raises(ValueError, match="needs a segmenter"):
        LungReader(None, "crop")


def test_segmenter_is_plain_keras_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    net = build_segmenter(64, 4, depth=2)
    assert net.output.shape[1:] == (64, 64, 1)
    net.save(tmp_path / "lungs.keras")
    seg = load_segmenter(tmp_path / "lungs.keras")   # no custom objects needed
    images = np.random.default_rng(0).integers(0, 255, (3, 224, 224)).astype(np.uint8)
    p = seg.probability(images)
    assert p.shape == (3, 224, 224) and ((p >= 0) & (p <= 1)).all()
    from pneumonia.serve.lungs import Segmenter
    from pneumonia.train.segmenter import KerasForward
    np.testing.assert_allclose(p, Segmenter(KerasForward(net)).probability(images), atol=1e-6)
    from pneumonia.serve.lungs import SegmenterError
    with pytest.raises(SegmenterError, match="not found"):
        load_segmenter(tmp_path / "missing.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(SegmenterError, match="not a loadable"):
        load_segmenter(tmp_path / "bad.keras")


def test_fill_holes_is_scipys_binary_fill_holes():
    from scipy import ndimage

    from pneumonia.serve.lungs import fill_holes
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = rng.random((40, 50)) < rng.uniform(0.2, 0.8)
        assert np.array_equal(fill_holes(m), ndimage.binary_fill_holes(m))
