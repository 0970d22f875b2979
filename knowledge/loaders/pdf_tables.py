"""Tables on PDF pages, found with pdfplumber (MIT). Runs inside the PDF worker process only.

Two kinds of drawn tables are found:

* grids: pdfplumber's "lines" strategy. Open-sided grids (rules across, dividers inside, no
  outer border) are closed at the ends of their rules first;
* three-line tables (booktabs, 三线表): three or more rules of one width with no dividers; the
  columns are the gutters no word of the body crosses.

Text-aligned tables with no rules at all are not looked for: column alignment alone also
matches ordinary prose layouts. A grid's cells are not yet rows: many tables rule only every
few rows (statistics) or not at all inside the body (statements), and header cells span
sub-columns whose labels sit in one merged cell. So the grid gives the columns and the header,
and the rows are rebuilt from the words:

* header: the first grid row plus any row a header cell reaches down into; a merged header
  cell spreads its last line over the sub-columns below it when the words line up with them
  ("Permit Handgun Long Gun"), and its other lines label every sub-column ("Pre-Pawn Handgun");
* body: inside each grid row, a text line that fills most of the row's columns starts a row and
  a line filling fewer continues the row above (a wrapped cell); in a table ruled row by row,
  extra lines are always wrapped cells;
* a merged body cell spanning several rows fills each of them, so every row reads on its own.

Drawings (plots, diagrams) are rules too; the plausibility checks in ``_plausible`` drop grids
with empty headers, mostly empty cells or hardly any text, and framed paragraphs.
"""

from __future__ import annotations

import re
import signal
import statistics
import time
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knowledge.loaders import garble
from knowledge.loaders.pdf_clean import clean_text, join_lines

MIN_RULES = 3  # rule-drawing operators (re, l) a page needs before tables are looked for
MAX_ROWS = 3000  # per table: more than a page can hold; a bound against hostile files
MAX_CELL_CHARS = 1000
PROSE_CELL_CHARS = 300  # a grid whose typical cell is longer than this is a framed text box
MAX_EDGES = 20000  # pdfplumber's grid search is quadratic in edges: skip pathological pages
PAGE_LIMIT_S = 10.0  # one page taking longer than this is pathological; its text stays flat

Box = tuple[float, float, float, float]  # x0, top, x1, bottom in pdfplumber's page space
Word = dict[str, Any]  # a pdfplumber word: text, x0, x1, top, bottom

_LEADERS = re.compile(r"(?:\s?\.){4,}|…{2,}|\s\.{2,}$")  # dot leaders: "Stabilizer wiring change ......"
_CID = re.compile(r"\(cid:\d+\)")  # pdfminer's stand-in for a glyph with no Unicode


@dataclass
class PageTable:
    bbox: Box
    rows: list[list[str]]  # the header row first
    caption: str = ""  # a title row drawn inside the grid (spanning every column)
    notes: str = ""  # footnotes drawn inside the grid below the last row
    span: tuple[float, float] = (0.0, 1.0)  # top and bottom as shares of the page height


@dataclass
class _Grid:
    """Cells and the column / row positions they sit on."""

    bbox: Box
    cells: list[Box]
    xs: list[float]  # left edge of each column
    tops: list[float]  # top edge of each row

    @classmethod
    def of(cls, bbox: Box, cells: list[Box], tops: list[float]) -> _Grid:
        xs: list[float] = []
        for x in sorted(c[0] for c in cells):
            if not xs or x - xs[-1] > 1.0:  # edges are snapped; tolerate rounding
                xs.append(x)
        return cls(tuple(bbox), [tuple(c) for c in cells], xs, sorted(tops))  # type: ignore[arg-type]

    @property
    def ncols(self) -> int:
        return len(self.xs)

    @property
    def nrows(self) -> int:
        return len(self.tops)

    def col(self, x: float) -> int:
        return min(max(bisect_right(self.xs, x) - 1, 0), self.ncols - 1)

    def row(self, y: float) -> int:
        return min(max(bisect_right(self.tops, y) - 1, 0), self.nrows - 1)

    def span(self, cell: Box) -> tuple[int, int, int, int]:
        """First/last row and first/last column a cell covers."""
        return (self.row(cell[1] + 0.5), self.row(cell[3] - 0.5), self.col(cell[0] + 0.5), self.col(cell[2] - 0.5))


class _Timeout(Exception):
    pass


