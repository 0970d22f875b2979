"""Instrument faults in one sensor's recent readings: flatline, stuck value, dropout, spikes and
values outside the physical range.

These say "the instrument is wrong", not "the process is wrong": a frozen transmitter or a broken
cable must not be read as a stable or alarming process, and an operator acts differently on each
(call the instrument technician, not the process engineer). Every rule is relative to how the
same sensor normally behaves in the window given (its usual reading interval and its usual
movement), so one setting fits a 1 s vibration sensor and a 5 min greenhouse probe.

Input: ``ts`` (epoch ms, int) and ``values`` arrays, oldest first, as ``SensorStore.series`` returns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tools.errors import ToolInputError
from tools.site.layout import Sensor
from tools.site.sun import sun_elevation_deg

from tools.watch.settings import (DEFAULT_RANGES, FAULT_KINDS, FaultKind, FaultSettings,  # noqa: F401 - re-exported
                                   SensorFaultConfig)


@dataclass(frozen=True)
class SensorFault:
    sensor_id: str
    kind: FaultKind
    start_ms: int
    end_ms: int
    message: str  # what a person reads, with the numbers
    ongoing: bool = False  # still true at the last reading (or at ``now`` for a dropout)
    details: dict[str, Any] = field(default_factory=dict)  # the numbers, for the alert's explanation

    @property
    def cause(self) -> str:
        """The alert cause: one open alert per sensor and fault kind."""
        return f"sensor_{self.kind}:{self.sensor_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cause": self.cause}


def fmt_number(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _dur(ms: float) -> str:
    s = ms / 1000
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _usual_move(ts: np.ndarray, v: np.ndarray, window_ms: float) -> float:
    """Median of (max - min) over consecutive windows holding at least two readings."""
    bins = (ts - ts[0]) // int(window_ms)
    cuts = np.flatnonzero(np.diff(bins)) + 1
    spans = [float(np.ptp(chunk)) for chunk in np.split(v, cuts) if chunk.size >= 2]
    return float(np.median(spans)) if spans else 0.0


def find_sensor_faults(sensor: Sensor | str, ts: np.ndarray, values: np.ndarray,
                       settings: FaultSettings | None = None, *, now_ms: int | None = None) -> list[SensorFault]:
    """Every instrument fault in the window, oldest first. ``now_ms`` lets a dropout run to the
    present (a sensor that stopped reporting altogether)."""
    cfg = settings or FaultSettings()
    sid = sensor if isinstance(sensor, str) else sensor.id
    unit = "" if isinstance(sensor, str) else (" " + sensor.unit if sensor.unit else "")
    metric = None if isinstance(sensor, str) else sensor.metric
    own = cfg.sensors.get(sid, SensorFaultConfig())
    ts = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.shape != v.shape or ts.ndim != 1:
        raise ToolInputError("ts and values must be 1-D arrays of the same length")
    if ts.size == 0:
        return []
    gaps = np.diff(ts)
    interval_ms = (own.interval_s or getattr(sensor, "report_every_s", None) or 0) * 1000
    if not interval_ms:
        interval_ms = float(np.median(gaps)) if gaps.size else 0.0
    found: list[SensorFault] = []

    lo, hi = own.range or cfg.ranges.get(metric or "", (-np.inf, np.inf))
    bad = (v < lo) | (v > hi) | ~np.isfinite(v)
    for a, b in _runs(bad):
        run = v[a:b + 1]
        beyond = np.maximum(lo - run, run - hi)  # how far outside; NaN for a non-number reading
        worst = float(run[np.nanargmax(beyond)]) if np.isfinite(beyond).any() else float(run[0])
        found.append(SensorFault(
            sid, "out_of_range", int(ts[a]), int(ts[b]),
            (f"{sid} read {fmt_number(worst)}{unit}, outside what the instrument can measure ({fmt_number(lo)} to {fmt_number(hi)}{unit}),"
             if np.isfinite(worst) else f"{sid} sent readings that are not numbers,")
            + f" {b - a + 1} reading(s) from {_clock(int(ts[a]))} over {_dur(ts[b] - ts[a])}",
            b == ts.size - 1, {"value": worst if np.isfinite(worst) else None, "range": [lo, hi] if np.isfinite([lo, hi]).all() else None, "readings": b - a + 1}))
    ok = ~bad
    tsg, vg = ts[ok], v[ok]  # the other rules judge only readings the instrument could have made

    if interval_ms > 0:
        limit = max(cfg.dropout_min_s * 1000, cfg.dropout_intervals * interval_ms)
        ends = np.concatenate((ts, [now_ms])) if now_ms is not None and now_ms > ts[-1] else ts
        for i in np.flatnonzero(np.diff(ends) > limit):
            start, end = int(ends[i]), int(ends[i + 1])
            open_ = i + 1 == ts.size
            found.append(SensorFault(
                sid, "dropout", start, end,
                f"{sid} sent no reading for {_dur(end - start)} after {_clock(start)}"
                f"{' and is still silent' if open_ else ''}; it normally reports every {_dur(interval_ms)}",
                bool(open_), {"gap_s": (end - start) / 1000, "interval_s": interval_ms / 1000}))

    if vg.size >= 3 and not own.constant:
        found += _flat_and_stuck(sid, unit, tsg, vg, interval_ms, cfg, (lo, hi))
    if vg.size >= cfg.spike_window:
        found += _spikes(sid, unit, tsg, vg, cfg)
    return sorted(found, key=lambda f: (f.start_ms, f.kind))


def _flat_and_stuck(sid: str, unit: str, ts: np.ndarray, v: np.ndarray, interval_ms: float,
                    cfg: FaultSettings, bounds: tuple[float, float]) -> list[SensorFault]:
    # flatline candidates: consecutive readings exactly equal (within float noise), for too long
    same = np.abs(np.diff(v)) <= 1e-9 * max(1.0, float(np.max(np.abs(v))))
    flat_limit = max(cfg.flatline_min_s * 1000, cfg.flatline_intervals * interval_ms)
    flat = np.zeros(v.size, dtype=bool)
    runs = [(a, b + 1) for a, b in _runs(same) if ts[b + 1] - ts[a] > flat_limit]  # readings a..b+1 equal
    for a, b in runs:
        flat[a:b + 1] = True
    # usual movement judged outside the candidates, so a long freeze does not hide itself
    if (~flat).sum() < 3:
        return []
    move = _usual_move(ts[~flat], v[~flat], cfg.move_window_s * 1000)
    steps = np.abs(np.diff(v[~flat]))
    resolution = float(steps[steps > 0].min()) if (steps > 0).any() else 0.0
    # A sensor that normally moves no more than its resolution step (a quantised, quiet probe at
    # night) repeats itself legitimately: no flatline or stuck can be told from that.
    if move <= 0 or move < 2 * resolution:
        return []
    per = f"it normally moves {fmt_number(move)}{unit} per {_dur(cfg.move_window_s * 1000)}"
    out: list[SensorFault] = []
    for a, b in runs:
        out.append(SensorFault(
            sid, "flatline", int(ts[a]), int(ts[b]),
            f"{sid} has not changed from {fmt_number(v[a])}{unit} for {_dur(ts[b] - ts[a])}; {per}"
            + (" (the end of its range: saturated, or the process is beyond what it can show)"
               if v[a] in bounds else ""),
            b == v.size - 1, {"value": float(v[a]), "duration_s": (ts[b] - ts[a]) / 1000,
                              "usual_move": move, "readings": b + 1 - a, "at_range_end": bool(v[a] in bounds)}))
    # stuck: not bit-for-bit constant, but the movement gone: every window's span within a small band
    band = cfg.stuck_band * move
    win = cfg.move_window_s * 1000
    bins = (ts - ts[0]) // int(win)
    cuts = np.flatnonzero(np.diff(bins)) + 1
    chunks = [(int(idx[0]), int(idx[-1])) for idx in np.split(np.arange(v.size), cuts)]
    quiet = np.array([np.ptp(v[a:b + 1]) <= band and not flat[a:b + 1].all() and b > a for a, b in chunks])
    for ca, cb in _runs(quiet):
        a, b = chunks[ca][0], chunks[cb][1]
        if flat[a:b + 1].any() or ts[b] - ts[a] < cfg.stuck_min_s * 1000:
            continue
        span = float(np.ptp(v[a:b + 1]))
        out.append(SensorFault(
            sid, "stuck", int(ts[a]), int(ts[b]),
            f"{sid} has stayed at {fmt_number(float(np.median(v[a:b + 1])))}{unit} (within {fmt_number(span)}{unit}) for"
            f" {_dur(ts[b] - ts[a])}; {per}",
            b == v.size - 1, {"value": float(np.median(v[a:b + 1])), "span": span,
                              "duration_s": (ts[b] - ts[a]) / 1000, "usual_move": move}))
    return out


def _spikes(sid: str, unit: str, ts: np.ndarray, v: np.ndarray, cfg: FaultSettings) -> list[SensorFault]:
    k = cfg.spike_window | 1  # odd: centred
    half = k // 2
    # Only readings with a full window on both sides are judged: at either end a spike cannot be
    # told from the start of a step (or a start-up transient). A spike is reported half a window late.
    windows = sliding_window_view(v, k)
    med = np.full(v.size, np.nan)
    mad = np.full(v.size, np.nan)
    med[half:v.size - half] = np.median(windows, axis=1)
    mad[half:v.size - half] = np.median(np.abs(windows - med[half:v.size - half, None]), axis=1)
    # floor the scale by the series' typical non-zero step, so a quantised, quiet or mostly
    # constant window (MAD 0) does not make every small step a spike
    steps = np.abs(np.diff(v))
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.0
    scale = np.maximum(1.4826 * mad, max(step, 1e-9 * max(1.0, float(np.max(np.abs(v))))))
    with np.errstate(invalid="ignore"):
        far = np.abs(v - med) > cfg.spike_mads * scale  # NaN (no full window) compares False
    out = []
    for a, b in _runs(far):
        if b - a + 1 > cfg.spike_max_points:
            continue
        i = a + int(np.argmax(np.abs(v[a:b + 1] - med[a:b + 1])))
        out.append(SensorFault(
            sid, "spike", int(ts[a]), int(ts[b]),
            f"{sid} jumped to {fmt_number(v[i])}{unit} at {_clock(int(ts[i]))} for {b - a + 1} reading(s); the readings"
            f" around it were {fmt_number(med[i])} ± {fmt_number(1.4826 * mad[i])}{unit}",
            b == v.size - 1, {"value": float(v[i]), "median": float(med[i]), "sigma": float(1.4826 * mad[i]),
                              "readings": b - a + 1}))
    return out


def check_sensor(site, store, sensor_id: str, start: int, end: int, settings: FaultSettings | None = None,
                 now_ms: int | None = None) -> list[SensorFault]:
    """Faults of one sensor of the site profile over [start, end), read from a ``SensorStore``
    (bad-quality readings left out: the instrument already said they are bad). A flatline or
    stuck value while the sensor's equipment was stopped (its running sensor at or below
    ``running_above``) is left out too: a stopped pump's flow really is constant; so is a light
    sensor's zero at night."""
    cfg = settings or FaultSettings()
    sensor = site.sensor(sensor_id)
    ts, values = store.series(sensor_id, start, end)
    faults = find_sensor_faults(sensor, ts, values, cfg, now_ms=now_ms)
    asset = site.asset(sensor.asset) if sensor.asset else None
    low = (cfg.sensors.get(sensor_id, SensorFaultConfig()).range or cfg.ranges.get(sensor.metric, (0.0, 0.0)))[0]
    kept = []
    for f in faults:
        if f.kind in ("flatline", "stuck"):
            if asset is not None and asset.running_sensor is not None:
                _, run = store.series(asset.running_sensor, f.start_ms, f.end_ms + 1)
                if run.size and float(np.median(run)) <= asset.running_above:
                    continue
            if sensor.metric in cfg.dark_metrics and f.details.get("value", low) <= low:
                inside = ts[(ts >= f.start_ms) & (ts <= f.end_ms)]
                # dark: outside the profile's day hours, or the sun low (dusk comes before 19:00 in spring)
                lit = site.day_mask(sensor.zone, inside) & (sun_elevation_deg(site.latitude, site.longitude, inside)
                                                            > cfg.dark_below_sun_deg)
                if lit.mean() < 0.5:
                    continue
        kept.append(f)
    return kept


