"""Pure clean-up of text pulled out of PDF pages (also used for plain text and OCR output).

Extracted PDF text is a list of visual lines: running headers and footers, page numbers,
words hyphenated at line ends, invisible Unicode, full-width spaces, and paragraphs wrapped
at the page width. These functions turn it into paragraph / list-item blocks. No I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from math import ceil

Piece = tuple[str, str]  # (block kind, text)

# The PDF worker puts this line where a table was cut out of a page's text; clean_pages keeps
# it in place as a ("table", mark) piece so the table lands in reading order. Private-use
# characters: no real text contains them, and nothing below strips them.
_TABLE_MARK = re.compile("^\ue000table (\\d+)\ue000$")


def table_mark(index: int) -> str:
    return f"\ue000table {index}\ue000"


def table_index(line: str) -> int | None:
    """The table number of a mark line, None for any other line."""
    match = _TABLE_MARK.match(line.strip())
    return int(match.group(1)) if match else None


def without_table_marks(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if table_index(line) is None)

_NEWLINES = re.compile(r"\r\n|[\r\f\v\x85\u2028\u2029]")
# Zero-width characters, bidi controls, word joiners, BOM, interlinear annotation marks.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")
_SOFT_HYPHEN_EOL = re.compile("\u00ad[ \t]*\n")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# "mainte-\nnance" -> "maintenance": a lowercase continuation means the hyphen was a break.
# Lookarounds only, so a very long run of letters cannot make the regex backtrack.
_HYPHEN_BREAK = re.compile(r"(?<=[A-Za-z])[-\u2010]\n[ \t]*(?=[a-z])")

_PAGE_NUMBER = re.compile(
    r"""^(?:
        [-–—~\s]*\d{1,4}[-–—~\s]*                                   # 3, - 3 -, — 3 —
      | (?:page|p\.|pg\.?)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?       # Page 3, Page 3 of 10
      | \d{1,4}\s*(?:/|of)\s*\d{1,4}                                 # 3 / 10, 3 of 10
      | 第\s*[\d一二三四五六七八九十百千]+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?   # 第 3 页, 第3页 共10页
      | 共\s*\d+\s*页\s*[,，]?\s*第\s*\d+\s*页
      | (?-i:[ivxlc]{1,6})                                           # roman front-matter numbers
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

_CN_NUM = "一二三四五六七八九十百千零〇两"
# Lines that always start a new block. The chunker reads the markers inside the text.
_CLAUSE = re.compile(rf"^第[{_CN_NUM}\d]+[编章节条款部]")
_SECTION_NO = re.compile(r"^\d+(?:\.\d+){2,}\.?\s*\S|^\d+\.\d+\s+[A-Z\u4e00-\u9fff]|^\d+\.\d+[\u4e00-\u9fff]")
_ZH_ENUM = re.compile(rf"^[{_CN_NUM}]+、")
_BULLET = re.compile(
    rf"^(?:[•●○◦▪▫■□◆◇►▸▶➢➤✓✔※·]\s*|[-*–]\s+|\(\d{{1,2}}\)\s*|\d{{1,2}}[.)]\s+|\d{{1,2}}、|"
    rf"[（(][{_CN_NUM}\d]{{1,3}}[)）]\s*|[a-z]\)\s+)"
)
_TERMINAL = set(".!?:;。！？：；…”’」』)）")
# Han, kana, hangul, CJK punctuation and full-width forms: joined to neighbours without a space.
_WIDE = re.compile(
    r"[\u1100-\u115f\u2e80-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\ufe30-\ufe4f\uff00-\uffef]"
)


def normalize_newlines(text: str) -> str:
    return _NEWLINES.sub("\n", text)


def strip_invisible(text: str) -> str:
    """Drop zero-width characters, bidi controls, BOMs and stray control characters.

    A soft hyphen at a line end marks a hyphenation point, so it becomes "-" for dehyphenate().
    """
    text = _SOFT_HYPHEN_EOL.sub("-\n", text)
    return _CONTROL.sub("", _INVISIBLE.sub("", text))


def normalize_spaces(text: str) -> str:
    """Full-width, no-break and other odd spaces become one ASCII space; lines are trimmed."""
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def dehyphenate(text: str) -> str:
    """Join English words split at a line end: "mainte-\\nnance" -> "maintenance"."""
    return _HYPHEN_BREAK.sub("", text)


def is_page_number(line: str) -> bool:
    """A line that is only a page number: "3", "- 3 -", "Page 3 of 10", "第 3 页"."""
    line = line.strip()
    return bool(line) and bool(_PAGE_NUMBER.match(line))


def _edge_key(line: str) -> str:
    # Digits vary from page to page in running heads ("Page 3", "Rev 3 - 2024"); compare without.
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", line.lower())).strip()


def _edge_indices(lines: list[str], edge: int) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip() and table_index(line) is None]
    return sorted(set(filled[:edge] + filled[-edge:]))


