"""What the classifier sees of the lungs, and how its heatmap maps back.

The lungs are found on the canonical 224x224 image (`imaging.canonical`).
The classifier's input is then, by variant:
- "full": the canonical image itself (the earlier, whole-image models);
- "crop": the lungs' bounding box plus a margin, resized to 224x224;
- "crop+mask": the same crop after everything outside the dilated lung mask
  was set to black, so borders, leads, labels and the abdomen are gone;
- "crop+blur": the same crop with the outside blurred instead: the coarse
  context (heart, diaphragm) stays, sharp detail and the mask's edge go.
Training, evaluation and serving all call `lung_view`, so the preprocessing
is one piece of code. A box is kept in fractions of the image's width and
height, so it maps onto the uploaded image at its own resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pneumonia.config import IMAGE_SIZE, LUNG_BLUR, LUNG_DILATION, LUNG_MARGIN, LUNG_VARIANTS
from pneumonia.serve.lungs import Lungs, Segmenter, load_exported, postprocess


@dataclass(frozen=True)
class Box:
    """A box in fractions of the image: x0 <= x < x1, y0 <= y < y1."""
    x0: float
    y0: float
    x1: float
    y1: float

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels of an image of that size (x1, y1 exclusive)."""
        return (round(self.x0 * width), round(self.y0 * height),
                max(round(self.x1 * width), round(self.x0 * width) + 1),
                max(round(self.y1 * height), round(self.y0 * height) + 1))

    def region(self, width: int, height: int) -> np.ndarray:
        """(height, width) bool: True inside the box."""
        x0, y0, x1, y1 = self.pixels(width, height)
        inside = np.zeros((height, width), bool)
        inside[y0:y1, x0:x1] = True
        return inside

    def as_dict(self, width: int, height: int) -> dict[str, int]:
        x0, y0, x1, y1 = self.pixels(width, height)
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}


FULL = Box(0.0, 0.0, 1.0, 1.0)


