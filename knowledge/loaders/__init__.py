"""Document loaders: one file in, a LoadedDocument (blocks in reading order + metadata) out.

    doc = load_document(Path("docs/manuals/pump.pdf"), root=Path("docs"), settings=ingest)

Any failure is an ``IngestError`` (``UnsupportedFileError`` for types we do not read) whose
``reason`` a person can act on; the batch logs it and goes on. Every format is parsed in a
child process under time and memory limits (``worker.py``; PDFs in turn in their own extract
and OCR workers, see ``pdf.py``). This package imports nothing heavy: the workers import it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.loaders.formats import (LOADERS, SUPPORTED_SUFFIXES, check_file, format_of, is_sidecar, load_here,
                                       source_name)
from knowledge.types import LoadedDocument

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

__all__ = ["LOADERS", "SUPPORTED_SUFFIXES", "format_of", "load_document", "load_here", "is_sidecar", "source_name"]


def load_document(path: Path, root: Path | None = None, settings: IngestSettings | None = None) -> LoadedDocument:
    """Load one document: blocks by format, metadata merged (folder < front matter < sidecar),
    title defaulted (first level-1 heading, else file stem), language detected when not given.

    The parsing runs in a child process under memory and time limits (``worker.py``); this
    process only checks the file's type and size and receives the result."""
    from knowledge.loaders.worker import load_in_child

    path = Path(path)
    if settings is None:
        from knowledge.settings import IngestSettings

        settings = IngestSettings()
    source = source_name(path, root)
    check_file(path, source, settings)
    return load_in_child(path, root, source, settings)
