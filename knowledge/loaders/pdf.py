"""PDF files: page texts and tables from a limited child process, OCR for pages with no
text layer or a garbled one.

The parent never parses PDF bytes itself. ``pdf_worker`` runs under an address-space limit
(``pdf_memory_mb``) and a CPU-time backstop, and is killed with its whole process group when
the wall clock passes ``pdf_timeout_s``. OCR runs in a second worker with its own limits
(onnxruntime needs more address space than pypdf: see ``ocr.OCR_MEMORY_MB``) and its own
``pdf_timeout_s`` budget; it reports page by page, so pages finished before a timeout count.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import IngestError
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.ocr import OCR_MEMORY_MB
from knowledge.loaders.pdf_clean import clean_pages, table_index, without_table_marks
from knowledge.loaders.pdf_worker import MAX_TOTAL_CHARS, MIN_TEXT_CHARS
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the knowledge package
_DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once
# Share of pdf_timeout_s the worker may spend finding tables: pdfplumber lays a page out several
# times slower than pypdf reads it; past the budget, tables stay flat text (with a warning).
TABLE_SHARE = 0.35


@dataclass
class WorkerRun:
    returncode: int | None
    records: list[dict[str, Any]]
    stderr: str
    timed_out: bool


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    # glibc reserves 64 MB of address space per thread arena and RLIMIT_AS counts it.
    env["MALLOC_ARENA_MAX"] = "2"
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[key] = _DEAD_PROXY
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_worker(args: list[str], mem_mb: int, timeout_s: float, cpu_s: int) -> WorkerRun:
    """Run pdf_worker with limits; kill its process group on timeout. Never raises on failure
    of the child: the caller reads ``timed_out``, ``returncode`` and the JSON records."""
    cmd = [sys.executable, "-m", "knowledge.loaders.pdf_worker", *args,
           "--mem-mb", str(mem_mb), "--cpu-s", str(cpu_s)]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env(), start_new_session=True,  # own process group: killpg reaches any children
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    except BaseException:  # KeyboardInterrupt etc.: do not leave the child running
        _kill_group(proc)
        proc.wait()
        raise
    records = []
    for line in out.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return WorkerRun(proc.returncode, records, err.decode("utf-8", errors="replace")[-2000:], timed_out)


def _failure(run: WorkerRun, what: str, mem_mb: int) -> str:
    """Why a worker ended without a result."""
    code = run.returncode or 0
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        if -code == signal.SIGXCPU:
            return f"{what} exceeded its CPU time limit"
        if -code == signal.SIGKILL:
            return f"{what} was killed (SIGKILL: CPU time limit, or the system ran out of memory)"
        return f"{what} crashed ({sig}); it may have exceeded the memory limit ({mem_mb} MB)"
    if "MemoryError" in run.stderr:
        return f"{what} exceeded the memory limit ({mem_mb} MB)"
    tail = run.stderr.strip().splitlines()
    return f"{what} failed (exit code {code}){': ' + tail[-1][:200] if tail else ''}"


def _pages_label(pages: list[int]) -> str:
    """[3, 4, 5, 9] -> 'pages 3-5, 9'."""
    spans: list[str] = []
    for page in sorted(pages):
        if spans and page == int(spans[-1].split("-")[-1]) + 1:
            spans[-1] = f"{spans[-1].split('-')[0]}-{page}"
        else:
            spans.append(str(page))
    return ("page " if len(pages) == 1 else "pages ") + ", ".join(spans)


def _visible(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def extract(path: Path, source: str, settings: IngestSettings) -> dict[str, Any]:
    """The worker's page records for ``path``, or IngestError with the reason."""
    timeout = settings.pdf_timeout_s
    mem = settings.pdf_memory_mb
    # An absolute path: a relative name starting with "-" would read as an option.
    args = ["extract", os.path.abspath(path), "--max-pages", str(settings.max_pages),
            "--table-seconds", f"{TABLE_SHARE * timeout:.1f}"]
    run = run_worker(args, mem, timeout, cpu_s=math.ceil(timeout) + 5)
    if run.timed_out:
        raise IngestError(source, f"timed out after {timeout:g} s")
    result = next((r for r in run.records if "ok" in r or "error" in r), None)
    if result is None:
        raise IngestError(source, _failure(run, "PDF parser", mem))
    error = result.get("error")
    if error == "encrypted":
        raise IngestError(source, "encrypted PDF: a password is required")
    if error == "too_many_pages":
        raise IngestError(source, f"PDF has {result.get('pages')} pages, over the limit of {settings.max_pages}")
    if error == "too_much_text":
        raise IngestError(source, f"PDF has more than {MAX_TOTAL_CHARS:,} characters of text")
    if error == "memory":
        raise IngestError(source, f"exceeded memory limit ({mem} MB)")
    if error:
        raise IngestError(source, f"malformed PDF: {result.get('detail') or error}")
    return result