class TableFinder:
    """pdfplumber over one file, page by page, within a time budget.

    pdfplumber lays a page out several times slower than pypdf reads it, so the worker only
    asks for pages that draw rules, and stops asking once ``budget_s`` is spent: the remaining
    pages keep their tables as flat text, and ``notes`` says so. A page that runs past
    PAGE_LIMIT_S is interrupted by SIGALRM (pdfminer is pure Python, so the signal lands)."""

    def __init__(self, path: str, budget_s: float) -> None:
        self.path = path
        self.left = budget_s
        self.seconds = 0.0
        self.pages = 0  # pages laid out
        self.notes: list[str] = []
        self._pdf: Any = None
        self._armed = False

    def _alarm(self, signum: int, frame: Any) -> None:
        if self._armed:
            raise _Timeout

    def find(self, index: int) -> list[PageTable]:
        """Tables on page ``index`` (0-based); [] when none, or when out of time or memory."""
        if self.left <= 0:
            if not any("budget" in note for note in self.notes):
                self.notes.append(f"tables not looked for from page {index + 1} on: time budget spent")
            return []
        start = time.monotonic()
        previous = signal.signal(signal.SIGALRM, self._alarm)
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, max(0.05, min(self.left, PAGE_LIMIT_S)))
        page = None
        try:
            if self._pdf is None:
                import pdfplumber

                self._pdf = pdfplumber.open(self.path)
            page = self._pdf.pages[index]
            self.pages += 1
            return find_tables(page)
        except _Timeout:
            self.notes.append(f"page {index + 1}: table search stopped after {time.monotonic() - start:.0f} s")
        except MemoryError:
            self.notes.append(f"page {index + 1}: table search ran out of memory")
        except Exception as exc:  # pdfminer chokes on something pypdf read: keep the flat text
            self.notes.append(f"page {index + 1}: table search failed: {type(exc).__name__}: {exc}"[:200])
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if page is not None:
                page.close()  # drop the page's cached layout
            elapsed = time.monotonic() - start
            self.seconds += elapsed
            self.left -= elapsed
        return []

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


def page_transform(mediabox: tuple[float, float, float, float], rotation: int) -> Callable[[float, float], tuple[float, float]]:
    """PDF user space -> pdfplumber's page space (origin top left of the displayed page),
    the way pdfminer turns a page by its /Rotate."""
    x0, y0, x1, y1 = mediabox
    rotation %= 360
    if rotation == 90:
        return lambda x, y: (y - y0, x - x0)
    if rotation == 180:
        return lambda x, y: (x1 - x, y - y0)
    if rotation == 270:
        return lambda x, y: (y1 - y, x1 - x)
    return lambda x, y: (x - x0, y1 - y)


def find_tables(page: Any) -> list[PageTable]:
    """The tables of one pdfplumber page, top to bottom."""
    edges = page.edges
    if len(edges) > MAX_EDGES:
        return []
    settings: dict[str, Any] = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
    rules = [e for e in edges if e["orientation"] == "h" and e["x1"] - e["x0"] >= 30]
    dividers = [e for e in edges if e["orientation"] == "v"]
    vertical, horizontal = _closing_edges(rules, dividers)
    if vertical:
        settings["explicit_vertical_lines"] = vertical
    if horizontal:
        settings["explicit_horizontal_lines"] = horizontal
    grids = [_Grid.of(t.bbox, t.cells, [r.bbox[1] for r in t.rows]) for t in page.find_tables(settings)]
    words: list[Word] | None = None
    tables = []
    for grid in grids:
        words = words if words is not None else _words(page)
        table = _build(grid, words)
        if table is not None:
            tables.append(table)
    for x0, x1, tops in _rule_runs(rules):
        box = (x0, tops[0], x1, tops[-1])
        if any(_overlap(box, g.bbox) for g in grids):
            continue
        words = words if words is not None else _words(page)
        grid = _three_line_grid(box, tops, words)
        table = _build(grid, words, prose_chars=40) if grid is not None else None
        if table is not None:
            tables.append(table)
    height = float(page.height) or 1.0
    for t in tables:
        t.span = (round(t.bbox[1] / height, 3), round(t.bbox[3] / height, 3))
    return sorted(tables, key=lambda t: (t.bbox[1], t.bbox[0]))


