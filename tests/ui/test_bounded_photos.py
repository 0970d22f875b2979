"""Issue 13 item 4 on the page: a WebP from the browser is decoded and scaled down in the photo
decoder process, not in the server; a refused one is a message."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ui.photos import photo_bytes


def test_a_large_webp_is_converted_in_the_decoder_and_scaled_down(tmp_path):
    path = tmp_path / "webcam.webp"
    Image.new("RGB", (4000, 3000), (30, 90, 200)).save(path, format="WEBP", quality=80)
    data = photo_bytes(path)
    with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
        assert im.size == (2048, 1536)
        r, g, b = im.convert("RGB").getpixel((1000, 700))
        assert abs(r - 30) < 8 and abs(g - 90) < 8 and abs(b - 200) < 8


def test_a_damaged_webp_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.webp"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="WEBP")
    path.write_bytes(buf.getvalue()[:40])
    with pytest.raises(ValueError, match="PNG, JPEG or WebP"):
        photo_bytes(path)
