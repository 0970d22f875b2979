"""The daily advice in SQLite (WAL, synchronous=FULL): one row per (zone, date), never replaced.

``save`` is idempotent: a second advice for the same (zone, date) — a restart, a second process,
an on-demand request racing the scheduler — returns the row already there and writes nothing, so
nothing is made or pushed twice. The row id grows with every new advice: it is the push source's
cursor. A row is committed with synchronous=FULL before ``save`` returns, so it survives a kill -9.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS advice (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    zone       TEXT    NOT NULL,
    date       TEXT    NOT NULL,            -- the advice's local date (YYYY-MM-DD); it reads the day before
    created_ms INTEGER NOT NULL,
    lang       TEXT    NOT NULL,
    severity   TEXT    NOT NULL,            -- info (all in range, or no data) | warning (something was off)
    headline   TEXT    NOT NULL,
    body       TEXT    NOT NULL,            -- the advice text with its numbered sources
    data       TEXT    NOT NULL,            -- JSON: summary, findings, recommendations, citations
    UNIQUE (zone, date)
);
"""


@dataclass(frozen=True)
class StoredAdvice:
    id: int
    zone: str
    date: str
    created_ms: int
    lang: str
    severity: str
    headline: str
    body: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "zone": self.zone, "date": self.date, "created_ms": self.created_ms,
                "lang": self.lang, "severity": self.severity, "headline": self.headline, "body": self.body,
                **self.data}


class AdviceStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # an advice the call returned survives a power cut
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns = []
        self._local = threading.local()

    def save(self, zone: str, date: str, lang: str, severity: str, headline: str, body: str,
             data: dict[str, Any], created_ms: int | None = None) -> tuple[StoredAdvice, bool]:
        """(the stored advice, whether this call stored it). An existing (zone, date) wins."""
        conn = self._conn()
        cur = conn.execute(
            "INSERT OR IGNORE INTO advice (zone, date, created_ms, lang, severity, headline, body, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (zone, date, created_ms if created_ms is not None else int(time.time() * 1000), lang, severity,
             headline, body, json.dumps(data, ensure_ascii=False)))
        stored = self.get(zone, date)
        assert stored is not None
        return stored, cur.rowcount == 1

    def get(self, zone: str, date: str) -> StoredAdvice | None:
        row = self._conn().execute("SELECT * FROM advice WHERE zone = ? AND date = ?", (zone, date)).fetchone()
        return _row(row) if row else None

    def delete(self, zone: str, date: str) -> bool:
        """Forget one advice (an admin's regenerate). Its next version gets a new id, but the push key
        (advice:{zone}:{date}) is the same: the outbox does not page anyone about it twice."""
        return self._conn().execute("DELETE FROM advice WHERE zone = ? AND date = ?", (zone, date)).rowcount == 1

    def last_id(self) -> int:
        """The newest row's id (0 when empty): where a push source starts on its first run."""
        return self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM advice").fetchone()[0]

    def since(self, cursor: int, limit: int = 100) -> list[StoredAdvice]:
        rows = self._conn().execute("SELECT * FROM advice WHERE id > ? ORDER BY id LIMIT ?", (cursor, limit))
        return [_row(r) for r in rows]

    def latest(self, zone: str | None = None, limit: int = 30) -> list[StoredAdvice]:
        q, args = "SELECT * FROM advice", ()
        if zone is not None:
            q, args = q + " WHERE zone = ?", (zone,)
        return [_row(r) for r in self._conn().execute(q + " ORDER BY date DESC, zone LIMIT ?", (*args, limit))]

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM advice").fetchone()[0]


def _row(r: tuple) -> StoredAdvice:
    return StoredAdvice(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
