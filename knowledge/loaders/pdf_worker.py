"""Child process that parses one PDF under resource limits (started by knowledge.loaders.pdf).

    python -m knowledge.loaders.pdf_worker extract FILE --max-pages N --table-seconds T --mem-mb M --cpu-s S
    python -m knowledge.loaders.pdf_worker ocr FILE --pages 3,7 --dpi 200 --mem-mb M --cpu-s S

pypdf has had many denial-of-service bugs (endless loops, memory blow-ups) and pdfium is C++,
so a hostile file may hang or crash this process; the parent kills it on a wall-clock timeout.
Results go to stdout as JSON lines (the real stdout is kept for them; anything a library prints
goes to stderr). ``extract`` writes one line; ``ocr`` writes one line per page as it finishes,
so pages done before a timeout are kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
from typing import Any, TextIO

from knowledge.loaders import garble
from knowledge.loaders.pdf_clean import table_mark, without_table_marks
from knowledge.loaders.pdf_tables import MIN_RULES, TableFinder, page_transform

MAX_PAGE_CHARS = 200_000  # a page with more "text" than this is garbage or an attack
MAX_TOTAL_CHARS = 40_000_000
MIN_TEXT_CHARS = 20  # fewer visible characters than this: the page may be a scan
RULE_PT = 40  # a drawn line at least this long (in points) may be a table rule


class _Emitter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()


def _set_limit(which: int, soft: int, hard: int) -> None:
    current_hard = resource.getrlimit(which)[1]
    if current_hard != resource.RLIM_INFINITY:  # never ask for more than we are allowed
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _limit(mem_mb: int, cpu_s: int) -> None:
    _set_limit(resource.RLIMIT_AS, mem_mb * 1024 * 1024, mem_mb * 1024 * 1024)
    # CPU time is a backstop in case the parent dies; the parent's wall clock kills first.
    _set_limit(resource.RLIMIT_CPU, cpu_s, cpu_s + 5)
    _set_limit(resource.RLIMIT_CORE, 0, 0)


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # pypdf logs a warning per broken object: unbounded


def _has_image(page: Any, depth: int = 0) -> bool:
    """Whether the page draws an image XObject (directly or inside a form, two levels deep)."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if resources is not None else None
        if xobjects is None:
            return False
        for ref in xobjects.get_object().values():
            obj = ref.get_object()
            subtype = obj.get("/Subtype")
            if subtype == "/Image":
                return True
            if subtype == "/Form" and depth < 2 and _has_image(obj, depth + 1):
                return True
    except Exception:
        return True  # can't tell: let the parent try OCR if the page has no text
    return False


def _visible(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


Piece = tuple[str, Any, Any, float]  # text, cm, tm, font size as pypdf's visitor reports them


def _page_pieces(page: Any) -> tuple[str, list[Piece] | None, int]:
    """pypdf's plain text, the pieces it is made of (None when they do not add up to it), and
    how many long level or upright lines and rectangles the page draws: a cheap hint of ruled
    tables (fraction bars, underlines and bullets are shorter than RULE_PT)."""
    pieces: list[Piece] = []
    rules = 0
    point: tuple[float, float] | None = None

    def visit(text: str, cm: Any, tm: Any, font_dict: Any, font_size: Any) -> None:
        if text:
            pieces.append((text, cm, tm, float(font_size or 0)))

    def operator(op: bytes, args: Any, cm: Any, tm: Any) -> None:
        nonlocal rules, point
        try:
            if op == b"re" and max(abs(float(args[2])), abs(float(args[3]))) >= RULE_PT:
                rules += 1
            elif op == b"m":
                point = (float(args[0]), float(args[1]))
            elif op == b"l":
                end = (float(args[0]), float(args[1]))
                if point is not None and math.dist(point, end) >= RULE_PT and min(
                        abs(end[0] - point[0]), abs(end[1] - point[1])) < 1:  # plots draw slopes
                    rules += 1
                point = end
        except (TypeError, ValueError, IndexError):  # malformed operands: not a rule
            pass

    text = page.extract_text(visitor_text=visit, visitor_operand_before=operator) or ""
    return text, (pieces if "".join(p[0] for p in pieces) == text else None), rules


def _origin(piece: Piece) -> tuple[float, float]:
    """Where a piece's text starts, in PDF user space."""
    _, cm, tm, _ = piece
    return tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]


