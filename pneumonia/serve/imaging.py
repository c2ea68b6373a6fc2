"""Turn an image file into a validated greyscale picture, then into model input.

Training and serving both go through `load_image` -> `canonical`, so the
pixels the model (and the lung segmenter) sees are prepared the same way in both.
"""
from __future__ import annotations

import io
from pathlib import Path
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError
import cv2
import numpy as np

from pneumonia.config import IMAGE_SIZE
from pneumonia.pixels import MAX_PIXELS, MIN_SIDE, ImageError, check_size, stretch_to_uint8, too_large
from pneumonia.serve.dicom import load_dicom

__all__ = ["ImageError", "MAX_PIXELS", "MIN_SIDE", "canonical", "grey_to_rgb", "load_image", "stretch_to_uint8",
           "to_model_input"]


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # We check the size ourselves, with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        # Pillow refuses huge images (> ~179 megapixels) before our size check
        # runs; its message carries the pixel count.
        count = re.search(r"\((\d+) pixels\)", str(e))
        raise too_large(int(count.group(1)) if count else 2 * (Image.MAX_IMAGE_PIXELS or MAX_PIXELS)) from None
    except UnidentifiedImageError:
        raise ImageError(
            "This file is not an image we can read. Upload a JPEG, PNG, BMP, "
            "TIFF, WebP or DICOM chest X-ray.", "not_an_image"
        ) from None
    except OSError as e:
        raise ImageError(f"The image could not be opened ({e}).") from None


def _to_grey8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 greyscale, stretching >8-bit data to the full range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return stretch_to_uint8(np.asarray(img))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Transparent areas become black, like the film around a radiograph.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def _read_bytes(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise ImageError(f"File not found: {source}") from None
    except OSError as e:
        raise ImageError(f"The file could not be read ({e}).") from None


def is_dicom(data: bytes) -> bool:
    """DICOM Part 10 files carry 'DICM' after a 128-byte preamble."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def load_image(source: str | Path | bytes) -> np.ndarray:
    """Read an image file (path or bytes) into a (H, W) uint8 greyscale array.

    JPEG, PNG (8/16-bit, greyscale, RGBA, palette), BMP, TIFF, WebP and DICOM.
    Honours EXIF orientation. Raises ImageError with a user-facing message for
    files that are not images, corrupt or truncated data, images too small to
    read (< 64 px a side) and decompression bombs (> 50 megapixels).
    """
    if source is None or (isinstance(source, (bytes, str)) and len(source) == 0):
        raise ImageError("No image was given: upload a chest X-ray first.", "no_image")
    data = _read_bytes(source)
    if is_dicom(data):
        return load_dicom(data)
    img = _open(data)
    check_size(*img.size)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_grey8(img)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"The image is corrupt or truncated ({e}).") from None


def canonical(grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (224, 224) uint8, aspect not kept.

    The dataset's radiographs were squashed to 224x224 the same way; the lungs
    are found and cropped on this canonical image, at training and serving alike.
    """
    h, w = grey.shape[:2]
    shrinking = h * w > IMAGE_SIZE * IMAGE_SIZE
    return cv2.resize(grey, (IMAGE_SIZE, IMAGE_SIZE),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def grey_to_rgb(images: np.ndarray) -> np.ndarray:
    """(..., H, W) uint8 greyscale -> (..., H, W, 3) float32, the model's input."""
    return np.repeat(images[..., None], 3, axis=-1).astype(np.float32)


def to_model_input(grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (224, 224, 3) float32 RGB in [0, 255], the whole image squashed."""
    return np.repeat(canonical(grey)[:, :, None], 3, axis=2).astype(np.float32)
