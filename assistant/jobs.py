"""Knowledge administration behind the faces: uploaded documents and background index rebuilds.

``KnowledgeJobs`` runs one rebuild at a time in a background thread (``knowledge.builder``
stages a complete new version and publishes it atomically, so the service keeps answering from
the live version during a rebuild, and a failed or killed rebuild leaves it intact). A second
rebuild while one runs — here or in another process, e.g. ``onsite index build`` — is refused
with ``IndexBusyError`` (HTTP 409). Jobs are kept in memory (the last ``keep``), which is enough
to follow progress: the published versions themselves are on disk.

``save_document`` stores an uploaded file in the documents folder: allowed types only (PDF,
Markdown, text, HTML, DOCX), the content must look like its type, the size is bounded, and the
file name is reduced to a safe base name (no folders, no hidden or reserved names, no traversal).
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable

from assistant.errors import IndexBusyError, OnsiteError, ValidationError
from assistant.settings import Settings

log = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".pdf", ".md", ".markdown", ".txt", ".html", ".htm", ".docx")
MAX_NAME_CHARS = 120


class NotFoundError(OnsiteError):
    """The thing asked for does not exist (404)."""

    http_status = 404
    error_kind = "not_found"


class UnsupportedDocumentError(ValidationError):
    """Not a document type we index, or the bytes do not match the type (415)."""

    http_status = 415
    error_kind = "unsupported_document"


class DocumentTooLargeError(ValidationError):
    http_status = 413
    error_kind = "document_too_large"


# --- documents ----------------------------------------------------------------------------------


def safe_document_name(filename: str, ignore: list[str] | tuple[str, ...] = ()) -> str:
    """A base name safe to create in the documents folder, or ``UnsupportedDocumentError``.

    Folders are dropped (both separators), control characters and anything but letters, digits
    (any script), space and ``._-()`` become ``_``, leading dots go (no hidden files), the suffix
    must be a document type we index, and names the builder ignores are refused."""
    name = unicodedata.normalize("NFC", str(filename or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = re.sub(r"[^\w .()\-（）]+", "_", name).strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        raise UnsupportedDocumentError(
            f"{filename!r} is not a document type the index reads; send {', '.join(s[1:] for s in DOCUMENT_SUFFIXES)}")
    stem = stem.strip(" .")[: MAX_NAME_CHARS - len(suffix)] or f"document-{secrets.token_hex(3)}"
    name = stem + suffix
    if any(fnmatch(name, pattern) for pattern in ignore):
        raise ValidationError(f"files named {name!r} are never indexed (ingest.ignore); rename the file")
    return name


def check_document_bytes(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse empty, oversized and mislabelled files before they are stored (the parser, which
    runs later in a child process with limits, still has the last word)."""
    if not data:
        raise ValidationError(f"{name} is empty")
    if len(data) > max_bytes:
        raise DocumentTooLargeError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".pdf":
        if b"%PDF-" not in data[:1024]:
            raise UnsupportedDocumentError(f"{name} does not start like a PDF file")
    elif suffix == ".docx":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())  # the central directory only; nothing is inflated
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise UnsupportedDocumentError(f"{name} is not a DOCX file (not a ZIP archive)") from exc
        if "word/document.xml" not in names:
            raise UnsupportedDocumentError(f"{name} is not a DOCX file (no word/document.xml)")
    else:
        from knowledge.loaders.text import decode_bytes

        try:
            decode_bytes(data, name)
        except OnsiteError as exc:
            raise UnsupportedDocumentError(f"{name} is not a text file: {exc.user_message}") from exc


