"""Structure-aware chunking.

A chunk never crosses a change of title path: a Chinese article (第X条), a numbered section
(3.2.1) or a Markdown heading each start a new one, so a citation points at one clause.
Inside a section, sentences are packed up to ``max_tokens`` of the embedder's tokens; a table
is cut between rows and every piece repeats the header row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable

from knowledge.settings import ChunkingSettings
from knowledge.text import detect_lang, row_pairs, split_sentences, table_aware_lines
from knowledge.types import Block, Chunk, LoadedDocument

TokenCounter = Callable[[str], int]

_CN_NUM = r"[一二三四五六七八九十百千零〇两\d]+"
# Chinese structural markers at the start of a line and the depth they sit at.
_ZH_PART = re.compile(rf"^\s*(第{_CN_NUM}[编章节])[\s\u3000]*(.*)$")
_ZH_PART_LEVEL = {"编": 1, "章": 2, "节": 3}
_ZH_ARTICLE = re.compile(rf"^\s*(第{_CN_NUM}条(?:之{_CN_NUM})?)[\s\u3000]*(.*)$")
_ZH_CLAUSE = re.compile(rf"^\s*(第{_CN_NUM}款)[\s\u3000]*(.*)$")
ARTICLE_LEVEL, CLAUSE_LEVEL = 20, 21  # below any heading depth
# "3.2.1 Bearings" — a numbered heading: short, no sentence punctuation at the end.
_NUMBERED = re.compile(r"^\s*(\d{1,2}(?:\.\d{1,2}){1,4})\.?\s+(\S.{0,80})$")
_HEADING_NUMBER = re.compile(r"^\s*(\d{1,2}(?:\.\d{1,2}){0,4})\.?(?:\s+|(?=[\u4e00-\u9fff]))\S")
# US-regulation outline headings: "(a) Scope, application, and purpose —", "(1) Scope." — short
# lines only; "(i) This standard covers …" is content. Depth by marker kind.
_OUTLINE = re.compile(r"^\s*\((?:([a-z])|(\d{1,2})|([ivx]{1,5})|([A-Z]))\)\s+([^.;:—]{1,80}?)\s*([—.:]|--)?\s*$")
_NUMBERED_TOP = re.compile(r"^\s*(\d{1,2})\s+([A-Z\u4e00-\u9fff][^.。:：;；!?]{0,60})$")


@dataclass
class _Segment:
    text: str
    path: tuple[str, ...]
    page: int | None
    table: list[list[str]] | None = None  # rows, header first


def chunk_document(
    doc: LoadedDocument,
    doc_id: str,
    count_tokens: TokenCounter,
    settings: ChunkingSettings | None = None,
) -> list[Chunk]:
    """Cut a loaded document into chunks with title paths, pages and stable ids."""
    settings = settings or ChunkingSettings()
    title = doc.meta.title or doc.source
    doc_lang = doc.meta.lang or detect_lang(doc.text[:4000])
    pieces: list[tuple[str, tuple[str, ...], int | None]] = []
    for group in _group_by_path(_segments(doc.blocks, title)):
        pieces.extend(_pack(group, count_tokens, settings))
    chunks = []
    base_meta = {
        "kind": doc.meta.kind,
        "asset": doc.meta.asset,
        "crop": doc.meta.crop,
        "effective_date": doc.meta.effective_date,
        "doc_title": title,
    }
    base_meta = {k: v for k, v in base_meta.items() if v is not None}
    for ordinal, (text, path, page) in enumerate(pieces):
        cid = hashlib.sha1(f"{doc_id}\x00{ordinal}\x00{'>'.join(path)}\x00{text}".encode()).hexdigest()[:16]
        chunks.append(
            Chunk(
                id=cid, doc_id=doc_id, text=text, title_path=[title, *path], source=doc.source,
                lang=detect_lang(text) if len(text) > 40 else doc_lang, page=page, ordinal=ordinal,
                metadata=dict(base_meta),
            )
        )
    return chunks


def index_text(chunk: Chunk) -> str:
    """What retrievers see: the title path gives each chunk its context ("Pump > Bearings")."""
    return f"{chunk.title}\n{chunk.text}"


def embedding_text(chunk: Chunk) -> str:
    """What the embedder sees: ``index_text`` with each Markdown table row written out as
    "column: value; …" pairs. A row of bare cells ("| 育苗期 | 22–25 | 17–19 |") embeds as little
    more than numbers, so the notes under a table outranked its rows for "苗期白天温度"; with
    its header words in it the row is a sentence an embedder can read."""
    if "|" not in chunk.text:
        return index_text(chunk)
    lines = [line if row is None else row_pairs(row) for line, row in table_aware_lines(chunk.text)]
    return f"{chunk.title}\n" + "\n".join(lines)


# --- structure -------------------------------------------------------------------------------


def _segments(blocks: list[Block], title: str) -> list[_Segment]:
    stack: list[tuple[int, str]] = []  # (level, heading text)
    out: list[_Segment] = []
    # Structure found inside running text (3.2.1, 第二章) nests below the last explicit heading.
    base = 0

    def push(level: int, text: str) -> None:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))

    def path() -> tuple[str, ...]:
        return tuple(t for _, t in stack)

    for block in blocks:
        if block.kind == "heading":
            text = _squash(block.text)
            if not text or (not stack and text == title):
                continue  # the document's own title is already the root of every path
            m = _ZH_ARTICLE.match(text)
            numbered = _HEADING_NUMBER.match(text)
            # "# 1.2.2 Title" (every heading at one level, as OCR'd papers often are) nests by its number.
            level = ARTICLE_LEVEL if m else max(1, block.level, numbered.group(1).count(".") + 1 if numbered else 0)
            push(level, text)
            base = 0 if m else level
            continue
        if block.kind == "table":
            rows = [[_squash(c) for c in r] for r in block.rows if any(c.strip() for c in r)]
            if rows:
                out.append(_Segment("", path(), block.page, table=rows if block.header else [[""] * len(rows[0]), *rows]))
            continue
        for line in block.text.split("\n"):
            line = line.strip()
            if not line:
                continue
            m = _ZH_PART.match(line)
            if m and len(m.group(2)) <= 40:
                push(base + _ZH_PART_LEVEL[m.group(1)[-1]], _squash(f"{m.group(1)} {m.group(2)}"))
                continue
            m = _ZH_ARTICLE.match(line) or _ZH_CLAUSE.match(line)
            if m:
                push(ARTICLE_LEVEL if "条" in m.group(1) else CLAUSE_LEVEL, m.group(1))
                line = m.group(2).strip()
                if not line:
                    continue
            elif block.kind != "list_item":
                m = _NUMBERED.match(line) or _NUMBERED_TOP.match(line)
                if m and not re.search(r"[.。;；:：!?！？]$", line):
                    push(base + m.group(1).count(".") + 1, _squash(line))
                    continue
                depth = _outline_depth(line, stack)
                if depth:
                    push(base + depth, _squash(line))
                    continue
                m = _OUTLINE_LEAD.match(line)  # "(d) Application of control. The established …"
                if m and _outline_depth(m.group(1), stack):
                    push(base + _outline_depth(m.group(1), stack), _squash(m.group(1)))
                    line = m.group(2)
            out.append(_Segment(line, path(), block.page))
    return out


_OUTLINE_LEAD = re.compile(r"^(\s*\([a-zA-Z0-9]{1,5}\)\s+[A-Z][^.;:—]{0,60}(?:\.|—))\s+(\S.{40,})$")


def _outline_depth(line: str, stack: list[tuple[int, str]]) -> int:
    """1 for (a), 2 for (1), 3 for (i), 4 for (A); 0 when the line is not an outline heading.
    (i), (v), (x) are read as roman numerals when the heading above is a numbered one."""
    m = _OUTLINE.match(line)
    # An em dash marks a heading in CFR text; otherwise only a short title ("(1) Scope.") is one.
    if not m or len(m.group(5).split()) > (12 if m.group(6) in ("—", "--") else 5):
        return 0
    letter, number, roman, upper = m.group(1), m.group(2), m.group(3), m.group(4)
    if roman and (not letter or (stack and re.match(r"^\(\d", stack[-1][1]))):
        return 3
    return 1 if letter else 2 if number else 4 if upper else 3


def _group_by_path(segments: list[_Segment]) -> list[list[_Segment]]:
    groups: list[list[_Segment]] = []
    for seg in segments:
        if groups and groups[-1][-1].path == seg.path:
            groups[-1].append(seg)
        else:
            groups.append([seg])
    return groups


# --- packing ---------------------------------------------------------------------------------


def _pack(group: list[_Segment], count: TokenCounter, settings: ChunkingSettings):
    """Yield (text, path, page) pieces of one section, each within the token budget."""
    limit = settings.max_tokens
    path = group[0].path
    buf: list[str] = []
    buf_tokens = 0
    buf_page: int | None = None
    out: list[tuple[str, tuple[str, ...], int | None]] = []

    def flush() -> None:
        nonlocal buf, buf_tokens, buf_page
        if buf:
            out.append(("\n".join(buf).strip(), path, buf_page))
        overlap = buf[-settings.overlap_sentences :] if settings.overlap_sentences and buf else []
        buf, buf_tokens, buf_page = list(overlap), sum(count(s) for s in overlap), None

    for seg in group:
        units = _table_units(seg.table, count, limit) if seg.table else _text_units(seg.text, count, limit)
        for i, (unit, tokens) in enumerate(units):
            joiner_new_line = i == 0  # a new segment starts on a new line; sentences join inline
            if buf and buf_tokens + tokens > limit:
                flush()
                joiner_new_line = True
            if buf_page is None:
                buf_page = seg.page
            if buf and not joiner_new_line:
                buf[-1] = _join_inline(buf[-1], unit)
            else:
                buf.append(unit)
            buf_tokens += tokens
    flush()
    # A tiny tail is merged back into the previous piece of the same section when it fits.
    if len(out) > 1 and count(out[-1][0]) < settings.min_tokens:
        merged = out[-2][0] + "\n" + out[-1][0]
        if count(merged) <= limit:
            out[-2:] = [(merged, out[-2][1], out[-2][2])]
    return out


def _text_units(text: str, count: TokenCounter, limit: int) -> list[tuple[str, int]]:
    tokens = count(text)
    if tokens <= limit:
        return [(text, tokens)]
    units = []
    for sentence in split_sentences(text):
        n = count(sentence)
        if n <= limit:
            units.append((sentence, n))
        else:
            units.extend((p, count(p)) for p in _hard_split(sentence, count, limit))
    return units


_SPLIT_SEPARATORS = ("，", ",", "、", " ")


def _hard_split(text: str, count: TokenCounter, limit: int, level: int = 0) -> list[str]:
    """A sentence longer than the budget: cut after commas, then spaces, then between characters.

    The pieces concatenate back to ``text`` exactly; each level only ever sees a strictly
    finer separator, so the recursion ends."""
    for i in range(level, len(_SPLIT_SEPARATORS)):
        sep = _SPLIT_SEPARATORS[i]
        pieces = [p + sep for p in text.split(sep)]
        pieces[-1] = pieces[-1][: -len(sep)]
        pieces = [p for p in pieces if p]
        if len(pieces) > 1:
            break
    else:
        return _char_split(text, count, limit)
    out: list[str] = []
    cur = ""
    for piece in pieces:
        if count(piece) > limit:
            if cur:
                out.append(cur)
                cur = ""
            out.extend(_hard_split(piece, count, limit, i + 1))
        elif cur and count(cur + piece) > limit:
            out.append(cur)
            cur = piece
        else:
            cur += piece
    if cur:
        out.append(cur)
    return out


def _char_split(text: str, count: TokenCounter, limit: int) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        step = max(1, (len(text) - pos) * limit // max(count(text[pos:]), 1))
        while step > 1 and count(text[pos : pos + step]) > limit:
            step = max(1, step * 3 // 4)
        out.append(text[pos : pos + step])
        pos += step
    return out


def _table_units(rows: list[list[str]], count: TokenCounter, limit: int) -> list[tuple[str, int]]:
    """Rows grouped under a repeated header; each unit is a self-contained small table."""
    header = "| " + " | ".join(rows[0]) + " |"
    header_tokens = count(header)
    units: list[tuple[str, int]] = []
    cur: list[str] = []
    cur_tokens = header_tokens
    for row in rows[1:] or [[]]:
        line = "| " + " | ".join(row) + " |" if row else ""
        n = count(line)
        if cur and cur_tokens + n > limit:
            units.append(("\n".join([header, *cur]), cur_tokens))
            cur, cur_tokens = [], header_tokens
        if line:
            cur.append(line)
            cur_tokens += n
    units.append(("\n".join([header, *cur]), cur_tokens))
    return units


def _join_inline(a: str, b: str) -> str:
    if not a or not b:
        return a + b
    # No space between Chinese sentences; one space between English ones.
    if ord(a[-1]) > 0x2E7F or ord(b[0]) > 0x2E7F:
        return a + b
    return a + " " + b


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
