"""The one table of document types we read, the checks of a file, and ``load_here``: loading
one file in this process, which only the limited parser process (``worker.py``) ever does —
everything else calls ``knowledge.loaders.load_document``. Kept apart from the package's
dispatch so the worker imports no cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.errors import IngestError, UnsupportedFileError
from knowledge.loaders.metadata import Parsed, build_meta, is_sidecar
from knowledge.types import LoadedDocument

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

# The one table of document types: file suffix → (format, "module:function" of its loader).
# Every other list of suffixes (what the builder scans, what an upload may be) is derived
# from it. Loaders are imported on use: bs4, python-docx and the PDF machinery stay out of
# processes that never see such a file.
LOADERS: dict[str, tuple[str, str]] = {
    ".pdf": ("pdf", "knowledge.loaders.pdf:load_pdf"),
    ".md": ("markdown", "knowledge.loaders.markdown:load_markdown"),
    ".markdown": ("markdown", "knowledge.loaders.markdown:load_markdown"),
    ".txt": ("text", "knowledge.loaders.text:load_text"),
    ".html": ("html", "knowledge.loaders.html:load_html"),
    ".htm": ("html", "knowledge.loaders.html:load_html"),
    ".docx": ("docx", "knowledge.loaders.docx:load_docx"),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(LOADERS)


def format_of(name: str | Path) -> str | None:
    """The format of a file name by its suffix ("pdf", "markdown", …), None when not read."""
    return LOADERS.get(Path(name).suffix.lower(), (None, ""))[0]


def _loader(suffix: str) -> Callable[[Path, str, IngestSettings], Parsed]:
    module, _, function = LOADERS[suffix][1].partition(":")
    return getattr(importlib.import_module(module), function)


def source_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies under it, else as given."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError, RuntimeError):  # not under root, unreadable, symlink loop
            pass
    return str(path)


def check_file(path: Path, source: str, settings: IngestSettings) -> None:
    if is_sidecar(path):
        raise UnsupportedFileError(source, "metadata sidecar, not a document")
    if format_of(path) is None:
        known = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFileError(source, f"unsupported file type {path.suffix or '(none)'!r}; we read {known}")
    try:
        stat = path.stat()
    except OSError as exc:
        raise IngestError(source, f"cannot open file: {exc.strerror or exc}") from exc
    if not path.is_file():  # directories, FIFOs and devices would hang or fail the readers
        raise IngestError(source, "not a regular file")
    size_mb = stat.st_size / (1024 * 1024)
    if size_mb > settings.max_file_mb:
        raise IngestError(source, f"file is {size_mb:.1f} MB, over the {settings.max_file_mb:g} MB limit")
    if stat.st_size == 0:
        raise IngestError(source, "empty file")


def load_here(path: Path, root: Path | None, settings: IngestSettings) -> LoadedDocument:
    """``load_document``'s work in this process: only ever called in the limited child."""
    source = source_name(path, root)
    try:
        check_file(path, source, settings)
        parsed = _loader(path.suffix.lower())(path, source, settings)
        if not any(b.text.strip() or b.rows for b in parsed.blocks):
            raise IngestError(source, "no text found")
        meta, meta_warnings = build_meta(path, root, source, parsed)
        doc = LoadedDocument(
            source=source, meta=meta, blocks=parsed.blocks, pages=parsed.pages,
            warnings=[*parsed.warnings, *meta_warnings],
        )
        if not doc.meta.lang:
            from knowledge.text import detect_lang

            doc.meta.lang = detect_lang(doc.text)
        return doc
    except IngestError:
        raise
    except MemoryError:
        raise  # the child reports it with its limit, and is replaced
    except Exception as exc:  # a loader bug or a library choking on a hostile file
        raise IngestError(source, f"cannot read {path.suffix.lower() or 'file'}: {type(exc).__name__}: {exc}") from exc
