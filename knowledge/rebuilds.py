"""Background index rebuilds, one at a time.

``RebuildJobs`` runs a rebuild in a background thread (``knowledge.builder`` stages a complete
new version and publishes it atomically, so answers keep coming from the live version during a
rebuild, and a failed or killed rebuild leaves it intact). A second rebuild while one runs —
here or in another process, e.g. ``onsite index build`` — is refused with ``IndexBusyError``.
Jobs are kept in memory (the last ``keep``), which is enough to follow progress: the published
versions themselves are on disk.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from knowledge.errors import IndexBusyError, KnowledgeError, NotFoundError, NothingToIndexError
from knowledge.settings import KnowledgeConfig

log = logging.getLogger(__name__)


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
    embedder_changed: str | None = None  # "old → new": every chunk was re-embedded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RebuildJobs:
    """Background index rebuilds, one at a time. ``sources()`` gives the folders to index."""

    def __init__(self, settings: KnowledgeConfig, embedder: Any, sources: Callable[[], list[Path]], *, keep: int = 20):
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
                raise NothingToIndexError("nothing to index: upload documents first")

            def progress(stage: str, done: int, total: int) -> None:
                self._update(job, stage=stage, done=int(done), total=int(total))

            report = build_index(paths, self.settings, embedder=self.embedder, progress=progress)
        except Exception as exc:  # noqa: BLE001 - a failed build is a failed job, never a dead server
            if isinstance(exc, KnowledgeError):
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
                     embedder_changed=report.embedder_changed,
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
