"""Safe image opening: only PNG / JPEG within limits, damaged files refused, EXIF orientation applied."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tools.errors import ToolInputError
from tools.inspection.images import InspectionError, open_image


def _encoded(fmt: str, size=(32, 24), mode="RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 128).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions but carries almost no data (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_png_and_jpeg_open_as_rgb_arrays():
    for fmt in ("PNG", "JPEG"):
        arr = open_image(_encoded(fmt))
        assert arr.shape == (24, 32, 3) and arr.dtype == np.uint8
        assert arr[..., 0].mean() > 150 and arr[..., 1].mean() < 80


def test_grey_and_transparent_pngs_become_rgb():
    assert open_image(_encoded("PNG", mode="L")).shape == (24, 32, 3)
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buf, format="PNG")
    assert (open_image(buf.getvalue()) == 255).all()  # transparent → white, not black


@pytest.mark.parametrize("fmt,name", [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WebP")])
def test_other_formats_refused_with_what_they_are(fmt, name):
    with pytest.raises(InspectionError) as exc:
        open_image(_encoded(fmt))
    assert name in str(exc.value) and "PNG or JPEG" in str(exc.value)
    assert isinstance(exc.value, ToolInputError)  # a bad input, 400 at the faces


def test_svg_renamed_to_png_refused(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_bytes(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    with pytest.raises(InspectionError, match="SVG.*only PNG or JPEG"):
        open_image(fake)


def test_unknown_bytes_refused():
    with pytest.raises(InspectionError, match="PNG or JPEG"):
        open_image(b"definitely not an image at all")


def test_truncated_jpeg_refused_as_damaged():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, format="JPEG")
    data = buf.getvalue()
    with pytest.raises(InspectionError, match="damaged or incomplete"):
        open_image(data[: len(data) // 2])


def test_huge_dimension_png_refused_before_decoding():
    with pytest.raises(InspectionError, match="limit is 40 MP"):
        open_image(_png_header_only(20000, 20000))  # 400 MP in a ~100-byte file


def test_decompression_bomb_warning_is_an_error():
    # our own check is lifted, so Pillow's warning (between its limit and twice it) must stop it
    with pytest.raises(InspectionError, match="decompression bomb"):
        open_image(_png_header_only(7000, 7000), max_pixels=10**9)


def test_byte_size_limit(tmp_path):
    data = _encoded("PNG", size=(64, 64))
    with pytest.raises(InspectionError, match="MB; the limit"):
        open_image(data, max_bytes=len(data) - 1)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(InspectionError, match="MB; the limit"):
        open_image(path, max_bytes=10)


def test_empty_file_refused():
    with pytest.raises(InspectionError, match="empty"):
        open_image(b"")


def test_exif_orientation_applied():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # left half red
    img[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95, exif=exif)
    arr = open_image(buf.getvalue())
    assert arr.shape == (40, 20, 3)  # upright: portrait
    top, bottom = arr[5, 10], arr[35, 10]
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
