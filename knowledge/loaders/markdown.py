"""Markdown -> blocks: headings, paragraphs, list items, pipe tables, HTML tables, code, math.

A small line-based reader, enough for the Markdown found in site documents (CommonMark/GFM as
written by people, Jekyll docs, MinerU PDF conversions, LawRefBook law texts): YAML/TOML front
matter becomes metadata; HTML comments and Jekyll/Liquid tags are dropped (a Liquid include's
title/content strings are kept as a paragraph); inline markup is reduced to its text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import IngestError
from knowledge.loaders.html import fragment_blocks
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.pdf_clean import join_lines, starts_block, strip_invisible
from knowledge.loaders.text import read_text
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_HR = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])[ \t]+(\S.*)$")
_QUOTE = re.compile(r"^\s{0,3}>[ \t]?(.*)$")
_TABLE_DELIM = re.compile(r"^\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?$|^\|\s*:?-+:?\s*\|$")  # on stripped lines
_HTML_START = re.compile(
    r"^\s{0,3}<(?:html|body|table|div|p|ul|ol|dl|pre|section|article|h[1-6]|blockquote|figure|details)[\s>/]",
    re.IGNORECASE,
)
_IAL = re.compile(r"^\s*\{:.*\}\s*$")  # kramdown attribute lists such as {:toc}
_LIQUID_ATTR = re.compile(r"(?<!\w)(\w+)\s*=\s*\"([^\"]*)\"")
_FRONT_MATTER_MAX = 64 * 1024
_HEADING_ATTR = re.compile(r"\s*\{[#.][^}]*\}\s*$")

# Repetitions are bounded so hostile input cannot make a pattern rescan the rest of the text.
_INLINE = [
    (re.compile(r"<br\s*/?>", re.IGNORECASE), " "),
    (re.compile(r"!\[([^\[\]]{0,500})\]\((?:[^()\s]|\([^()]*\)){0,2000}(?:\s+\"[^\"]{0,500}\")?\)"), r"\1"),
    (re.compile(r"\[\[([^\[\]|]{1,500})\|([^\[\]]{1,500})\]\]"), r"\2"),  # [[page|label]]
    (re.compile(r"\[\[([^\[\]]{1,500})\]\]"), r"\1"),  # [[wiki link]]
    (re.compile(r"\[([^\[\]]{1,1000})\]\((?:[^()]|\([^()]*\)){0,2000}\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\[\]]{1,1000})\]\[[^\[\]]{0,500}\]"), r"\1"),  # [text][ref]
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(?=\S)([^\n]{1,1000}?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*\n]+?)(?<=[^\s\\])\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w\\])_(?=[^\s_])([^_\n]+?)(?<=[^\s\\])_(?!\w)"), r"\1"),
    (re.compile(r"~~([^\n]{1,1000}?)~~"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~$])"), r"\1"),
]


def inline(text: str) -> str:
    """Markdown inline markup reduced to the text a reader sees."""
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return html.unescape(text).strip()


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body). YAML between '---' lines or TOML between '+++' lines."""
    lines = text.split("\n")
    if not lines or lines[0].strip() not in ("---", "+++"):
        return {}, text
    fence = lines[0].strip()
    closers = ("---", "...") if fence == "---" else ("+++",)
    end, size = None, 0
    for i, line in enumerate(lines[1:], 1):
        if line.strip() in closers:
            end = i
            break
        size += len(line) + 1
        if size > _FRONT_MATTER_MAX:
            break  # too far for front matter: the first "---" is a rule
    if end is None:
        return {}, text
    raw = "\n".join(lines[1:end])
    try:
        if fence == "+++":
            import tomllib

            data: Any = tomllib.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw) if raw.strip() else {}
    except Exception as exc:  # yaml.YAMLError, tomllib.TOMLDecodeError
        first = str(exc).strip().splitlines()
        raise IngestError(source, f"invalid front matter: {first[0] if first else type(exc).__name__}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, text  # "---" used as a rule, not front matter
    return data, "\n".join(lines[end + 1:])


def strip_comments(text: str) -> str:
    """Remove <!-- ... --> (an unclosed comment runs to the end), in one linear pass."""
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) >= 0:
        out.append(text[pos:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(out)
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def strip_liquid(text: str) -> str:
    """Drop Jekyll/Liquid {% ... %} tags; an include's title/content strings stay as a paragraph."""
    out: list[str] = []
    pos = 0
    while (start := text.find("{%", pos)) >= 0:
        end = text.find("%}", start + 2)
        if end < 0:
            break
        out.append(text[pos:start])
        attrs = dict(_LIQUID_ATTR.findall(text[start:end]))
        kept = [attrs[key].strip() for key in ("title", "content") if attrs.get(key, "").strip()]
        out.append("\n\n" + ": ".join(kept) + "\n\n" if kept else "")
        pos = end + 2
    out.append(text[pos:])
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [inline(cell.replace("\\|", "|")) for cell in re.split(r"(?<!\\)\|", line)]


def _join_paragraph(lines: list[str]) -> str:
    """Join lines; a hard break (two trailing spaces or a backslash) stays a newline."""
    segments: list[list[str]] = [[]]
    for raw in lines:
        hard = raw.endswith("  ") or raw.rstrip().endswith("\\")
        segments[-1].append(raw.strip().rstrip("\\").strip())
        if hard:
            segments.append([])
    return "\n".join(inline(join_lines(seg)) for seg in segments if seg)


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0
        self.blocks: list[Block] = []
        self.para: list[str] = []
        self.item: list[str] | None = None  # open list item

    def add(self, kind: str, text: str, **kw: Any) -> None:
        if text.strip() or kw.get("rows"):
            self.blocks.append(Block(kind=kind, text=text, **kw))  # type: ignore[arg-type]

    def flush(self) -> None:
        if self.item is not None:
            self.add("list_item", _join_paragraph(self.item))
            self.item = None
        # A line starting with a clause marker (第X条), a numbered section or a bullet starts a
        # new paragraph; only Markdown list syntax makes list items.
        current: list[str] = []
        for line in self.para:
            if current and starts_block(line.strip()):
                self.add("paragraph", _join_paragraph(current))
                current = []
            current.append(line)
        if current:
            self.add("paragraph", _join_paragraph(current))
        self.para = []

    def collect_until(self, stop: re.Pattern[str] | None, closer: str | None = None) -> list[str]:
        """Lines after the current one up to the closing line (consumed) or EOF."""
        body = []
        self.i += 1
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if (stop and stop.match(line)) or (closer and closer in line.lower()):
                if closer:
                    body.append(line)
                self.i += 1
                return body
            body.append(line)
            self.i += 1
        return body

    def run(self) -> list[Block]:
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if self.step(line):
                self.i += 1
        self.flush()
        return self.blocks

    def step(self, line: str) -> bool:
        """Handle one line; False when the line pointer was already advanced."""
        stripped = line.strip()
        if not stripped:
            self.flush()
            return True
        if fence := _FENCE.match(line):
            self.flush()
            mark = fence.group(1)
            body = self.collect_until(re.compile(rf"^\s{{0,3}}{re.escape(mark[0])}{{{len(mark)},}}\s*$"))
            self.add("paragraph", "\n".join(body).strip("\n"))
            return False
        if stripped.startswith("$$"):
            self.flush()
            if len(stripped) > 4 and stripped.endswith("$$"):
                self.add("paragraph", stripped)
                return True
            body = self.collect_until(re.compile(r"^\s*\$\$\s*$"))
            self.add("paragraph", "\n".join(["$$", *body, "$$"]))
            return False
        if _HTML_START.match(line):
            self.flush()
            return self.html_block(line)
        if self.para and self.item is None and (setext := _SETEXT.match(line)):
            text = inline(join_lines(self.para))
            self.para = []
            self.add("heading", text, level=1 if setext.group(1)[0] == "=" else 2)
            return True
        if _HR.match(line) or _IAL.match(line):
            if self.item == ["toc"] and "toc" in stripped:
                self.item = None  # kramdown's "* toc\n{:toc}" placeholder for a generated TOC
            self.flush()
            return True
        if heading := _ATX.match(line):
            self.flush()
            text = inline(_HEADING_ATTR.sub("", heading.group(2) or ""))
            self.add("heading", text, level=len(heading.group(1)))
            return True
        if "|" in line and self.i + 1 < len(self.lines) and _TABLE_DELIM.match(self.lines[self.i + 1].strip()):
            self.flush()
            return self.table(line)
        if item := _LIST.match(line):
            self.flush()
            self.item = [item.group(1)]
            return True
        if quote := _QUOTE.match(line):
            if not quote.group(1).strip():
                self.flush()
            else:
                (self.item if self.item is not None else self.para).append(quote.group(1))
            return True
        (self.item if self.item is not None else self.para).append(line)
        return True

    def table(self, header_line: str) -> bool:
        header = _cells(header_line)
        rows = [header]
        self.i += 2  # header and delimiter row
        while self.i < len(self.lines) and "|" in self.lines[self.i] and self.lines[self.i].strip():
            cells = _cells(self.lines[self.i])[: len(header)]
            rows.append(cells + [""] * (len(header) - len(cells)))
            self.i += 1
        self.add("table", "", rows=rows, header=True)
        return False

    def html_block(self, first: str) -> bool:
        lowered = first.lower()
        # Tables (MinerU writes <html><body><table>...) run to their end tag; other HTML
        # blocks end at a blank line, as in CommonMark.
        closer = "</table>" if ("<table" in lowered or "<html" in lowered) else None
        if closer and closer in lowered:
            body = [first]
            self.i += 1
        elif closer:
            body = [first, *self.collect_until(None, closer)]
        else:
            body = [first, *self.collect_until(re.compile(r"^\s*$"))]
        self.blocks.extend(fragment_blocks("\n".join(body)))
        return False


def parse_markdown(text: str, source: str) -> tuple[list[Block], dict[str, Any]]:
    text = strip_invisible(text.replace("\r\n", "\n").replace("\r", "\n"))
    front, body = split_front_matter(text, source)
    body = strip_liquid(strip_comments(body))
    return _Reader(body.split("\n")).run(), front


def load_markdown(path: Path, source: str, settings: IngestSettings) -> Parsed:
    text, warnings = read_text(path, source)
    blocks, front = parse_markdown(text, source)
    return Parsed(blocks=blocks, front=front, warnings=warnings)
