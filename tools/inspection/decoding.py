"""Decoding a photo in this process: only ever done in the limited photo decoder process
(``decode_worker``); everything else opens photos with ``images.open_image``. The limits and
the error live here, below both, so neither imports the other in a cycle.
"""

from __future__ import annotations

import io
import warnings

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
