"""Compressed DICOM, as PACS exports write it, decodes to the same pixels as
the uncompressed file: pydicom's own test files (installed with pydicom, no
download) and a real X-ray compressed here."""
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from pneumonia.serve.dicom import decode
from pneumonia.serve.imaging import ImageError, load_image, stretch_to_uint8
from test_dicom import make_dicom


def pydicom_file(name: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"{name} is not among the test files installed with pydicom")
    return Path(path).read_bytes()


# (compressed, uncompressed or losslessly stored reference, largest difference allowed)
PAIRS = [
    ("MR_small_RLE.dcm", "MR_small.dcm", 0),                   # RLE lossless, 16-bit
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0),      # JPEG-LS lossless
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", 0),          # JPEG 2000 lossless
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm", 1e-9),          # JPEG lossless, process 14 SV1
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb_rle.dcm", 1e-9),            # JPEG 2000
    ("SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_rle.dcm", 2),          # JPEG baseline (lossy)
    ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", 2),            # JPEG baseline, YBR (lossy)
]


@pytest.mark.parametrize("compressed, reference, tolerance", PAIRS)
def test_compressed_pydicom_file_gives_the_reference_pixels(compressed, reference, tolerance):
    got, expected = decode(pydicom_file(compressed)), decode(pydicom_file(reference))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= tolerance


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG2000.dcm"])
def test_12_bit_jpeg_extended_and_jpeg_2000_decode(name):
    """The same nuclear-medicine image as 12-bit JPEG extended (process 2 and 4,
    lossy) and as JPEG 2000: pydicom has no uncompressed copy, so the two
    lossy decodings are compared with each other."""
    values = decode(pydicom_file(name))
    assert values.shape == (1024, 256)
    extended, j2k = decode(pydicom_file("JPGExtended.dcm")), decode(pydicom_file("JPEG2000.dcm"))
    assert np.corrcoef(extended.ravel(), j2k.ravel())[0, 1] > 0.9
    assert np.abs(values).max() < 2 ** 12 and np.ptp(values) > 100  # 12-bit data with real content
    # Through the app's reader it decodes, then is refused for its shape (a 1:4 nuclear-medicine strip).
    with pytest.raises(ImageError, match="256x1024 pixels: no chest X-ray"):
        load_image(pydicom_file(name))


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_real_xray_compressed_losslessly_reads_as_the_uncompressed_one(syntax):
    grey = stretch_to_uint8(load_image(EXAMPLES / "PNEUMONIA-bacterial_person100_bacteria_475.jpeg"))
    plain = make_dicom(grey.astype(np.uint16) * 16, 12, intercept=-1024.0)
    ds = dcmread(io.BytesIO(plain))
    ds.compress(syntax)
    packed = io.BytesIO()
    ds.save_as(packed, enforce_file_format=True)
    assert len(packed.getvalue()) < len(plain)
    assert np.array_equal(load_image(packed.getvalue()), load_image(plain))


@pytest.mark.parametrize("name", ["JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"])
def test_malformed_compressed_data_gets_a_clear_message(name):
    """Two of pydicom's files are broken on purpose (a misplaced JPEG marker, a
    J2K stream cut by a delimiter): no decoder reads them; the user is told so."""
    with pytest.raises(ImageError, match=r"^The DICOM pixel data could not be decoded \(JPEG"):
        decode(pydicom_file(name))