def lung_box(mask: np.ndarray, margin: float = LUNG_MARGIN) -> Box:
    """The bounding box of a (H, W) mask, grown by `margin` of its size on each
    side and clipped to the image, on the mask's pixel grid."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    mx, my = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    return Box(max(x0 - mx, 0) / w, max(y0 - my, 0) / h, min(x1 + mx, w) / w, min(y1 + my, h) / h)


def dilate(mask: np.ndarray, fraction: float = LUNG_DILATION) -> np.ndarray:
    """Grow a (H, W) mask by `fraction` of the image side (an elliptical kernel)."""
    r = max(1, round(fraction * max(mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def crop(image: np.ndarray, box: Box, size: int = IMAGE_SIZE) -> np.ndarray:
    """The box's pixels resized to (size, size), aspect not kept (like the data)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box.pixels(w, h)
    part = image[y0:y1, x0:x1]
    shrinking = part.shape[0] * part.shape[1] > size * size
    return cv2.resize(part, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def lung_view(canon: np.ndarray, mask: np.ndarray | None, variant: str,
              margin: float = LUNG_MARGIN, dilation: float = LUNG_DILATION) -> tuple[np.ndarray, Box]:
    """(224, 224) uint8 canonical image and its lung mask -> (classifier input
    (224, 224) uint8, the box it shows)."""
    if variant not in LUNG_VARIANTS:
        raise ValueError(f"unknown lung variant {variant!r}; one of {', '.join(LUNG_VARIANTS)}")
    if variant == "full":
        return canon, FULL
    box = lung_box(mask, margin)
    if variant == "crop+mask":
        canon = np.where(dilate(mask, dilation), canon, 0).astype(np.uint8)
    elif variant == "crop+blur":
        blurred = cv2.GaussianBlur(canon, (0, 0), LUNG_BLUR * max(canon.shape))
        canon = np.where(dilate(mask, dilation), canon, blurred).astype(np.uint8)
    return crop(canon, box), box


def to_image(heat: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    """A map over the box (any size, values in [0, 1]) -> (H, W) float32 over
    the whole image: the map resized into the box's pixels, zero elsewhere."""
    h, w = shape
    x0, y0, x1, y1 = box.pixels(w, h)
    out = np.zeros((h, w), np.float32)
    resized = cv2.resize(np.asarray(heat, np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    out[y0:y1, x0:x1] = np.clip(resized, 0.0, 1.0)
    return out


def draw_outline(rgb: np.ndarray, mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """Draw a mask's outer contour on an RGB image in place, about 1/300 of its side thick."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(rgb, contours, -1, colour, max(1, round(max(rgb.shape[:2]) / 300)), cv2.LINE_AA)
    return rgb


def mask_to_image(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A (224, 224) mask resized (smoothly) to the uploaded image's (H, W)."""
    h, w = shape
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def outline_polygons(mask: np.ndarray, shape: tuple[int, int], tolerance: float = 0.004) -> list[list[list[int]]]:
    """A (224, 224) mask -> the outer contour of each of its parts as a polygon
    [[x, y], ...] in pixels of an image of `shape` (H, W), simplified to within
    `tolerance` of the image's longer side: a few hundred bytes for two lungs."""
    h, w = shape
    sx, sy = w / mask.shape[1], h / mask.shape[0]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = []
    for c in sorted(contours, key=lambda c: c[:, 0, 0].min()):  # left of the image first
        # Pixel centres, so a polygon drawn on the image lies on the mask's edge.
        pts = ((c[:, 0, :] + 0.5) * (sx, sy)).astype(np.float32)
        pts = cv2.approxPolyDP(pts[:, None, :], tolerance * max(h, w), True)[:, 0, :]
        out.append(np.rint(pts).astype(int).tolist())
    return out


class LungReader:
    """Canonical images -> what the classifier reads, as a model folder's config says.

    `segmenter` is None only for the whole-image variant ("full")."""

    def __init__(self, segmenter: Segmenter | None, variant: str = "full", margin: float = LUNG_MARGIN,
                 dilation: float = LUNG_DILATION):
        if variant not in LUNG_VARIANTS:
            raise ValueError(f"unknown lung variant {variant!r}; one of {', '.join(LUNG_VARIANTS)}")
        if segmenter is None and variant != "full":
            raise ValueError(f"the {variant!r} lung view needs a segmenter")
        self.segmenter, self.variant, self.margin, self.dilation = segmenter, variant, margin, dilation

    @classmethod
    def from_config(cls, config: dict, segmenter: Segmenter | None) -> "LungReader":
        """The `lungs` settings of a model folder's config, read with `segmenter`
        (None for folders without them: those read the whole image)."""
        lungs = config.get("lungs")
        if not lungs:
            return cls(None)
        return cls(segmenter, lungs["variant"], lungs["margin"], lungs["dilation"])

    @classmethod
    def exported(cls, folder: str | Path, config: dict, precision: str | None = None) -> "LungReader":
        """The folder's reader with the segmenter's OpenVINO export, at `precision`."""
        file = config["runtime"]["segmenter"] if config.get("lungs") else None
        return cls.from_config(config, load_exported(Path(folder) / file, precision) if file else None)

    def find(self, canons: np.ndarray) -> list[Lungs | None]:
        """The post-processed lungs of each canonical image (None without a segmenter)."""
        if self.segmenter is None:
            return [None] * len(canons)
        return [postprocess(p) for p in self.segmenter.probability(canons)]

    def read(self, canons: np.ndarray) -> tuple[np.ndarray, list[Box], list[Lungs | None], np.ndarray]:
        """(views (n, 224, 224) uint8, boxes, lungs, found (n,) bool). An image
        whose lungs were not found gets its canonical image as a placeholder view
        and found False: callers refuse it (serving) or leave it out (training)."""
        lungs = self.find(canons)
        found = np.asarray([self.variant == "full" or (l is not None and l.found) for l in lungs], bool)
        out = [lung_view(c, l.mask if l is not None else None, self.variant, self.margin, self.dilation)
               if ok else (c, FULL) for c, l, ok in zip(canons, lungs, found)]
        return (np.stack([v for v, _ in out]) if out else canons[:0],
                [b for _, b in out], lungs, found)

    def seen(self, lungs: Lungs | None, box: Box) -> np.ndarray:
        """(224, 224) bool: the part of the canonical image the classifier reads
        sharply (the dilated lungs inside their box for "crop+mask" and
        "crop+blur", whose outside is black or blurred; the box for "crop";
        everything for "full"). The overlay colours it and outlines it."""
        seen = box.region(IMAGE_SIZE, IMAGE_SIZE)
        if self.variant in ("crop+mask", "crop+blur") and lungs is not None and lungs.found:
            seen &= dilate(lungs.mask, self.dilation)
        return seen

    def describe(self) -> dict:
        return {"variant": self.variant, "margin": self.margin, "dilation": self.dilation}
