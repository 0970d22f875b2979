"""The audit log: one row per turn (and per approval) in SQLite — who asked what, in which
scope, which tools ran with which arguments, which evidence was shown, what was answered, which
checks passed, the status and the timings. Append-only; nothing here is ever updated."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from assistant.private import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    thread_id TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,            -- ask | resume
    question TEXT NOT NULL,
    scope TEXT NOT NULL,           -- JSON
    tools TEXT NOT NULL,           -- JSON: [{"tool", "args", "ok", "summary", "approval"?}]
    evidence_ids TEXT NOT NULL,    -- JSON: chunk ids shown to the model
    answer TEXT NOT NULL,
    checks TEXT NOT NULL,          -- JSON
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    timings TEXT NOT NULL          -- JSON, seconds per stage
);
CREATE INDEX IF NOT EXISTS turns_thread ON turns(thread_id, id);
"""


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class AuditLog:
    def __init__(self, path: Path):
        private_file(path)  # 0600 before SQLite opens it; the -wal / -shm files take its mode
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def record(self, *, thread_id: str, user: str, kind: str, question: str, scope: dict, tool_results: list[dict],
               evidence_ids: list[str], answer: str, checks: list[dict], status: str, mode: str,
               timings: dict) -> int:
        tools = [{k: r.get(k) for k in ("tool", "args", "ok", "summary", "error", "approval") if k in r}
                 for r in tool_results]
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO turns (ts, thread_id, user, kind, question, scope, tools, evidence_ids, answer, checks,"
                " status, mode, timings) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (time.time(), thread_id, user, kind, question, _j(scope), _j(tools), _j(evidence_ids), answer,
                 _j(checks), status, mode, _j(timings)))
            return int(cur.lastrowid)

    def record_cancelled(self, *, thread_id: str, user: str, kind: str, question: str, scope: dict,
                         cancelled_at: float, seen_s: float, release_s: float, timings: dict) -> int:
        """A turn whose caller went away: status ``cancelled``; ``timings`` gains ``cancelled_at``
        (epoch seconds the cancel was set), ``cancel_seen_s`` (until the turn noticed) and
        ``release_s`` (until its admission slot was free again)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cancelled_at)) + f".{int(cancelled_at % 1 * 1000):03d}Z"
        detail = f"the caller went away at {when}; the turn's slot was free {release_s:.3f} s later"
        return self.record(thread_id=thread_id, user=user, kind=kind, question=question, scope=scope, tool_results=[],
                           evidence_ids=[], answer="", checks=[{"name": "cancelled", "ok": False, "detail": detail}],
                           status="cancelled", mode="", timings={**timings, "cancelled_at": round(cancelled_at, 3),
                                                                "cancel_seen_s": round(seen_s, 4),
                                                                "release_s": round(release_s, 4)})

    def turns(self, thread_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT * FROM turns" + (" WHERE thread_id = ?" if thread_id else "") + " ORDER BY id DESC LIMIT ?"
        params: tuple = (thread_id, limit) if thread_id else (limit,)
        with self._lock:
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            d = dict(zip(names, row))
            for key in ("scope", "tools", "evidence_ids", "checks", "timings"):
                d[key] = json.loads(d[key])
            out.append(d)
        return out

    def close(self) -> None:
        self._db.close()
