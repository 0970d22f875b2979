"""The push outbox in SQLite (WAL): one row per (message key, channel, recipient), sent at least once.

A row is ``pending`` until its channel accepted it (``sent``) or gave up for good (``failed``: a
final error, or ``max_attempts`` transient ones; kept with the error, an admin can requeue it).
The UNIQUE key makes enqueueing idempotent: a source that hands a message over again after a
restart adds nothing. Each source's cursor lives here too and moves in the same transaction as
the rows of the batch it covers, so a kill -9 between the two can neither lose a message (cursor
ahead of rows) nor enqueue one twice (rows without their cursor: the next pass re-reads them and
the UNIQUE key ignores them).

Sending is at least once: ``due`` claims rows (a lease: their next try moves ``lease_ms`` ahead,
so a second dispatcher, e.g. ``onsite watch`` next to ``onsite serve``, does not take them), the
channel sends, then ``mark_*`` records the outcome. A crash between a successful send and its
mark repeats that one send after the lease; the receiver de-duplicates on the delivery id.
Every write is one ``BEGIN IMMEDIATE`` transaction with synchronous=FULL, as in the alert store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from tools.errors import NotFoundError, ToolConflictError, ToolInputError
from tools.push.channel import PushMessage

STATES = ("pending", "sent", "failed")

# Each entry brings a database from user_version i to i + 1; never edit one that has shipped.
MIGRATIONS = (
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
        kind TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL, next_try_ms INTEGER NOT NULL, last_try_ms INTEGER, sent_ms INTEGER,
        last_error TEXT, detail TEXT,
        UNIQUE (key, channel, recipient)
    );
    CREATE INDEX outbox_due ON outbox(state, next_try_ms);
    CREATE INDEX outbox_channel ON outbox(channel, state);
    CREATE TABLE cursors (source TEXT PRIMARY KEY, cursor INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
    """,
)

Target = tuple[str, str]  # (channel name, recipient)


class OutboxRowNotFoundError(NotFoundError):
    """No outbox row with that id."""


class OutboxStateError(ToolConflictError):
    """The change does not fit the row's state (e.g. requeueing a row that was sent)."""


@dataclass
class OutboxRow:
    id: int
    key: str
    channel: str
    recipient: str
    kind: str
    severity: str
    message: PushMessage
    state: str
    attempts: int  # attempts started (a claim counts: a send that crashed the process is one too)
    created_ms: int
    next_try_ms: int
    last_try_ms: int | None
    sent_ms: int | None
    last_error: str | None
    detail: dict[str, Any] | None

    @property
    def delivery_id(self) -> str:
        """Stable across retries and restarts: what a receiver de-duplicates on."""
        return delivery_id(self.message.key, self.channel, self.recipient)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["message"] = self.message.to_dict()
        d["delivery_id"] = self.delivery_id
        return d


def delivery_id(key: str, channel: str, recipient: str) -> str:
    return f"{channel}/{recipient}/{key}"


def now_ms() -> int:
    return int(time.time() * 1000)


