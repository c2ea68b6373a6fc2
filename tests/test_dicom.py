"""DICOM radiographs built with pydicom from a real X-ray decode to its pixels."""
import io

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from pneumonia.serve.imaging import ImageError, load_image, stretch_to_uint8

XRAY = EXAMPLES / "PNEUMONIA-bacterial_person100_bacteria_475.jpeg"


@pytest.fixture(scope="module")
def grey():
    """A real X-ray stretched to the full 0..255 range, so each encoding below
    maps back onto exactly these pixels."""
    return stretch_to_uint8(load_image(XRAY))


def make_dicom(pixels: np.ndarray, bits: int, photometric: str = "MONOCHROME2", slope=1.0,
               intercept=0.0, window=None, frames: int = 1, samples: int = 1) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if samples > 1 else pixels.shape[-2:]
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric if samples == 1 else "RGB"
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    allocated = 8 if bits == 8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint8 if allocated == 8 else np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def cases(g):
    stored12 = g.astype(np.uint16) * 16  # 0..4080 in 12 bits
    # Window mapping stored12 - 1024 (HU-like) exactly onto 0..255 (PS3.3 C.11.2.1.2).
    return {
        "MONOCHROME2 16-bit, no window": make_dicom(g.astype(np.uint16) * 257, 16),
        "MONOCHROME2 12-bit, rescaled, no window": make_dicom(stored12, 12, intercept=-1024.0),
        "MONOCHROME2 12-bit, rescaled, windowed": make_dicom(stored12, 12, intercept=-1024.0,
                                                             window=(1016.5, 4081.0)),
        "MONOCHROME1 12-bit, windowed": make_dicom((255 - g.astype(np.uint16)) * 16, 12,
                                                   photometric="MONOCHROME1", window=(2040.5, 4081.0)),
        "MONOCHROME1 16-bit, no window": make_dicom((255 - g.astype(np.uint16)) * 257, 16,
                                                    photometric="MONOCHROME1"),
    }


def test_each_dicom_variant_decodes_to_the_xray(grey):
    for name, data in cases(grey).items():
        assert np.abs(load_image(data).astype(int) - grey).max() <= 1, name


def test_prediction_on_dicom_equals_prediction_on_png(grey, shipped_served):
    predictor = shipped_served.predictor
    png = io.BytesIO()
    Image.fromarray(grey).save(png, format="PNG")
    expected = predictor.analyze(png.getvalue())
    for name, data in cases(grey).items():
        got = predictor.analyze(data)
        assert got["decision"] == expected["decision"], name
        assert got["probability_pneumonia"] == pytest.approx(expected["probability_pneumonia"], abs=2e-3), name


def test_dicom_that_is_not_one_2d_image_is_refused(grey):
    small = grey[:100, :100].astype(np.uint16)
    with pytest.raises(ImageError, match="single 2-D image .*; this one has 3 frame"):
        load_image(make_dicom(np.stack([small] * 3), 16, frames=3))
    no_pixels = make_dicom(small, 16)
    ds_bytes = no_pixels[: no_pixels.rfind(b"\xe0\x7f\x10\x00")]  # cut the PixelData element
    with pytest.raises(ImageError, match="no image|could not be"):
        load_image(ds_bytes)


def test_colour_dicom_is_read_as_its_luma_like_a_colour_png(grey):
    rgb = np.stack([grey, grey, grey], -1).astype(np.uint16)
    assert np.abs(load_image(make_dicom(rgb, 8, samples=3)).astype(int) - grey).max() <= 1


def test_tiny_dicom_is_refused():
    with pytest.raises(ImageError, match="too small"):
        load_image(make_dicom(np.zeros((32, 32), np.uint16), 16))
