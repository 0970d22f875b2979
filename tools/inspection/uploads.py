"""Uploaded photos, kept under random ids: tools and the model only ever see an id, never a path.

Bytes are checked with the safe opener before anything is stored, so an id always names a PNG or
JPEG that decodes within the limits. Decoding happens in a limited child process
(``decode_worker``); the server only holds the scaled-down pixels.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import numpy as np

from tools.inspection.images import InspectionError, encode_png, open_checked, open_image

UPLOAD_ID_PATTERN = r"^[0-9a-f]{32}$"
_ID = re.compile(UPLOAD_ID_PATTERN)
_EXT = {"PNG": ".png", "JPEG": ".jpg"}


class UploadStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, data: bytes, filename: str = "") -> str:
        """Validate and store; return the new upload id. Raises ``InspectionError`` if refused,
        ``ToolBusyError`` when the photo decoders stay busy.

        The photo is decoded (in the limited child) only to check it: the file kept is the bytes
        as sent, and ``width``/``height`` are the size tools see (long side at most
        ``images.MAX_SIDE``), ``original_width``/``original_height`` the size sent."""
        rgb, fmt, original = open_checked(data)
        return self._store(data, _EXT[fmt], filename, rgb.shape, original)

    def save_array(self, rgb: np.ndarray, filename: str = "") -> str:
        """Store an RGB array we made (an annotated photo) as PNG."""
        return self._store(encode_png(rgb), ".png", filename, rgb.shape)

    def _store(self, data: bytes, ext: str, filename: str, shape: tuple, original: tuple[int, int] | None = None) -> str:
        upload_id = secrets.token_hex(16)
        target = self.folder / f"{upload_id}{ext}"
        tmp = target.with_suffix(ext + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # a reader never sees half a file
        meta = {"id": upload_id, "filename": Path(filename or "").name[:200], "bytes": len(data),
                "width": int(shape[1]), "height": int(shape[0]), "created": time.time()}
        if original and tuple(original) != (meta["width"], meta["height"]):
            meta.update(original_width=int(original[0]), original_height=int(original[1]))
        (self.folder / f"{upload_id}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return upload_id

    def path(self, upload_id: str) -> Path:
        if not isinstance(upload_id, str) or not _ID.match(upload_id):
            raise InspectionError("upload id must be 32 lowercase hex characters, as returned by the upload")
        for ext in _EXT.values():
            p = self.folder / f"{upload_id}{ext}"
            if p.is_file():
                return p
        raise InspectionError(f"no uploaded image with id {upload_id}; upload the photo first")

    def open(self, upload_id: str) -> np.ndarray:
        return open_image(self.path(upload_id))

    def info(self, upload_id: str) -> dict:
        self.path(upload_id)
        try:
            return json.loads((self.folder / f"{upload_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"id": upload_id}
