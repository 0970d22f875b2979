"""Incremental index builds.

Only new or changed files are parsed; their chunks' vectors come from the embedding cache
when the same text was embedded before; unchanged files are copied from the live version.
A build writes a complete new version in staging and publishes it atomically, under the
builder lock. Readers keep using the live version the whole time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import numpy as np

from knowledge.errors import IngestError, NothingToIndexError
from knowledge.settings import KnowledgeConfig
from knowledge.chunking import chunk_document, embedding_text, index_text
from knowledge.embedding import Embedder, EmbeddingCache, embedded_by_other, make_embedder
from knowledge.injection import FLAGGED_LIST_CAP, detector_version, flag_chunks, flagged_entry, is_flagged
from knowledge.lexical import LexicalIndex
from knowledge.provenance import provenance_of
from knowledge.safety import CONFLICTS_LIST_CAP, SAFETY_VERSION, mark_conflicts
from knowledge.store import ChunkStore, DocumentRecord
from knowledge.types import Chunk
from knowledge.vectors import build_vector_index, save_vector_index
from knowledge.versions import MANIFEST, IndexFolder, checksum_tree, file_sha256

log = logging.getLogger(__name__)

# Bump when chunking or loading changes output: every file is then re-parsed once.
PIPELINE_VERSION = "1"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class BuildReport:
    version: str
    documents: int
    chunks: int
    parsed: list[str] = field(default_factory=list)  # files parsed this build (new or changed)
    reused: int = 0  # files copied unchanged from the previous version
    removed: list[str] = field(default_factory=list)  # files that left the index
    failures: dict[str, str] = field(default_factory=dict)  # source -> reason
    embedded: int = 0  # texts actually sent to the embedder (the rest came from the cache)
    seconds: float = 0.0
    pages: int = 0
    # Chunks that read like instructions to the assistant (kept, flagged as data; first entries only).
    flagged: list[dict] = field(default_factory=list)
    flagged_count: int = 0
    # Statements that relax a safety rule of the regulations (first entries only; see knowledge/safety.py).
    conflicts: list[dict] = field(default_factory=list)
    conflicts_count: int = 0
    # "old → new" when the previous version was embedded by another model: every chunk re-embedded.
    embedder_changed: str | None = None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def discover(paths: list[Path], ignore: list[str]) -> list[Path]:
    """Supported documents under the given files/folders, sorted, without sidecars or ignored names."""
    from knowledge.loaders import SUPPORTED_SUFFIXES
    from knowledge.loaders.metadata import is_sidecar

    found: set[Path] = set()
    for root in paths:
        root = root.resolve()
        if root.is_file():
            found.add(root)
            continue
        if not root.is_dir():
            raise IngestError(str(root), "no such file or folder")
        for p in root.rglob("*"):
            rel = p.relative_to(root)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not is_sidecar(p) \
                    and not any(fnmatch(p.name, pat) for pat in ignore):
                found.add(p)
    return sorted(found)


def source_hash(path: Path) -> str:
    """The file's bytes plus its sidecar's: a metadata edit re-indexes the document."""
    h = hashlib.sha256(file_sha256(path).encode())
    for suffix in (".meta.yaml", ".meta.yml", ".meta.json"):
        side = path.with_name(path.name + suffix)
        if side.is_file():
            h.update(file_sha256(side).encode())
    h.update(PIPELINE_VERSION.encode())
    return h.hexdigest()


def doc_id_for(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()[:12]


def build_index(
    paths: list[Path] | None,
    settings: KnowledgeConfig,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Build a new index version from ``paths`` (None: the sources of the live version)."""
    started = time.monotonic()
    folder = IndexFolder(settings.index_dir)
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    notify = progress or (lambda stage, done, total: None)
    with folder.build_lock():
        previous = _previous(folder)
        if paths is None:
            if previous is None:
                raise NothingToIndexError("no sources given and no previous build to take them from")
            paths = [Path(p) for p in previous[0]["sources"]]
        roots = [p.resolve() for p in paths]
        notify("scan", 0, 0)
        files = discover(roots, settings.ingest.ignore)
        name, staging = folder.new_staging()
        store = ChunkStore(staging / "store.sqlite")
        report = BuildReport(version=name, documents=0, chunks=0)
        prev_docs = {d.source: d for d in previous[1].documents()} if previous else {}
        prev_failures = {s: (h, r) for s, h, r in previous[1].failures()} if previous else {}
        chunker_sig = json.dumps(settings.chunking.model_dump(), sort_keys=True) + embedder.name
        old_embedder = embedded_by_other(previous[0], embedder) if previous else None
        if old_embedder:
            report.embedder_changed = f"{old_embedder} → {embedder.name}"
            log.warning("the embedder changed (%s): every document is re-chunked and re-embedded",
                        report.embedder_changed)
        same_chunker = previous is not None and previous[0].get("chunker") == chunker_sig
        # Copied chunks keep their stored flags unless the detector changed since that version.
        same_detector = previous is not None and previous[0].get("injection_detector") == detector_version(embedder)

        hashes = {str(p): source_hash(p) for p in files}
        to_parse = []
        for path in files:
            src = str(path)
            old = prev_docs.get(src)
            if same_chunker and old is not None and old.sha256 == hashes[src]:
                continue
            if src in prev_failures and prev_failures[src][0] == hashes[src]:
                continue
            to_parse.append(path)
        loaded = _load_all(to_parse, roots, settings, notify)

        all_chunks: list[Chunk] = []
        kept: list[tuple[DocumentRecord, list[Chunk]]] = []  # stored once conflicts are known
        added: dict = {}  # each folder's provenance records, read once
        for i, path in enumerate(files):
            src = str(path)
            h = hashes[src]
            if path in loaded:
                result = loaded[path]
                if isinstance(result, str):
                    store.add_failure(src, h, result)
                    report.failures[src] = result
                    continue
                doc = result
                doc.source = src  # identity is the absolute path, whatever the loader reported
                doc_id = doc_id_for(src)
                try:
                    chunks = chunk_document(doc, doc_id, embedder.count_tokens, settings.chunking)
                except Exception as exc:  # noqa: BLE001 - one document never ends the batch
                    log.exception("chunking failed for %s", src)
                    reason = f"chunking failed: {type(exc).__name__}: {exc}"
                    store.add_failure(src, h, reason)
                    report.failures[src] = reason
                    continue
                flag_chunks(chunks, embedder)
                rec = DocumentRecord(doc_id, src, h, doc.meta.kind, doc.meta.title, doc.meta.lang or "",
                                     doc.pages, len(chunks), doc.meta.to_dict(), doc.warnings)
                report.parsed.append(src)
                report.pages += doc.pages or 0
            elif src in prev_docs and same_chunker and prev_docs[src].sha256 == h:
                rec = prev_docs[src]
                chunks = previous[1].chunks_of(rec.doc_id)
                if not same_detector:
                    flag_chunks(chunks, embedder)
                report.reused += 1
            else:  # unchanged failure
                store.add_failure(src, h, prev_failures[src][1])
                report.failures[src] = prev_failures[src][1]
                continue
            # Who added the file and when: recomputed each build (a re-upload changes it).
            prov = provenance_of(path, added)
            rec.meta = {**rec.meta, **prov}
            for c in chunks:
                c.metadata.update(prov)
            kept.append((rec, chunks))
            all_chunks.extend(chunks)
            report.documents += 1
        # Relaxing statements are checked against the regulations of this whole build: a new
        # regulation can put an unchanged manual in conflict, so copied chunks are checked too.
        conflicts = mark_conflicts(all_chunks, embedder)
        report.conflicts_count = len(conflicts)
        report.conflicts = conflicts[:CONFLICTS_LIST_CAP]
        if conflicts:
            log.warning("%d statement(s) relax a safety rule of the regulations: %s", len(conflicts),
                        "; ".join(f"{c['source']} vs {c['rule_source']}" for c in conflicts[:3]))
        row = 0
        for rec, chunks in kept:
            row = store.add_document(rec, chunks, row)
        report.removed = sorted(set(prev_docs) - set(hashes))
        report.chunks = len(all_chunks)
        flagged = [c for c in all_chunks if is_flagged(c)]
        report.flagged_count = len(flagged)
        report.flagged = [flagged_entry(c) for c in flagged[:FLAGGED_LIST_CAP]]
        if flagged:
            log.warning("%d chunk(s) read like instructions to the assistant; flagged as data", len(flagged))
        store.commit()

        notify("embed", 0, len(all_chunks))
        cache = EmbeddingCache(folder.cache_path)
        try:
            vectors, report.embedded = cache.embed_cached(embedder, [embedding_text(c) for c in all_chunks])
        finally:
            cache.close()
        notify("index", 0, len(all_chunks))
        vectors = vectors if len(all_chunks) else np.zeros((0, embedder.dim), dtype=np.float32)
        save_vector_index(build_vector_index(vectors, settings.index), staging / "vectors.faiss")
        LexicalIndex.build([index_text(c) for c in all_chunks]).save(staging / "lexical")
        store.close()

        manifest = {
            "version": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "parent": previous[0]["version"] if previous else None,
            "sources": [str(p) for p in roots],
            "embedder": {"name": embedder.name, "dim": embedder.dim, "languages": sorted(embedder.languages)},
            "chunker": chunker_sig,
            "pipeline": PIPELINE_VERSION,
            "documents": report.documents,
            "chunks": report.chunks,
            "failures": report.failures,
            "injection_detector": detector_version(embedder),
            "flagged": report.flagged,
            "flagged_count": report.flagged_count,
            "safety_checker": SAFETY_VERSION,
            "conflicts": report.conflicts,
            "conflicts_count": report.conflicts_count,
            "checksums": checksum_tree(staging),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        notify("publish", 0, 0)
        folder.publish(name, staging)
        if previous:
            previous[1].close()
        folder.prune(settings.index.keep_versions)
    report.seconds = round(time.monotonic() - started, 3)
    notify("done", report.documents, report.documents)
    return report


def _previous(folder: IndexFolder) -> tuple[dict, ChunkStore] | None:
    name = folder.current()
    if name is None or folder.verify(name):
        return None  # nothing sound to reuse: full build
    return folder.manifest(name), ChunkStore(folder.versions_dir / name / "store.sqlite", readonly=True)


def _load_all(to_parse: list[Path], roots: list[Path], settings: KnowledgeConfig, notify: Progress) -> dict:
    """Parse files in parallel (PDFs run in their own child processes); failures become reasons."""
    from knowledge.loaders import load_document

    def root_of(path: Path) -> Path | None:
        return next((r for r in roots if r.is_dir() and path.is_relative_to(r)), None)

    def one(path: Path):
        try:
            return load_document(path, root_of(path), settings.ingest)
        except IngestError as exc:
            log.warning("skipped %s: %s", path, exc.reason)
            return exc.reason
        except Exception as exc:  # noqa: BLE001 - a bad file never ends the batch
            log.exception("unexpected failure loading %s", path)
            return f"unexpected error: {type(exc).__name__}: {exc}"

    results: dict[Path, object] = {}
    notify("parse", 0, len(to_parse))
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for i, (path, result) in enumerate(zip(to_parse, pool.map(one, to_parse)), 1):
            results[path] = result
            notify("parse", i, len(to_parse))
    return results
