"""The site profile: zones, assets, sensors and the limits they are judged against.

Loaded from TOML or YAML and validated as a whole, so that a typo (a sensor in an unknown zone,
a duplicate id, ``low`` above ``high``) is reported with every other problem in one clear error.

Limits have three levels, the same ladder the site documents use:
``low``/``high`` is the normal (target) range, ``alarm_low``/``alarm_high`` the alarm and
``trip_low``/``trip_high`` the trip (equipment) or emergency (greenhouse) level; the TOML may
spell the last as ``emergency_low``/``emergency_high``. Comparisons are strict: "alarm above 32"
means a value > 32. A limit row applies to one crop + growth stage (for the greenhouse zones
growing it), one asset, or one sensor (the most specific wins), for one metric, in the ``day``,
the ``night`` or ``all`` periods. Day and night follow the site's (or the zone's) day hours in
the site's time zone. Naive datetimes are taken as UTC everywhere in onsite's sensor code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant.errors import ConfigError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"  # no '/', '+', '#': ids appear in MQTT topics
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
GROWING_KINDS = ("greenhouse", "propagation")
ZoneKind = Literal["greenhouse", "propagation", "pump_station", "boiler_house", "tank_farm", "packhouse", "other"]
Period = Literal["day", "night", "all"]
LEVELS = ("normal", "warning", "alarm", "trip")  # index = severity rank
_TZ_STEP_MS = 900_000  # UTC offsets are looked up per quarter hour (covers :30/:45 zones)


class SiteProfileError(ConfigError):
    """The site profile file is missing, unreadable or inconsistent."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"site profile {source}: " + ("; ".join(problems) if len(problems) < 2
                                                      else "\n  - " + "\n  - ".join(problems)))


