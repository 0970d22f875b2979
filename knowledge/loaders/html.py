"""HTML files (and HTML blocks inside Markdown) -> blocks, with the stdlib html.parser.

Headings h1-h6, paragraphs, list items and tables (row/col spans repeated into every cell they
cover); script, style, nav and other non-content elements are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.loaders.metadata import Parsed
from knowledge.loaders.pdf_clean import strip_invisible
from knowledge.loaders.text import decode_bytes, read_text
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

_SKIP = {
    "script", "style", "nav", "noscript", "template", "head", "svg", "math", "iframe", "object",
    "canvas", "button", "select", "textarea", "input", "map",
}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "ul",
    "ol", "li", "table", "pre", "figure", "figcaption", "dl", "dt", "dd", "hr", "form",
    "fieldset", "address", "details", "summary", "body", "html", "center", "caption", *_HEADINGS,
}
_BR = "\u2029"  # stands for <br> until whitespace is collapsed
_WIDE = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_WIDE}]) (?=[{_WIDE}])")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_MAX_SPAN = 50
_MAX_CELLS = 200_000


def squash(text: str) -> str:
    """Collapse HTML whitespace; keep <br> as a newline; no spaces between Chinese characters."""
    lines = (re.sub(r"\s+", " ", part).strip() for part in strip_invisible(text).split(_BR))
    return "\n".join(_CJK_GAP.sub("", line) for line in lines if line)


def _is_text(node: Any) -> bool:
    from bs4 import NavigableString
    from bs4.element import PreformattedString  # comments, CDATA, doctype, declarations

    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


def inline_text(node: Any) -> str:
    """All text under ``node`` with <br> kept, skipping non-content elements."""
    if _is_text(node):
        return str(node)
    name = (getattr(node, "name", None) or "").lower()
    if not name or name in _SKIP:
        return ""
    if name == "br":
        return _BR
    parts = [inline_text(child) for child in node.children]
    # Block elements inside inline context still separate their text.
    return (_BR if name in _BLOCK else "").join(parts)


def table_rows(table: Any) -> list[list[str]]:
    """Cell texts row by row; a cell spanning rows/columns is repeated in each slot it covers."""
    trs = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    grid: dict[tuple[int, int], str] = {}
    width = 0
    for r, tr in enumerate(trs):
        c = 0
        for cell in tr.find_all(["td", "th"], recursive=False):
            while (r, c) in grid:
                c += 1
            text = squash(inline_text(cell)).replace("\n", " ")
            rowspan = min(_span(cell.get("rowspan")), len(trs) - r, _MAX_SPAN)
            colspan = min(_span(cell.get("colspan")), _MAX_SPAN)
            if len(grid) + rowspan * colspan > _MAX_CELLS:
                break  # a hostile span pattern: keep what fits
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid[(r + dr, c + dc)] = text
            c += colspan
            width = max(width, c)
    present = sorted({r for r, _ in grid})
    width = min(width, 4 * _MAX_CELLS // max(1, len(present)))  # bound the rectangular copy too
    rows = [[grid.get((r, c), "") for c in range(width)] for r in present]
    return [row for row in rows if any(cell for cell in row)]


def _span(value: Any) -> int:
    try:
        return max(1, int(str(value).strip()))
    except (TypeError, ValueError):
        return 1


class _Walker:
    """Depth-first walk that buffers inline text and emits a block at each block boundary."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.kind = "paragraph"

    def flush(self) -> None:
        text = squash("".join(self.buffer))
        self.buffer.clear()
        if text:
            self.blocks.append(Block(kind=self.kind, text=text))  # type: ignore[arg-type]

    def walk(self, node: Any) -> None:
        for child in node.children:
            if _is_text(child):
                self.buffer.append(str(child))
                continue
            name = (getattr(child, "name", None) or "").lower()
            if not name or name in _SKIP:
                continue
            if name not in _BLOCK:
                self.buffer.append(inline_text(child))
                continue
            self.flush()
            if name in _HEADINGS:
                text = squash(inline_text(child)).replace("\n", " ")
                if text:
                    self.blocks.append(Block(kind="heading", text=text, level=_HEADINGS[name]))
            elif name == "table":
                self._table(child)
            elif name == "pre":
                text = strip_invisible(child.get_text()).strip("\n")
                if text.strip():
                    self.blocks.append(Block(kind=self.kind, text=text))  # type: ignore[arg-type]
            elif name != "hr":
                outer = self.kind
                if name in ("li", "dd", "dt"):
                    self.kind = "list_item"
                self.walk(child)
                self.flush()
                self.kind = outer

    def _table(self, table: Any) -> None:
        rows = table_rows(table)
        if not rows:
            return
        first = next((tr for tr in table.find_all("tr") if tr.find_parent("table") is table), None)
        has_th = bool(table.find("th"))
        header = not has_th or bool(first and first.find("th")) or bool(table.find("thead"))
        if len(rows) == 1 and len(rows[0]) == 1:  # a one-cell layout table is just text
            self.blocks.append(Block(kind="paragraph", text=rows[0][0]))
        else:
            self.blocks.append(Block(kind="table", rows=rows, header=header))


def parse_html(markup: str) -> tuple[list[Block], str]:
    """Blocks in document order and the <title> text."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    title = squash(title_tag.get_text()) if title_tag else ""
    walker = _Walker()
    walker.walk(soup)
    walker.flush()
    return walker.blocks, title


def fragment_blocks(markup: str) -> list[Block]:
    """Blocks of an HTML fragment embedded in another format (e.g. a <table> in Markdown)."""
    return parse_html(markup)[0]


def _decode_html(path: Path, source: str) -> tuple[str, list[str]]:
    data = path.read_bytes()
    declared = _META_CHARSET.search(data[:4096])
    if declared and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode(declared.group(1).decode("ascii")), []
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(data, source)


def load_html(path: Path, source: str, settings: IngestSettings) -> Parsed:
    try:
        markup, warnings = _decode_html(path, source)
    except OSError:
        markup, warnings = read_text(path, source)  # raises a clear IngestError
    blocks, title = parse_html(markup)
    front = {"title": title.replace("\n", " ")} if title else {}
    return Parsed(blocks=blocks, front=front, warnings=warnings)