def _ocr(path: Path, reasons: dict[int, str], texts: list[str], settings: IngestSettings,
         warnings: list[str]) -> list[int]:
    """OCR the pages in ``reasons`` (1-based page -> why: "no text layer", "garbled text layer
    (…)") and put the text into ``texts``; returns the pages OCR'd."""
    pages = sorted(reasons)

    def say(pages: list[int], what: str) -> None:  # one warning per reason, pages grouped
        by_reason: dict[str, list[int]] = {}
        for page in pages:
            by_reason.setdefault(reasons[page], []).append(page)
        for reason, group in by_reason.items():
            warnings.append(f"{_pages_label(group)}: {reason}{what}")

    if not settings.ocr or settings.ocr_max_pages == 0:
        say(pages, ", and OCR is off")
        return []
    to_ocr, rest = pages[: settings.ocr_max_pages], pages[settings.ocr_max_pages:]
    if rest:
        say(rest, f"; not OCR'd (ocr_max_pages={settings.ocr_max_pages})")
    threads = min(4, os.cpu_count() or 1)
    mem = max(settings.pdf_memory_mb, OCR_MEMORY_MB)
    timeout = settings.pdf_timeout_s
    args = ["ocr", os.path.abspath(path), "--pages", ",".join(map(str, to_ocr)), "--dpi", str(settings.ocr_dpi)]
    run = run_worker(args, mem, timeout, cpu_s=math.ceil(timeout * threads) + 10)
    done: dict[int, str] = {}
    failed: list[int] = []
    for record in run.records:
        if "page" not in record and record.get("error"):  # no OCR at all: rapidocr missing, bad file
            why = "OCR unavailable" if record["error"] == "ocr_unavailable" else "OCR failed"
            say(to_ocr, f"; {why}: {record.get('detail') or record['error']}")
            return []
        page = record.get("page")
        if not isinstance(page, int):
            continue
        if "text" in record:
            done[page] = str(record["text"])
        else:
            failed.append(page)
            warnings.append(f"page {page}: OCR failed: {record.get('error')}")
    missing = [p for p in to_ocr if p not in done and p not in failed]
    if missing:
        why = f"timed out after {timeout:g} s" if run.timed_out else _failure(run, "OCR", mem)
        say(missing, f"; OCR stopped: {why}")
    blank = [page for page, text in done.items() if not text.strip()]
    if blank:
        say(blank, ", and OCR found no text")
    ocr_pages = []
    for page, text in sorted(done.items()):
        # Rendering includes any text layer, so the OCR text is a superset when it is longer.
        # (A garbled layer was dropped by the worker: only its table marks are left.)
        if _visible(text) > _visible(without_table_marks(texts[page - 1])):
            marks = [line for line in texts[page - 1].split("\n") if table_index(line) is not None]
            texts[page - 1] = "\n".join([text, *marks])
            ocr_pages.append(page)
    if ocr_pages:
        say(ocr_pages, "; text from OCR")
    return ocr_pages


def _numeric(cell: str) -> bool:
    return bool(_NUMBER.fullmatch(cell.strip()))


_NUMBER = re.compile(r"[-+−~≤≥<>±]?\s*[$¥€£]?\s*\d[\d,.\s]*(?:%|‰)?")


