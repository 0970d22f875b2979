"""Opening photos safely: PNG and JPEG only, bounded in bytes and pixels, EXIF orientation applied.

Photos come from phones on the plant floor and from a mini-program upload, so the bytes are not
trusted: the format is whitelisted (Pillow never tries its other decoders), a decompression bomb
(small file, huge dimensions) is refused from the header before any pixel is decoded, and a
damaged file is an error rather than a half-grey picture.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from tools.errors import ToolInputError

ACCEPTED = "PNG or JPEG"
MAX_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 48 MP phone photo is refused; 40 MP (e.g. 7744×5164) passes


class InspectionError(ToolInputError):
    """A photo or product model that cannot be used, in words a person can act on."""


def _limit_pillow() -> None:
    """Lower Pillow's own bomb limit (only ever lower it: other code in the process may rely on it)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _sniff(head: bytes) -> str | None:
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
               with_format: bool = False):
    """Decode a PNG or JPEG into an RGB ``uint8`` array (H×W×3), upright per its EXIF orientation.

    Raises ``InspectionError`` saying what was wrong and what is accepted. With ``with_format``
    returns ``(array, "PNG" | "JPEG")``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    _limit_pillow()
    data = read_limited(source, max_bytes)
    other = _sniff(data[:64])
    if other:
        raise InspectionError(f"this is a {other} file; only {ACCEPTED} photos are accepted")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
            w, h = im.size
            if w < 1 or h < 1 or w * h > max_pixels:  # from the header, before decoding
                raise InspectionError(f"image is {w}×{h} pixels ({w * h / 1e6:.0f} MP); the limit is "
                                      f"{max_pixels / 1e6:.0f} MP — send a smaller {ACCEPTED} photo")
            fmt = im.format
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))  # transparent parts on white, not black
            elif im.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit grey: scale to 8 bits, don't clip
                arr = np.asarray(im, dtype=np.float32)
                im = Image.fromarray((arr * (255.0 / max(float(arr.max()), 1.0))).astype(np.uint8))
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except InspectionError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InspectionError(f"image dimensions are too large (possible decompression bomb); the limit is "
                                  f"{max_pixels / 1e6:.0f} MP") from exc
        except UnidentifiedImageError as exc:
            raise InspectionError(f"not a readable image; only {ACCEPTED} photos are accepted") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow says "image file is truncated" / "broken data stream" for damaged files
            raise InspectionError(f"the {ACCEPTED} file is damaged or incomplete ({exc}); send the photo again") from exc
    return (rgb, fmt) if with_format else rgb


def encode_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
