"""Every accepted format decodes to the same pixels; every bad input is named."""
import io

import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from pneumonia.train.data import load_images
from pneumonia.serve.imaging import MAX_PIXELS, ImageError, load_image, to_model_input

XRAY = sorted((DATA / "test" / "PNEUMONIA").iterdir())[0]


@pytest.fixture(scope="module")
def grey():
    return load_image(XRAY)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode, fmt, kw", [
    ("L", "PNG", {}), ("RGB", "PNG", {}), ("RGBA", "PNG", {}), ("P", "PNG", {}),
    ("L", "BMP", {}), ("RGB", "BMP", {}), ("L", "TIFF", {}), ("RGB", "TIFF", {}),
    ("L", "WEBP", {"lossless": True}), ("RGB", "WEBP", {"lossless": True}),
])
def test_lossless_formats_give_identical_pixels(grey, mode, fmt, kw):
    img = Image.fromarray(grey).convert(mode)
    assert np.array_equal(load_image(_encode(img, fmt, **kw)), grey)


def test_jpeg_as_training_reads_it(grey):
    images, _, _ = load_images([XRAY])
    assert np.array_equal(images[0], to_model_input(grey)[:, :, 0])


def test_sixteen_bit_png_is_stretched_to_8_bit(grey):
    wide = (grey.astype(np.uint16) * 16)  # 12-bit data in a 16-bit container
    img = Image.fromarray(wide)
    assert img.mode.startswith("I;16")
    out = load_image(_encode(img, "PNG"))
    expected = np.round((grey - grey.min()) * 255.0 / (grey.max() - grey.min()))
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_transparent_pixels_become_black(grey):
    rgba = np.dstack([np.stack([grey] * 3, -1), np.full(grey.shape, 255, np.uint8)])
    rgba[:10, :, 3] = 0
    out = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[:10].max() == 0 and np.array_equal(out[10:], grey[10:])


def test_exif_orientation_is_honoured():
    wide = np.zeros((100, 200), np.uint8)
    wide[:, :20] = 255  # a bright band on the left
    img = Image.fromarray(wide)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was rotated: display rotated 90 degrees clockwise
    out = load_image(_encode(img, "JPEG", exif=exif, quality=95))
    assert out.shape == (200, 100)
    assert out[:20].mean() > 200 and out[-20:].mean() < 50  # band now on top


def test_model_input_shape_and_range():
    x = to_model_input(np.full((300, 500), 200, np.uint8))
    assert x.shape == (224, 224, 3) and x.dtype == np.float32 and x.max() == 200


@pytest.mark.parametrize("payload, message", [
    (b"", "No image was given"),
    (b"%PDF-1.4 this is not an image", "not an image we can read"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image we can read"),
])
def test_bad_bytes_are_refused(payload, message):
    with pytest.raises(ImageError, match=message):
        load_image(payload)


def test_truncated_image_is_refused(grey):
    data = _encode(Image.fromarray(grey), "PNG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_tiny_image_is_refused():
    with pytest.raises(ImageError, match=r"too small \(32x80\)"):
        load_image(_encode(Image.new("L", (32, 80)), "PNG"))


def test_decompression_bomb_is_refused_before_decoding():
    side = int(np.sqrt(MAX_PIXELS)) + 100
    with pytest.raises(ImageError, match="too large"):
        load_image(_encode(Image.new("1", (side, side)), "PNG"))


def test_huge_png_pillow_calls_a_bomb_gets_the_size_message():
    """30000x30000 (109 KB on disk): Pillow refuses it before our own check runs."""
    with pytest.raises(ImageError, match=r"^The image is too large \(900 megapixels; the limit is 50\)"):
        load_image(_encode(Image.new("1", (30000, 30000)), "PNG"))


@pytest.mark.parametrize("width, height", [(5000, 64), (64, 5000), (1000, 300)])
def test_strip_cut_from_an_xray_is_refused_for_its_shape(grey, width, height):
    strip = Image.fromarray(grey).resize((width, height))
    with pytest.raises(ImageError, match=rf"{width}x{height} pixels: no chest X-ray is more than 3 times"):
        load_image(_encode(strip, "PNG"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageError, match="File not found"):
        load_image(tmp_path / "nope.png")
