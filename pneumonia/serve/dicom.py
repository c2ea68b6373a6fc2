"""DICOM radiographs -> 8-bit greyscale, the way a viewer would first show them.

Compressed pixel data (JPEG baseline, extended 12-bit and lossless, JPEG-LS,
JPEG 2000, RLE: what PACS exports write) is decoded by pydicom's pylibjpeg
plugins, installed with the app (see requirements.txt for why those).
"""
from __future__ import annotations

import io

import numpy as np

from pneumonia.pixels import ImageError, check_pixels, check_size, stretch_to_uint8

# ITU-R BT.601 luma, as Pillow's convert("L") uses for colour uploads.
_LUMA = np.array([0.299, 0.587, 0.114])


def _first(value) -> float:
    """Window centre/width may be multi-valued: the first is the default view."""
    try:
        return float(value[0])
    except (TypeError, IndexError):
        return float(value)


def _read(data: bytes):
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, OSError) as e:
        raise ImageError(f"The DICOM file could not be read ({e}).") from None
    if "PixelData" not in ds:
        raise ImageError("The DICOM file holds no image (no pixel data).")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames != 1 or samples not in (1, 3):
        raise ImageError(f"The DICOM file must hold a single 2-D image (greyscale or colour); this one has "
                         f"{frames} frame(s) of {samples} sample(s) per pixel.")
    return ds


def _values(ds) -> np.ndarray:
    check_pixels(int(ds.Columns), int(ds.Rows))
    try:
        pixels = ds.pixel_array
    except Exception as e:  # a codec the plugins lack, truncated or malformed data, ...
        # pydicom lists every plugin's reason on its own line: the first one says enough.
        reasons = [line.strip() for line in str(e).splitlines()[1:] if line.strip()] or [str(e)]
        syntax = getattr(ds.file_meta.get("TransferSyntaxUID"), "name", "unknown transfer syntax")
        raise ImageError(f"The DICOM pixel data could not be decoded ({syntax}: {reasons[0]}).") from None
    if pixels.ndim == 3 and pixels.shape[-1] == 3:  # pydicom returns colour as RGB
        pixels = pixels.astype(np.float64) @ _LUMA
    if pixels.ndim != 2:
        raise ImageError(f"The DICOM file must hold a single 2-D image, not an array of shape {pixels.shape}.")
    return pixels.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)


def decode(data: bytes) -> np.ndarray:
    """A DICOM file's pixels as (H, W) float64 modality values (rescale slope
    and intercept applied; colour reduced to luma). Compressed or not, the
    same image gives the same values. Raises ImageError."""
    return _values(_read(data))


def load_dicom(data: bytes) -> np.ndarray:
    """Modality values, then the first VOI window if present (else the data's
    own range), inverting MONOCHROME1 so bone is always bright."""
    ds = _read(data)
    check_size(int(ds.Columns), int(ds.Rows))
    values = _values(ds)
    if "WindowCenter" in ds and "WindowWidth" in ds and _first(ds.WindowWidth) >= 1:
        # DICOM PS3.3 C.11.2.1.2, linear VOI function.
        c, w = _first(ds.WindowCenter), _first(ds.WindowWidth)
        scaled = np.clip((values - (c - 0.5)) / max(w - 1, 1e-9) + 0.5, 0.0, 1.0)
        grey = np.round(scaled * 255.0).astype(np.uint8)
    else:
        grey = stretch_to_uint8(values)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        grey = 255 - grey
    return grey