def alert_fields(site, fault: SensorFault, settings: FaultSettings | None = None, ts: np.ndarray | None = None,
                 values: np.ndarray | None = None, max_readings: int = 60) -> dict[str, Any]:
    """Keyword arguments of ``AlertStore.raise_alert`` for a finding: the sensor's asset (else its
    zone) as target, the severity of its kind, and the readings of the fault period (thinned to
    ``max_readings``) in the explanation, labelled an instrument fault."""
    cfg = settings or FaultSettings()
    sensor = site.sensor(fault.sensor_id)
    readings: list[list[float]] = []
    if ts is not None and values is not None:
        sel = (np.asarray(ts) >= fault.start_ms) & (np.asarray(ts) <= fault.end_ms)
        idx = np.flatnonzero(sel)
        if idx.size > max_readings:
            idx = idx[np.linspace(0, idx.size - 1, max_readings).astype(int)]
        readings = [[int(ts[i]), float(values[i])] for i in idx if np.isfinite(values[i])]
    explanation = {"type": "instrument_fault", "sensor": sensor.id, "metric": sensor.metric, "unit": sensor.unit,
                   "fault": fault.kind, "start_ms": fault.start_ms, "end_ms": fault.end_ms, "ongoing": fault.ongoing,
                   "message": fault.message, "details": fault.details, "readings": readings}
    if fault.kind == "out_of_range":
        explanation["limit"] = {"physical_range": fault.details.get("range"), "source": "watch settings"}
    return {"target": sensor.asset or sensor.zone, "cause": fault.cause, "severity": cfg.severity.get(fault.kind, "warning"),
            "title": fault.message, "explanation": explanation, "at": fault.end_ms}
