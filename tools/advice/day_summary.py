"""One zone's day in numbers, against its crop stage's targets: per metric the day and night mean /
min / max, how long the readings stayed outside the target band and the alarm band (low and high),
the daily light sum, the drain fraction when it is measured, and how much of the day has readings.

A day is the local calendar day in the site's time zone; day and night follow the zone's day hours.
Durations are time-weighted: each reading stands for the time until the next one, but never for
more than ``3 ×`` the usual interval (a gap is a gap, not a long reading), so a day with holes says
so in ``coverage`` instead of stretching the readings around them. No readings → no numbers.

Targets are not judged during the ``transition_min`` after the day starts and after it ends: the
crop guide wants the morning rise slow (≤ 1.5 °C/h) and the evening fall within two hours, so a
house on its way from the night to the day setpoint is doing the right thing. Alarms count always.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date as Date, datetime, time, timedelta
from typing import Any

import numpy as np

from tools.advice.settings import AdviceSettings
from tools.errors import NotFoundError
from tools.sensors.store import SensorStore, to_ms
from tools.site import GROWING_KINDS, Limit, Sensor, SiteProfile

MAX_STEP_FACTOR = 3.0  # a reading covers at most this many usual intervals
MIN_STEP_MS = 300_000  # ... and at least 5 minutes (sparse but regular sensors)
DRAIN_METRICS = ("drain_fraction",)  # % of the water given that drained
DRAIN_VOLUMES = ("drain_volume", ("supply_volume", "irrigation_volume"))  # or drained and given volumes
LIGHT_PPFD = "par"  # µmol/m²/s at crop level
LIGHT_SUM = "dli"  # mol/m²/d, sent once a day by some climate computers


@dataclass
class PeriodStats:
    period: str  # day | night | all
    minutes: float  # minutes with readings in this period
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    target: tuple[float | None, float | None] | None = None  # (low, high) of the stage
    alarm: tuple[float | None, float | None] | None = None
    judged_minutes: float = 0.0  # minutes judged against the target (transitions left out)
    below_target_min: float = 0.0
    above_target_min: float = 0.0
    below_alarm_min: float = 0.0
    above_alarm_min: float = 0.0
    worst_low: float | None = None  # the lowest value below the target band, when there was one
    worst_high: float | None = None


@dataclass
class MetricSummary:
    sensor: str
    metric: str
    unit: str
    source: str  # where the limits come from, e.g. "crop tomato / fruiting (CG-TOM-01 §2.2, §2.3)"
    readings: int
    coverage: float  # share of the day with readings, 0..1
    longest_gap_min: float
    periods: list[PeriodStats] = field(default_factory=list)


@dataclass
class Finding:
    """Something that was off: what, when (period), which way, by how much and for how long."""

    metric: str
    sensor: str
    unit: str
    period: str  # day | night | all | daily (a daily total such as the light sum)
    direction: str  # low | high
    band: tuple[float | None, float | None]  # the target band
    source: str
    minutes: float | None  # time outside the band (None for daily totals)
    worst: float  # the furthest value (or the daily total)
    beyond: float  # how far the worst value was outside the band (positive)
    mean: float | None  # the period's mean
    alarm_minutes: float = 0.0  # time beyond the alarm level on the same side
    incomplete: bool = False  # the metric's readings cover less than the day

    @property
    def topic(self) -> str:
        return f"{self.metric}:{self.period}:{self.direction}"


@dataclass
class DaySummary:
    zone: str
    zone_name: str
    crop: str | None
    stage: str | None
    date: str  # local date, YYYY-MM-DD
    timezone: str
    day_hours: tuple[str, str]
    aliases: list[str]
    start_ms: int
    end_ms: int
    status: str  # in_range | off | no_data
    metrics: list[MetricSummary] = field(default_factory=list)
    light: dict[str, Any] = field(default_factory=dict)
    drain: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # plain statements: gaps, missing data

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for f, fd in zip(self.findings, d["findings"]):
            fd["topic"] = f.topic
        return d


def day_window(site: SiteProfile, day: Date) -> tuple[int, int]:
    """[local midnight, next local midnight) of ``day`` in the site's time zone, in epoch ms."""
    start = datetime.combine(day, time(0, 0), tzinfo=site.tz)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=site.tz)
    return to_ms(start), to_ms(end)


def advised_zones(site: SiteProfile, settings: AdviceSettings) -> list[str]:
    """The zones the advice is made for: the settings' list, else every growing zone."""
    if settings.zones is not None:
        return list(settings.zones)
    return [z.id for z in site.zones if z.kind in GROWING_KINDS]


def growing_zone(site: SiteProfile, zone_id: str):
    zones = {z.id: z for z in site.zones if z.kind in GROWING_KINDS}
    if zone_id not in zones:
        raise NotFoundError(f"unknown greenhouse zone {zone_id!r}; known: {', '.join(zones) or 'none'}")
    return zones[zone_id]


