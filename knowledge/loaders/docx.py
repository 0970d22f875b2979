"""DOCX -> blocks with python-docx: paragraphs and tables in body order.

"Heading N" / "Title" styles become headings, list styles and numbered paragraphs list items.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import IngestError
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.pdf_clean import strip_invisible
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

# Localised Word builds name the built-in heading styles in their own language.
_HEADING_STYLE = re.compile(r"^(?:heading|标题|標題|überschrift|titre)\s*(\d)$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def _check_zip(path: Path, source: str, settings: IngestSettings) -> None:
    """Refuse non-zip files and zip bombs before python-docx inflates the XML parts."""
    if not zipfile.is_zipfile(path):
        raise IngestError(source, "not a DOCX file (no zip container)")
    limit = max(100.0, settings.max_file_mb * 10) * 1024 * 1024
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    if total > limit:
        raise IngestError(source, f"DOCX expands to {total / 2**20:.0f} MB, over the {limit / 2**20:.0f} MB limit")


def _clean(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in strip_invisible(text).split("\n"))
    return "\n".join(line for line in lines if line)


def _paragraph_block(paragraph: Any) -> Block | None:
    text = _clean(paragraph.text)
    if not text:
        return None
    style = paragraph.style.name if paragraph.style is not None else ""
    style = (style or "").strip()
    if style.lower() == "title":
        return Block(kind="heading", text=text.replace("\n", " "), level=1)
    if match := _HEADING_STYLE.match(style):
        level = min(max(int(match.group(1)), 1), 6)
        return Block(kind="heading", text=text.replace("\n", " "), level=level)
    # python-docx has no public API for direct numbering; w:numPr in the paragraph properties
    # is what makes Word draw a bullet or number.
    ppr = paragraph._p.pPr
    numbered = ppr is not None and ppr.numPr is not None
    if style.lower().startswith("list") or numbered:
        return Block(kind="list_item", text=text)
    return Block(kind="paragraph", text=text)


def _table_block(table: Any) -> Block | None:
    rows = []
    for row in table.rows:
        # Merged cells come back once per grid column they cover, like HTML spans here.
        rows.append([_clean(cell.text).replace("\n", " ") for cell in row.cells])
    rows = [row for row in rows if any(row)]
    return Block(kind="table", rows=rows, header=True) if rows else None


def load_docx(path: Path, source: str, settings: IngestSettings) -> Parsed:
    _check_zip(path, source, settings)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # KeyError / BadZipFile / ValueError from a broken package
        raise IngestError(source, f"malformed DOCX: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            block = _paragraph_block(item)
        elif isinstance(item, Table):
            block = _table_block(item)
        else:
            block = None
        if block is not None:
            blocks.append(block)
    front: dict[str, Any] = {}
    title = (document.core_properties.title or "").strip()
    if title:
        front["title"] = title
    return Parsed(blocks=blocks, front=front)
