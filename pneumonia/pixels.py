"""What every image reader shares: the user-facing error, the size limits and
the stretch of >8-bit data to 8 bits. The floor below `imaging` and `dicom`."""
from __future__ import annotations

import numpy as np

MIN_SIDE = 64
MAX_PIXELS = 50_000_000
# Detector plates run from square to about 1:1.3 (14x17 in); 3:1 leaves room for
# crops and screenshots, and refuses strips no radiograph has.
MAX_ASPECT = 3.0


# Why an image was refused, for programs (details["refusal"]["reason"]); the message says it for people.
REASONS = ("no_image", "not_an_image", "unreadable", "too_small", "too_large", "bad_shape", "no_lungs",
           "not_chest_xray")


class ImageError(ValueError):
    """An input that cannot be read as an X-ray; the message says why, for users,
    and `reason` (one of REASONS) for programs."""

    def __init__(self, message: str, reason: str = "unreadable"):
        super().__init__(message)
        self.reason = reason if reason in REASONS else "unreadable"


def stretch_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map the data's own min..max onto 0..255 (for >8-bit data without a window)."""
    arr = np.asarray(arr, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def too_large(pixels: int, size: str = "") -> ImageError:
    return ImageError(f"The image is too large ({size}{pixels / 1e6:.0f} megapixels; "
                      f"the limit is {MAX_PIXELS / 1e6:.0f}).", "too_large")


def check_pixels(width: int, height: int) -> None:
    """Refuse images too large to decode safely."""
    if width * height > MAX_PIXELS:
        raise too_large(width * height, f"{width}x{height} = ")


def check_size(width: int, height: int) -> None:
    """Refuse images too large to decode safely, too small to read, or of a
    shape no radiograph has."""
    check_pixels(width, height)
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"The image is too small ({width}x{height}); it needs at least "
            f"{MIN_SIDE} pixels on each side.", "too_small"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"The image is {width}x{height} pixels: no chest X-ray is more than {MAX_ASPECT:g} times "
            f"as {'wide as it is tall' if width > height else 'tall as it is wide'}. Upload the whole radiograph.", "bad_shape"
        )
