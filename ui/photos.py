"""Files from the page — photos (file picker, phone camera, webcam) and documents — read only
from Gradio's upload folder, and photos as bytes the upload store accepts.

``uploaded(path, root)`` refuses any path outside the folder Gradio stores browser uploads in:
a crafted request naming a server file (the data home, /etc …) is never read, whatever Gradio
itself checks.

The store takes PNG and JPEG only. Browsers' webcam captures and some phones send WebP, so a
WebP is re-encoded as PNG here — decoded in the limited photo decoder process with only the
WebP decoder enabled, the same pixel ceiling as the store and the same scaling down; anything
else is passed on unchanged and the store refuses it (decoding it in that process too).
"""

from __future__ import annotations

from pathlib import Path

MAX_PHOTO_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000


class NotUploadedError(ValueError):
    """A file path that is not a browser upload."""


def upload_root() -> Path:
    """The folder Gradio keeps browser uploads in (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def uploaded(path: str | Path, root: str | Path | None = None) -> Path:
    """``path`` resolved, if it is a regular file inside the upload folder; else ``NotUploadedError``."""
    base = Path(root).resolve() if root is not None else upload_root()
    p = Path(path).resolve()
    if not p.is_relative_to(base) or p == base or not p.is_file():
        raise NotUploadedError("that file was not uploaded from this page")
    return p


def is_png_or_jpeg(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")


def is_webp(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def photo_bytes(path: str | Path) -> bytes:
    """The file's bytes, a WebP converted to PNG. Raises ``ValueError`` on an oversized file."""
    p = Path(path)
    if p.stat().st_size > MAX_PHOTO_BYTES:
        raise ValueError(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    data = p.read_bytes()
    if is_webp(data):
        return webp_to_png(data)
    return data


def webp_to_png(data: bytes) -> bytes:
    """A WebP as PNG, decoded (and scaled down) in the limited photo decoder, never here."""
    from tools.inspection.decode_worker import decode
    from tools.inspection.images import InspectionError, encode_png

    try:
        rgb, _, _ = decode(data, max_pixels=MAX_PIXELS, formats=("WEBP",))
    except InspectionError as exc:
        raise ValueError(exc.user_message.replace("PNG or JPEG", "PNG, JPEG or WebP")) from None
    return encode_png(rgb)


def page_copy(path: str | Path, root: str | Path | None = None) -> Path:
    """A copy of a server file (a sample photo) in the upload folder, under ``onsite-samples/``:
    the page may show it, and the photo check takes it like an upload. Copied again only when
    the file changed."""
    src = Path(path)
    folder = (Path(root).resolve() if root is not None else upload_root()) / "onsite-samples"
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
        tmp = dst.with_suffix(dst.suffix + ".tmp")
        tmp.write_bytes(src.read_bytes())
        tmp.replace(dst)
    return dst
