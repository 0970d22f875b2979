"""``SiteProfile``: the whole site validated as one, with look-ups by id, day and night hours in
the site's time zone, and the limits in force for a sensor at a moment."""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import Field, field_validator, model_validator

from tools.site.layout import GROWING_KINDS, Asset, Sensor, Strict, Zone, hhmm
from tools.site.limits import ActiveLimit, LimitRow, LimitSet

_TZ_STEP_MS = 900_000  # UTC offsets are looked up per quarter hour (covers :30/:45 zones)


@lru_cache(maxsize=1 << 17)
def _utc_offset_ms(tz_name: str, quarter: int) -> int:
    """The zone's UTC offset (ms) during one quarter hour since the epoch."""
    at = datetime.fromtimestamp(quarter * _TZ_STEP_MS / 1000, UTC).replace(tzinfo=None)
    return int(ZoneInfo(tz_name).utcoffset(at).total_seconds() * 1000)


class SiteProfile(Strict):
    name: str = Field(min_length=1)
    timezone: str = "UTC"
    day_start: time = time(6, 0)
    day_end: time = time(20, 0)
    latitude: float = Field(31.2, ge=-90, le=90)  # for the simulator's sun
    longitude: float = Field(121.5, ge=-180, le=180)
    zones: list[Zone] = Field(min_length=1)
    assets: list[Asset] = []
    sensors: list[Sensor] = []
    limits: list[LimitRow] = []

    @field_validator("day_start", "day_end", mode="before")
    @classmethod
    def _times(cls, v: object) -> time:
        return hhmm(v)  # type: ignore[arg-type]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "SiteProfile":
        problems: list[str] = []
        seen: dict[str, str] = {}
        for kind, items in (("zone", self.zones), ("asset", self.assets), ("sensor", self.sensors)):
            for item in items:
                if item.id in seen:
                    problems.append(f"duplicate id {item.id!r} ({seen[item.id]} and {kind})")
                seen.setdefault(item.id, kind)
        zones = {z.id: z for z in self.zones}
        assets = {a.id: a for a in self.assets}
        sensors = {s.id: s for s in self.sensors}
        zone_list = ", ".join(zones)
        for a in self.assets:
            if a.zone not in zones:
                problems.append(f"asset {a.id}: unknown zone {a.zone!r} (zones: {zone_list})")
            if (a.running_sensor is None) != (a.running_above is None):
                problems.append(f"asset {a.id}: running_sensor and running_above go together")
            elif a.running_sensor and getattr(sensors.get(a.running_sensor), "asset", None) != a.id:
                problems.append(f"asset {a.id}: running_sensor {a.running_sensor!r} is not a sensor of this asset")
        topics: dict[str, str] = {}
        for s in self.sensors:
            if s.zone not in zones:
                problems.append(f"sensor {s.id}: unknown zone {s.zone!r} (zones: {zone_list})")
            if s.asset is not None:
                if s.asset not in assets:
                    problems.append(f"sensor {s.id}: unknown asset {s.asset!r} (assets: {', '.join(assets) or 'none'})")
                elif assets[s.asset].zone != s.zone:
                    problems.append(f"sensor {s.id}: asset {s.asset} is in zone {assets[s.asset].zone}, not {s.zone}")
            parts = s.mqtt_topic.split("/")
            if len(parts) != 4 or parts[0] != "site" or any(not p or set(p) & set("+#") for p in parts):
                problems.append(f"sensor {s.id}: topic {s.mqtt_topic!r} is not site/<zone>/<device>/<metric>")
            elif parts[1] != s.zone or parts[3] != s.metric:
                problems.append(f"sensor {s.id}: topic {s.mqtt_topic!r} must name its zone {s.zone!r} "
                                f"and metric {s.metric!r}")
            if s.mqtt_topic in topics:
                problems.append(f"sensor {s.id}: topic {s.mqtt_topic!r} already used by {topics[s.mqtt_topic]}")
            topics.setdefault(s.mqtt_topic, s.id)
        periods: dict[tuple, list[str]] = {}
        for row in self.limits:
            if row.asset and row.asset not in assets:
                problems.append(f"limit row for {row.describe()}: unknown asset (assets: {', '.join(assets) or 'none'})")
            if row.sensor and row.sensor not in sensors:
                problems.append(f"limit row for {row.describe()}: unknown sensor")
            elif row.sensor and row.metric and sensors[row.sensor].metric != row.metric:
                problems.append(f"limit row for {row.describe()}: sensor {row.sensor} measures "
                                f"{sensors[row.sensor].metric}")
            seen_periods = periods.setdefault((row.crop, row.stage, row.asset, row.sensor, row.metric), [])
            if row.period in seen_periods or "all" in seen_periods or (row.period == "all" and seen_periods):
                problems.append(f"limit row for {row.describe()}: given twice (periods {', '.join(seen_periods)}"
                                f" and {row.period})")
            seen_periods.append(row.period)
        stages = {(r.crop, r.stage) for r in self.limits if r.crop}
        for z in self.zones:
            if z.kind in GROWING_KINDS:
                if not z.crop or not z.stage:
                    problems.append(f"zone {z.id}: a {z.kind} needs crop and stage")
                elif (z.crop, z.stage) not in stages:
                    known = sorted(s for c, s in stages if c == z.crop)
                    problems.append(f"zone {z.id}: no limits for crop {z.crop!r} stage {z.stage!r}"
                                    f" (stages with limits: {', '.join(known) or 'none'})")
            if (z.day_start is None) != (z.day_end is None):
                problems.append(f"zone {z.id}: day_start and day_end go together")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # -- look-ups ------------------------------------------------------------------------------
    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)

    def asset(self, asset_id: str) -> Asset:
        return next(a for a in self.assets if a.id == asset_id)

    def sensor(self, sensor_id: str) -> Sensor:
        for s in self.sensors:
            if s.id == sensor_id:
                return s
        raise KeyError(f"unknown sensor {sensor_id!r}; known: {', '.join(s.id for s in self.sensors)}")

    def sensors_of(self, target: str) -> list[Sensor]:
        """Sensors of a zone, an asset, or the one sensor with that id."""
        return [s for s in self.sensors if target in (s.zone, s.asset, s.id)]

    def topic_map(self) -> dict[str, Sensor]:
        return {s.mqtt_topic: s for s in self.sensors}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def day_hours(self, zone_id: str) -> tuple[time, time]:
        z = self.zone(zone_id)
        return (z.day_start, z.day_end) if z.day_start is not None else (self.day_start, self.day_end)

    def is_day(self, zone_id: str, at: datetime) -> bool:
        ms = int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)
        return bool(self.day_mask(zone_id, np.array([ms], dtype=np.int64))[0])

    def day_mask(self, zone_id: str, ts_ms: np.ndarray) -> np.ndarray:
        """True where the local time of day (site time zone) falls within the zone's day hours."""
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        if ts_ms.size == 0:
            return np.zeros(0, dtype=bool)
        uniq, inv = np.unique(ts_ms // _TZ_STEP_MS, return_inverse=True)
        offsets = np.array([_utc_offset_ms(self.timezone, int(q)) for q in uniq], dtype=np.int64)
        minute = ((ts_ms + offsets[inv]) // 60_000) % 1440
        start, end = (t.hour * 60 + t.minute for t in self.day_hours(zone_id))
        return (minute >= start) & (minute < end) if start <= end else (minute >= start) | (minute < end)

    def limit_set(self, sensor: Sensor | str) -> LimitSet | None:
        """The limits that judge this sensor: sensor rows, else its asset's, else its zone's crop stage."""
        s = self.sensor(sensor) if isinstance(sensor, str) else sensor
        zone = self.zone(s.zone)
        candidates = [
            ([r for r in self.limits if r.sensor == s.id], f"sensor {s.id}", "trip"),
            ([r for r in self.limits if s.asset and r.asset == s.asset and r.metric == s.metric],
             f"asset {s.asset}", "trip"),
            ([r for r in self.limits if zone.crop and r.crop == zone.crop and r.stage == zone.stage
              and r.metric == s.metric], f"crop {zone.crop} / {zone.stage}", "emergency"),
        ]
        for rows, source, label in candidates:
            if rows:
                by = {r.period: r.as_limit() for r in rows}
                refs = sorted({r.source for r in rows if r.source})
                return LimitSet(by.get("day", by.get("all")), by.get("night", by.get("all")),
                                source + (f" ({'; '.join(refs)})" if refs else ""), label)
        return None

    def limits_for(self, sensor: Sensor | str, at: datetime) -> ActiveLimit | None:
        """The limits in force for a sensor at a moment (day or night by the zone's day hours)."""
        s = self.sensor(sensor) if isinstance(sensor, str) else sensor
        ls = self.limit_set(s)
        if ls is None:
            return None
        day = self.is_day(s.zone, at)
        limit = ls.at(day)
        return None if limit is None else ActiveLimit(limit, "day" if day else "night", ls.source, ls.trip_label)
