"""PDF files: page texts from a limited child process, OCR for pages with no text layer.

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
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import IngestError
from knowledge.loaders.metadata import Parsed
from knowledge.loaders.ocr import OCR_MEMORY_MB
from knowledge.loaders.pdf_clean import clean_pages
from knowledge.loaders.pdf_worker import MAX_TOTAL_CHARS, MIN_TEXT_CHARS
from knowledge.types import Block

if TYPE_CHECKING:
    from knowledge.settings import IngestSettings

_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the knowledge package
_DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once


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
    run = run_worker(["extract", os.path.abspath(path), "--max-pages", str(settings.max_pages)],
                     mem, timeout, cpu_s=math.ceil(timeout) + 5)
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


def _ocr(path: Path, pages: list[int], texts: list[str], settings: IngestSettings,
         warnings: list[str]) -> list[int]:
    """OCR ``pages`` (1-based) and put the text into ``texts``; returns the pages OCR'd."""
    if not settings.ocr or settings.ocr_max_pages == 0:
        warnings.append(f"{_pages_label(pages)}: no text layer, and OCR is off")
        return []
    to_ocr, rest = pages[: settings.ocr_max_pages], pages[settings.ocr_max_pages:]
    if rest:
        warnings.append(f"{_pages_label(rest)}: no text layer; not OCR'd (ocr_max_pages={settings.ocr_max_pages})")
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
            warnings.append(f"{_pages_label(to_ocr)}: no text layer; {why}: {record.get('detail') or record['error']}")
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
        warnings.append(f"{_pages_label(missing)}: no text layer; OCR stopped: {why}")
    blank = [page for page, text in done.items() if not text.strip()]
    if blank:
        warnings.append(f"{_pages_label(blank)}: no text layer, and OCR found no text")
    ocr_pages = []
    for page, text in sorted(done.items()):
        # Rendering includes any text layer, so the OCR text is a superset when it is longer.
        if _visible(text) > _visible(texts[page - 1]):
            texts[page - 1] = text
            ocr_pages.append(page)
    if ocr_pages:
        warnings.append(f"{_pages_label(ocr_pages)}: text from OCR")
    return ocr_pages


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
    texts = [str(r.get("text") or "") for r in records]
    scans = [n for n, r in enumerate(records, 1) if r.get("images") and _visible(texts[n - 1]) < MIN_TEXT_CHARS]
    ocr_pages = _ocr(path, scans, texts, settings, warnings) if scans else []
    blocks = [
        Block(kind=kind, text=text, page=number)  # type: ignore[arg-type]
        for number, pieces in enumerate(clean_pages(texts), 1)
        for kind, text in pieces
    ]
    if not blocks:
        hint = f" ({warnings[-1]})" if warnings else ""
        raise IngestError(source, f"no text found in {len(records)} page(s){hint}")
    extra: dict[str, Any] = {"ocr_pages": ocr_pages} if ocr_pages else {}
    return Parsed(blocks=blocks, pages=int(result.get("n_pages") or len(records)), warnings=warnings, extra=extra)