def _header_like(row: list[str], body: list[list[str]]) -> bool:
    """A first row with no number where the rows above (another page) had a numeric column
    is a header of its own; anything else continues the table above."""
    for c, cell in enumerate(row):
        column = [r[c] for r in body if c < len(r) and r[c].strip()]
        if column and sum(map(_numeric, column)) >= 0.6 * len(column):
            return not any(_numeric(x) for x in row)
    return False


def _page_blocks(pages: list[list[tuple[str, str]]], records: list[dict[str, Any]]) -> list[Block]:
    """Blocks in reading order, tables in place of their marks. A table that opens a page (in
    its top third, nothing but a running head above) right after one that closed the page
    before (reaching its bottom third), with as many columns and no header of its own,
    continues it: it gets the header of the table above."""
    blocks: list[Block] = []
    open_table: list[list[str]] | None = None  # rows of a table that ended its page
    for number, pieces in enumerate(pages, 1):
        tables = (records[number - 1].get("tables") or []) if number <= len(records) else []
        carried, open_table = open_table, None
        for i, (kind, text) in enumerate(pieces):
            k = table_index(text) if kind == "table" else None
            if k is None or k >= len(tables):
                if kind != "table":
                    blocks.append(Block(kind=kind, text=text, page=number))  # type: ignore[arg-type]
                continue
            table = tables[k]
            rows = [list(map(str, row)) for row in table.get("rows") or []]
            if not rows:
                continue
            if table.get("caption"):
                blocks.append(Block(kind="paragraph", text=str(table["caption"]), page=number))
            top, bottom = table.get("span") or (0.0, 1.0)
            if (i == 0 and carried and top <= 1 / 3 and len(rows[0]) == len(carried[0])
                    and rows[0] != carried[0] and not _header_like(rows[0], carried[1:])):
                rows = [carried[0], *rows]
            blocks.append(Block(kind="table", rows=rows, header=True, page=number))
            if table.get("notes"):
                blocks.append(Block(kind="paragraph", text=str(table["notes"]), page=number))
            elif i == len(pieces) - 1 and bottom >= 2 / 3:
                open_table = rows
    return blocks


def load_pdf(path: Path, source: str, settings: IngestSettings) -> Parsed:
    result = extract(path, source, settings)
    records: list[dict[str, Any]] = result.get("pages") or []
    warnings: list[str] = []
    if result.get("engine") == "pdfium":
        warnings.append(f"read with pdfium because {result.get('note') or 'pypdf failed'}")
    for number, record in enumerate(records, 1):
        if record.get("error"):
            warnings.append(f"page {number}: text extraction failed: {record['error']}")
        if record.get("truncated"):
            warnings.append(f"page {number}: text truncated (implausibly long)")
    warnings.extend((result.get("tables") or {}).get("notes") or [])
    texts = [str(r.get("text") or "") for r in records]
    reasons: dict[int, str] = {}  # pages to OCR and why
    garbled: dict[str, str] = {}
    for number, record in enumerate(records, 1):
        if record.get("garbled"):
            garbled[str(number)] = str(record["garbled"])
            what = f"garbled text layer ({record['garbled']})"
            if record.get("text_from") == "pdfium":
                warnings.append(f"page {number}: {what}; read with pdfium instead")
            else:
                reasons[number] = what
        elif record.get("images") and _visible(texts[number - 1]) < MIN_TEXT_CHARS:
            reasons[number] = "no text layer"
    ocr_pages = _ocr(path, reasons, texts, settings, warnings) if reasons else []
    blocks = _page_blocks(clean_pages(texts), records)
    if not blocks:
        hint = f" ({warnings[-1]})" if warnings else ""
        raise IngestError(source, f"no text found in {len(records)} page(s){hint}")
    extra: dict[str, Any] = {}
    if ocr_pages:
        extra["ocr_pages"] = ocr_pages
        extra["ocr_reasons"] = {str(page): reasons[page] for page in ocr_pages}
    if garbled:
        extra["garbled_pages"] = garbled
    return Parsed(blocks=blocks, pages=int(result.get("n_pages") or len(records)), warnings=warnings, extra=extra)
