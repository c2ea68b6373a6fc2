"""What every image reader shares: the user-facing error, the size limits and
the stretch of >8-bit data to 8 bits. The floor below `imaging` and `dicom`."""
from __future__ import annotations

import numpy as np

MIN_SIDE = 64
MAX_PIXELS = 50_000_000


class ImageError(ValueError):
    """An input that cannot be read as an X-ray; the message says why, for users."""


def stretch_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map the data's own min..max onto 0..255 (for >8-bit data without a window)."""
    arr = np.asarray(arr, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def check_size(width: int, height: int) -> None:
    """Refuse images too large to decode safely or too small to read."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is too large ({width}x{height} = {width * height / 1e6:.0f} "
            f"megapixels; the limit is {MAX_PIXELS / 1e6:.0f})."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"The image is too small ({width}x{height}); it needs at least "
            f"{MIN_SIDE} pixels on each side."
        )
