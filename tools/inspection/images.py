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
import warnings
from pathlib import Path

import numpy as np

from tools.errors import ToolInputError

ACCEPTED = "PNG or JPEG"
MAX_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 48 MP phone photo is refused; 40 MP (e.g. 7744×5164) passes
# Long side of the image the server works with. The inspection needs far less (the reference
# inspector works at 320 px, ONNX detectors at their input size, typically 640); the page shows
# the annotated copy. A 12 MP phone photo (4032×3024) becomes 2048×1536: 9 MB of RGB.
MAX_SIDE = 2048


class InspectionError(ToolInputError):
    """A photo or product model that cannot be used, in words a person can act on."""


def _limit_pillow() -> None:
    """Lower Pillow's own bomb limit (only ever lower it: other code in the process may rely on it)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS


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


def decode_here(data: bytes, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
                formats: tuple[str, ...] = ("PNG", "JPEG")):
    """The decoding itself, in this process: only ever called in the limited child.

    Returns ``(RGB PIL image, format, (original width, original height))``. A JPEG is decoded
    at the smallest DCT scale still at least ``max_side`` (``Image.draft``), so a large one never
    exists at full size; a PNG has to be inflated whole, which the child's memory limit bounds.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    _limit_pillow()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=list(formats))
            w, h = im.size
            if w < 1 or h < 1 or w * h > max_pixels:  # from the header, before decoding
                raise InspectionError(f"image is {w}×{h} pixels ({w * h / 1e6:.0f} MP); the limit is "
                                      f"{max_pixels / 1e6:.0f} MP — send a smaller {ACCEPTED} photo")
            fmt = im.format
            if fmt == "JPEG" and max(w, h) > max_side:
                scale = max_side / max(w, h)  # draft keeps at least this size, rounding the scale down
                im.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy of an upright photo
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))  # transparent parts on white, not black
                del rgba
            elif im.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit grey: scale to 8 bits, don't clip
                arr = np.asarray(im, dtype=np.float32)
                im = Image.fromarray((arr * (255.0 / max(float(arr.max()), 1.0))).astype(np.uint8))
                del arr
            if max(im.size) > max_side:
                # Grey is scaled as grey (a third of RGB), then made RGB; thumbnail box-averages by
                # the whole factor first (fast, like cv2's INTER_AREA), then resamples what is left.
                if im.mode not in ("L", "RGB"):
                    im = im.convert("RGB")
                im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=1.0)
            if im.mode != "RGB":
                im = im.convert("RGB")
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
    return im, fmt, (w, h)


def encode_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
