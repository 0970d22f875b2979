"""Sensor history in SQLite (WAL): one row per reading, keyed by (sensor_id, ts).

``ts`` is an integer: milliseconds since the Unix epoch, UTC. Integers sort and bucket cheaply,
and the primary key (sensor_id, ts) in a WITHOUT ROWID table makes "one sensor over a window"
a single range scan of the clustered B-tree. A second reading for the same sensor and
millisecond replaces the first (a broker re-delivering a retained value is harmless).
``quality``: 0 good, 1 uncertain, 2 bad; bad readings are kept but left out of statistics,
trends and excursions.

Each thread gets its own connection (SQLite connections are not shared across threads); WAL
lets the MQTT writer insert while tools read.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tools.sensors.excursions import find_excursions
from tools.sensors.timestamps import from_ms, parse_ts, to_ms  # noqa: F401 - re-exported: callers import them from here

QUALITY = {"good": 0, "uncertain": 1, "bad": 2}
QUALITY_NAMES = {v: k for k, v in QUALITY.items()}
BAD = QUALITY["bad"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT    NOT NULL,
    ts        INTEGER NOT NULL,            -- ms since the Unix epoch, UTC
    value     REAL    NOT NULL,
    quality   INTEGER NOT NULL DEFAULT 0,  -- 0 good, 1 uncertain, 2 bad
    PRIMARY KEY (sensor_id, ts)
) WITHOUT ROWID;
"""


def parse_quality(raw: object) -> int:
    """'good' / 'uncertain' / 'bad' (any case) or 0 / 1 / 2; missing means good."""
    if raw is None:
        return 0
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in QUALITY:
            return QUALITY[text]
        raw = int(text) if text.isdigit() else raw
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in QUALITY_NAMES:
        return raw
    raise ValueError(f"bad quality {raw!r} (use good, uncertain or bad)")


@dataclass(frozen=True)
class Reading:
    sensor_id: str
    ts: int  # epoch ms, UTC
    value: float
    quality: int = 0


@dataclass(frozen=True)
class Bucket:
    start: int  # epoch ms of the bucket's start
    count: int
    min: float
    mean: float
    max: float
    last: float
    last_ts: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Trend:
    slope_per_hour: float | None  # least squares; None with fewer than 2 readings or no time spread
    r2: float | None
    count: int


