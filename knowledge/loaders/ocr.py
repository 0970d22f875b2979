"""OCR of PDF pages with no text layer or a garbled one: render with pypdfium2, read with
rapidocr, put the boxes in reading order.

Runs inside the PDF worker process (see pdf_worker.py), never in the main process. rapidocr
ships its ONNX models in the wheel; we hand it the model files by path so it never tries its
download code (the worker also points HTTP proxies at a closed port, so a download attempt
would fail at once instead of hanging).

Reading order: a multi-column page is cut at its gutters before OCR (``column_regions``: the
detector would otherwise draw one box across two columns whose lines share a baseline), and
``layout_text`` again reads boxes column by column when a gutter runs between them; vertical
writing (Chinese, Japanese) is read column by column from the right.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import median
from typing import Any

from knowledge.loaders.pdf_clean import join_lines

# Virtual memory onnxruntime + OpenCV need to OCR a dense A4 page at 200-300 dpi, measured at
# 1.5-2.0 GB (VmPeak; resident ~1 GB). The OCR worker runs under max(pdf_memory_mb, this).
OCR_MEMORY_MB = 3072
# Longest rendered side in pixels: A4 at 200 dpi is 2339 px; larger renders only cost memory,
# detection time grows with the pixel count.
MAX_SIDE_PX = 3000
MIN_SCORE = 0.5


class OcrUnavailable(RuntimeError):
    """rapidocr, onnxruntime or the bundled models are missing."""


def model_files() -> dict[str, Path]:
    """The det/rec/cls ONNX files inside the installed rapidocr wheel."""
    try:
        import rapidocr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise OcrUnavailable(f"rapidocr is not installed ({exc}); pip install rapidocr onnxruntime") from exc
    folder = Path(rapidocr.__file__).resolve().parent / "models"
    found: dict[str, Path] = {}
    for task in ("det", "rec", "cls"):
        candidates = sorted(folder.glob(f"*_{task}_*.onnx")) or sorted(folder.glob(f"*{task}*.onnx"))
        if candidates:
            found[task] = candidates[-1]
    missing = {"det", "rec"} - found.keys()
    if missing:
        raise OcrUnavailable(f"rapidocr models missing from {folder}: {', '.join(sorted(missing))}")
    return found


def make_engine(threads: int | None = None) -> Any:
    """A RapidOCR engine on the bundled Chinese+English models, with no network access."""
    files = model_files()
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # onnxruntime / opencv missing
        raise OcrUnavailable(f"rapidocr cannot start: {exc}") from exc
    threads = threads or min(4, os.cpu_count() or 1)
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": False,  # rendered pages are upright; the classifier only costs time
        "Global.max_side_len": MAX_SIDE_PX,
        "Det.model_path": str(files["det"]),
        "Rec.model_path": str(files["rec"]),
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if "cls" in files:
        params["Cls.model_path"] = str(files["cls"])
    return RapidOCR(params=params)


def render_page(document: Any, index: int, dpi: int) -> Any:
    """Page ``index`` (0-based) of an open pypdfium2 document as an RGB numpy array."""
    page = document[index]
    try:
        width_pt, height_pt = page.get_size()
        scale = dpi / 72.0
        longest = max(width_pt, height_pt, 1.0)
        scale = min(scale, MAX_SIDE_PX / longest)  # huge pages: cap pixels, not the page
        bitmap = page.render(scale=scale)
        try:
            return bitmap.to_numpy()[:, :, :3].copy()
        finally:
            bitmap.close()
    finally:
        page.close()


def layout_text(boxes: Any, texts: Any, scores: Any) -> str:
    """OCR boxes -> text in reading order: column by column when the page has a gutter (see
    _split_columns), right to left when the text is set vertically (Chinese, Japanese), and
    within a column lines top to bottom; a vertical gap larger than about one line height
    becomes a blank line (paragraph break)."""
    items = []
    for box, text, score in zip(boxes if boxes is not None else [], texts or [], scores or []):
        text = str(text).strip()
        if not text or float(score) < MIN_SCORE:
            continue
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        items.append({"top": min(ys), "bottom": max(ys), "x": min(xs), "right": max(xs), "text": text})
    if not items:
        return ""
    if _vertical([[[it["x"], it["top"]], [it["right"], it["bottom"]]] for it in items if len(it["text"]) >= 2]):
        return "\n".join(_vertical_lines(items))
    return "\n".join(_read(items)).strip("\n")


def _vertical(boxes: list[Any]) -> bool:
    """Most boxes (of text longer than one character) are tall and narrow: vertical writing."""
    tall = 0
    for box in boxes:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        tall += max(ys) - min(ys) > 1.5 * (max(xs) - min(xs))
    return bool(boxes) and tall >= 0.6 * len(boxes)


def _vertical_lines(items: list[dict[str, Any]]) -> list[str]:
    """Vertical writing: blocks top to bottom (a horizontal gap apart); in each, columns from
    right to left, each read top to bottom."""
    blocks: list[list[dict[str, Any]]] = []
    for it in sorted(items, key=lambda it: it["top"]):
        if blocks and it["top"] <= max(b["bottom"] for b in blocks[-1]):
            blocks[-1].append(it)
        else:
            blocks.append([it])
    out: list[str] = []
    for block in blocks:
        columns: list[list[dict[str, Any]]] = []
        for it in sorted(block, key=lambda it: -(it["x"] + it["right"]) / 2):
            center = (it["x"] + it["right"]) / 2
            column = columns[-1] if columns else None
            if column and min(c["x"] for c in column) <= center <= max(c["right"] for c in column):
                column.append(it)
            else:
                columns.append([it])
        if out:
            out.append("")
        out += [join_lines([it["text"] for it in sorted(col, key=lambda it: it["top"])]) for col in columns]
    return out


def _read(items: list[dict[str, Any]], depth: int = 0) -> list[str]:
    """Lines of ``items`` in reading order; columns first (recursively: three columns are two
    splits), a block spanning the gutter (a title) cuts the columns into bands above and below."""
    split = _split_columns(items) if depth < 3 else None
    if split is None:
        return _lines(items)
    left, right, spanners = split
    out: list[str] = []
    for spanner in sorted(spanners, key=lambda it: it["top"]) + [None]:
        limit = spanner["top"] if spanner is not None else float("inf")
        for column in (left, right):
            band = [it for it in column if (it["top"] + it["bottom"]) / 2 < limit]
            if band:
                for it in band:
                    column.remove(it)
                out += [""] + _read(band, depth + 1)
        if spanner is not None:
            out += ["", *_lines([spanner])]
    return out


def _split_columns(items: list[dict[str, Any]]) -> tuple[list, list, list] | None:
    """(left column, right column, items across the gutter) when a vertical gutter that no more
    than a few boxes cross runs through the middle of the page, with lines of running text
    (boxes filling their column, not short table cells) side by side on both sides of it."""
    if len(items) < 6:
        return None
    x0 = min(it["x"] for it in items)
    x1 = max(it["right"] for it in items)
    width = x1 - x0
    if width <= 0:
        return None
    bins = 200
    cover = [0] * bins
    for it in items:
        for b in range(int((it["x"] - x0) / width * (bins - 1)), int((it["right"] - x0) / width * (bins - 1)) + 1):
            cover[b] += 1
    allowed = max(2, len(items) // 10)  # a title, a footnote, a page number may cross
    best: tuple[int, int] | None = None
    start = None
    for b in range(int(0.15 * bins), int(0.85 * bins) + 1):
        if cover[b] <= allowed and b < int(0.85 * bins):
            start = b if start is None else start
        elif start is not None:
            if best is None or b - start > best[1] - best[0]:
                best = (start, b)
            start = None
    if best is None or best[1] - best[0] < 2:  # a gutter of at least 1% of the text width
        return None
    g0 = x0 + best[0] / (bins - 1) * width
    g1 = x0 + best[1] / (bins - 1) * width
    left = [it for it in items if it["right"] <= g1]
    right = [it for it in items if it["x"] >= g0 and it not in left]
    spanners = [it for it in items if it not in left and it not in right]
    if len(left) < 3 or len(right) < 3 or len(spanners) > 0.3 * len(items):
        return None
    overlap = min(max(it["bottom"] for it in left), max(it["bottom"] for it in right)) - max(
        min(it["top"] for it in left), min(it["top"] for it in right))
    shorter = min(max(it["bottom"] for it in side) - min(it["top"] for it in side) for side in (left, right))
    if overlap < 0.5 * shorter:
        return None  # one block above the other, not side by side
    for side, (a, b) in ((left, (x0, g0)), (right, (g1, x1))):
        if b - a < 0.25 * width or median(it["right"] - it["x"] for it in side) < 0.5 * (b - a):
            return None  # narrow columns or short cells: a table's, read across row by row
    return left, right, spanners


def _lines(items: list[dict[str, Any]]) -> list[str]:
    """Boxes of one column -> lines top to bottom, "" where a paragraph gap is."""
    items = sorted(items, key=lambda it: (it["top"] + it["bottom"]) / 2)
    lines: list[dict[str, Any]] = []
    for it in items:
        height = it["bottom"] - it["top"]
        center = (it["top"] + it["bottom"]) / 2
        last = lines[-1] if lines else None
        if last and abs(center - last["center"]) < 0.5 * min(height, last["height"]):
            last["parts"].append(it)
            last["bottom"] = max(last["bottom"], it["bottom"])
        else:
            lines.append({"top": it["top"], "bottom": it["bottom"], "center": center,
                          "height": height, "parts": [it]})
    typical = median(line["height"] for line in lines) or 1.0
    out: list[str] = []
    previous_bottom = None
    for line in lines:
        if previous_bottom is not None and line["top"] - previous_bottom > 0.8 * typical:
            out.append("")
        parts = sorted(line["parts"], key=lambda it: it["x"])
        out.append(join_lines([p["text"] for p in parts]))
        previous_bottom = line["bottom"]
    return out


def column_regions(image: Any, depth: int = 0) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) pixel regions of a page image in reading order: the whole
    page, or - when a vertical gutter of blank pixels splits the text into columns of running
    lines - bands across the full width (titles, wide figures) and, between them, the left
    column then the right one. OCR'd one by one, no detected line can bridge the gutter (the
    detector joins the lines of two columns that share a baseline into one box)."""
    import numpy as np

    ink = np.asarray(image).min(axis=2) < 128  # dark pixels
    height, width = ink.shape
    whole = [(0, height, 0, width)]
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if len(rows) < 50 or len(cols) < 50:
        return whole
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    # Per pixel column, how many text lines cover it once the gaps between letters and words
    # are closed; a gutter is covered only by the few lines spanning both columns (a title).
    bands = _runs(ink.any(axis=1))
    line = float(np.median([b - a for a, b in bands]))
    if line > 0.1 * height:
        return whole  # no horizontal lines of text: vertical writing, a drawing
    gap = max(4, int(0.5 * line))
    touched = np.zeros(x1 - x0, dtype=np.int32)
    for a, b in bands:
        for left, right in _runs(ink[a:b, x0:x1].any(axis=0), close=gap):
            touched[left:right] += 1
    quiet = touched <= max(1, 0.3 * len(bands))  # titles, page numbers: a few lines cross
    span = x1 - x0
    best = (0, 0)
    start = None
    for x in range(int(0.2 * span), int(0.8 * span) + 1):
        if x < int(0.8 * span) and quiet[x]:
            start = x if start is None else start
        elif start is not None:
            best = max(best, (start, x), key=lambda r: r[1] - r[0])
            start = None
    if best[1] - best[0] < max(16, 0.015 * span):
        return whole
    g0, g1 = x0 + best[0], x0 + best[1]
    # Lines crossing the gutter's middle, letters and words joined (a title's word space may
    # fall right on the gutter).
    middle = (g0 + g1) // 2
    crossing = np.zeros(height, dtype=bool)
    for a, b in bands:
        if any(left < middle < right for left, right in _runs(ink[a:b].any(axis=0), close=gap)):
            crossing[a:b] = True
    regions: list[tuple[int, int, int, int]] = []
    y = 0
    while y < height:  # alternate full-width bands (rows inking the gutter) and column bands
        across = bool(crossing[y])
        end = y
        while end < height and (bool(crossing[end]) == across or _blank_run(crossing, end, across)):
            end += 1
        if across:
            regions.append((y, end, 0, width))
        else:
            regions += [(y, end, 0, (g0 + g1) // 2), (y, end, (g0 + g1) // 2, width)]
        y = end
    columns = [r for r in regions if r[3] - r[2] < width and ink[r[0]:r[1], r[2]:r[3]].any()]
    if not columns or not _running_text([ink[t:b, l:r] for t, b, l, r in columns], span):
        return whole  # a table's columns: read across, row by row
    out: list[tuple[int, int, int, int]] = []
    for top, bottom, left, right in regions:
        if not ink[top:bottom, left:right].any():
            continue
        if right - left < width and depth < 2:  # three columns: split a column region again
            inner = column_regions(image[top:bottom, left:right], depth + 1)
            out += [(top + t, top + b, left + l, left + r) for t, b, l, r in inner]
        else:
            out.append((top, bottom, left, right))
    return out


def _runs(flags: Any, close: int = 0) -> list[tuple[int, int]]:
    """[start, end) runs of True in a 1-D array; runs less than ``close`` apart are joined."""
    import numpy as np

    on = np.flatnonzero(flags)
    if not len(on):
        return []
    breaks = np.flatnonzero(np.diff(on) > close + 1)
    starts = np.concatenate(([on[0]], on[breaks + 1]))
    ends = np.concatenate((on[breaks], [on[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def _blank_run(crossing: Any, y: int, across: bool) -> bool:
    """Inside a full-width band, a few blank rows (between a title's lines) do not end it."""
    return across and not crossing[y] and bool(crossing[y: y + 12].any())


def _running_text(columns: list[Any], page_width: int) -> bool:
    """Whether column regions hold running text - wide columns whose lines fill them with
    words a space apart - rather than a table, whose rows have wide gaps between cells.
    Regions of one or two lines (a heading between bands) do not count either way."""
    import numpy as np

    fill = []
    gaps = []
    for ink in columns:
        lines = _runs(ink.any(axis=1))
        if len(lines) < 3:
            continue
        cols = np.flatnonzero(ink.any(axis=0))
        extent = cols[-1] - cols[0] + 1
        if extent < 0.2 * page_width:
            return False
        for top, bottom in lines:
            words = _runs(ink[top:bottom].any(axis=0), close=max(2, int(0.3 * (bottom - top))))
            fill.append((words[-1][1] - words[0][0]) / extent)
            gaps.append(max((b[0] - a[1] for a, b in zip(words, words[1:])), default=0) / (bottom - top))
    return bool(fill) and float(np.median(fill)) >= 0.6 and float(np.median(gaps)) < 1.2


def ocr_image(engine: Any, image: Any) -> str:
    results = []
    for top, bottom, left, right in column_regions(image):
        result = engine(image[top:bottom, left:right])
        results.append(((top, left), [getattr(result, name, None) for name in ("boxes", "txts", "scores")]))
    boxes = [b for _, (bs, _, _) in results if bs is not None for b in bs]
    if len(results) > 1 and _vertical(boxes):
        results.sort(key=lambda r: (r[0][0], -r[0][1]))  # vertical writing: right column first
    parts = [layout_text(*found) for _, found in results]
    return "\n\n".join(p for p in parts if p)
