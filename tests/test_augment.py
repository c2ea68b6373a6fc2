"""Augmentation on real X-rays: shapes, randomness under a seed, fixed stressed copies."""
import numpy as np
from conftest import DATA

from pneumonia.train import augment, data


def _xrays(n=4):
    paths, _ = data.list_split(DATA, "test")
    images, _, _ = data.load_images(paths[:n])
    return images


def test_views_are_uint8_images_that_differ_from_the_original():
    images = _xrays()
    out = augment.views(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.uint8
    assert all(not np.array_equal(a, b) for a, b in zip(out, images))
    # Still images with detail, not blanks or clipped sheets.
    assert all(v.std() > 20 for v in out)
    assert all(np.mean((v == 0) | (v == 255)) < 0.3 for v in out)


def test_views_follow_the_seed():
    images = _xrays()
    a = augment.views(images, np.random.default_rng(5))
    b = augment.views(images, np.random.default_rng(5))
    c = augment.views(images, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_stressed_copies_are_fixed_per_seed_and_ordered_like_the_input():
    images = _xrays()
    s = augment.stressed(images, 2, seed=0)
    assert s.shape == (8, *images.shape[1:])
    assert np.array_equal(s, augment.stressed(images, 2, seed=0))
    assert not np.array_equal(s, augment.stressed(images, 2, seed=1))
    # Copy k of image i sits at k * n + i: the labels tile.
    assert not np.array_equal(s[:4], s[4:])
    assert augment.stressed(images, 0, seed=0).shape == (0, *images.shape[1:])
    assert augment.views(images[:0], np.random.default_rng(0)).shape == (0, *images.shape[1:])


def test_lung_views_are_cut_after_augmenting_and_fall_back_to_the_clean_view():
    """The view of an augmented X-ray comes from that X-ray's own lungs; where
    none are found in it, the clean view stands in."""
    rng = np.random.default_rng(0)
    canons = rng.integers(0, 255, (3, 224, 224), dtype=np.uint8)
    clean = np.zeros_like(canons)
    seen = []

    def read(batch):   # a reader that "finds lungs" in all but the second image
        seen.append(batch.copy())
        return 255 - batch, None, None, np.arange(len(batch)) % 3 != 1
    out = augment.lung_augmented(read, canons, clean, np.random.default_rng(1))
    assert not np.array_equal(seen[0], canons)            # the reader got augmented X-rays
    np.testing.assert_array_equal(out[[0, 2]], 255 - seen[0][[0, 2]])
    np.testing.assert_array_equal(out[1], clean[1])
    stressed = augment.lung_stressed(read, canons, clean, 2, seed=0)
    assert stressed.shape == (6, 224, 224)
    np.testing.assert_array_equal(stressed, augment.lung_stressed(read, canons, clean, 2, seed=0))