class _Held:
    """One thread's connection; closed when the thread's locals are dropped (the thread ended)."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: sqlite3.Connection):
        self.conn: sqlite3.Connection | None = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def __del__(self) -> None:
        self.close()


class SensorStore:
    """Readings of all sensors of a site in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()
        with self._conn() as c:
            c.executescript(_SCHEMA)

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection. It is closed when the thread ends: the agent runs tools on
        short-lived pool threads, and a connection kept per dead thread (with its page cache) was
        the server's memory growing by a few hundred KB per question."""
        held = getattr(self._local, "held", None)
        if held is None or held.conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast commits
            conn.execute("PRAGMA busy_timeout=30000")
            held = self._local.held = _Held(conn)
            with self._lock:
                self._all.add(held)
        return held.conn

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for h in self._all if h.conn is not None)

    def close(self) -> None:
        """Close every connection this store opened (call when no thread uses it any more)."""
        with self._lock:
            for held in list(self._all):
                held.close()
            self._all = weakref.WeakSet()
        self._local = threading.local()

    def __enter__(self) -> "SensorStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def insert(self, readings: Iterable[Reading | tuple[str, int, float, int]]) -> int:
        """Insert a batch in one transaction; returns the number of rows written."""
        rows = [(r.sensor_id, r.ts, r.value, r.quality) if isinstance(r, Reading) else tuple(r) for r in readings]
        if not rows:
            return 0
        conn = self._conn()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO readings (sensor_id, ts, value, quality) VALUES (?, ?, ?, ?)",
                             rows)
        return len(rows)

    def sensor_ids(self) -> list[str]:
        """Distinct sensors with data, by seeking the primary key (no full scan)."""
        conn, out, last = self._conn(), [], ""
        while True:
            row = conn.execute("SELECT sensor_id FROM readings WHERE sensor_id > ? ORDER BY sensor_id LIMIT 1",
                               (last,)).fetchone()
            if row is None:
                return out
            last = row[0]
            out.append(last)

    def delete_older_than(self, days: float, now: datetime | int | None = None) -> int:
        """Retention: delete readings older than ``days``; returns the number deleted."""
        cutoff = to_ms(now if now is not None else datetime.now(UTC)) - int(days * 86_400_000)
        conn, deleted = self._conn(), 0
        with conn:
            for sid in self.sensor_ids():  # per sensor, so each delete is a key-range delete
                deleted += conn.execute("DELETE FROM readings WHERE sensor_id = ? AND ts < ?", (sid, cutoff)).rowcount
        return deleted

    # -- reading -------------------------------------------------------------------------------
    def count(self, sensor_id: str | None = None) -> int:
        if sensor_id is None:
            return self._conn().execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM readings WHERE sensor_id = ?", (sensor_id,)).fetchone()[0]

    def latest(self, sensor_ids: Sequence[str], before: datetime | int | None = None) -> dict[str, Reading]:
        """The newest reading of each sensor (at or before ``before``); sensors without data are absent."""
        limit = to_ms(before) if before is not None else 2**62
        conn, out = self._conn(), {}
        for sid in sensor_ids:
            row = conn.execute("SELECT ts, value, quality FROM readings WHERE sensor_id = ? AND ts <= ?"
                               " ORDER BY ts DESC LIMIT 1", (sid, limit)).fetchone()
            if row:
                out[sid] = Reading(sid, row[0], row[1], row[2])
        return out

    def series(self, sensor_id: str, start: datetime | int, end: datetime | int,
               include_bad: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(ts int64 ms, value float64) arrays for start <= ts < end, oldest first."""
        q = "SELECT ts, value FROM readings WHERE sensor_id = ? AND ts >= ? AND ts < ?"
        if not include_bad:
            q += f" AND quality < {BAD}"
        cur = self._conn().execute(q + " ORDER BY ts", (sensor_id, to_ms(start), to_ms(end)))
        # ms timestamps (< 2**53) are exact in float64; fromiter skips building a list of tuples
        arr = np.fromiter(itertools.chain.from_iterable(cur), dtype=np.float64).reshape(-1, 2)
        return arr[:, 0].astype(np.int64), arr[:, 1].copy()

    def buckets(self, sensor_id: str, start: datetime | int, end: datetime | int, bucket_s: int) -> list[Bucket]:
        """min / mean / max / last / count per time bucket (buckets aligned to ``start``; empty ones left out)."""
        if bucket_s <= 0:
            raise ValueError("bucket_s must be positive")
        s, e, width = to_ms(start), to_ms(end), int(bucket_s * 1000)
        conn = self._conn()
        args = (s, width, sensor_id, s, e, BAD)
        stats = conn.execute(
            "SELECT (ts - ?) / ? AS b, COUNT(*), MIN(value), AVG(value), MAX(value) FROM readings"
            " WHERE sensor_id = ? AND ts >= ? AND ts < ? AND quality < ? GROUP BY b ORDER BY b", args).fetchall()
        # SQLite documents that with a single MAX() the bare columns come from the row holding the max.
        last = {b: (ts, v) for b, ts, v in conn.execute(
            "SELECT (ts - ?) / ? AS b, MAX(ts), value FROM readings"
            " WHERE sensor_id = ? AND ts >= ? AND ts < ? AND quality < ? GROUP BY b", args)}
        return [Bucket(s + b * width, n, lo, mean, hi, last[b][1], last[b][0]) for b, n, lo, mean, hi in stats]

    def trend(self, sensor_id: str, start: datetime | int, end: datetime | int) -> Trend:
        """Least-squares slope (units per hour) over the window, computed in SQL from sums."""
        s, e = to_ms(start), to_ms(end)
        n, sx, sy, sxx, sxy, syy = self._conn().execute(
            "SELECT COUNT(*), SUM(x), SUM(value), SUM(x * x), SUM(x * value), SUM(value * value) FROM"
            " (SELECT (ts - ?) / 3600000.0 AS x, value FROM readings"
            "  WHERE sensor_id = ? AND ts >= ? AND ts < ? AND quality < ?)", (s, sensor_id, s, e, BAD)).fetchone()
        if n < 2:
            return Trend(None, None, n)
        vx, vy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
        if vx <= 1e-12:
            return Trend(None, None, n)
        slope = cxy / vx
        r2 = (cxy * cxy / (vx * vy)) if vy > 1e-12 else 1.0
        return Trend(slope, min(1.0, max(0.0, r2)), n)

    def excursions(self, site, sensor_ids: Sequence[str] | None, start: datetime | int, end: datetime | int,
                   min_severity: str = "alarm", max_gap_s: float = 1800, merge_s: float = 900) -> list:
        """Excursions beyond the site profile's limits, most severe first; see ``tools.sensors.excursions``."""
        return find_excursions(self, site, sensor_ids, start, end, min_severity, max_gap_s, merge_s)

    def wait_for(self, sensor_id: str, count: int, timeout: float = 10.0) -> bool:
        """Test and tooling helper: poll until ``sensor_id`` has at least ``count`` readings."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(sensor_id) >= count:
                return True
            time.sleep(0.05)
        return self.count(sensor_id) >= count
