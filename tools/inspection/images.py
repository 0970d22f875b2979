"""Opening photos safely: PNG and JPEG only, bounded in bytes and pixels, EXIF orientation applied.

Photos come from phones on the plant floor and from a mini-program upload, so the bytes are not
trusted: the format is whitelisted (Pillow never tries its other decoders), a decompression bomb
(small file, huge dimensions) is refused from the header before any pixel is decoded, and a
damaged file is an error rather than a half-grey picture. The pixels are decoded in a limited
child process, scaled down there (``decode_worker``): a 120 KB PNG that inflates to 36 MP costs
the server nothing but the small image it gets back.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# The limits and the error are defined with the decoding (which runs in the child); they are
# part of this module's interface.
from tools.inspection.decoding import ACCEPTED, MAX_BYTES, MAX_PIXELS, MAX_SIDE, InspectionError  # noqa: F401


def sniff(head: bytes) -> str | None:
    """Name a format we refuse, so the message can say what the file actually is."""
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    if head.startswith(b"%PDF"):
        return "PDF"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml", b"<!doctype svg")):
        return "SVG/XML"
    return None


def read_limited(source: bytes | str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InspectionError(f"image {path.name}: cannot be read ({exc.strerror})") from exc
        if size > max_bytes:
            raise InspectionError(f"image is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise InspectionError(f"image is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    if not data:
        raise InspectionError(f"image is empty; send a {ACCEPTED} photo")
    return data


def open_image(source: bytes | str | Path, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
               with_format: bool = False, max_side: int = MAX_SIDE):
    """Decode a PNG or JPEG into an RGB ``uint8`` array (H×W×3), upright per its EXIF orientation,
    its long side at most ``max_side`` (a larger photo is scaled down, never up).

    The pixels are decoded in a limited child process (``decode_worker``): only the scaled-down
    array comes back. Raises ``InspectionError`` saying what was wrong and what is accepted, and
    ``ToolBusyError`` when every decoder stays busy too long. With ``with_format`` returns
    ``(array, "PNG" | "JPEG")``.
    """
    rgb, fmt, _ = open_checked(source, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)
    return (rgb, fmt) if with_format else rgb


def open_checked(source: bytes | str | Path, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 max_side: int = MAX_SIDE) -> tuple[np.ndarray, str, tuple[int, int]]:
    """``open_image``'s work: ``(RGB array, format, (original width, original height))``."""
    from tools.inspection.decode_worker import decode

    data = read_limited(source, max_bytes)
    other = sniff(data[:64])
    if other:
        raise InspectionError(f"this is a {other} file; only {ACCEPTED} photos are accepted")
    return decode(data, max_pixels=max_pixels, max_side=max_side)


def encode_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