def summarize_day(site: SiteProfile, store: SensorStore, zone_id: str, day: Date,
                  settings: AdviceSettings | None = None) -> DaySummary:
    settings = settings or AdviceSettings()
    zone = growing_zone(site, zone_id)
    start, end = day_window(site, day)
    d_start, d_end = site.day_hours(zone.id)
    out = DaySummary(zone.id, zone.name, zone.crop, zone.stage, day.isoformat(), site.timezone,
                     (d_start.strftime("%H:%M"), d_end.strftime("%H:%M")), list(zone.aliases), start, end, "no_data")
    sensors = [s for s in site.sensors if s.zone == zone.id and s.asset is None]
    for s in sensors:
        if s.metric in (LIGHT_SUM,):
            continue
        m = _metric(site, store, s, start, end, settings)
        if m is not None:
            out.metrics.append(m)
    out.light = _light(site, store, zone, sensors, start, end, settings)
    out.drain = _drain(store, sensors, start, end)
    for m in out.metrics:
        if m.readings == 0:
            out.notes.append(f"{m.sensor}: no readings on {out.date}")
        elif m.coverage < settings.min_coverage:
            out.notes.append(f"{m.sensor}: readings cover {m.coverage:.0%} of the day "
                             f"(longest gap {m.longest_gap_min / 60:.1f} h): its figures are incomplete")
        out.findings.extend(_findings(m, settings))
    if out.light.get("finding"):
        out.findings.append(out.light.pop("finding"))
    # alarms first, then the longest excursions; a daily total (light sum) after the timed findings
    out.findings.sort(key=lambda f: (-(f.alarm_minutes > 0), -(f.minutes or 0.0)))
    if not any(m.readings for m in out.metrics):
        out.status = "no_data"
    else:
        out.status = "off" if out.findings else "in_range"
    return out


# -- per metric ----------------------------------------------------------------------------------
def _weights(ts: np.ndarray, end: int) -> tuple[np.ndarray, float]:
    """ms each reading stands for, and the longest uncovered stretch (ms) inside the readings."""
    if ts.size == 0:
        return np.zeros(0), 0.0
    diffs = np.diff(ts)
    usual = float(np.median(diffs)) if diffs.size else 60_000.0
    cap = max(MAX_STEP_FACTOR * usual, MIN_STEP_MS)
    w = np.minimum(np.append(diffs, min(end - ts[-1], usual)), cap).astype(np.float64)
    gaps = np.append(diffs, 0) - w
    return w, float(gaps.max(initial=0.0))


def _local_minutes(ts: np.ndarray, start: int) -> np.ndarray:
    # minutes since local midnight (exact except during a DST change, which moves the transitions an hour)
    return (ts - start) / 60_000.0


def _metric(site: SiteProfile, store: SensorStore, s: Sensor, start: int, end: int,
            settings: AdviceSettings) -> MetricSummary | None:
    ls = site.limit_set(s)
    if ls is None:
        return None
    ts, v = store.series(s.id, start, end)
    w, gap = _weights(ts, end)
    edge_gap = (float(ts[0] - start) if ts.size else float(end - start), float(end - ts[-1]) if ts.size else 0.0)
    m = MetricSummary(s.id, s.metric, s.unit, ls.source, int(ts.size), float(w.sum() / (end - start)),
                      max(gap, *edge_gap) / 60_000.0)
    if ts.size == 0:
        return m
    day = site.day_mask(s.zone, ts)
    if ls.day is ls.night:
        parts = [("all", np.ones(ts.size, dtype=bool), ls.day)]
        judged = np.ones(ts.size, dtype=bool)
    else:
        parts = [("day", day, ls.day), ("night", ~day, ls.night)]
        minute = _local_minutes(ts, start)
        d_start, d_end = (t.hour * 60 + t.minute for t in site.day_hours(s.zone))
        t = settings.transition_min
        near = lambda edge: ((minute - edge) % 1440) < t  # noqa: E731 - within t minutes after an edge
        judged = ~(near(d_start) | near(d_end))
    for name, mask, limit in parts:
        m.periods.append(_period(name, ts[mask], v[mask], w[mask], judged[mask], limit))
    return m


def _period(name: str, ts: np.ndarray, v: np.ndarray, w: np.ndarray, judged: np.ndarray,
            limit: Limit | None) -> PeriodStats:
    p = PeriodStats(name, float(w.sum() / 60_000))
    if v.size == 0:
        return p
    p.mean = float((v * w).sum() / w.sum()) if w.sum() > 0 else float(v.mean())
    p.min, p.max = float(v.min()), float(v.max())
    if limit is None:
        return p
    mins = lambda sel: float(w[sel].sum() / 60_000)  # noqa: E731
    if limit.low is not None or limit.high is not None:
        p.target = (limit.low, limit.high)
        p.judged_minutes = mins(judged)
        below = judged & (v < limit.low) if limit.low is not None else np.zeros(v.size, dtype=bool)
        above = judged & (v > limit.high) if limit.high is not None else np.zeros(v.size, dtype=bool)
        p.below_target_min, p.above_target_min = mins(below), mins(above)
        p.worst_low = float(v[below].min()) if below.any() else None
        p.worst_high = float(v[above].max()) if above.any() else None
    if limit.alarm_low is not None or limit.alarm_high is not None:
        p.alarm = (limit.alarm_low, limit.alarm_high)
        if limit.alarm_low is not None:
            p.below_alarm_min = mins(v < limit.alarm_low)
        if limit.alarm_high is not None:
            p.above_alarm_min = mins(v > limit.alarm_high)
    return p