class Outbox:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a row the call returned survives power loss too
        self._db.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._lock, _Transaction(self._db):
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise ToolConflictError(f"{self.path} was written by a newer onsite (outbox schema {version})")
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # -- cursors and enqueueing -------------------------------------------------------------------
    def cursor(self, source: str) -> int | None:
        """The source's saved cursor; None before its first batch."""
        with self._lock:
            row = self._db.execute("SELECT cursor FROM cursors WHERE source=?", (source,)).fetchone()
        return None if row is None else row[0]

    def init_cursor(self, source: str, cursor: int) -> int:
        """Save ``cursor`` unless the source has one already; returns the one in force."""
        with self._lock, _Transaction(self._db):
            self._db.execute("INSERT OR IGNORE INTO cursors (source, cursor, updated_ms) VALUES (?,?,?)",
                             (source, int(cursor), now_ms()))
            return self._db.execute("SELECT cursor FROM cursors WHERE source=?", (source,)).fetchone()[0]

    def enqueue(self, message: PushMessage, targets: Iterable[Target]) -> int:
        """Add ``message`` for each (channel, recipient) not yet holding it; returns the rows created."""
        return self.enqueue_batch([(message, list(targets))])

    def enqueue_batch(self, batch: list[tuple[PushMessage, list[Target]]], source: str | None = None,
                      cursor: int | None = None) -> int:
        """Every message of ``batch`` for its targets and, in the same transaction, ``source``'s
        cursor (it only moves forward: a second dispatcher that read the same batch changes nothing)."""
        rows = []
        for message, targets in batch:
            blob = json.dumps(message.to_dict(), ensure_ascii=False, allow_nan=False)
            rows += [(message.key, channel, recipient, message.kind, message.severity, blob, message.created_ms)
                     for channel, recipient in targets]
        if any(not r[0] or len(r[0]) > 300 for r in rows):
            raise ToolInputError("a push message needs a key of at most 300 characters")
        at = now_ms()
        with self._lock, _Transaction(self._db):
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (key, channel, recipient, kind, severity, message, created_ms,"
                " next_try_ms) VALUES (?,?,?,?,?,?,?,?)", [(*r, at) for r in rows])
            created = self._db.total_changes - before
            if source is not None and cursor is not None:
                self._db.execute(
                    "INSERT INTO cursors (source, cursor, updated_ms) VALUES (?,?,?) ON CONFLICT(source) DO UPDATE"
                    " SET cursor=MAX(cursor, excluded.cursor), updated_ms=excluded.updated_ms", (source, cursor, at))
        return created

    # -- sending ---------------------------------------------------------------------------------
    def due(self, now: int | None = None, limit: int = 100, channels: Iterable[str] | None = None,
            lease_ms: int = 60_000) -> list[OutboxRow]:
        """Claim up to ``limit`` pending rows whose time has come (oldest first), for ``channels``
        (None: all): their attempt is counted and their next try moved ``lease_ms`` ahead."""
        now = now_ms() if now is None else int(now)
        where, args = "state='pending' AND next_try_ms <= ?", [now]
        if channels is not None:
            names = list(channels)
            if not names:
                return []
            where += f" AND channel IN ({','.join('?' * len(names))})"
            args += names
        with self._lock, _Transaction(self._db):
            rows = self._db.execute(f"SELECT * FROM outbox WHERE {where} ORDER BY next_try_ms, id LIMIT ?",
                                    (*args, int(limit))).fetchall()
            self._db.executemany("UPDATE outbox SET attempts=attempts+1, last_try_ms=?, next_try_ms=? WHERE id=?",
                                 [(now, now + int(lease_ms), r[0]) for r in rows])
            return [_row(r) for r in self._db.execute(
                f"SELECT * FROM outbox WHERE id IN ({','.join('?' * len(rows))}) ORDER BY next_try_ms, id",
                [r[0] for r in rows])] if rows else []

    def mark_sent(self, row_id: int, detail: dict[str, Any] | None = None, at: int | None = None) -> None:
        self._finish(row_id, "sent", None, detail, at)

    def mark_failed(self, row_id: int, error: str, detail: dict[str, Any] | None = None) -> None:
        self._finish(row_id, "failed", error, detail, None)

    def mark_retry(self, row_id: int, error: str, next_try_ms: int, detail: dict[str, Any] | None = None) -> None:
        """A transient failure: stays pending, tried again at ``next_try_ms``."""
        with self._lock, _Transaction(self._db):
            self._db.execute("UPDATE outbox SET next_try_ms=?, last_error=?, detail=? WHERE id=? AND state='pending'",
                             (int(next_try_ms), error[:500], _blob(detail), row_id))

    def release(self, row_ids: Iterable[int], now: int | None = None) -> None:
        """Give claimed rows back untried (the dispatcher is stopping): due at once, attempt uncounted."""
        now = now_ms() if now is None else int(now)
        with self._lock, _Transaction(self._db):
            self._db.executemany("UPDATE outbox SET next_try_ms=?, attempts=MAX(0, attempts-1) WHERE id=? AND"
                                 " state='pending'", [(now, i) for i in row_ids])

    def _finish(self, row_id: int, state: str, error: str | None, detail: dict | None, at: int | None) -> None:
        with self._lock, _Transaction(self._db):
            self._db.execute(
                "UPDATE outbox SET state=?, sent_ms=?, last_error=COALESCE(?, last_error), detail=? WHERE id=?"
                " AND state='pending'", (state, (now_ms() if at is None else at) if state == "sent" else None,
                                         error and error[:500], _blob(detail), row_id))

    # -- the admin view ----------------------------------------------------------------------------
    def get(self, row_id: int) -> OutboxRow:
        with self._lock:
            row = self._db.execute("SELECT * FROM outbox WHERE id=?", (int(row_id),)).fetchone()
        if row is None:
            raise OutboxRowNotFoundError(f"no push outbox row {row_id}")
        return _row(row)

    def list(self, state: str | None = None, channel: str | None = None, limit: int = 50,
             offset: int = 0) -> dict[str, Any]:
        """Rows newest first: ``{"rows", "total", "next_offset"}``."""
        where, args = [], []
        if state is not None:
            if state not in STATES:
                raise ToolInputError(f"unknown outbox state {state!r} (use {', '.join(STATES)})")
            where.append("state=?")
            args.append(state)
        if channel:
            where.append("channel=?")
            args.append(channel)
        if not 1 <= limit <= 500 or offset < 0:
            raise ToolInputError("limit must be 1 to 500 and offset 0 or more")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM outbox" + clause, args).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM outbox{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                                    (*args, limit, offset)).fetchall()
        return {"rows": [_row(r).to_dict() for r in rows], "total": total,
                "next_offset": offset + limit if offset + limit < total else None}

    def retry_failed(self, row_id: int) -> OutboxRow:
        """Requeue a failed row (an admin fixed the cause): pending again, attempts from zero."""
        with self._lock, _Transaction(self._db):
            row = self._db.execute("SELECT state FROM outbox WHERE id=?", (int(row_id),)).fetchone()
            if row is None:
                raise OutboxRowNotFoundError(f"no push outbox row {row_id}")
            if row[0] != "failed":
                raise OutboxStateError(f"outbox row {row_id} is {row[0]}; only a failed row can be requeued")
            self._db.execute("UPDATE outbox SET state='pending', attempts=0, next_try_ms=? WHERE id=?",
                             (now_ms(), int(row_id)))
        return self.get(row_id)

    def stats(self) -> dict[str, dict[str, int]]:
        """Rows by channel and state, every state present: ``{"webhook:ops": {"pending": 1, ...}}``."""
        with self._lock:
            found = self._db.execute("SELECT channel, state, COUNT(*) FROM outbox GROUP BY channel, state").fetchall()
        out: dict[str, dict[str, int]] = {}
        for channel, state, n in found:
            out.setdefault(channel, dict.fromkeys(STATES, 0))[state] = n
        return out

    def pending_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE state='pending'").fetchone()[0]


def _blob(detail: dict[str, Any] | None) -> str | None:
    if not detail:
        return None
    text = json.dumps(detail, ensure_ascii=False, default=str)
    return text if len(text) <= 4000 else json.dumps({"truncated": text[:3000]}, ensure_ascii=False)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock up front, so a claim is
    atomic across processes too."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _row(r: tuple) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], PushMessage.from_dict(json.loads(r[6])), *r[7:14],
                     json.loads(r[14]) if r[14] else None)
