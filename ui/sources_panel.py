"""The sources panel: the numbered sources of an answer, one opened in full, and for a PDF an
image of the cited page.

A page is only rendered for a file the live index was built from (``KnownSources``); the page
never takes a path from the browser. Rendering runs in a child process with memory and time
limits (``ui.pdf_page``) — pdfium is C++ and the file is a document someone uploaded.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ui.chat import escape_md, with_tables
from ui.i18n import t
from ui.tool_lines import localize

log = logging.getLogger(__name__)

PASSAGE_PREVIEW = 280
RENDER_DPI = 110
RENDER_TIMEOUT_S = 20.0
RENDER_MEM_MB = 768
CACHE_PAGES = 32


def _file_name(path: str | None) -> str:
    return (path or "").replace("\\", "/").rsplit("/", 1)[-1]


def _where(s: dict[str, Any], lang: str) -> str:
    if s.get("kind") == "tool":
        return t(lang, "sources.tool")
    parts = [escape_md(_file_name(s.get("source")))]
    if s.get("page"):
        parts.append(t(lang, "sources.page", page=s["page"]))
    return ", ".join(p for p in parts if p)


def _preview(text: str, limit: int = PASSAGE_PREVIEW) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ordered(sources: list[dict[str, Any]], cited: list[int] | None = None) -> list[dict[str, Any]]:
    """In number order, as the answer numbers them ([1], [2], … [6]); cited ones are marked, not
    moved: a list that puts [6] between [2] and [3] reads as out of order."""
    return sorted(sources, key=lambda s: s.get("n") or 0)


def _is_table_line(line: str) -> bool:
    return line.lstrip().startswith("|") and line.count("|") >= 2


def _text(s: dict[str, Any], lang: str) -> str:
    text = s.get("text") or ""
    return localize(text, lang) if s.get("kind") == "tool" else text


def _preview_md(text: str) -> str:
    """The start of a passage: one quoted line, or for a table its first rows as a table."""
    lines = [x for x in (text or "").splitlines() if x.strip()]
    if sum(_is_table_line(x) for x in lines) < 2:
        return f"> {escape_md(_preview(text))}"
    kept, used = [], 0
    for line in lines:
        if kept and used + len(line) > PASSAGE_PREVIEW:
            break
        kept.append(line if _is_table_line(line) else _preview(line))
        used += len(line)
    return _blocks(escape_md("\n".join(kept))) + ("\n\n…" if len(kept) < len(lines) else "")


def _blocks(passage: str) -> str:
    """Escaped passage text as Markdown: runs of ``|`` rows as tables, the rest quoted."""
    segments: list[tuple[bool, list[str]]] = []
    for line in with_tables(passage).splitlines():
        table = _is_table_line(line)
        if not line.strip():  # a blank line: a paragraph break inside a quote, else nothing
            if segments and not segments[-1][0]:
                segments[-1][1].append(line)
            continue
        if not segments or segments[-1][0] != table:
            segments.append((table, []))
        segments[-1][1].append(line)
    parts = []
    for table, rows in segments:
        while rows and not rows[-1].strip():
            rows.pop()
        parts.append("\n".join(rows) if table else "\n".join(f"> {x}" if x.strip() else ">" for x in rows))
    return "\n\n".join(p for p in parts if p)


def sources_markdown(sources: list[dict[str, Any]], cited: list[int] | None, lang: str) -> str:
    """Every source: number, title path, file and page (or "live data"), and the start of the passage."""
    if not sources:
        return t(lang, "sources.title") + "\n\n" + t(lang, "sources.none")
    cited_set = set(cited or [])
    lines = [t(lang, "sources.title")]
    for s in ordered(sources, cited):
        mark = f" · **{t(lang, 'sources.cited')}**" if s.get("n") in cited_set else ""
        icon = ""  # no emoji: a box without an emoji font shows empty squares (the line says "live data")
        lines.append(f"**[{s.get('n')}]** {icon} {escape_md(s.get('title') or '')} — _{_where(s, lang)}_{mark}\n\n"
                     f"{_preview_md(_text(s, lang))}")
    return "\n\n".join(lines)


def source_choices(sources: list[dict[str, Any]], cited: list[int] | None, lang: str) -> list[tuple[str, int]]:
    """(label, n) per source for the picker, in number order, the cited ones marked. Labels are
    plain text (not Markdown)."""
    out, cited_set = [], set(cited or [])
    for s in ordered(sources, cited):
        title = _preview(s.get("title") or "", 50)
        where = _file_name(s.get("source")) if s.get("kind") == "document" else t(lang, "sources.tool")
        page = f" {t(lang, 'sources.page', page=s['page'])}" if s.get("page") else ""
        mark = f" · {t(lang, 'sources.cited')}" if s.get("n") in cited_set else ""
        out.append((f"[{s.get('n')}] {title} ({where}{page}){mark}", int(s.get("n") or 0)))
    return out


def source_detail(s: dict[str, Any] | None, lang: str) -> str:
    """One source in full: its title path, where it is, flags, and the whole cited passage."""
    if not s:
        return ""
    lines = [f"#### [{s.get('n')}] {escape_md(s.get('title') or '')}", f"_{_where(s, lang)}_"]
    if s.get("flags"):
        lines.append(t(lang, "sources.flag"))
    lines.append(_blocks(escape_md(_text(s, lang))) or "> ")
    return "\n\n".join(lines)


def find(sources: list[dict[str, Any]], n: Any) -> dict[str, Any] | None:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return None
    return next((s for s in sources if s.get("n") == n), None)


class KnownSources:
    """The files of the live index version (re-read when the version changes)."""

    def __init__(self, knowledge: Any):
        self.knowledge = knowledge  # assistant.services.KnowledgeAdmin
        self._version: str | None = None
        self._files: set[str] = set()
        self._lock = threading.Lock()

    def files(self) -> set[str]:
        try:
            name = self.knowledge.live_version()
            with self._lock:
                if name != self._version:
                    self._files = self.knowledge.indexed_files() if name else set()
                    self._version = name
                return set(self._files)
        except Exception as exc:  # noqa: BLE001 - no index yet, or it is being replaced
            log.info("no live index for page images: %s", exc)
            return set()

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self.files()


class PageImages:
    """PNG images of cited PDF pages, rendered in a limited child process and kept in a small cache."""

    def __init__(self, known: KnownSources, dpi: int = RENDER_DPI):
        self.known = known
        self.dpi = dpi
        self._cache: OrderedDict[tuple[str, float, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def png(self, s: dict[str, Any] | None) -> bytes | None:
        """The page of a document source as PNG bytes, or None (not a PDF, no page, not indexed)."""
        if not s or s.get("kind") != "document" or not s.get("page"):
            return None
        path = s.get("source")
        if not isinstance(path, str) or not path.lower().endswith(".pdf") or path not in self.known:
            return None
        try:
            page = int(s["page"])
            mtime = Path(path).stat().st_mtime
        except (OSError, TypeError, ValueError):
            return None
        key = (path, mtime, page)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = render_page_png(path, page, self.dpi)
        if data is not None:
            with self._lock:
                self._cache[key] = data
                while len(self._cache) > CACHE_PAGES:
                    self._cache.popitem(last=False)
        return data

    def image(self, s: dict[str, Any] | None):
        """The page as a PIL image for ``gr.Image`` (None when there is none)."""
        data = self.png(s)
        if data is None:
            return None
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            return im.convert("RGB")


def render_page_png(path: str, page: int, dpi: int = RENDER_DPI, timeout_s: float = RENDER_TIMEOUT_S) -> bytes | None:
    """Page ``page`` (1-based) of a PDF as PNG bytes, from a child process; None on any failure."""
    cmd = [sys.executable, "-m", "ui.pdf_page", path, str(page), "--dpi", str(dpi), "--mem-mb", str(RENDER_MEM_MB)]
    root = str(Path(__file__).resolve().parent.parent)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, cwd=root,
                              check=False)
    except subprocess.TimeoutExpired:
        log.warning("rendering page %s of %s took longer than %.0f s", page, path, timeout_s)
        return None
    if proc.returncode != 0 or not proc.stdout.startswith(b"\x89PNG"):
        log.warning("could not render page %s of %s: %s", page, path, proc.stderr.decode(errors="replace")[-300:])
        return None
    return proc.stdout
