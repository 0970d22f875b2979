"""The sessions behind our signed tokens: which are alive, and who ended the others, when and why.

Every token we issue names a session (``sid``). This store — SQLite in WAL mode at
``<home>/sessions.sqlite``, created 0600 like the signing key — keeps one row per session: who,
created, last renewed, its absolute end, and once ended ``revoked_at``, ``reason`` and who ended it
(sign-out, an admin). An admin may also revoke a principal: every session of it that began before
that moment ends. That second table is checked against a session's creation time, so a revocation
written by another process (``onsite auth revoke``) holds even before its session rows are read.

Reads are cached in memory; this process's own writes update the cache at once, and writes of
other processes are seen through ``PRAGMA data_version`` (it changes only when another connection
committed), which clears the cache. Rows are kept ``KEEP_S`` after they end, for the audit trail.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

KEEP_S = 30 * 24 * 3600  # ended sessions and principal revocations stay this long, then are pruned
_CACHE_MAX = 10_000  # cached sessions; the cache is simply cleared beyond it
_PRUNE_EVERY_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    via TEXT NOT NULL,
    key_fp TEXT,                 -- keyed fingerprint of the API key it came from (never the key)
    created REAL NOT NULL,
    renewed REAL NOT NULL,
    expires REAL NOT NULL,       -- the absolute end: no renewal goes past it
    revoked_at REAL,
    reason TEXT,
    revoked_by TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_principal ON sessions(principal, created);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE TABLE IF NOT EXISTS principal_revocations (
    principal TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL,
    reason TEXT NOT NULL,
    revoked_by TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class SessionRecord:
    id: str
    principal: str
    role: str
    name: str
    via: str
    key_fp: str | None
    created: float
    renewed: float
    expires: float
    revoked_at: float | None = None
    reason: str | None = None
    revoked_by: str | None = None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires

    def to_dict(self, now: float) -> dict[str, Any]:
        """For admins: everything but the key fingerprint (whether it came from a key is enough)."""
        d = asdict(self)
        d["from_key"] = d.pop("key_fp") is not None
        d["active"] = self.active(now)
        return d


_COLUMNS = "id, principal, role, name, via, key_fp, created, renewed, expires, revoked_at, reason, revoked_by"


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (its -wal and -shm files copy the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)


class SessionStore:
    """``path`` None keeps the sessions in memory (one process, gone at exit)."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time):
        self.path, self.clock = path, clock
        if path is not None:
            _create_private(Path(path))
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False,
                                   isolation_level=None, timeout=30)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionRecord | None] = {}
        self._principals: dict[str, float | None] = {}
        self._version = self._data_version()
        self._pruned = 0.0

    # --- reads (cached) -----------------------------------------------------------------------------

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _sync(self) -> None:
        """Under the lock: forget the cache when another connection has written since."""
        version = self._data_version()
        if version != self._version or len(self._sessions) > _CACHE_MAX:
            self._sessions.clear()
            self._principals.clear()
            self._version = version

    def get(self, sid: str) -> SessionRecord | None:
        with self._lock:
            self._sync()
            if sid not in self._sessions:
                row = self._db.execute(f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (sid,)).fetchone()
                self._sessions[sid] = SessionRecord(*row) if row else None
            return self._sessions[sid]

    def principal_revoked_at(self, principal: str) -> float | None:
        """When an admin last revoked ``principal`` (sessions created before then are ended), or None."""
        with self._lock:
            self._sync()
            if principal not in self._principals:
                row = self._db.execute("SELECT revoked_at FROM principal_revocations WHERE principal = ?",
                                       (principal,)).fetchone()
                self._principals[principal] = float(row[0]) if row else None
            return self._principals[principal]

    def list(self, *, principal: str | None = None, include_ended: bool = False,
             limit: int = 500) -> list[SessionRecord]:
        now = self.clock()
        where, params = [], []
        if principal is not None:
            where.append("principal = ?")
            params.append(principal)
        if not include_ended:
            where.append("revoked_at IS NULL AND expires > ?")
            params.append(now)
        sql = (f"SELECT {_COLUMNS} FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY created DESC LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, (*params, int(limit))).fetchall()
        return [SessionRecord(*r) for r in rows]

    def revocations(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT principal, revoked_at, reason, revoked_by FROM principal_revocations "
                                    "ORDER BY revoked_at DESC").fetchall()
        return [dict(zip(("principal", "revoked_at", "reason", "revoked_by"), r)) for r in rows]

    # --- writes -------------------------------------------------------------------------------------

    def create(self, *, principal: str, role: str, name: str, via: str, key_fp: str | None,
               max_age_s: float) -> SessionRecord:
        now = self.clock()
        record = SessionRecord(secrets.token_urlsafe(16), principal, role, name, via, key_fp, now, now, now + max_age_s)
        with self._lock:
            self._db.execute(f"INSERT INTO sessions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             tuple(asdict(record).values()))
            self._sessions[record.id] = record
        self._maybe_prune(now)
        return record

    def renew(self, sid: str) -> None:
        now = self.clock()
        with self._lock:
            self._db.execute("UPDATE sessions SET renewed = ? WHERE id = ?", (now, sid))
            self._sessions.pop(sid, None)

    def revoke(self, sid: str, *, reason: str, by: str) -> bool:
        """End one session; False when there is no such live session."""
        with self._lock:
            cur = self._db.execute("UPDATE sessions SET revoked_at = ?, reason = ?, revoked_by = ? "
                                   "WHERE id = ? AND revoked_at IS NULL", (self.clock(), reason[:300], by, sid))
            self._sessions.pop(sid, None)
            return cur.rowcount > 0

    def revoke_principal(self, principal: str, *, reason: str, by: str) -> int:
        """End every session of ``principal`` begun until now; the number of live ones ended."""
        now = self.clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO principal_revocations (principal, revoked_at, reason, revoked_by) "
                                 "VALUES (?,?,?,?) ON CONFLICT(principal) DO UPDATE SET "
                                 "revoked_at = excluded.revoked_at, reason = excluded.reason, "
                                 "revoked_by = excluded.revoked_by",
                                 (principal, now, reason[:300], by))
                cur = self._db.execute("UPDATE sessions SET revoked_at = ?, reason = ?, revoked_by = ? "
                                       "WHERE principal = ? AND revoked_at IS NULL AND expires > ?",
                                       (now, reason[:300], by, principal, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._sessions.clear()
            self._principals[principal] = now
            return cur.rowcount

    def _maybe_prune(self, now: float) -> None:
        """Drop sessions ended more than ``KEEP_S`` ago (and old principal revocations: a revocation
        older than that predates every session still in the table)."""
        if now - self._pruned < _PRUNE_EVERY_S:
            return
        self._pruned = now
        cutoff = now - KEEP_S
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires < ? OR revoked_at < ?", (cutoff, cutoff))
            self._db.execute("DELETE FROM principal_revocations WHERE revoked_at < ?", (cutoff - KEEP_S,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