def write_document(folder: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """Write atomically (hidden temporary file, then rename); returns (path, replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = (root / name).resolve()
    if target.parent != root:  # belt and braces: safe_document_name already made it a base name
        raise ValidationError("the file name must not contain a folder")
    replaced = target.exists()
    tmp = root / f".upload-{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, replaced


def list_documents(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in DOCUMENT_SUFFIXES:
            st = p.stat()
            out.append({"name": p.name, "bytes": st.st_size,
                        "modified": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(st.st_mtime))})
    return out


# --- rebuild jobs -------------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    kind: str = "rebuild"
    state: str = "queued"  # queued | running | done | failed
    stage: str = "queued"  # scan | parse | embed | index | publish | done (the builder's stages)
    done: int = 0
    total: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # [{source, reason}]
    version: str | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    sources: list[str] = field(default_factory=list)
    documents: int | None = None
    chunks: int | None = None
    parsed: int | None = None
    reused: int | None = None
    removed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class KnowledgeJobs:
    """Background index rebuilds, one at a time. ``sources()`` gives the folders to index."""

    def __init__(self, settings: Settings, embedder: Any, sources: Callable[[], list[Path]], *, keep: int = 20):
        self.settings = settings
        self.embedder = embedder
        self._sources = sources
        self._keep = keep
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start_rebuild(self) -> dict[str, Any]:
        """Start a rebuild of the index from ``sources()``; returns the new job (state queued)."""
        from knowledge.versions import IndexFolder

        with self._lock:
            active = self._active()
            if active is not None:
                raise IndexBusyError(f"a rebuild is already running (job {active.id}); wait for it to finish")
            with IndexFolder(self.settings.index_dir).build_lock():
                pass  # another process building now → IndexBusyError here, not later in the thread
            job = Job(id="job-" + uuid.uuid4().hex[:12])
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].state in ("queued", "running"):
                    break
                del self._jobs[oldest]
            self._thread = threading.Thread(target=self._run, args=(job,), name=f"onsite-{job.id}", daemon=True)
            self._thread.start()
            return job.to_dict()

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"no knowledge job {job_id} (jobs are kept until the server restarts)")
            return job.to_dict()

    def list(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            return [j.to_dict() for j in reversed(self._jobs.values())]

    def running(self) -> dict[str, Any] | None:
        with self._lock:
            job = self._active()
            return job.to_dict() if job else None

    def wait(self, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """Block until the job has finished (or the timeout); returns its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def _active(self) -> Job | None:
        return next((j for j in self._jobs.values() if j.state in ("queued", "running")), None)

    def _update(self, job: Job, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)

    def _run(self, job: Job) -> None:
        from knowledge.builder import build_index

        self._update(job, state="running", stage="scan", started=time.time())
        try:
            paths = [Path(p) for p in self._sources()]
            self._update(job, sources=[str(p) for p in paths])
            if not paths:
                raise OnsiteError("nothing to index: upload documents first")

            def progress(stage: str, done: int, total: int) -> None:
                self._update(job, stage=stage, done=int(done), total=int(total))

            report = build_index(paths, self.settings, embedder=self.embedder, progress=progress)
        except Exception as exc:  # noqa: BLE001 - a failed build is a failed job, never a dead server
            if isinstance(exc, OnsiteError):
                log.warning("knowledge rebuild %s failed: %s", job.id, exc.user_message)
                message = exc.user_message
            else:
                log.exception("knowledge rebuild %s failed", job.id)
                message = f"unexpected error: {type(exc).__name__}: {exc}"
            self._update(job, state="failed", error=message, finished=time.time())
            return
        failures = [{"source": _shown(s, paths), "reason": r} for s, r in sorted(report.failures.items())]
        self._update(job, state="done", stage="done", version=report.version, failures=failures,
                     documents=report.documents, chunks=report.chunks, parsed=len(report.parsed),
                     reused=report.reused, removed=len(report.removed), done=report.documents,
                     total=report.documents + len(failures), finished=time.time())
        log.info("knowledge rebuild %s published %s (%d documents, %d failed)", job.id, report.version,
                 report.documents, len(failures))


def _shown(source: str, roots: list[Path]) -> str:
    """A failed file as '<folder>/<relative path>' rather than a full server path."""
    path = Path(source)
    for root in roots:
        root = root.resolve()
        if path.is_relative_to(root):
            return f"{root.name}/{path.relative_to(root)}"
    return path.name