def _words(page: Any) -> list[Word]:
    # A word gap of a fifth of the font size: small print (6 pt) spaces its words by ~1.5 pt.
    words = page.extract_words(x_tolerance_ratio=0.2, keep_blank_chars=False)
    return [w for w in words if w.get("upright", True)]


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _same_width_groups(rules: list[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for rule in sorted(rules, key=lambda e: (e["x0"], e["x1"], e["top"])):
        for group in groups:
            if abs(group[0]["x0"] - rule["x0"]) <= 3 and abs(group[0]["x1"] - rule["x1"]) <= 3:
                group.append(rule)
                break
        else:
            groups.append([rule])
    return groups


def _tops(group: list[Word]) -> list[float]:
    tops: list[float] = []
    for top in sorted(e["top"] for e in group):
        if not tops or top - tops[-1] >= 2:  # a thick rule is drawn as two close lines
            tops.append(top)
    return tops


def _segment(x0: float, top: float, x1: float, bottom: float) -> dict[str, Any]:
    return {"x0": x0, "x1": x1, "top": top, "bottom": bottom, "width": x1 - x0,
            "height": bottom - top, "object_type": "line"}


def _closing_edges(rules: list[Word], dividers: list[Word]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(vertical, horizontal) segments that close open-sided grids: rules of one width with
    dividers between them get borders at both ends; dividers running on past the last rule
    (a table cut by the page end) or before the first get a closing rule where they stop."""
    vertical: list[dict[str, Any]] = []
    horizontal: list[dict[str, Any]] = []
    for group in _same_width_groups(rules):
        x0, x1 = group[0]["x0"], group[0]["x1"]
        inner = sorted((d for d in dividers if x0 + 2 < d["x0"] < x1 - 2), key=lambda d: d["top"])
        if not inner:
            continue
        tops = _tops(group)
        for upper, lower in zip(tops, tops[1:]):
            if any(min(d["bottom"], lower) - max(d["top"], upper) >= 0.5 * (lower - upper) for d in inner):
                vertical += [_segment(x, upper, x, lower) for x in (x0, x1)]
        reach = tops[-1]  # how far down dividers run on, segment after segment, past the last rule
        for d in inner:
            if d["top"] <= reach + 2 and d["bottom"] > reach:
                reach = d["bottom"]
        rise = tops[0]
        for d in reversed(inner):
            if d["bottom"] >= rise - 2 and d["top"] < rise:
                rise = d["top"]
        for start, stop, close_at in ((tops[-1], reach, reach), (rise, tops[0], rise)):
            if stop - start > 5:
                vertical += [_segment(x, start, x, stop) for x in (x0, x1)]
                horizontal.append(_segment(x0, close_at, x1, close_at))
    return vertical, horizontal


def _rule_runs(rules: list[Word]) -> list[tuple[float, float, list[float]]]:
    """Three or more rules of one width, each close below the last: three-line table frames."""
    runs = []
    for group in _same_width_groups(rules):
        tops = _tops(group)
        start = 0
        for i in range(1, len(tops) + 1):
            if i == len(tops) or tops[i] - tops[i - 1] > 400:  # far apart: different frames
                if i - start >= 3:
                    runs.append((group[0]["x0"], group[0]["x1"], tops[start:i]))
                start = i
    return runs


def _three_line_grid(box: Box, tops: list[float], words: list[Word]) -> _Grid | None:
    """Columns of a rule-framed table from the gutters between its body's words."""
    body = [w for w in words if _inside(w, (box[0], tops[1], box[2], box[3]))]
    if len(text_lines(body)) < 2:
        return None
    gap = 0.8 * statistics.median(w["bottom"] - w["top"] for w in body)  # wider than a word space
    spans: list[list[float]] = []
    for w in sorted(body, key=lambda w: w["x0"]):
        if spans and w["x0"] - spans[-1][1] < gap:
            spans[-1][1] = max(spans[-1][1], w["x1"])
        else:
            spans.append([w["x0"], w["x1"]])
    if len(spans) < 2:
        return None
    xs = [box[0]] + [(a[1] + b[0]) / 2 for a, b in zip(spans, spans[1:])] + [box[2]]
    bands = list(zip(tops, tops[1:]))
    cells = [(left, upper, right, lower) for upper, lower in bands for left, right in zip(xs, xs[1:])]
    return _Grid.of(box, cells, tops[:-1])


# --- grid -> rows ------------------------------------------------------------------------------


def _center(w: Word) -> tuple[float, float]:
    return (w["x0"] + w["x1"]) / 2, (w["top"] + w["bottom"]) / 2


def _inside(w: Word, box: Box) -> bool:
    x, y = _center(w)
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def text_lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual lines (top to bottom), each line left to right."""
    lines: list[list[Word]] = []
    bounds: list[list[float]] = []  # top, bottom of each line
    for w in sorted(words, key=lambda w: (w["top"], w["x0"])):
        mid = (w["top"] + w["bottom"]) / 2
        if bounds and bounds[-1][0] <= mid <= bounds[-1][1]:
            lines[-1].append(w)
            bounds[-1][1] = max(bounds[-1][1], w["bottom"])
        else:
            lines.append([w])
            bounds.append([w["top"], w["bottom"]])
    return [sorted(line, key=lambda w: w["x0"]) for line in lines]


def _join(words: list[Word]) -> str:
    return join_lines([w["text"] for w in words])


def _lines_text(lines: list[list[Word]]) -> str:
    return join_lines([_join(line) for line in lines])


def cell_text(text: str) -> str:
    """One cell on one line: no dot leaders, icon glyphs or unmapped-glyph stand-ins."""
    text = _LEADERS.sub(" ", _CID.sub("", clean_text(text)))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Co")
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _spread(lines: list[list[Word]], c0: int, c1: int, grid: _Grid) -> dict[int, list[str]]:
    """Labels of a header cell over the columns c0..c1 it spans.

    When its last line has words over two or more sub-columns, set apart by more than a word
    space, that line names the sub-columns and the lines above label them all; otherwise
    the whole cell labels every sub-column."""
    out: dict[int, list[str]] = {c: [] for c in range(c0, c1 + 1)}
    last = lines[-1]
    cols = [grid.col(_center(w)[0]) for w in last]
    height = statistics.median(w["bottom"] - w["top"] for w in last)
    apart = all(b["x0"] - a["x1"] > 0.8 * height for a, b, ca, cb in zip(last, last[1:], cols, cols[1:]) if ca != cb)
    if len(set(cols)) >= 2 and apart:
        label = _lines_text(lines[:-1])
        for c in out:
            out[c] = [t for t in (label, _join([w for w, cw in zip(last, cols) if cw == c])) if t]
    else:
        label = _lines_text(lines)
        for c in out:
            out[c] = [label] if label else []
    return out


_Cell = tuple[Box, tuple[int, int, int, int], list[Word]]  # box, span, words inside


def _header(grid: _Grid, cells: list[_Cell], first: int, end: int) -> list[str]:
    parts: list[list[str]] = [[] for _ in range(grid.ncols)]
    for _box, (r0, _r1, c0, c1), words in sorted(cells, key=lambda c: (c[1][0], c[1][2])):
        if not first <= r0 < end or not words:
            continue
        lines = text_lines(words)
        if c0 == c1:
            parts[c0].append(_lines_text(lines))
        else:
            for c, labels in _spread(lines, c0, c1, grid).items():
                parts[c].extend(labels)
    return [cell_text(" ".join(p)) for p in parts]


def _line_cells(line: list[Word], grid: _Grid) -> dict[int, str]:
    """One text line cut at the columns. Words closer than a word space stay together in the
    first column they start in: a note or title running across the grid is one cell."""
    cols: dict[int, list[Word]] = {}
    previous = None
    col = 0
    for w in line:
        own = w.get("_col", grid.col(_center(w)[0]))
        if previous is None or own == col or w["x0"] - previous["x1"] > 0.5 * (w["bottom"] - w["top"]):
            col = own
        cols.setdefault(col, []).append(w)
        previous = w
    return {c: _join(ws) for c, ws in cols.items()}


def _body_rows(grid: _Grid, words: list[Word], start: int) -> list[tuple[int, dict[int, list[str]]]]:
    """(grid row, {column: text pieces}) for each row of the table below the header."""
    by_row: dict[int, list[Word]] = {}
    for w in words:
        r = grid.row(_center(w)[1])
        if r >= start:
            by_row.setdefault(r, []).append(w)
    grouped = {r: text_lines(ws) for r, ws in sorted(by_row.items())}
    # Ruled one row per line (most grid rows hold one line): extra lines are wrapped cells.
    ruled = sum(1 for lines in grouped.values() if len(lines) == 1) >= 0.5 * max(len(grouped), 1)
    rows: list[tuple[int, dict[int, list[str]]]] = []
    for r, lines in grouped.items():
        split = [_line_cells(line, grid) for line in lines]
        filled = set().union(*split)
        full = [len(s) >= 2 and len(s) >= 0.75 * len(filled) for s in split]
        stacked = not ruled and sum(full) >= 2
        current: dict[int, list[str]] | None = None
        for line, is_full in zip(split, full):
            if current is None or (stacked and is_full):
                current = {}
                rows.append((r, current))
            for c, text in line.items():
                current.setdefault(c, []).append(text)
    return rows


def _split_notes(rows: list[list[str]]) -> tuple[list[list[str]], str]:
    """Trailing rows of sentences in a table of short values are its footnotes."""
    filled = [sum(1 for cell in row if cell) for row in rows]
    typical = statistics.median(filled) if rows else 0
    if len(rows) < 3 or typical < 4:
        return rows, ""
    end = len(rows)
    while end > 1 and filled[end - 1] <= max(3, typical / 3) and max(len(cell) for cell in rows[end - 1]) >= 60:
        end -= 1
    return rows[:end], "\n".join(" ".join(cell for cell in row if cell) for row in rows[end:])


def _plausible(header: list[str], rows: list[list[str]]) -> bool:
    """A table, not a plot's axes, a diagram or a framed paragraph."""
    body = [cell for row in rows for cell in row]
    text = "".join(header) + "".join(body)
    tokens = " ".join(header).split()
    labels = sum(1 for t in tokens if len(t) == 1 and t.isascii() and t.isalnum())  # axes: "x", "2"
    return (
        sum(1 for h in header if h) >= 0.5 * len(header)  # a plot has labels, not column headers
        and any(ch.isalpha() for ch in "".join(header))
        and labels <= 0.5 * len(tokens)
        and len(set(filter(None, header))) >= 0.5 * sum(1 for h in header if h)  # not one label repeated
        and sum(1 for cell in body if cell) >= 0.4 * len(body)
        and sum(1 for ch in text if ch.isalnum()) >= 10
        and not garble.check("\n".join(" ".join(row) for row in [header, *rows])).garbled
    )


def _build(grid: _Grid, words: list[Word], prose_chars: int = PROSE_CELL_CHARS) -> PageTable | None:
    """Header and rows of one grid, or None when it is no table. ``prose_chars``: the longest
    typical cell text allowed (three-line frames around prose have no grid to tell them)."""
    if grid.ncols < 2 or grid.nrows < 2:
        return None
    mine = [w for w in words if _inside(w, grid.bbox)]
    cells: list[_Cell] = [(box, grid.span(box), [w for w in mine if _inside(w, box)]) for box in grid.cells]
    sizes = [sum(len(w["text"]) for w in ws) for _, _, ws in cells if ws]
    if not sizes or statistics.median(sizes) > prose_chars:
        return None
    # A first row that is one cell across the whole grid is the table's title, not its header.
    first, caption = 0, ""
    top_cells = [c for c in cells if c[1][0] == 0]
    if len(top_cells) == 1 and top_cells[0][1][2:] == (0, grid.ncols - 1) and grid.nrows > 2:
        first = top_cells[0][1][1] + 1
        caption = cell_text(_lines_text(text_lines(top_cells[0][2])))
    end = max([first + 1] + [span[1] + 1 for _, span, _ in cells if span[0] == first])
    header = _header(grid, cells, first, end)

    # Merged body cells holding one line of text: the text belongs to the span's first column
    # and, for a cell over several rows, to each of those rows.
    fills: list[tuple[int, int, int, str]] = []
    for _box, (r0, r1, c0, c1), ws in cells:
        if r0 >= end and (r1 > r0 or c1 > c0) and ws and len(text_lines(ws)) == 1:
            for w in ws:
                w["_col"] = c0
            if r1 > r0:
                fills.append((r0, r1, c0, _join(text_lines(ws)[0])))
    try:
        logical = _body_rows(grid, mine, end)
    finally:
        for w in mine:
            w.pop("_col", None)
    rows: list[list[str]] = []
    for r, cols in logical[:MAX_ROWS]:
        row = [cell_text(join_lines(cols.get(c, []))) for c in range(grid.ncols)]
        for r0, r1, c0, text in fills:
            if r0 < r <= r1 and not row[c0]:
                row[c0] = cell_text(text)
        if any(row):
            rows.append(row)
    rows, notes = _split_notes(rows)
    keep = [c for c in range(grid.ncols) if header[c] or any(row[c] for row in rows)]
    if len(keep) < 2 or not rows:
        return None  # one column is a framed paragraph; a header alone says nothing
    header = [header[c] for c in keep]
    rows = [[row[c] for c in keep] for row in rows]
    if not _plausible(header, rows):
        return None
    return PageTable(bbox=grid.bbox, rows=[header, *rows], caption=caption, notes=notes)
