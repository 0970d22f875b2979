"""Issue 13 item 4: photos are decoded in a limited child process and scaled down there; the
server's memory stays flat, and decodes at once are bounded.

The attack photo is made here, streamed (it never exists decoded in this process): a ~105 KB
PNG of 6000×6000 pixels of one colour — 36 MP, under the 40 MP limit."""

from __future__ import annotations

import gc
import struct
import threading
import time
import zlib

import numpy as np
import psutil
import pytest

from knowledge.loaders.child import ChildBusy, ChildPool, ChildTimeout
from tools.errors import ToolBusyError
from tools.inspection import decode_worker
from tools.inspection.images import MAX_SIDE, InspectionError, open_image
from tools.inspection.uploads import UploadStore


def solid_png(width: int, height: int, rgb=(40, 120, 40)) -> bytes:
    """A PNG of one colour, compressed row by row: one row in memory, never the image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes(rgb) * width
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = solid_png(6000, 6000)
    assert len(data) < 200_000  # ~105 KB for 108 MB of pixels
    return data


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def test_a_36_mp_png_is_accepted_scaled_down_without_the_server_holding_it(tmp_path, bomb):
    """Six at once through the REST API: tests/api/test_bounded_uploads.py."""
    store = UploadStore(tmp_path)
    store.open(store.save(solid_png(64, 48)))  # decoders up, as in a running server
    before = _rss_mb()
    image_id = store.save(bomb, "field.png")
    info = store.info(image_id)
    assert (info["width"], info["height"], info["original_width"], info["original_height"]) == (2048, 2048, 6000, 6000)
    assert store.path(image_id).read_bytes() == bomb  # the photo as sent is kept
    rgb = store.open(image_id)
    assert rgb.shape == (MAX_SIDE, MAX_SIDE, 3) and (rgb == (40, 120, 40)).all()
    del rgb
    assert _rss_mb() - before < 30


def test_jpeg_decoded_at_a_reduced_scale_and_normal_photos_unchanged():
    from PIL import Image
    import io

    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="PNG")
    assert np.array_equal(open_image(buf.getvalue()), small)  # at most MAX_SIDE: pixel for pixel
    buf = io.BytesIO()
    Image.new("RGB", (6000, 4500), (200, 30, 30)).save(buf, format="JPEG", quality=90)
    rgb, fmt = open_image(buf.getvalue(), with_format=True)
    assert fmt == "JPEG" and rgb.shape == (1536, 2048, 3)
    assert np.abs(rgb.astype(int) - (200, 30, 30)).max() <= 3


def test_a_decoder_over_its_time_is_killed_with_a_clear_error(monkeypatch, bomb):
    monkeypatch.setattr(decode_worker, "TIMEOUT_S", 0.05)
    with pytest.raises(InspectionError, match=r"took longer than 0\.05 s"):
        open_image(bomb)
    assert open_image(solid_png(32, 32)).shape == (32, 32, 3)  # the next photo gets a fresh decoder


def test_a_decoder_over_its_memory_is_a_clear_error(bomb):
    # 200 MB of address space cannot hold Python, Pillow and 108 MB of pixels.
    pool = ChildPool("tools.inspection.decode_worker", mem_mb=200, size=1, what="photo decoder")
    try:
        reply, _ = pool.call({"max_pixels": 40_000_000, "max_side": MAX_SIDE, "formats": ["PNG"]}, bomb,
                             timeout_s=30, cpu_s=30)
    except ChildTimeout:
        raise
    except Exception as exc:  # noqa: BLE001 - the child died: the message says why
        message = str(exc)
    else:
        message = str(reply.get("message"))
    finally:
        pool.close()
    assert "memory limit (200 MB)" in message


def test_decodes_at_once_are_bounded_and_the_overflow_is_told_busy(monkeypatch, bomb):
    pool = ChildPool("tools.inspection.decode_worker", mem_mb=1024, size=1, what="photo decoder")
    monkeypatch.setattr(decode_worker, "_pool", pool)
    monkeypatch.setattr(decode_worker, "WAIT_S", 0.0)
    first = threading.Thread(target=lambda: decode_worker.decode(bomb))
    try:
        first.start()
        deadline = time.monotonic() + 10
        while pool._slots._value and time.monotonic() < deadline:  # the first decode holds the one slot
            time.sleep(0.005)
        with pytest.raises(ToolBusyError, match="photo decoding is busy"):
            decode_worker.decode(solid_png(16, 16))
        first.join(60)
        with pytest.raises(ChildBusy):  # the pool itself, for a caller that waits no time
            pool._slots.acquire()
            try:
                pool.call({}, b"", timeout_s=1, cpu_s=1, wait_s=0)
            finally:
                pool._slots.release()
    finally:
        first.join(60)
        pool.close()
