"""Knowledge administration: uploaded documents, background rebuilds, index status and rollback.

The ``KnowledgeAdmin`` service the REST API, the chat page's admin tab and the CLI call. It
returns plain JSON-ready dicts and raises ``knowledge.errors`` (``NotFoundError``,
``DocumentRejectedError`` and its kinds, ``IndexBusyError``, ``NoEarlierVersionError``), which
each face turns into its own message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from knowledge.documents import check_document_bytes, list_documents, safe_document_name, write_document
from knowledge.errors import NotFoundError
from knowledge.index import KnowledgeIndex
from knowledge.provenance import forget, provenance_of, record_added
from knowledge.rebuilds import RebuildJobs
from knowledge.settings import KnowledgeConfig
from knowledge.versions import IndexFolder

log = logging.getLogger(__name__)


class KnowledgeAdmin:
    """Documents and versions of one data home's index. ``max_document_bytes`` is the largest
    upload kept (the ingest limit, or a face's smaller body limit)."""

    def __init__(self, config: KnowledgeConfig, embedder: Any, index: KnowledgeIndex, *,
                 max_document_bytes: int | None = None):
        self.config = config
        self.index = index
        self.folder = IndexFolder(config.index_dir)
        self.documents_dir = config.home / "documents"
        self.max_document_bytes = int(max_document_bytes or config.ingest.max_file_mb * 1024 * 1024)
        self.jobs = RebuildJobs(config, embedder, self.rebuild_sources)
        self._verified_versions: dict[tuple, list[str]] = {}

    # ---- documents ------------------------------------------------------------------------------

    def list_documents(self) -> list[dict[str, Any]]:
        """Uploaded documents with who added each and when."""
        records: dict = {}
        return [{**d, **provenance_of(self.documents_dir / d["name"], records)}
                for d in list_documents(self.documents_dir)]

    def save_document(self, filename: str, data: bytes, added_by: str | None = None) -> dict[str, Any]:
        """Keep an uploaded document for the next rebuild: a type the loaders read, within the
        size limit, under a safe base name (an existing file of that name is replaced).
        ``added_by`` (the uploader's principal id) is recorded with the time."""
        name = safe_document_name(filename, self.config.ingest.ignore)
        check_document_bytes(name, data, self.max_document_bytes)
        _, replaced = write_document(self.documents_dir, name, data)
        prov = record_added(self.documents_dir, name, added_by) if added_by else provenance_of(self.documents_dir / name)
        log.info("document %s saved (%d bytes%s) by %s", name, len(data), ", replaced" if replaced else "",
                 prov["added_by"])
        return {"name": name, "bytes": len(data), "replaced": replaced, **prov}

    def delete_document(self, name: str) -> dict[str, Any]:
        """Remove an uploaded document (it leaves the index at the next rebuild)."""
        if name not in {d["name"] for d in self.list_documents()}:
            raise NotFoundError(f"no uploaded document named {name!r}")
        (self.documents_dir / name).unlink()
        forget(self.documents_dir, name)
        return {"name": name, "deleted": True}

    def rebuild_sources(self) -> list[Path]:
        """What a rebuild indexes: the live version's sources that still exist (the bundled
        samples when the index was built from them) plus the documents folder."""
        current = self.folder.current()
        sources: list[Path] = []
        if current is not None:
            for raw in self.folder.manifest(current).get("sources") or []:
                p = Path(raw)
                if p.exists() and p.resolve() != self.documents_dir.resolve():
                    sources.append(p)
                elif not p.exists():
                    log.warning("index source %s no longer exists; the rebuild leaves it out", p)
        self.documents_dir.mkdir(parents=True, exist_ok=True)
        return [*sources, self.documents_dir]

    # ---- rebuilds -------------------------------------------------------------------------------

    def start_rebuild(self) -> dict[str, Any]:
        return self.jobs.start_rebuild()

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get(job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        return self.jobs.list()

    def running_job(self) -> dict[str, Any] | None:
        """The rebuild running now, if any."""
        return self.jobs.running()

    # ---- versions -------------------------------------------------------------------------------

    def live_version(self) -> str | None:
        return self.folder.current()

    def indexed_files(self) -> set[str]:
        """The source files of the live version's documents (empty before the first build)."""
        if self.folder.current() is None:
            return set()
        return {d.source for d in self.index.version().store.documents()}

    def index_status(self) -> dict[str, Any]:
        """Versions (the live one marked), the live version's documents, chunks, failed files with
        reasons, passages flagged as instructions, and the running rebuild if any."""
        status: dict[str, Any] = {"live": self.folder.current(), "versions": []}
        if status["live"] is not None:
            status = self.index.status()
            add_review(status, self.folder.manifest(status["live"]), self.index.version().store)
        status.pop("home", None)
        status["documents_dir"] = self.list_documents()
        status["rebuild"] = self.running_job()
        return status

    def rollback_index(self) -> dict[str, Any]:
        """Make the newest sound version older than the live one live again."""
        previous = self.folder.current()
        live = self.folder.rollback()
        log.info("index rolled back from %s to %s", previous, live)
        return {"live": live, "previous": previous}

    def verify_live(self) -> tuple[str | None, list[str]]:
        """The live version and its manifest problems (empty when sound). Checksums read every
        file, so the result is kept while the files' sizes and modification times stay the same."""
        name = self.folder.current()
        if name is None:
            return None, ["no index built"]
        try:
            files = sorted(self.folder.manifest(name).get("checksums", {}))
            root = self.folder.versions_dir / name
            key = (name, tuple((f, (root / f).stat().st_mtime_ns, (root / f).stat().st_size) for f in files))
        except (OSError, ValueError):
            return name, self.folder.verify(name)
        if key not in self._verified_versions:
            self._verified_versions.clear()
            self._verified_versions[key] = self.folder.verify(name)
        return name, self._verified_versions[key]


def add_review(status: dict[str, Any], manifest: dict[str, Any], store: Any) -> dict[str, Any]:
    """What an admin reviews in ``index status`` (CLI, API, documents page): passages flagged as
    instructions, statements that contradict the site's safety rules, and who added each document
    and when. ``status`` is ``KnowledgeIndex.status()`` of the live version."""
    status["flagged"] = manifest.get("flagged", [])  # first entries; the count is exact
    status["flagged_count"] = manifest.get("flagged_count", len(status["flagged"]))
    status["conflicts"] = manifest.get("conflicts", [])
    status["conflicts_count"] = manifest.get("conflicts_count", len(status["conflicts"]))
    added = {d.source: d.meta for d in store.documents()}
    for d in status.get("documents") or []:
        meta = added.get(d["source"]) or {}
        d["added_by"], d["added_at"] = meta.get("added_by"), meta.get("added_at")
    return status