def _running_heads(split: list[list[str]], edge: int) -> set[str]:
    """Keys of edge lines repeated on at least half the pages (and at least 3): either the
    same text, or text whose numbers move with the page ("Page 3 of 10", "Rev 2 | 17")."""
    if len(split) < 3:
        return set()
    threshold = max(3, ceil(len(split) * 0.5))
    seen: dict[str, dict[int, tuple[int, ...]]] = {}
    for page, lines in enumerate(split):
        for i in _edge_indices(lines, edge):
            key = _edge_key(lines[i])
            if key:
                seen.setdefault(key, {}).setdefault(page, tuple(int(d) for d in re.findall(r"\d+", lines[i])))
    heads = set()
    for key, pages in seen.items():
        if len(pages) < threshold:
            continue
        numbers = list(pages.items())
        if Counter(nums for _, nums in numbers).most_common(1)[0][1] >= threshold:
            heads.add(key)
            continue
        width = len(numbers[0][1])
        if all(len(nums) == width for _, nums in numbers):
            for j in range(width):
                if Counter(nums[j] - page for page, nums in numbers).most_common(1)[0][1] >= threshold:
                    heads.add(key)
                    break
    return heads


def remove_headers_footers(pages: list[str], edge: int = 2) -> list[str]:
    """Remove running headers/footers and bare page numbers from the first/last ``edge``
    non-blank lines of each page (see _running_heads for what counts as running)."""
    split = [page.split("\n") for page in pages]
    repeated = _running_heads(split, edge)
    out = []
    for lines in split:
        drop = {
            i for i in _edge_indices(lines, edge)
            if _edge_key(lines[i]) in repeated or is_page_number(lines[i])
        }
        out.append("\n".join(line for i, line in enumerate(lines) if i not in drop))
    return out


def _is_wide(ch: str) -> bool:
    return bool(_WIDE.match(ch))


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines: no space next to CJK text, one space between English words."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if not out:
            out = line
        elif _CLAUSE.fullmatch(out):
            out += " " + line  # "第一条" alone on its line, the clause text on the next
        elif _is_wide(out[-1]) or _is_wide(line[0]):
            out += line
        elif out[-1] in "-\u2010" and len(out) > 1 and out[-2].isalnum():
            out += line  # "Type-" + "A", "COVID-" + "19": a real hyphen, not a break
        else:
            out += " " + line
    return out


def _width(line: str) -> int:
    return len(line) + len(_WIDE.findall(line))  # wide characters take two columns


def starts_block(line: str) -> str | None:
    """'list_item' or 'paragraph' if this line must start a new block, else None."""
    if _BULLET.match(line):
        return "list_item"
    if _CLAUSE.match(line) or _SECTION_NO.match(line) or _ZH_ENUM.match(line):
        return "paragraph"
    return None


def split_blocks(text: str, use_widths: bool = True, tables: bool = False) -> list[Piece]:
    """Group lines into paragraph / list-item blocks.

    A block ends at a blank line, before a line that starts a block (clause marker, numbered
    section, bullet), and - when ``use_widths`` (wrapped PDF text) - after a line clearly
    shorter than the page's full lines, which is how the last line of a paragraph looks.
    With ``tables``, a table mark line (see table_mark) becomes its own ("table", mark) piece.
    """
    lines = [line.strip() for line in text.split("\n")]
    widths = sorted(_width(line) for line in lines if line and not (tables and table_index(line) is not None))
    full = widths[int(0.9 * (len(widths) - 1))] if widths else 1
    pieces: list[Piece] = []
    current: list[str] = []
    kind = "paragraph"
    ended = False

    def flush() -> None:
        if current:
            joined = join_lines(current)
            if joined:
                pieces.append((kind, joined))
            current.clear()

    for line in lines:
        if not line:
            flush()
            ended = False
            continue
        if tables and table_index(line) is not None:
            flush()
            pieces.append(("table", line))
            ended = False
            continue
        starter = starts_block(line)
        if current and (starter or ended):
            flush()
        if not current:
            kind = starter or "paragraph"
        current.append(line)
        if use_widths:
            w = _width(line)
            # CJK text is justified to a fixed count of characters, so even a nearly full last
            # line ending in 。 is a paragraph end; ragged English lines vary more.
            full_share = 0.95 if _is_wide(line[-1]) else 0.8
            ended = w < 0.7 * full or (line[-1] in _TERMINAL and w < full_share * full)
            if _CLAUSE.fullmatch(line) or (line[-1] in "-\u2010" and line[:-1][-1:].isalnum()):
                ended = False  # a bare "第一条" or a word broken at the hyphen: text follows
    flush()
    return pieces


def clean_text(text: str) -> str:
    """Newlines, invisible characters and spaces normalised; page structure untouched."""
    return normalize_spaces(strip_invisible(normalize_newlines(text)))


def clean_pages(pages: list[str]) -> list[list[Piece]]:
    """The whole pipeline for one PDF: per page, the blocks in reading order."""
    texts = remove_headers_footers([clean_text(page) for page in pages])
    return [split_blocks(dehyphenate(text), tables=True) for text in texts]
