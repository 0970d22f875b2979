"""Work-order store (SQLite, WAL): pending → open or rejected by a named person, then closed.
Every change is an event in the audit trail; nothing is ever deleted."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import ToolConflictError, ToolInputError

PRIORITIES = ("low", "medium", "high", "urgent")
STATUSES = ("pending", "open", "rejected", "closed")
# Allowed transitions: what a person may decide from each status.
_NEXT = {"pending": {"open", "rejected"}, "open": {"closed"}, "rejected": set(), "closed": set()}

SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    id TEXT PRIMARY KEY, asset TEXT NOT NULL, problem TEXT NOT NULL, priority TEXT NOT NULL,
    evidence TEXT NOT NULL, status TEXT NOT NULL, requested_by TEXT NOT NULL, created_at REAL NOT NULL,
    decided_by TEXT, decided_at REAL, decision_reason TEXT
);
CREATE INDEX IF NOT EXISTS work_orders_status ON work_orders(status, created_at);
CREATE TABLE IF NOT EXISTS work_order_events (
    order_id TEXT NOT NULL, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT
);
"""


class WorkOrderError(ToolConflictError):
    """The order does not exist, or the decision does not fit its status."""


@dataclass
class WorkOrder:
    id: str
    asset: str
    problem: str
    priority: str
    evidence: list[str]
    status: str
    requested_by: str
    created_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    decision_reason: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorkOrderStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def propose(self, asset: str, problem: str, priority: str, evidence: list[str], requested_by: str) -> WorkOrder:
        if priority not in PRIORITIES:
            raise ToolInputError(f"priority must be one of {', '.join(PRIORITIES)}")
        order_id = "WO-" + uuid.uuid4().hex[:10].upper()
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO work_orders VALUES (?,?,?,?,?,?,?,?,NULL,NULL,NULL)",
                (order_id, asset, problem, priority, json.dumps(evidence, ensure_ascii=False), "pending", requested_by, now),
            )
            self._event(order_id, now, requested_by, "proposed", problem)
        return self.get(order_id)

    def decide(self, order_id: str, status: str, actor: str, reason: str) -> WorkOrder:
        """Move an order to ``status`` (open / rejected / closed) on a person's decision."""
        if not actor.strip():
            raise ToolInputError("a decision needs the name of the person who takes it")
        if not reason.strip():
            raise ToolInputError("a decision needs a reason")
        with self._lock, self._db:
            row = self._db.execute("SELECT status FROM work_orders WHERE id=?", (order_id,)).fetchone()
            if row is None:
                raise WorkOrderError(f"no work order {order_id}")
            if status not in _NEXT[row[0]]:
                raise WorkOrderError(f"work order {order_id} is {row[0]}; it cannot become {status}")
            now = time.time()
            self._db.execute(
                "UPDATE work_orders SET status=?, decided_by=?, decided_at=?, decision_reason=? WHERE id=?",
                (status, actor, now, reason, order_id),
            )
            self._event(order_id, now, actor, status, reason)
        return self.get(order_id)

    def get(self, order_id: str) -> WorkOrder:
        row = self._db.execute("SELECT * FROM work_orders WHERE id=?", (order_id,)).fetchone()
        if row is None:
            raise WorkOrderError(f"no work order {order_id}")
        order = _order(row)
        order.events = [
            {"ts": ts, "actor": actor, "action": action, "detail": detail}
            for ts, actor, action, detail in self._db.execute(
                "SELECT ts, actor, action, detail FROM work_order_events WHERE order_id=? ORDER BY ts, rowid", (order_id,)
            )
        ]
        return order

    def list(self, status: str | None = None, asset: str | None = None, limit: int = 50) -> list[WorkOrder]:
        query, params = "SELECT * FROM work_orders WHERE 1=1", []
        if status:
            query += " AND status=?"
            params.append(status)
        if asset:
            query += " AND asset=?"
            params.append(asset)
        query += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        return [_order(r) for r in self._db.execute(query, params)]

    def _event(self, order_id: str, ts: float, actor: str, action: str, detail: str | None) -> None:
        self._db.execute("INSERT INTO work_order_events VALUES (?,?,?,?,?)", (order_id, ts, actor, action, detail))


def _order(r: tuple) -> WorkOrder:
    return WorkOrder(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8], r[9], r[10])
