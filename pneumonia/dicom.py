"""DICOM radiographs -> 8-bit greyscale, the way a viewer would first show them."""
from __future__ import annotations

import io
import numpy as np

from .pixels import ImageError, check_size, stretch_to_uint8


def _first(value) -> float:
    """Window centre/width may be multi-valued: the first is the default view."""
    try:
        return float(value[0])
    except (TypeError, IndexError):
        return float(value)


def load_dicom(data: bytes) -> np.ndarray:
    """Rescale slope/intercept, then the first VOI window if present (else the
    data's own range), inverting MONOCHROME1 so bone is always bright."""
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
    if frames != 1 or samples != 1:
        raise ImageError(f"The DICOM file must hold a single 2-D greyscale image; this one has "
                         f"{frames} frame(s) of {samples} sample(s) per pixel.")
    check_size(int(ds.Columns), int(ds.Rows))
    try:
        pixels = ds.pixel_array
    except Exception as e:  # missing codec, truncated pixel data, ...
        raise ImageError(f"The DICOM pixel data could not be decoded ({e}).") from None
    if pixels.ndim != 2:
        raise ImageError(f"The DICOM file must hold a single 2-D image, not an array of shape {pixels.shape}.")
    values = pixels.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
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
