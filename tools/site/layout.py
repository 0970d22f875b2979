"""The parts of a site: zones, assets (equipment) and sensors, with the id rules they share."""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"  # no '/', '+', '#': ids appear in MQTT topics
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
GROWING_KINDS = ("greenhouse", "propagation")
ZoneKind = Literal["greenhouse", "propagation", "pump_station", "boiler_house", "tank_farm", "packhouse", "other"]


def hhmm(value: str | int | time) -> time:
    """A time of day from "HH:MM", a ``time``, or minutes since midnight (YAML 1.1 base 60)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return time(value // 60, value % 60)  # YAML 1.1 reads an unquoted 06:00 as 360 (base 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}")
    return time(int(m[1]), int(m[2]))


class Strict(BaseModel):
    """Profile entries: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(Strict):
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
        return None if v is None else hhmm(v)  # type: ignore[arg-type]


class Asset(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    zone: str
    kind: str = Field("equipment", pattern=METRIC_PATTERN)
    aliases: list[str] = Field(default_factory=list)
    # Equipment such as a pump stops and starts: while the running sensor reads at or below
    # ``running_above`` the asset is stopped and its readings are not judged (no flow is not an alarm).
    running_sensor: str | None = None
    running_above: float | None = None


class Sensor(Strict):
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
