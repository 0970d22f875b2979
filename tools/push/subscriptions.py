"""Who may receive which WeChat subscribe message: the users' one-time authorisations, their
preferences, and every send, in SQLite (WAL) in the data home.

Each "accept" a user gives in ``wx.requestSubscribeMessage`` lets us send ONE message of that
template; WeChat spends it when the message is delivered. So an authorisation moves through:
``remaining`` (counted per openid and template) → reserved for one message (when the outbox asks
the channel for recipients: the scarce authorisations go to the messages that came first and
matter, and the same message is not promised twice) → spent (WeChat took the message) or given
back (the send failed in a way that did not use it: a bad field, a bad page, a bad template). A
reservation still not sent after ``reservation_ttl_s`` goes back too (the outbox may have given up);
a late send takes one again if any is left. ``refused`` (errcode 43101: the user refused or has
none left in WeChat's books) sets the count to 0 and voids the reservations held for that user and
template. A reservation is per (message key, openid): asking again for the same message (after a
restart) reserves nothing more, and a message already sent is not sent again.

Writes are ``BEGIN IMMEDIATE`` transactions with synchronous=FULL, so the server (reports from the
mini-program) and ``onsite watch`` (sending) can share the file and a count survives a kill -9.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from tools.watch.alerts import SEVERITIES  # index = rank

RESULTS = ("accept", "reject", "ban", "filter")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (openid TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, bad_openid_at INTEGER);
    CREATE TABLE grants (openid TEXT NOT NULL, template_id TEXT NOT NULL,
        remaining INTEGER NOT NULL DEFAULT 0 CHECK (remaining >= 0), accepted INTEGER NOT NULL DEFAULT 0,
        spent INTEGER NOT NULL DEFAULT 0, refused_at INTEGER, updated INTEGER NOT NULL,
        PRIMARY KEY (openid, template_id));
    CREATE TABLE reservations (message_key TEXT NOT NULL, openid TEXT NOT NULL, template_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('reserved', 'spent', 'released', 'voided')), at INTEGER NOT NULL,
        PRIMARY KEY (message_key, openid));
    CREATE INDEX reservations_held ON reservations (state, at);
    CREATE TABLE preferences (openid TEXT NOT NULL, kind TEXT NOT NULL, min_severity TEXT NOT NULL,
        targets TEXT, updated INTEGER NOT NULL, PRIMARY KEY (openid, kind));
    CREATE TABLE reports (openid TEXT NOT NULL, report_id TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (openid, report_id));
    CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, openid TEXT NOT NULL,
        template_id TEXT, action TEXT NOT NULL, detail TEXT);
    CREATE TABLE sends (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, message_key TEXT NOT NULL,
        openid TEXT NOT NULL, template_id TEXT NOT NULL, ok INTEGER NOT NULL, retry INTEGER NOT NULL,
        errcode INTEGER, error TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX sends_key ON sends (message_key, openid)
    """,
]


class SubscriptionStoreError(Exception):
    """The subscription file is from a newer onsite, or a value is out of bounds."""


