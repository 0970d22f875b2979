"""The chunk and document store of one index version: a SQLite file, no pickle.

Row number ``row`` of a chunk is its position in the FAISS and BM25 indexes of the same
version, so the three always agree.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from knowledge.types import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT, title TEXT,
    lang TEXT, pages INT, chunks INT, meta TEXT, warnings TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL, ordinal INT, text TEXT,
    title_path TEXT, page INT, source TEXT, lang TEXT, metadata TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS failures (source TEXT PRIMARY KEY, sha256 TEXT, reason TEXT);
"""


@dataclass
class DocumentRecord:
    doc_id: str
    source: str
    sha256: str
    kind: str
    title: str
    lang: str
    pages: int | None
    chunks: int
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class ChunkStore:
    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        if not readonly:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- writing (builder only) ---

    def add_document(self, rec: DocumentRecord, chunks: list[Chunk], first_row: int) -> int:
        """Insert a document and its chunks at rows first_row...; returns the next free row."""
        self._db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
            (rec.doc_id, rec.source, rec.sha256, rec.kind, rec.title, rec.lang, rec.pages, len(chunks),
             json.dumps(rec.meta, ensure_ascii=False), json.dumps(rec.warnings, ensure_ascii=False)),
        )
        self._db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (first_row + i, c.id, c.doc_id, c.ordinal, c.text, json.dumps(c.title_path, ensure_ascii=False),
                 c.page, c.source, c.lang, json.dumps(c.metadata, ensure_ascii=False))
                for i, c in enumerate(chunks)
            ],
        )
        return first_row + len(chunks)

    def add_failure(self, source: str, sha256: str, reason: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO failures VALUES (?,?,?)", (source, sha256, reason))

    def commit(self) -> None:
        self._db.commit()

    # --- reading ---

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunks(self, rows: Iterable[int] | None = None) -> list[Chunk]:
        if rows is None:
            cur = self._db.execute("SELECT * FROM chunks ORDER BY row")
            return [_chunk(r) for r in cur]
        rows = list(rows)
        found: dict[int, Chunk] = {}
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            for r in self._db.execute(f"SELECT * FROM chunks WHERE row IN ({','.join('?' * len(part))})", part):
                found[r[0]] = _chunk(r)
        return [found[r] for r in rows if r in found]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [_chunk(r) for r in self._db.execute("SELECT * FROM chunks WHERE doc_id=? ORDER BY row", (doc_id,))]

    def chunk_by_id(self, chunk_id: str) -> Chunk | None:
        r = self._db.execute("SELECT * FROM chunks WHERE id=?", (chunk_id,)).fetchone()
        return _chunk(r) if r else None

    def columns(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(doc_id, lang, source, metadata) per row, in row order: what filters need in memory."""
        return [
            (d, lang, s, json.loads(m))
            for d, lang, s, m in self._db.execute("SELECT doc_id, lang, source, metadata FROM chunks ORDER BY row")
        ]

    def documents(self) -> list[DocumentRecord]:
        out = []
        for r in self._db.execute("SELECT * FROM documents ORDER BY source"):
            out.append(DocumentRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), json.loads(r[9])))
        return out

    def failures(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT source, sha256, reason FROM failures ORDER BY source"))


def _chunk(r: tuple) -> Chunk:
    return Chunk(
        id=r[1], doc_id=r[2], ordinal=r[3], text=r[4], title_path=json.loads(r[5]), page=r[6],
        source=r[7], lang=r[8], metadata=json.loads(r[9]),
    )
