"""Uploaded documents: the folder an admin adds documents to before a rebuild.

``save_document`` keeps an uploaded file only when it is safe to: the type is one the loaders
read (``knowledge.loaders.LOADERS``), the bytes look like that type, the size is bounded, and
the file name is reduced to a safe base name (no folders, no hidden or reserved names, no
traversal). Files are written atomically.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
import unicodedata
import uuid
import zipfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from knowledge.errors import DocumentRejectedError, DocumentTooLargeError, IngestError, UnsupportedDocumentError
from knowledge.loaders import SUPPORTED_SUFFIXES, format_of

MAX_NAME_CHARS = 120


def safe_document_name(filename: str, ignore: list[str] | tuple[str, ...] = ()) -> str:
    """A base name safe to create in the documents folder, or ``UnsupportedDocumentError``.

    Folders are dropped (both separators), control characters and anything but letters, digits
    (any script), space and ``._-()`` become ``_``, leading dots go (no hidden files), the suffix
    must be a document type we index, and names the builder ignores are refused."""
    name = unicodedata.normalize("NFC", str(filename or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = re.sub(r"[^\w .()\-（）]+", "_", name).strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocumentError(
            f"{filename!r} is not a document type the index reads; send {', '.join(sorted(s[1:] for s in SUPPORTED_SUFFIXES))}")
    stem = stem.strip(" .")[: MAX_NAME_CHARS - len(suffix)] or f"document-{secrets.token_hex(3)}"
    name = stem + suffix
    if any(fnmatch(name, pattern) for pattern in ignore):
        raise DocumentRejectedError(f"files named {name!r} are never indexed (ingest.ignore); rename the file")
    return name


def check_document_bytes(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse empty, oversized and mislabelled files before they are stored (the parser, which
    runs later in a child process with limits, still has the last word)."""
    if not data:
        raise DocumentRejectedError(f"{name} is empty")
    if len(data) > max_bytes:
        raise DocumentTooLargeError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    fmt = format_of(name)
    if fmt == "pdf":
        if b"%PDF-" not in data[:1024]:
            raise UnsupportedDocumentError(f"{name} does not start like a PDF file")
    elif fmt == "docx":
        from knowledge.loaders.docx import zip_problem

        problem = zip_problem(io.BytesIO(data))  # the zip directory only: nothing inflated
        if problem and problem.startswith("not a "):
            raise UnsupportedDocumentError(f"{name} is {problem}")
        if problem:
            raise DocumentRejectedError(f"{name}: {problem}")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())  # the central directory only; nothing is inflated
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise UnsupportedDocumentError(f"{name} is not a DOCX file (not a ZIP archive)") from exc
        if "word/document.xml" not in names:
            raise UnsupportedDocumentError(f"{name} is not a DOCX file (no word/document.xml)")
    else:
        from knowledge.loaders.text import decode_bytes

        try:
            decode_bytes(data[:65536], name)  # what it checks (NUL bytes) is in the head: no copy of it all
        except IngestError as exc:
            raise UnsupportedDocumentError(f"{name} is not a text file: {exc.user_message}") from exc


def write_document(folder: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """Write atomically (hidden temporary file, then rename); returns (path, replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = (root / name).resolve()
    if target.parent != root:  # belt and braces: safe_document_name already made it a base name
        raise DocumentRejectedError("the file name must not contain a folder")
    replaced = target.exists()
    tmp = root / f".upload-{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, replaced


def list_documents(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES:
            st = p.stat()
            out.append({"name": p.name, "bytes": st.st_size,
                        "modified": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(st.st_mtime))})
    return out
