"""Reading the published index: the live version loaded in memory, swapped for a newer one
when CURRENT changes (a finished build or a rollback), without interrupting readers.

A reader holds a reference to one ``IndexVersion`` for the whole of a query, so a publish
in the middle of it cannot mix two versions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import IndexUnavailableError
from knowledge.settings import KnowledgeConfig
from knowledge.lexical import LexicalIndex
from knowledge.store import ChunkStore
from knowledge.vectors import load_vector_index
from knowledge.versions import IndexFolder


@dataclass
class IndexVersion:
    name: str
    path: Path
    manifest: dict[str, Any]
    store: ChunkStore
    vectors: Any  # faiss index
    lexical: LexicalIndex
    doc_ids: np.ndarray  # per row: document index into ``doc_keys``
    doc_keys: list[str]
    langs: np.ndarray
    meta: list[dict[str, Any]] = field(default_factory=list)  # per row: kind, asset, crop, ...
    sources: list[str] = field(default_factory=list)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def column(self, key: str) -> np.ndarray:
        """One metadata field for every row as strings, built once per version (filters are on
        the query path; a Python pass over 100k rows per query would dominate it)."""
        if key not in self._columns:
            if key == "lang":
                self._columns[key] = self.langs.astype(str)
            elif key == "source":
                self._columns[key] = np.array(self.sources, dtype=str)
            elif key == "doc_id":
                self._columns[key] = np.array(self.doc_keys, dtype=str)[self.doc_ids]
            else:
                self._columns[key] = np.array([str(m.get(key)) for m in self.meta], dtype=str)
        return self._columns[key]

    @property
    def size(self) -> int:
        return len(self.doc_ids)

    def mask(self, filters: dict[str, Any] | None) -> np.ndarray | None:
        """Rows whose metadata match every filter (value or list of values); None = all rows.

        A key starting with "!" excludes the rows that the same key without it would keep
        (``{"!source": ["a.md"]}``: everything but a.md) — e.g. to ask a question with its own
        answer documents held out, as the abstention evaluation does."""
        if not filters:
            return None
        keep = np.ones(self.size, dtype=bool)
        for key, wanted in filters.items():
            if wanted is None:
                continue
            exclude = key.startswith("!")
            key = key[1:] if exclude else key
            allowed = [str(w) for w in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])]
            if not allowed:  # an empty list keeps nothing, an empty exclusion drops nothing
                keep &= exclude
                continue
            values = self.column(key)
            if key == "source":  # a file name or any trailing part of the path
                hit = np.logical_or.reduce([np.char.endswith(values, a) for a in allowed])
            else:
                hit = np.isin(values, allowed)
            keep &= ~hit if exclude else hit
        return keep


def load_version(folder: IndexFolder, name: str, settings: KnowledgeConfig) -> IndexVersion:
    path = folder.versions_dir / name
    problems = folder.verify(name)
    if problems:
        raise IndexUnavailableError(f"index version {name} is damaged: {'; '.join(problems)}")
    store = ChunkStore(path / "store.sqlite", readonly=True)
    columns = store.columns()
    keys: dict[str, int] = {}
    doc_idx = np.array([keys.setdefault(d, len(keys)) for d, _, _, _ in columns], dtype=np.int64)
    return IndexVersion(
        name=name,
        path=path,
        manifest=folder.manifest(name),
        store=store,
        vectors=load_vector_index(path / "vectors.faiss", settings.index.hnsw_ef_search),
        lexical=LexicalIndex.load(path / "lexical"),
        doc_ids=doc_idx,
        doc_keys=list(keys),
        langs=np.array([lang for _, lang, _, _ in columns], dtype=object),
        meta=[m for _, _, _, m in columns],
        sources=[s for _, _, s, _ in columns],
    )


class KnowledgeIndex:
    """The live index of a data home. ``version()`` is cheap: a stat-free read of CURRENT."""

    def __init__(self, settings: KnowledgeConfig):
        self.settings = settings
        self.folder = IndexFolder(settings.index_dir)
        self._lock = threading.Lock()
        self._live: IndexVersion | None = None

    def version(self) -> IndexVersion:
        name = self.folder.current()
        live = self._live
        if live is not None and live.name == name:
            return live
        with self._lock:
            if self._live is None or self._live.name != name:
                if name is None:
                    self.folder.current_path()  # raises IndexMissingError with the how-to
                self._live = load_version(self.folder, name, self.settings)
            return self._live

    def status(self) -> dict[str, Any]:
        """Versions, the live one's documents, chunk count and failed files with reasons."""
        current = self.folder.current()
        versions = []
        for name in self.folder.versions():
            m = self.folder.manifest(name)
            versions.append({"version": name, "created": m.get("created"), "documents": m.get("documents"),
                             "chunks": m.get("chunks"), "live": name == current})
        out: dict[str, Any] = {"home": str(self.settings.home), "live": current, "versions": versions}
        if current is not None:
            v = self.version()
            out["embedder"] = v.manifest.get("embedder")
            out["sources"] = v.manifest.get("sources")
            out["documents"] = [
                {"source": d.source, "title": d.title, "kind": d.kind, "lang": d.lang, "pages": d.pages,
                 "chunks": d.chunks, "warnings": d.warnings}
                for d in v.store.documents()
            ]
            out["chunks"] = v.size
            out["failures"] = [{"source": s, "reason": r} for s, _, r in v.store.failures()]
        return out
