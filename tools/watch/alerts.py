"""Alerts in SQLite (WAL): one active alert per (target, cause), where target is an asset or zone
id and cause says what is wrong ("sensor_flatline:TT-101", "limit_high:TT-101", "anomaly:P-101").

Life of an alert: ``open`` → ``acknowledged`` (a person has seen it) → ``closed`` (a person has
dealt with it). A new finding for an active key updates that alert (last_seen, count, the latest
explanation) instead of creating a second one; a worse severity escalates it (recorded, back to
``open`` so it is seen again, and reported to the caller so a pusher can page). After a close the
key is quiet for a while: the same finding within the quiet period, at no worse severity, is only
counted on the closed alert, so a flapping signal does not page anyone twice.

Times are integers: ms since the Unix epoch, UTC, as in the sensor store, and the caller may pass
the reading's time (replays and the simulator run faster than the clock). Every state change is
an event with a sequence number: ``changes_since(cursor)`` is what a live stream (SSE) polls.
Each write is one ``BEGIN IMMEDIATE`` transaction with synchronous=FULL, so an alert the call
returned survives a kill -9, and two processes (the server and ``onsite watch``) cannot both open
the same key; a partial unique index makes that a database rule too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.errors import NotFoundError, ToolConflictError, ToolInputError

SEVERITIES = ("info", "warning", "alarm", "critical")  # index = rank; a limit's "trip" maps to critical
STATES = ("open", "acknowledged", "closed")
ACTIVE = ("open", "acknowledged")
Action = Literal["opened", "updated", "escalated", "suppressed"]

# Each entry brings a database from user_version i to i + 1; never edit one that has shipped.
MIGRATIONS = (
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL, cause TEXT NOT NULL, state TEXT NOT NULL, severity TEXT NOT NULL,
        title TEXT NOT NULL, explanation TEXT NOT NULL,
        first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL DEFAULT 1,
        escalations INTEGER NOT NULL DEFAULT 0, suppressed INTEGER NOT NULL DEFAULT 0,
        acked_by TEXT, acked_at INTEGER, closed_by TEXT, closed_at INTEGER, close_note TEXT
    );
    CREATE UNIQUE INDEX alerts_one_active ON alerts(target, cause) WHERE state != 'closed';
    CREATE INDEX alerts_last_seen ON alerts(last_seen);
    CREATE INDEX alerts_key_closed ON alerts(target, cause, closed_at);
    CREATE TABLE alert_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL, ts INTEGER NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT
    );
    CREATE INDEX alert_events_alert ON alert_events(alert_id, seq);
    """,
)


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quiet_s: float = Field(3600.0, ge=0, description="After a close, the same alert does not re-open (or page) for "
                           "this long unless it comes back worse.")
    quiet_by_cause: dict[str, float] = Field(default_factory=dict, description="Quiet period by cause kind (the "
                                             "part before ':', e.g. 'sensor_spike'), overriding quiet_s.")
    max_explanation_bytes: int = Field(16_384, ge=256, le=1_048_576, description="Largest explanation (readings, "
                                       "limit, sources) stored with an alert, as UTF-8 JSON.")


class AlertNotFoundError(NotFoundError):
    """No alert with that id."""


class AlertStateError(ToolConflictError):
    """The change does not fit the alert's state (e.g. acknowledging a closed alert)."""


@dataclass
class Alert:
    id: int
    target: str  # asset or zone id
    cause: str
    state: str
    severity: str  # the worst seen while active
    title: str
    explanation: dict[str, Any]  # readings, limit, source (free JSON)
    first_seen: int
    last_seen: int
    count: int  # findings folded into this alert
    escalations: int
    suppressed: int  # findings within the quiet period after the close
    acked_by: str | None = None
    acked_at: int | None = None
    closed_by: str | None = None
    closed_at: int | None = None
    close_note: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RaiseResult:
    alert: Alert
    action: Action
    previous_severity: str | None = None  # set when escalated

    @property
    def notify(self) -> bool:
        """Whether a pusher should tell people: a new alert or a worse one."""
        return self.action in ("opened", "escalated")


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]
    total: int  # matching the filters, all pages
    next_offset: int | None  # None on the last page

    def to_dict(self) -> dict[str, Any]:
        return {"alerts": [a.to_dict() for a in self.alerts], "total": self.total, "next_offset": self.next_offset}


@dataclass(frozen=True)
class AlertChange:
    seq: int  # the cursor to resume after
    alert_id: int
    ts: int
    actor: str
    action: str  # opened, escalated, acknowledged, closed
    detail: dict[str, Any] | None
    alert: Alert  # the alert as it is now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays (finding details) as plain JSON."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON")