@dataclass(frozen=True)
class Preference:
    min_severity: str
    targets: tuple[str, ...] | None  # None = every asset and zone

    def passes(self, severity: str, target: str) -> bool:
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1
        return rank >= SEVERITIES.index(self.min_severity) and (self.targets is None or target in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {"min_severity": self.min_severity, "targets": list(self.targets) if self.targets is not None else None}


def _now_ms() -> int:
    return int(time.time() * 1000)


class SubscriptionStore:
    def __init__(self, path: str | Path, *, max_authorisations: int = 50, reservation_ttl_s: float = 86400.0):
        self.path = Path(path)
        self.max_authorisations = int(max_authorisations)
        self.reservation_ttl_ms = int(reservation_ttl_s * 1000)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # private whatever the umask (openids are personal data): the file before SQLite opens it, so
        # its -wal / -shm take the same mode
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an authorisation counted must survive power loss
        self._db.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()
        with self._tx():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise SubscriptionStoreError(f"{self.path} was written by a newer onsite (schema {version})")
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> "_Tx":
        return _Tx(self._db, self._lock)

    def _event(self, at: int, openid: str, template_id: str | None, action: str, **detail: Any) -> None:
        self._db.execute("INSERT INTO events (at, openid, template_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                         (at, openid, template_id, action, json.dumps(detail, ensure_ascii=False) if detail else None))

    def _user(self, openid: str, at: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO users (openid, first_seen) VALUES (?, ?)", (openid, at))

    # --- what the mini-program reports ---------------------------------------------------------

    def record_results(self, openid: str, results: dict[str, str], *, report_id: str | None = None,
                       at: int | None = None) -> bool:
        """The result of one ``wx.requestSubscribeMessage``: each "accept" adds one authorisation for
        (openid, template) up to ``max_authorisations``; the others are recorded. A report sent again
        with the same ``report_id`` counts once. Returns False when it was such a repeat."""
        at = _now_ms() if at is None else int(at)
        if any(r not in RESULTS for r in results.values()):
            raise SubscriptionStoreError(f"a result is one of {', '.join(RESULTS)}")
        with self._tx():
            self._user(openid, at)
            if report_id is not None:
                seen = self._db.execute("INSERT OR IGNORE INTO reports VALUES (?, ?, ?)", (openid, report_id, at))
                if seen.rowcount == 0:
                    return False
            # a user who subscribes is real, whatever WeChat said of an earlier send
            self._db.execute("UPDATE users SET bad_openid_at = NULL WHERE openid = ?", (openid,))
            for template_id, result in results.items():
                if result == "accept":
                    self._db.execute(
                        "INSERT INTO grants (openid, template_id, remaining, accepted, updated) VALUES (?, ?, 1, 1, ?) "
                        "ON CONFLICT (openid, template_id) DO UPDATE SET remaining = MIN(remaining + 1, ?), "
                        "accepted = accepted + 1, refused_at = NULL, updated = excluded.updated",
                        (openid, template_id, at, self.max_authorisations))
                self._event(at, openid, template_id, result)
        return True

    def remaining(self, openid: str) -> dict[str, dict[str, int]]:
        """template id → {"remaining": unreserved authorisations, "pending": set aside for messages}."""
        with self._lock:
            rows = self._db.execute("SELECT template_id, remaining FROM grants WHERE openid = ?", (openid,)).fetchall()
            held = self._db.execute("SELECT template_id, COUNT(*) FROM reservations WHERE openid = ? AND "
                                    "state = 'reserved' GROUP BY template_id", (openid,)).fetchall()
        out = {t: {"remaining": n, "pending": 0} for t, n in rows}
        for t, n in held:
            out.setdefault(t, {"remaining": 0, "pending": 0})["pending"] = n
        return out

    def user_state(self, openid: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT first_seen, bad_openid_at FROM users WHERE openid = ?", (openid,)).fetchone()
        return {"known": row is not None, "first_seen": row[0] if row else None,
                "bad_openid_at": row[1] if row else None}

    def preference(self, openid: str, kind: str, default_min_severity: str) -> Preference:
        with self._lock:
            row = self._db.execute("SELECT min_severity, targets FROM preferences WHERE openid = ? AND kind = ?",
                                   (openid, kind)).fetchone()
        return _preference(row, default_min_severity)

    def set_preference(self, openid: str, kind: str, min_severity: str, targets: Iterable[str] | None,
                       at: int | None = None) -> Preference:
        if min_severity not in SEVERITIES:
            raise SubscriptionStoreError(f"min_severity is one of {', '.join(SEVERITIES)}")
        at = _now_ms() if at is None else int(at)
        kept = None if targets is None else json.dumps(sorted(set(targets)), ensure_ascii=False)
        with self._tx():
            self._user(openid, at)
            self._db.execute("INSERT INTO preferences VALUES (?, ?, ?, ?, ?) ON CONFLICT (openid, kind) DO UPDATE SET "
                             "min_severity = excluded.min_severity, targets = excluded.targets, updated = excluded.updated",
                             (openid, kind, min_severity, kept, at))
            self._event(at, openid, None, "preference", kind=kind, min_severity=min_severity,
                        targets=None if kept is None else json.loads(kept))
        return _preference((min_severity, kept), min_severity)

    # --- what the channel does -----------------------------------------------------------------

    def reserve(self, message_key: str, template_id: str, kind: str, severity: str, target: str,
                default_min_severity: str, at: int | None = None) -> list[str]:
        """Set one authorisation aside for ``message_key`` for every user who has one for
        ``template_id`` and whose preference the message passes; returns their openids (the ones
        already holding one for this message included, without taking a second)."""
        at = _now_ms() if at is None else int(at)
        with self._tx():
            self._release_stale(at)
            held = dict(self._db.execute("SELECT openid, state FROM reservations WHERE message_key = ?",
                                         (message_key,)).fetchall())
            rows = self._db.execute(
                "SELECT g.openid, g.remaining, p.min_severity, p.targets FROM grants g "
                "JOIN users u ON u.openid = g.openid AND u.bad_openid_at IS NULL "
                "LEFT JOIN preferences p ON p.openid = g.openid AND p.kind = ? "
                "WHERE g.template_id = ? ORDER BY g.openid", (kind, template_id)).fetchall()
            chosen = []
            for openid, remaining, min_sev, targets in rows:
                state = held.get(openid)
                if state == "reserved":
                    chosen.append(openid)
                    continue
                if state in ("spent", "voided") or remaining <= 0:
                    continue
                if not _preference((min_sev, targets) if min_sev else None, default_min_severity).passes(severity, target):
                    continue
                self._hold(message_key, openid, template_id, at)
                chosen.append(openid)
        return chosen

    def take(self, message_key: str, openid: str, template_id: str, at: int | None = None) -> str:
        """Before a send: "reserved" (an authorisation is set aside for this message, now or
        before), "spent" (this message was already delivered to this user) or "none" (no
        authorisation left: do not send)."""
        at = _now_ms() if at is None else int(at)
        with self._tx():
            row = self._db.execute("SELECT state FROM reservations WHERE message_key = ? AND openid = ?",
                                   (message_key, openid)).fetchone()
            if row and row[0] in ("reserved", "spent"):
                return row[0]
            remaining = self._db.execute("SELECT remaining FROM grants WHERE openid = ? AND template_id = ?",
                                         (openid, template_id)).fetchone()
            if not remaining or remaining[0] <= 0:
                return "none"
            self._hold(message_key, openid, template_id, at)
            return "reserved"

    def settle(self, message_key: str, openid: str, template_id: str, outcome: str, at: int | None = None,
               **detail: Any) -> None:
        """After a send. ``outcome``: "spent" (delivered: WeChat used the authorisation), "refund" (not
        sent, not used: back to the user), "keep" (will be retried: stays set aside), "refused"
        (43101: the user has none: count 0, every reservation for this template voided),
        "bad_openid" (40003: given back, the user is left out until they subscribe again)."""
        at = _now_ms() if at is None else int(at)
        with self._tx():
            if outcome == "keep":
                return
            if outcome == "spent":
                self._db.execute("UPDATE reservations SET state = 'spent', at = ? WHERE message_key = ? AND openid = ?",
                                 (at, message_key, openid))
                self._db.execute("UPDATE grants SET spent = spent + 1, updated = ? WHERE openid = ? AND template_id = ?",
                                 (at, openid, template_id))
                return
            if outcome in ("refund", "bad_openid"):
                self._give_back(message_key, openid, template_id, at)
                if outcome == "bad_openid":
                    self._user(openid, at)
                    self._db.execute("UPDATE users SET bad_openid_at = ? WHERE openid = ?", (at, openid))
                    self._event(at, openid, template_id, "bad_openid", **detail)
                return
            if outcome == "refused":
                self._db.execute("UPDATE grants SET remaining = 0, refused_at = ?, updated = ? WHERE openid = ? AND "
                                 "template_id = ?", (at, at, openid, template_id))
                self._db.execute("UPDATE reservations SET state = 'voided', at = ? WHERE openid = ? AND "
                                 "template_id = ? AND state = 'reserved'", (at, openid, template_id))
                self._event(at, openid, template_id, "refused", **detail)
                return
            raise SubscriptionStoreError(f"unknown outcome {outcome!r}")

    def record_send(self, message_key: str, openid: str, template_id: str, *, ok: bool, retry: bool,
                    errcode: int | None, error: str, detail: dict[str, Any], at: int | None = None) -> None:
        at = _now_ms() if at is None else int(at)
        with self._tx():
            self._db.execute("INSERT INTO sends (at, message_key, openid, template_id, ok, retry, errcode, error, "
                             "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (at, message_key, openid, template_id, int(ok), int(retry), errcode, error,
                              json.dumps(detail, ensure_ascii=False, default=str)))

    def sends(self, message_key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = "SELECT at, message_key, openid, template_id, ok, retry, errcode, error, detail FROM sends"
        args: tuple = ()
        if message_key is not None:
            query, args = query + " WHERE message_key = ?", (message_key,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [{"at": r[0], "message_key": r[1], "openid": r[2], "template_id": r[3], "ok": bool(r[4]),
                 "retry": bool(r[5]), "errcode": r[6], "error": r[7], "detail": json.loads(r[8])} for r in rows]

    def events(self, openid: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT at, template_id, action, detail FROM events WHERE openid = ? "
                                    "ORDER BY seq DESC LIMIT ?", (openid, int(limit))).fetchall()
        return [{"at": r[0], "template_id": r[1], "action": r[2], "detail": json.loads(r[3]) if r[3] else {}}
                for r in rows]

    # --- inside a transaction ------------------------------------------------------------------

    def _hold(self, message_key: str, openid: str, template_id: str, at: int) -> None:
        self._db.execute("UPDATE grants SET remaining = remaining - 1, updated = ? WHERE openid = ? AND "
                         "template_id = ?", (at, openid, template_id))
        self._db.execute("INSERT INTO reservations VALUES (?, ?, ?, 'reserved', ?) ON CONFLICT (message_key, openid) "
                         "DO UPDATE SET state = 'reserved', template_id = excluded.template_id, at = excluded.at",
                         (message_key, openid, template_id, at))

    def _give_back(self, message_key: str, openid: str, template_id: str, at: int) -> None:
        done = self._db.execute("UPDATE reservations SET state = 'released', at = ? WHERE message_key = ? AND "
                                "openid = ? AND state = 'reserved'", (at, message_key, openid))
        if done.rowcount:
            self._db.execute("UPDATE grants SET remaining = remaining + 1, updated = ? WHERE openid = ? AND "
                             "template_id = ?", (at, openid, template_id))

    def _release_stale(self, at: int) -> None:
        stale = self._db.execute("SELECT message_key, openid, template_id FROM reservations WHERE state = 'reserved' "
                                 "AND at < ?", (at - self.reservation_ttl_ms,)).fetchall()
        for key, openid, template_id in stale:
            self._give_back(key, openid, template_id, at)


def _preference(row: tuple | None, default_min_severity: str) -> Preference:
    if row is None or row[0] is None:
        return Preference(default_min_severity, None)
    targets = json.loads(row[1]) if row[1] is not None else None
    return Preference(row[0], tuple(targets) if targets is not None else None)


class _Tx:
    """The store's lock, then BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): a read-then-write (how
    many are left?) is atomic across threads and processes."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self._db, self._lock = db, lock

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type, *rest: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