def _layout(pieces: list[Piece]) -> str:
    """The pieces' text plus a blank line where a paragraph visibly ends.

    pypdf's text has no paragraph breaks; the text-visitor callback tells where each piece
    sits, so a line set clearly lower than the usual line spacing (or in another font size,
    like a heading) gets a blank line before it. Pieces without a matrix (table marks) are
    placed as they come.
    """
    text = "".join(p[0] for p in pieces)
    lines: list[list[Any]] = [["", None, None]]  # text, baseline y, font size
    for piece, cm, tm, size in pieces:
        for k, part in enumerate(piece.split("\n")):
            if k:
                lines.append(["", None, None])
            line = lines[-1]
            if part.strip() and line[1] is None and tm is not None:
                line[1] = _origin((piece, cm, tm, size))[1]
                line[2] = abs(size * tm[3] * cm[3]) or size
            line[0] += part
    def resized(a: list[Any], b: list[Any]) -> bool:
        small, large = sorted((a[2] or 0, b[2] or 0))
        return small > 0 and large / small > 1.15

    placed = [line for line in lines if line[1] is not None]
    steps = sorted(a[1] - b[1] for a, b in zip(placed, placed[1:]) if a[1] - b[1] > 0 and not resized(a, b))
    if not steps:
        return text
    step = steps[len(steps) // 4]  # the usual line spacing (paragraph gaps are the long tail)
    out: list[str] = []
    previous = None
    for line in lines:
        if previous is not None and line[1] is not None:
            gap = previous[1] - line[1]
            if gap > 1.4 * step or (gap > 0 and resized(previous, line)):
                out.append("")
        out.append(line[0])
        if line[1] is not None:
            previous = line
    return "\n".join(out)


def _table_at(x: float, y: float, boxes: list[Any], to_page: Any) -> int | None:
    """The index of the table box holding user-space point (x, y), if any."""
    px, py = to_page(x, y)
    for k, (x0, top, x1, bottom) in enumerate(boxes):
        if x0 - 2 <= px <= x1 + 2 and top - 2 <= py <= bottom + 2:
            return k
    return None


def _cut_tables(pieces: list[Piece], boxes: list[Any], to_page: Any) -> list[Piece]:
    """The pieces with the text inside table boxes taken out; a table mark line stands where
    each table's first piece was (at the end when none of its pieces could be placed)."""
    out: list[Piece] = []
    marked: set[int] = set()
    for piece in pieces:
        k = _table_at(*_origin(piece), boxes, to_page) if piece[0].strip() else None
        if k is None:
            out.append(piece)
            continue
        if k not in marked:
            marked.add(k)
            out.append(("\n" + table_mark(k) + "\n", None, None, 0.0))
        if "\n" in piece[0]:
            out.append(("\n" * piece[0].count("\n"), None, None, 0.0))
    out.extend(("\n" + table_mark(k) + "\n", None, None, 0.0) for k in range(len(boxes)) if k not in marked)
    return out


def _page_text(page: Any) -> str:
    """pypdf's plain text with paragraph breaks (see _layout)."""
    text, pieces, _ = _page_pieces(page)
    return _layout(pieces) if pieces is not None else text


def _pdfium_text(document: Any, index: int, boxes: list[Any], to_page: Any) -> str:
    """pdfium's text of one page, without the text inside table boxes (marks stand there)."""
    page = document[index]
    textpage = page.get_textpage()
    try:
        if not boxes:
            return textpage.get_text_range()
        out: list[str] = []
        marked: set[int] = set()
        for i in range(textpage.count_chars()):
            left, bottom, right, top = textpage.get_charbox(i)
            ch = textpage.get_text_range(i, 1)
            k = _table_at((left + right) / 2, bottom, boxes, to_page) if right > left else None
            if k is None:
                out.append(ch)
            elif k not in marked:
                marked.add(k)
                out.append("\n" + table_mark(k) + "\n")
        out.extend("\n" + table_mark(k) + "\n" for k in range(len(boxes)) if k not in marked)
        return "".join(out)
    finally:
        textpage.close()
        page.close()


def extract_pypdf(path: str, max_pages: int, emit: _Emitter, table_seconds: float = 0.0) -> str | None:
    """Text and tables of every page with pypdf (tables with pdfplumber, for at most
    ``table_seconds``). Returns why, when pypdf cannot open the file at all."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")  # owner-password-only files open with ""
            except DependencyError:
                # AES without the cryptography package; pdfium decrypts natively.
                return "pypdf: AES decryption needs the cryptography package"
            if not decrypted:
                emit({"error": "encrypted"})
                return None
        n_pages = len(reader.pages)
    except FileNotDecryptedError:
        emit({"error": "encrypted"})
        return None
    except MemoryError:
        raise
    except Exception as exc:  # PdfReadError and whatever else a broken xref/page tree raises
        return f"pypdf: {type(exc).__name__}: {exc}"[:300]
    if n_pages > max_pages:
        emit({"error": "too_many_pages", "pages": n_pages})
        return None
    tables = TableFinder(path, table_seconds) if table_seconds > 0 else None
    pdfium = _Pdfium(path)
    pages: list[dict[str, Any]] = []
    total = 0
    try:
        for index in range(n_pages):
            record: dict[str, Any] = {"text": "", "images": False}
            try:
                page = reader.pages[index]
                text = _read_page(page, index, record, tables, pdfium)
                if len(text) > MAX_PAGE_CHARS:
                    text, record["truncated"] = text[:MAX_PAGE_CHARS], True
                record["text"] = text
                total += len(text)
                if _visible(text) < MIN_TEXT_CHARS:
                    record["images"] = _has_image(page)
            except MemoryError:
                raise
            except Exception as exc:  # one broken page does not sink the file
                record["error"] = f"{type(exc).__name__}: {exc}"[:300]
                record["images"] = True
            pages.append(record)
            if total > MAX_TOTAL_CHARS:
                emit({"error": "too_much_text", "pages": index + 1})
                return None
    finally:
        pdfium.close()
        if tables is not None:
            tables.close()
    result: dict[str, Any] = {"ok": True, "engine": "pypdf", "n_pages": n_pages, "pages": pages}
    if tables is not None:
        result["tables"] = {"pages": tables.pages, "seconds": round(tables.seconds, 3), "notes": tables.notes}
    emit(result)
    return None


def _read_page(page: Any, index: int, record: dict[str, Any], tables: TableFinder | None, pdfium: _Pdfium) -> str:
    """One page's text with its tables cut out (into ``record["tables"]``); a garbled text
    layer is replaced by pdfium's reading when that one is language, else dropped and marked
    ``record["garbled"]`` so the parent OCRs the page."""
    text, pieces, rules = _page_pieces(page)
    found = tables.find(index) if tables is not None and pieces is not None and rules >= MIN_RULES else []
    to_page = page_transform(tuple(float(v) for v in page.mediabox), page.rotation)
    boxes = [t.bbox for t in found]
    if found:
        assert pieces is not None
        text = _layout(_cut_tables(pieces, boxes, to_page))
        record["tables"] = [{"rows": t.rows, "caption": t.caption, "notes": t.notes, "span": t.span} for t in found]
    elif pieces is not None:
        text = _layout(pieces)
    verdict = garble.check(without_table_marks(text))
    if not verdict.garbled:
        return text
    record["garbled"] = verdict.reason
    other = pdfium.text(index, boxes, to_page)
    if other is not None and _visible(without_table_marks(other)) >= MIN_TEXT_CHARS and not garble.check(without_table_marks(other)).garbled:
        record["text_from"] = "pdfium"
        return other
    return "\n".join(table_mark(k) for k in range(len(found)))  # the garbage goes; tables stay


class _Pdfium:
    """A second reading of a page whose pypdf text is garbled: pdfium maps fonts to Unicode
    its own way and often gets right what pypdf got wrong. Opened on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._document: Any = None

    def text(self, index: int, boxes: list[Any], to_page: Any) -> str | None:
        try:
            if self._document is None:
                import pypdfium2

                self._document = pypdfium2.PdfDocument(self.path)
            return _pdfium_text(self._document, index, boxes, to_page)
        except MemoryError:
            raise
        except Exception:  # pdfium cannot read it either: the parent OCRs the page
            return None

    def close(self) -> None:
        if self._document is not None:
            self._document.close()


def extract_pdfium(path: str, max_pages: int, emit: _Emitter, why: str) -> None:
    """Fallback when pypdf cannot open the file: pdfium repairs more broken files."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            emit({"error": "encrypted"})
        else:
            emit({"error": "malformed", "detail": f"{why}; pdfium: {message}"})
        return
    try:
        n_pages = len(document)
        if n_pages > max_pages:
            emit({"error": "too_many_pages", "pages": n_pages})
            return
        pages = []
        for index in range(n_pages):
            page = document[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range()[:MAX_PAGE_CHARS]
            images = _visible(text) < MIN_TEXT_CHARS and any(
                True for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=3)
            )
            pages.append({"text": text, "images": images})
            textpage.close()
            page.close()
        emit({"ok": True, "engine": "pdfium", "n_pages": n_pages, "pages": pages, "note": why})
    finally:
        document.close()


def run_ocr(path: str, pages: list[int], dpi: int, emit: _Emitter) -> None:
    from knowledge.loaders.ocr import OcrUnavailable, make_engine, ocr_image, render_page

    try:
        engine = make_engine()
    except OcrUnavailable as exc:
        emit({"error": "ocr_unavailable", "detail": str(exc)})
        return
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        for number in pages:  # 1-based
            try:
                image = render_page(document, number - 1, dpi)
                emit({"page": number, "text": ocr_image(engine, image)})
            except MemoryError:
                emit({"page": number, "error": "exceeded memory limit"})
            except Exception as exc:
                text = str(exc).strip()
                if "bad_alloc" in text:  # onnxruntime's C++ allocation failure under RLIMIT_AS
                    emit({"page": number, "error": "exceeded memory limit"})
                else:  # rapidocr wraps onnxruntime errors in a whole traceback: keep its last line
                    last = text.splitlines()[-1] if text else ""
                    emit({"page": number, "error": f"{type(exc).__name__}: {last}"[:300]})
    finally:
        document.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdf_worker")
    parser.add_argument("mode", choices=("extract", "ocr"))
    parser.add_argument("path")
    parser.add_argument("--max-pages", type=int, default=2000)
    parser.add_argument("--pages", default="")
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--table-seconds", type=float, default=0.0)  # 0: no table search
    parser.add_argument("--mem-mb", type=int, required=True)
    parser.add_argument("--cpu-s", type=int, required=True)
    args = parser.parse_args(argv)

    # Keep the real stdout for results; stray prints from libraries go to stderr.
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    emit = _Emitter(results)
    _limit(args.mem_mb, args.cpu_s)
    _quiet_libraries()
    try:
        if args.mode == "extract":
            why = extract_pypdf(args.path, args.max_pages, emit, args.table_seconds)
            if why is not None:
                extract_pdfium(args.path, args.max_pages, emit, why)
        else:
            pages = [int(p) for p in args.pages.split(",") if p.strip()]
            run_ocr(args.path, pages, args.dpi, emit)
    except MemoryError:
        emit({"error": "memory"})
        return 3
    except RecursionError as exc:
        emit({"error": "malformed", "detail": f"nesting too deep ({exc})"})
        return 2
    except Exception as exc:
        emit({"error": "malformed", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
