"""Augmentation on real X-rays: shapes, randomness under a seed, fixed stressed copies."""
import numpy as np
from conftest import DATA

from pneumonia import augment, data


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
