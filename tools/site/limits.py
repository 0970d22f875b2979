"""Limits: the normal range, alarm and trip (or emergency) levels a sensor is judged against,
per period (day / night / all), and where they come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from tools.site.layout import METRIC_PATTERN, Strict

Period = Literal["day", "night", "all"]
LEVELS = ("normal", "warning", "alarm", "trip")  # index = severity rank


class Limit(Strict):
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