def _hhmm(value: str | int | time) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return time(value // 60, value % 60)  # YAML 1.1 reads an unquoted 06:00 as 360 (base 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}")
    return time(int(m[1]), int(m[2]))


@lru_cache(maxsize=1 << 17)
def _utc_offset_ms(tz_name: str, quarter: int) -> int:
    """The zone's UTC offset (ms) during one quarter hour since the epoch."""
    at = datetime.fromtimestamp(quarter * _TZ_STEP_MS / 1000, UTC).replace(tzinfo=None)
    return int(ZoneInfo(tz_name).utcoffset(at).total_seconds() * 1000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    kind: ZoneKind
    crop: str | None = None
    stage: str | None = None
    aliases: list[str] = Field(default_factory=list)  # what people call it: "温室2号", "glasshouse 2"
    day_start: time | None = None  # overrides the site's day hours (e.g. a lit propagation room)
    day_end: time | None = None

    @field_validator("day_start", "day_end", mode="before")
    @classmethod
    def _times(cls, v: object) -> time | None:
        return None if v is None else _hhmm(v)  # type: ignore[arg-type]


class Asset(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    zone: str
    kind: str = Field("equipment", pattern=METRIC_PATTERN)
    aliases: list[str] = Field(default_factory=list)
    # Equipment such as a pump stops and starts: while the running sensor reads at or below
    # ``running_above`` the asset is stopped and its readings are not judged (no flow is not an alarm).
    running_sensor: str | None = None
    running_above: float | None = None


class Sensor(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    zone: str
    asset: str | None = None
    metric: str = Field(pattern=METRIC_PATTERN)
    unit: str = ""
    topic: str | None = None  # site/<zone>/<device>/<metric>; derived when omitted
    report_every_s: float | None = Field(None, gt=0)  # expected reporting period, if slower than usual (stale checks)

    @property
    def mqtt_topic(self) -> str:
        return self.topic or f"site/{self.zone}/{self.asset or self.id}/{self.metric}"


class Limit(_Strict):
    low: float | None = None
    high: float | None = None
    alarm_low: float | None = None
    alarm_high: float | None = None
    trip_low: float | None = Field(None, validation_alias=AliasChoices("trip_low", "emergency_low"))
    trip_high: float | None = Field(None, validation_alias=AliasChoices("trip_high", "emergency_high"))
    # a level counts only once the value has stayed beyond it this long ("above 90 % for more than 1 h")
    alarm_delay_s: float = Field(0.0, ge=0, le=86_400)
    trip_delay_s: float = Field(0.0, ge=0, le=86_400)

    def bounds(self, level: str) -> tuple[float | None, float | None]:
        if level == "warning":
            return self.low, self.high
        return getattr(self, f"{level}_low"), getattr(self, f"{level}_high")

    def delay_s(self, level: str) -> float:
        return {"warning": 0.0, "alarm": self.alarm_delay_s, "trip": self.trip_delay_s}[level]

    def order_problems(self) -> list[str]:
        """Lows must not exceed highs, and the ladder must widen outwards."""
        names = ["trip_low", "alarm_low", "low", "high", "alarm_high", "trip_high"]
        present = [(n, getattr(self, n)) for n in names if getattr(self, n) is not None]
        if not present:
            return ["no limit values given"]
        return [f"{a} ({va:g}) > {b} ({vb:g})" for i, (a, va) in enumerate(present)
                for b, vb in present[i + 1:] if va > vb]

    def classify(self, value: float) -> tuple[int, str | None]:
        """(level rank 0..3, 'low' / 'high' / None) for one value."""
        for rank in (3, 2, 1):
            lo, hi = self.bounds(LEVELS[rank])
            if lo is not None and value < lo:
                return rank, "low"
            if hi is not None and value > hi:
                return rank, "high"
        return 0, None

    def thresholds(self) -> dict[str, float]:
        """The values that are set, by name (for tool output)."""
        names = ("low", "high", "alarm_low", "alarm_high", "trip_low", "trip_high")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class LimitRow(Limit):
    crop: str | None = None
    stage: str | None = None
    asset: str | None = None
    sensor: str | None = None
    metric: str | None = Field(None, pattern=METRIC_PATTERN)
    period: Period = "all"
    source: str = ""  # where the numbers come from, e.g. "OM-P-101 §3.1"

    def describe(self) -> str:
        who = (f"crop {self.crop}/{self.stage}" if self.crop else f"asset {self.asset}" if self.asset
               else f"sensor {self.sensor}")
        return f"{who} {self.metric or ''} ({self.period})".replace("  ", " ")

    @model_validator(mode="after")
    def _check(self) -> "LimitRow":
        selectors = [s for s in ("crop", "asset", "sensor") if getattr(self, s)]
        if len(selectors) != 1:
            raise ValueError("a limit row needs exactly one of crop (with stage), asset or sensor")
        if self.crop and not self.stage:
            raise ValueError(f"limit row for crop {self.crop}: stage is required")
        if not self.sensor and not self.metric:
            raise ValueError(f"limit row for {self.describe()}: metric is required")
        if problems := self.order_problems():
            raise ValueError(f"limit row for {self.describe()}: " + ", ".join(problems))
        return self

    def as_limit(self) -> Limit:
        return Limit.model_validate(self.model_dump(include=set(Limit.model_fields)))


@dataclass(frozen=True)
class LimitSet:
    """The limits for one sensor: by period, plus where they come from."""

    day: Limit | None
    night: Limit | None
    source: str
    trip_label: str  # "emergency" for crops, "trip" for equipment

    def at(self, is_day: bool) -> Limit | None:
        return self.day if is_day else self.night


@dataclass(frozen=True)
class ActiveLimit:
    limit: Limit
    period: str  # "day" or "night"
    source: str
    trip_label: str

    def level_name(self, rank: int) -> str:
        return self.trip_label if rank == 3 else LEVELS[rank]


class SiteProfile(_Strict):
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
        return _hhmm(v)  # type: ignore[arg-type]

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


def _format_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        for line in msg.splitlines():
            out.append(f"{loc}: {line}" if loc else line)
    return out


def parse_site_profile(data: dict, source: str = "<profile>") -> SiteProfile:
    try:
        return SiteProfile.model_validate(data)
    except ValidationError as exc:
        raise SiteProfileError(source, _format_errors(exc)) from None


def load_site_profile(path: str | Path) -> SiteProfile:
    """Read and validate a site profile (.toml, .yaml or .yml)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SiteProfileError(str(p), [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw) or {}
        else:
            raise SiteProfileError(str(p), ["unsupported file type (use .toml, .yaml or .yml)"])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SiteProfileError(str(p), [f"not valid TOML: {exc}"]) from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        if isinstance(exc, SiteProfileError):
            raise
        raise SiteProfileError(str(p), [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise SiteProfileError(str(p), ["the top level must be a table / mapping"])
    return parse_site_profile(data, str(p))
