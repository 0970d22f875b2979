"""DOCX -> blocks with python-docx: paragraphs and tables in body order (in the limited
child process, see ``worker.py``; ``zip_problem`` refuses zip bombs first, from the zip
directory alone, and also runs on uploads).

"Heading N" / "Title" styles become headings, list styles and numbered paragraphs list items.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from knowledge.errors import IngestError
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.pdf_clean import strip_invisible
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

# Localised Word builds name the built-in heading styles in their own language.
_HEADING_STYLE = re.compile(r"^(?:heading|标题|標題|überschrift|titre)\s*(\d)$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


# A real DOCX is a few MB of XML compressed 5-20×; a zip bomb is the opposite. Declared sizes
# can be trusted as bounds: zipfile never inflates a member past its declared size (a member
# that lies fails its CRC check instead).
MAX_UNZIPPED_MB = 64
MAX_RATIO = 100  # expansion of any member ≥ 1 MiB, and of the whole archive
MAX_MEMBERS = 5000
_RATIO_FLOOR = 1024 * 1024  # small members may compress better than this (empty styles, blank XML)


MAX_DIRECTORY_BYTES = 2 * 1024 * 1024  # a real DOCX's zip directory is a few KB


def _declared_directory(fh: BinaryIO) -> tuple[int, int] | None:
    """The member count and directory size the end-of-central-directory record declares, read
    before zipfile builds one object per member (a hostile directory may list millions)."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - 65557))
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    return entries, directory


def zip_problem(fh: BinaryIO, what: str = "DOCX") -> str | None:
    """Why this zip-based document is refused (a person-readable sentence), or None."""
    declared = _declared_directory(fh)
    if declared is None:
        return f"not a {what} file (no zip container)"
    entries, directory = declared
    if entries > MAX_MEMBERS:  # 0xFFFF also stands for a ZIP64 count: refused the same way
        return f"this {what} lists {entries:,} parts (limit {MAX_MEMBERS:,}); refused"
    if directory > MAX_DIRECTORY_BYTES:  # zipfile reads as many entries as this holds, whatever the count
        return f"this {what}'s zip directory is {_mb(directory)} (limit {_mb(MAX_DIRECTORY_BYTES)}); refused"
    try:
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        return f"not a {what} file (damaged zip container: {exc})"
    if len(infos) > MAX_MEMBERS:
        return f"this {what} lists {len(infos):,} parts (limit {MAX_MEMBERS:,}); refused"
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos)
    if total > MAX_UNZIPPED_MB * 2**20:
        return (f"this {what} expands to {_mb(total)} (limit {MAX_UNZIPPED_MB} MB unzipped); refused "
                "as a possible zip bomb")
    for info in infos:
        if info.file_size >= _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            return (f"this {what}'s part {info.filename[:80]} expands {ratio:,.0f}× to {_mb(info.file_size)} "
                    f"(limit {MAX_RATIO}×); refused as a possible zip bomb")
    if total >= _RATIO_FLOOR and total > MAX_RATIO * max(packed, 1):
        return f"this {what} expands {total / max(packed, 1):,.0f}× (limit {MAX_RATIO}×); refused as a possible zip bomb"
    return None


def _mb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB" if n >= 2**30 else f"{n / 2**20:,.1f} MB"


def _check_zip(path: Path, source: str) -> None:
    """Refuse non-zip files and zip bombs before python-docx inflates the XML parts."""
    with open(path, "rb") as fh:
        problem = zip_problem(fh)
    if problem:
        raise IngestError(source, problem)


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
    _check_zip(path, source)
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