def _findings(m: MetricSummary, settings: AdviceSettings) -> list[Finding]:
    out = []
    incomplete = m.coverage < settings.min_coverage
    for p in m.periods:
        if p.target is None:
            continue
        low, high = p.target
        for direction, minutes, worst, alarm_min in (("low", p.below_target_min, p.worst_low, p.below_alarm_min),
                                                    ("high", p.above_target_min, p.worst_high, p.above_alarm_min)):
            if worst is None or (minutes < settings.min_minutes and alarm_min == 0):
                continue
            beyond = (low - worst) if direction == "low" else (worst - high)
            out.append(Finding(m.metric, m.sensor, m.unit, p.period, direction, p.target, m.source, round(minutes, 1),
                               worst, round(beyond, 3), p.mean, round(alarm_min, 1), incomplete))
    return out


# -- light and drain -----------------------------------------------------------------------------
def _crop_limit(site: SiteProfile, zone, metric: str):
    rows = [r for r in site.limits if r.crop == zone.crop and r.stage == zone.stage and r.metric == metric]
    return rows[0] if rows else None


def _light(site: SiteProfile, store: SensorStore, zone, sensors: list[Sensor], start: int, end: int,
           settings: AdviceSettings) -> dict[str, Any]:
    """The daily light sum: the climate computer's own DLI reading when it sent one for the day,
    else PPFD integrated over the day (µmol/m²/s × s → mol/m²)."""
    out: dict[str, Any] = {"measured": False}
    for s in sensors:
        if s.metric == LIGHT_SUM:
            ts, v = store.series(s.id, start, end)
            if v.size:
                out.update(measured=True, dli=round(float(v[-1]), 2), how=f"reported by {s.id}", sensor=s.id)
                break
    for s in sensors:
        if s.metric == LIGHT_PPFD:
            ts, v = store.series(s.id, start, end)
            w, gap = _weights(ts, end)
            if v.size:
                integrated = float((v * w / 1000).sum() / 1e6)
                coverage = float(w.sum() / (end - start))
                out.update(dli_from_ppfd=round(integrated, 2), ppfd_sensor=s.id, ppfd_coverage=round(coverage, 3))
                if not out["measured"]:
                    out.update(measured=True, dli=round(integrated, 2), how=f"PPFD of {s.id} integrated over the day",
                               sensor=s.id, incomplete=coverage < settings.min_coverage)
            break
    row = _crop_limit(site, zone, LIGHT_SUM)
    if not out["measured"]:
        out["note"] = "no light readings for the day"
        return out
    if row is not None and (row.low is not None or row.high is not None):
        out.update(target=(row.low, row.high), source=f"crop {zone.crop} / {zone.stage} ({row.source})")
        dli = out["dli"]
        for direction, bound in (("low", row.low), ("high", row.high)):
            if bound is None or (dli >= bound if direction == "low" else dli <= bound):
                continue
            out["finding"] = Finding(LIGHT_SUM, out["sensor"], "mol/m²/d", "daily", direction, (row.low, row.high),
                                     out["source"], None, dli, round(abs(dli - bound), 3), dli,
                                     incomplete=bool(out.get("incomplete")))
    return out


def _drain(store: SensorStore, sensors: list[Sensor], start: int, end: int) -> dict[str, Any]:
    by_metric = {s.metric: s for s in sensors}
    for metric in DRAIN_METRICS:
        if metric in by_metric:
            _, v = store.series(by_metric[metric].id, start, end)
            if v.size:
                return {"measured": True, "fraction_pct": round(float(v.mean()), 1), "sensor": by_metric[metric].id}
            return {"measured": False, "note": f"{by_metric[metric].id}: no readings for the day"}
    drained, given = DRAIN_VOLUMES[0], next((m for m in DRAIN_VOLUMES[1] if m in by_metric), None)
    if drained in by_metric and given:
        _, vd = store.series(by_metric[drained].id, start, end)
        _, vg = store.series(by_metric[given].id, start, end)
        if vd.size and vg.size and vg.sum() > 0:
            return {"measured": True, "fraction_pct": round(float(100 * vd.sum() / vg.sum()), 1),
                    "sensor": f"{by_metric[drained].id} / {by_metric[given].id}"}
        return {"measured": False, "note": "drain or supply volumes missing for the day"}
    return {"measured": False, "note": "not measured: no drain sensors in the site profile"}
