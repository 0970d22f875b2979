"""``SensorService``: the site's sensors and their readings, for the faces (REST API, chat page, CLI).

Results are plain JSON-ready dicts. Times in results are ISO 8601 in the site's time zone; naive
datetimes given to these methods are read as site-local time, as the sensor tools do. Errors are
``tools.errors``: an unknown sensor is ``NotFoundError``, a bad window ``ToolInputError``, a
failed read ``ToolError``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.base import call
from tools.errors import NotFoundError, ToolError, ToolInputError
from tools.sensors.store import SensorStore
from tools.sensors.timestamps import from_ms, to_ms
from tools.sensors.tools import SensorLatest
from tools.site import Sensor, SiteProfile

MAX_SERIES_DAYS = 31
MAX_SERIES_POINTS = 2000
AUTO_BUCKETS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class SensorService:
    """Latest readings and bucketed series of one site's sensors, from one store."""

    def __init__(self, site: SiteProfile, store: SensorStore, clock: Callable[[], datetime] | None = None):
        self.site, self.store = site, store
        self.clock = clock or (lambda: datetime.now(UTC))
        self._latest = SensorLatest(site, store, clock=self.clock)

    def now(self) -> datetime:
        """The sensors' clock (a simulated one in tests), so windows line up with the data."""
        return self.clock()

    def _iso(self, ms: int) -> str:
        return from_ms(ms, self.site.tz).isoformat(timespec="seconds")

    def _sensor(self, sensor_id: str) -> Sensor:
        try:
            return self.site.sensor(sensor_id)
        except KeyError:
            raise NotFoundError(f"no sensor {sensor_id!r} in the site profile") from None

    def list_sensors(self) -> list[dict[str, Any]]:
        """Every sensor of the site profile with its latest reading and status (normal, warning,
        alarm, trip, stale data, no_data ...), zone by zone."""
        readings: dict[str, dict] = {}
        for zone in self.site.zones:
            result = call(self._latest, {"target": zone.id})
            for row in result.data.get("readings", []) if result.ok else []:
                readings[row["sensor_id"]] = row
        out = []
        for s in self.site.sensors:
            row = readings.get(s.id, {"status": "no_data"})
            out.append({"id": s.id, "name": s.name, "zone": s.zone, "asset": s.asset, "metric": s.metric,
                        "unit": s.unit, "status": row.get("status"), "value": row.get("value"),
                        "ts": row.get("ts"), "stale": row.get("stale")})
        return out

    def sensor_latest(self, sensor_id: str) -> dict[str, Any]:
        """The newest reading of one sensor, judged against the limits in force now."""
        s = self._sensor(sensor_id)
        result = call(self._latest, {"target": s.id})
        if not result.ok:
            raise ToolError(result.error or "the sensor could not be read")
        row = next((r for r in result.data["readings"] if r["sensor_id"] == s.id), {"status": "no_data"})
        return {"id": s.id, "name": s.name, "zone": s.zone, "asset": s.asset, "metric": s.metric, "unit": s.unit,
                "as_of": result.data.get("as_of"), "summary": result.summary,
                **{k: v for k, v in row.items() if k not in ("sensor_id", "name", "metric", "unit")}}

    def sensor_series(self, sensor_id: str, start: datetime | None = None, end: datetime | None = None,
                      bucket_s: int | None = None) -> dict[str, Any]:
        """min / mean / max / last per time bucket over ``start``..``end`` (default: the last
        24 h; at most 31 days and 2000 buckets; ``bucket_s`` chosen for ≤ 500 buckets if omitted)."""
        s = self._sensor(sensor_id)
        tz = self.site.tz
        end = self.now() if end is None else (end if end.tzinfo else end.replace(tzinfo=tz))
        start = end - timedelta(hours=24) if start is None else (start if start.tzinfo else start.replace(tzinfo=tz))
        span = (end - start).total_seconds()
        if span <= 0:
            raise ToolInputError("'from' must be before 'to'")
        if span > MAX_SERIES_DAYS * 86400:
            raise ToolInputError(f"a series covers at most {MAX_SERIES_DAYS} days")
        if bucket_s is None:
            bucket_s = next((b for b in AUTO_BUCKETS_S if span / b <= 500), AUTO_BUCKETS_S[-1])
        if bucket_s < 1:
            raise ToolInputError("the bucket must be at least 1 second")
        if span / bucket_s > MAX_SERIES_POINTS:
            raise ToolInputError(f"{span / bucket_s:.0f} buckets asked; at most {MAX_SERIES_POINTS} — "
                                 "choose a wider bucket or a shorter window")
        buckets = self.store.buckets(s.id, start, end, int(bucket_s))
        active = self.site.limits_for(s, end)
        return {"id": s.id, "name": s.name, "unit": s.unit, "metric": s.metric,
                "from": self._iso(to_ms(start)), "to": self._iso(to_ms(end)), "bucket_s": int(bucket_s),
                "points": [{"ts": self._iso(b.start), "count": b.count, "min": b.min, "mean": round(b.mean, 4),
                            "max": b.max, "last": b.last} for b in buckets],
                "limits_now": None if active is None else {"period": active.period, **active.limit.thresholds()}}
