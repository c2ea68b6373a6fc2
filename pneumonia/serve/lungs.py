"""Lung fields on a chest X-ray at inference: the segmenter's output and the post-processing users can trust.

The network (a narrowed U-Net, `pneumonia.train.segmenter`) maps the canonical
224x224 greyscale image, shrunk to `SEG_SIZE`, to a per-pixel lung
probability; here it runs as an OpenVINO IR (`runtime.SegmenterNet`).
Post-processing keeps the two largest components, fills their holes, and
accepts them only if they look like a pair of lungs; otherwise the caller is
told that no lung fields were found, rather than given a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pneumonia.config import IMAGE_SIZE, SEG_SIZE

# A plausible pair of lungs, as fractions of the image: each lung at least
# MIN_LUNG of the image and MIN_PAIR of the other, both together within
# TOTAL_RANGE, and side by side (centroids apart by MIN_SEPARATION of the width,
# more apart horizontally than vertically). The data's lung areas run 10-55%;
# a lung whitened by pneumonia can be under-segmented, hence the loose pair ratio.
MIN_LUNG = 0.01
MIN_PAIR = 0.1
TOTAL_RANGE = (0.04, 0.75)
MIN_SEPARATION = 0.12
# The U-Net has a strong shape prior: on noise, blank or gradient images it
# still draws lung-like shapes, but unsurely. Certainty = share of pixels whose
# probability is within 0.1 of 0 or 1. On 1,604 training-side X-rays (500 of
# the classifier's training split, the 1,104 of lung_masks) it was >= 0.884;
# on noise 0.80, on blank and gradient images 0.62-0.66.
MIN_CERTAINTY = 0.85


def shrink(images: np.ndarray, size: int = SEG_SIZE) -> np.ndarray:
    """(N, H, W) uint8 -> (N, size, size, 1) float32, the segmenter's input."""
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
                     for im in images]).astype(np.float32)[..., None]


class Segmenter:
    """A loaded segmenter: canonical 224 images -> lung probability at 224.

    `net`: any callable (n, size, size, 1) -> (n, size, size, 1) with a `size`:
    the OpenVINO `runtime.SegmenterNet` (serving) or the Keras network wrapped
    by `pneumonia.train.segmenter` (training, evaluation)."""

    def __init__(self, net):
        self.net, self.size, self._call = net, net.size, net

    def probability(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, 224, 224) uint8 -> (N, 224, 224) float32 in [0, 1]."""
        out = np.zeros((len(images), IMAGE_SIZE, IMAGE_SIZE), np.float32)
        for start in range(0, len(images), batch_size):
            p = self._call(shrink(images[start:start + batch_size], self.size))[..., 0]
            for i, m in enumerate(p):
                out[start + i] = cv2.resize(m, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
        return out


@dataclass(frozen=True)
class Lungs:
    """The outcome of post-processing: a mask of both lungs, or why there is none."""
    mask: np.ndarray | None   # (H, W) bool
    reason: str               # "" when found

    @property
    def found(self) -> bool:
        return self.mask is not None


def postprocess(probability: np.ndarray, threshold: float = 0.5) -> Lungs:
    """Keep the two largest components, fill holes, and check they form a pair of lungs."""
    probability = np.asarray(probability)
    certainty = float((np.abs(probability - 0.5) > 0.4).mean())
    if certainty < MIN_CERTAINTY:
        return Lungs(None, f"the lung map is uncertain (certainty {certainty:.2f} < {MIN_CERTAINTY})")
    binary = (probability >= threshold).astype(np.uint8)
    h, w = binary.shape
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    order = 1 + np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    if len(order) < 2:
        return Lungs(None, f"{len(order)} lung-like region(s), need two")
    a, b = order[:2]
    areas = stats[[a, b], cv2.CC_STAT_AREA] / float(h * w)
    if areas.min() < MIN_LUNG or areas.min() < MIN_PAIR * areas.max():
        return Lungs(None, f"the second region is too small ({areas.min():.1%} of the image)")
    if not TOTAL_RANGE[0] <= areas.sum() <= TOTAL_RANGE[1]:
        return Lungs(None, f"the regions cover {areas.sum():.0%} of the image")
    dx, dy = np.abs(centroids[a] - centroids[b])
    if dx < MIN_SEPARATION * w or dx < dy:
        return Lungs(None, "the two regions do not lie side by side")
    mask = np.zeros((h, w), bool)
    for c in (a, b):
        mask |= fill_holes(labels == c)
    return Lungs(mask, "")


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background not 4-connected to the border becomes foreground (what
    scipy.ndimage.binary_fill_holes does; OpenCV keeps scipy out of the app)."""
    n, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    enclosed = np.ones(n, bool)   # a lookup by label: np.isin sorted every pixel
    enclosed[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    return mask | (~mask & enclosed[labels])


class SegmenterError(ValueError):
    """A segmenter file that is missing or not loadable."""


def load_exported(path: str | Path, precision: str | None = None) -> Segmenter:
    """The segmenter's OpenVINO export `lungs.xml` (forward only, no TensorFlow;
    at `precision`, default the runtime's)."""
    path = Path(path)
    if not path.is_file():
        raise SegmenterError(f"Lung segmenter not found: {path}")
    from pneumonia.serve.runtime import SegmenterNet
    return Segmenter(SegmenterNet(path) if precision is None else SegmenterNet(path, precision))