class AlertStore:
    def __init__(self, path: str | Path, settings: AlertSettings | None = None):
        self.path = Path(path)
        self.settings = settings or AlertSettings()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # few writes; a returned alert must survive power loss too
        self._db.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "AlertStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._lock, self._tx():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise ToolConflictError(f"{self.path} was written by a newer onsite (alert schema {version})")
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _tx(self):
        return _Transaction(self._db)

    # -- raising -------------------------------------------------------------------------------
    def raise_alert(self, target: str, cause: str, severity: str, title: str,
                    explanation: dict[str, Any] | None = None, at: int | None = None) -> RaiseResult:
        """Record a finding: opens an alert, updates the active one for (target, cause), escalates
        it when ``severity`` is worse, or only counts it during the quiet period after a close."""
        target, cause, title = (target or "").strip(), (cause or "").strip(), (title or "").strip()
        if not target or len(target) > 64:
            raise ToolInputError("an alert needs a target (an asset or zone id, at most 64 characters)")
        if not cause or len(cause) > 200:
            raise ToolInputError("an alert needs a cause (at most 200 characters)")
        if not title or len(title) > 500:
            raise ToolInputError("an alert needs a title (at most 500 characters)")
        rank = self._rank(severity)
        try:
            blob = json.dumps(explanation or {}, ensure_ascii=False, allow_nan=False, default=_jsonable)
        except (TypeError, ValueError) as e:
            raise ToolInputError(f"the alert's explanation is not plain JSON: {e}") from None
        if len(blob.encode()) > self.settings.max_explanation_bytes:
            raise ToolInputError(f"the alert's explanation is {len(blob.encode())} bytes; at most "
                                 f"{self.settings.max_explanation_bytes} are kept (send fewer readings)")
        at = _now_ms() if at is None else int(at)
        with self._lock, self._tx():
            row = self._db.execute("SELECT id, severity, state, acked_by FROM alerts WHERE target=? AND cause=?"
                                   " AND state != 'closed'", (target, cause)).fetchone()
            if row is not None:
                alert_id, old, state, acked_by = row
                worse = rank > SEVERITIES.index(old)
                self._db.execute(
                    "UPDATE alerts SET last_seen=MAX(last_seen, ?), count=count+1, title=?, explanation=?,"
                    " severity=?, escalations=escalations+?, state=?, acked_by=?, acked_at=CASE WHEN ? THEN NULL"
                    " ELSE acked_at END WHERE id=?",
                    (at, title, blob, severity if worse else old, int(worse), "open" if worse else state,
                     None if worse else acked_by, int(worse), alert_id))
                if worse:
                    self._event(alert_id, at, "watch", "escalated",
                                {"from": old, "to": severity, "was_acknowledged_by": acked_by})
                action: Action = "escalated" if worse else "updated"
                return RaiseResult(self._get(alert_id), action, old if worse else None)
            closed = self._db.execute(
                "SELECT id, severity, closed_at FROM alerts WHERE target=? AND cause=? AND state='closed'"
                " ORDER BY closed_at DESC LIMIT 1", (target, cause)).fetchone()
            if closed and at - closed[2] < self._quiet_ms(cause) and rank <= SEVERITIES.index(closed[1]):
                self._db.execute("UPDATE alerts SET suppressed=suppressed+1 WHERE id=?", (closed[0],))
                return RaiseResult(self._get(closed[0]), "suppressed")
            cur = self._db.execute(
                "INSERT INTO alerts (target, cause, state, severity, title, explanation, first_seen, last_seen)"
                " VALUES (?,?,?,?,?,?,?,?)", (target, cause, "open", severity, title, blob, at, at))
            self._event(cur.lastrowid, at, "watch", "opened", {"severity": severity})
            return RaiseResult(self._get(cur.lastrowid), "opened")

    def _quiet_ms(self, cause: str) -> float:
        return 1000 * self.settings.quiet_by_cause.get(cause.split(":", 1)[0], self.settings.quiet_s)

    # -- people's decisions ---------------------------------------------------------------------
    def acknowledge(self, alert_id: int | str, who: str, at: int | None = None) -> Alert:
        """An operator has seen the alert; it stays active (and updates) until closed."""
        who = self._who(who, "acknowledging")
        with self._lock, self._tx():
            alert = self._get(alert_id)
            if alert.state != "open":
                by = (f" by {alert.acked_by}" if alert.state == "acknowledged" else f" by {alert.closed_by}")
                raise AlertStateError(f"alert {alert.id} is already {alert.state}{by}; only an open alert can be"
                                      " acknowledged")
            at = _now_ms() if at is None else int(at)
            self._db.execute("UPDATE alerts SET state='acknowledged', acked_by=?, acked_at=? WHERE id=?",
                             (who, at, alert.id))
            self._event(alert.id, at, who, "acknowledged", None)
            return self._get(alert.id)

    def close_alert(self, alert_id: int | str, who: str, note: str = "", at: int | None = None) -> Alert:
        """A person has dealt with it (open or acknowledged → closed); the quiet period starts."""
        who = self._who(who, "closing")
        if len(note) > 2000:
            raise ToolInputError("a close note is at most 2000 characters")
        with self._lock, self._tx():
            alert = self._get(alert_id)
            if alert.state == "closed":
                raise AlertStateError(f"alert {alert.id} was already closed by {alert.closed_by}")
            at = _now_ms() if at is None else int(at)
            self._db.execute("UPDATE alerts SET state='closed', closed_by=?, closed_at=?, close_note=? WHERE id=?",
                             (who, at, note.strip(), alert.id))
            self._event(alert.id, at, who, "closed", {"note": note.strip()} if note.strip() else None)
            return self._get(alert.id)

    # -- reading -------------------------------------------------------------------------------
    def get(self, alert_id: int | str) -> Alert:
        """One alert with its history of events."""
        with self._lock:
            alert = self._get(alert_id)
            alert.events = [
                {"seq": s, "ts": ts, "actor": a, "action": act, "detail": json.loads(d) if d else None}
                for s, ts, a, act, d in self._db.execute(
                    "SELECT seq, ts, actor, action, detail FROM alert_events WHERE alert_id=? ORDER BY seq",
                    (alert.id,))]
            return alert

    def list(self, state: str | None = None, severity: str | None = None, min_severity: str | None = None,
             target: str | None = None, since: int | None = None, limit: int = 50, offset: int = 0) -> AlertPage:
        """Alerts newest (last seen) first. ``state`` is one of STATES or "active" (open or
        acknowledged); ``since`` keeps alerts last seen at or after it (ms)."""
        where, args = [], []
        if state is not None:
            if state not in STATES + ("active",):
                raise ToolInputError(f"unknown alert state {state!r} (use {', '.join(STATES)} or active)")
            where.append("state != 'closed'" if state == "active" else "state = ?")
            args += [] if state == "active" else [state]
        if severity is not None:
            self._rank(severity)
            where.append("severity = ?")
            args.append(severity)
        if min_severity is not None:
            where.append(f"severity IN ({','.join('?' * (len(SEVERITIES) - self._rank(min_severity)))})")
            args += SEVERITIES[self._rank(min_severity):]
        if target:
            where.append("target = ?")
            args.append(target)
        if since is not None:
            where.append("last_seen >= ?")
            args.append(int(since))
        if not 1 <= limit <= 500 or offset < 0:
            raise ToolInputError("limit must be 1 to 500 and offset 0 or more")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM alerts" + clause, args).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM alerts{clause} ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?",
                                    args + [limit, offset]).fetchall()
        alerts = [_alert(r) for r in rows]
        return AlertPage(alerts, total, offset + limit if offset + limit < total else None)

    def active_counts(self) -> dict[str, int]:
        """Active alerts by severity (every severity present, for a Prometheus gauge)."""
        with self._lock:
            found = dict(self._db.execute("SELECT severity, COUNT(*) FROM alerts WHERE state != 'closed'"
                                          " GROUP BY severity"))
        return {s: found.get(s, 0) for s in SEVERITIES}

    def changes_since(self, cursor: int = 0, limit: int = 100) -> list[AlertChange]:
        """State changes after ``cursor`` (a previous change's seq; 0 from the start), oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq, alert_id, ts, actor, action, detail FROM alert_events WHERE seq > ?"
                                    " ORDER BY seq LIMIT ?", (int(cursor), max(1, min(limit, 1000)))).fetchall()
            return [AlertChange(s, a, ts, actor, act, json.loads(d) if d else None, self._get(a))
                    for s, a, ts, actor, act, d in rows]

    def cursor(self) -> int:
        """The latest change's seq: a new stream starts here to see only what happens next."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM alert_events").fetchone()[0]

    # -- helpers (callers hold the lock) ---------------------------------------------------------
    def _get(self, alert_id: int | str) -> Alert:
        try:
            key = int(alert_id)
        except (TypeError, ValueError):
            raise AlertNotFoundError(f"no alert {alert_id!r} (alert ids are numbers)") from None
        row = self._db.execute("SELECT * FROM alerts WHERE id=?", (key,)).fetchone()
        if row is None:
            raise AlertNotFoundError(f"no alert {alert_id}")
        return _alert(row)

    def _event(self, alert_id: int, ts: int, actor: str, action: str, detail: dict | None) -> None:
        self._db.execute("INSERT INTO alert_events (alert_id, ts, actor, action, detail) VALUES (?,?,?,?,?)",
                         (alert_id, ts, actor, action, json.dumps(detail, ensure_ascii=False) if detail else None))

    @staticmethod
    def _rank(severity: str) -> int:
        if severity not in SEVERITIES:
            raise ToolInputError(f"unknown severity {severity!r} (use {', '.join(SEVERITIES)})")
        return SEVERITIES.index(severity)

    @staticmethod
    def _who(who: str, doing: str) -> str:
        who = (who or "").strip()
        if not who or len(who) > 100:
            raise ToolInputError(f"{doing} an alert needs the name of the person (at most 100 characters)")
        return who


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is taken up front, so a
    read-then-write (is there an active alert for this key?) is atomic across processes too."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _alert(r: tuple) -> Alert:
    return Alert(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), *r[7:17])
