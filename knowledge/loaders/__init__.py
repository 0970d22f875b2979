"""Document loaders: one file in, a LoadedDocument (blocks in reading order + metadata) out.

    doc = load_document(Path("docs/manuals/pump.pdf"), root=Path("docs"), settings=ingest)

Any failure is an ``IngestError`` (``UnsupportedFileError`` for types we do not read) whose
``reason`` a person can act on; the batch logs it and goes on. PDFs are parsed in a child
process under time and memory limits (see ``pdf.py``). This package imports nothing heavy:
the PDF worker process imports it too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import IngestError, UnsupportedFileError
from knowledge.loaders.metadata import Parsed, build_meta, is_sidecar
from knowledge.types import LoadedDocument

if TYPE_CHECKING:
    from assistant.settings import IngestSettings

__all__ = ["SUPPORTED_SUFFIXES", "load_document", "is_sidecar"]

_FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_FORMATS)


def _loader(fmt: str) -> Callable[[Path, str, IngestSettings], Parsed]:
    # Imported on use: bs4, python-docx and the PDF machinery stay out of processes that
    # never see such a file.
    if fmt == "pdf":
        from knowledge.loaders.pdf import load_pdf

        return load_pdf
    if fmt == "markdown":
        from knowledge.loaders.markdown import load_markdown

        return load_markdown
    if fmt == "html":
        from knowledge.loaders.html import load_html

        return load_html
    if fmt == "docx":
        from knowledge.loaders.docx import load_docx

        return load_docx
    from knowledge.loaders.text import load_text

    return load_text


def source_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies under it, else as given."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError, RuntimeError):  # not under root, unreadable, symlink loop
            pass
    return str(path)


def _check_file(path: Path, source: str, settings: IngestSettings) -> str:
    if is_sidecar(path):
        raise UnsupportedFileError(source, "metadata sidecar, not a document")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
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
    return fmt


def load_document(path: Path, root: Path | None = None, settings: IngestSettings | None = None) -> LoadedDocument:
    """Load one document: blocks by format, metadata merged (folder < front matter < sidecar),
    title defaulted (first level-1 heading, else file stem), language detected when not given."""
    path = Path(path)
    if settings is None:
        from assistant.settings import IngestSettings

        settings = IngestSettings()
    source = source_name(path, root)
    try:
        fmt = _check_file(path, source, settings)
        parsed = _loader(fmt)(path, source, settings)
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
        raise IngestError(source, "ran out of memory while reading the file") from None
    except Exception as exc:  # a loader bug or a library choking on a hostile file
        raise IngestError(source, f"cannot read {path.suffix.lower() or 'file'}: {type(exc).__name__}: {exc}") from exc
