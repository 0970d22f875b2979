"""Excursions: stretches of readings beyond a sensor's limits, judged level by level.

For each sensor with limits, every good reading is ranked against the limits in force at its
time (day or night): 0 normal, 1 warning (outside the normal range), 2 alarm, 3 trip/emergency.
Consecutive readings at or above ``min_severity`` on the same side (low/high) form one excursion;
a gap in the data of up to ``max_gap_s`` does not split it, and neither does a brief return
into range of up to ``merge_s`` (noise chattering around a limit is one excursion, not twenty).
An excursion is as severe as the highest level the value stayed beyond for at least that
level's delay ("above 90 % for more than 1 h"). It ends when a reading is back in range (the
time of that reading), else at its last reading (``ongoing`` when no later reading exists).
Readings of an asset that is not running (see ``Asset.running_sensor``) are not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tools.site import LEVELS, Limit, SiteProfile
from tools.sensors.timestamps import to_ms

SEVERITY_RANK = {"warning": 1, "alarm": 2, "trip": 3, "emergency": 3}


@dataclass
class Excursion:
    sensor_id: str
    zone: str
    asset: str | None
    metric: str
    unit: str
    direction: str  # "low" or "high"
    severity: str  # warning / alarm / trip / emergency
    rank: int
    limit_name: str  # e.g. "alarm_low"
    limit_value: float
    start: int  # epoch ms
    end: int
    duration_s: float
    worst_value: float
    worst_ts: int
    ongoing: bool
    period: str  # day or night at the start
    readings: int
    reached: dict[str, int] = field(default_factory=dict)  # level -> epoch ms at which it counted

    def to_dict(self) -> dict:
        return asdict(self)


def _runs(mask: np.ndarray, ts: np.ndarray, max_gap_ms: int, key: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Index ranges [a, b] of consecutive True readings, split at data gaps and where ``key`` changes."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    brk = (np.diff(idx) != 1) | (np.diff(ts[idx]) > max_gap_ms)
    if key is not None:
        brk |= np.diff(key[idx]) != 0
    cut = np.flatnonzero(brk)
    return list(zip(np.r_[idx[0], idx[cut + 1]].tolist(), np.r_[idx[cut], idx[-1]].tolist()))


def _end(ts: np.ndarray, b: int, max_gap_ms: int) -> tuple[int, bool]:
    """(end time, ongoing) of a run whose last reading is ``b``."""
    if b + 1 >= ts.size:
        return int(ts[b]), True
    if ts[b + 1] - ts[b] <= max_gap_ms:
        return int(ts[b + 1]), False
    return int(ts[b]), False


def _per_reading(day: np.ndarray, limits: tuple[Limit | None, Limit | None], getter) -> np.ndarray:
    """An array with the day or the night limit's value for each reading (NaN where unset)."""
    d, n = (np.nan if lim is None or getter(lim) is None else float(getter(lim)) for lim in limits)
    return np.where(day, d, n)


def _running_mask(store, site: SiteProfile, sensor, ts: np.ndarray, max_gap_ms: int, window: tuple[int, int],
                  cache: dict) -> np.ndarray:
    """False where the sensor's asset is known to be stopped at that reading's time."""
    asset = site.asset(sensor.asset) if sensor.asset else None
    if asset is None or asset.running_sensor is None or ts.size == 0:
        return np.ones(ts.size, dtype=bool)
    if asset.running_sensor not in cache:  # one fetch per call, shared by all sensors of the asset
        cache[asset.running_sensor] = store.series(asset.running_sensor, window[0] - max_gap_ms, window[1])
    rts, rv = cache[asset.running_sensor]
    if rts.size == 0:
        return np.ones(ts.size, dtype=bool)  # no evidence it was stopped: judge the readings
    i = np.searchsorted(rts, ts, side="right") - 1
    known = (i >= 0) & (ts - rts[np.maximum(i, 0)] <= max_gap_ms)
    stopped = known & (rv[np.maximum(i, 0)] <= asset.running_above)
    return ~stopped


def _merge(runs: list[tuple[int, int]], ts: np.ndarray, direction: np.ndarray, merge_ms: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and direction[a] == direction[out[-1][0]] and ts[a] - ts[out[-1][1]] <= merge_ms:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def sensor_excursions(store, site: SiteProfile, sensor_id: str, start, end, min_rank: int = 2,
                      max_gap_s: float = 1800, merge_s: float = 900, cache: dict | None = None,
                      valid: tuple[float, float] | None = None) -> list[Excursion]:
    """``valid``: the instrument's physical range; a reading outside it is an instrument fault (the
    watch reports it as one), not the process beyond its limit, so it is not judged here."""
    sensor = site.sensor(sensor_id)
    ls = site.limit_set(sensor)
    if ls is None:
        return []
    start, end = to_ms(start), to_ms(end)
    ts, v = store.series(sensor_id, start, end)
    if ts.size == 0:
        return []
    gap = int(max_gap_s * 1000)
    day = site.day_mask(sensor.zone, ts)
    pair = (ls.day, ls.night)
    lo = {r: _per_reading(day, pair, lambda lim, r=r: lim.bounds(LEVELS[r])[0]) for r in (1, 2, 3)}
    hi = {r: _per_reading(day, pair, lambda lim, r=r: lim.bounds(LEVELS[r])[1]) for r in (1, 2, 3)}
    delay = {r: _per_reading(day, pair, lambda lim, r=r: lim.delay_s(LEVELS[r])) for r in (1, 2, 3)}
    judged = _running_mask(store, site, sensor, ts, gap, (start, end), {} if cache is None else cache)
    if valid is not None:
        judged = judged & (v >= valid[0]) & (v <= valid[1])
    rank = np.zeros(ts.size, dtype=np.int8)
    direction = np.zeros(ts.size, dtype=np.int8)  # -1 low, +1 high
    for r in (1, 2, 3):  # later (higher) levels overwrite lower ones
        below, above = (v < lo[r]) & judged, (v > hi[r]) & judged
        rank[below | above] = r
        direction[below] = -1
        direction[above] = 1
    out = []
    for a, b in _merge(_runs(rank >= min_rank, ts, gap, key=direction), ts, direction, int(merge_s * 1000)):
        reached: dict[str, int] = {}
        severity = 0
        for r in range(min_rank, 4):
            for sa, sb in _runs(rank[a:b + 1] >= r, ts[a:b + 1], gap):
                sa, sb = sa + a, sb + a
                need = 0.0 if np.isnan(delay[r][sa]) else float(delay[r][sa])
                if _end(ts, sb, gap)[0] - ts[sa] >= need * 1000:
                    reached[ls.trip_label if r == 3 else LEVELS[r]] = int(ts[sa] + need * 1000)
                    severity = r
                    break
        if severity == 0:
            continue  # never beyond a level for as long as its delay asks
        high = direction[a] > 0
        seg = v[a:b + 1]
        w = a + int(np.argmax(seg) if high else np.argmin(seg))
        side = "high" if high else "low"
        limit_value = (hi if high else lo)[severity][w]
        if np.isnan(limit_value):  # the worst reading fell in a period without that level; use the first
            limit_value = (hi if high else lo)[severity][a]
        end_ts, ongoing = _end(ts, b, gap)
        label = ls.trip_label if severity == 3 else LEVELS[severity]
        name = f"{label}_{side}" if severity > 1 else side  # warning: the normal range's low / high
        out.append(Excursion(
            sensor_id=sensor.id, zone=sensor.zone, asset=sensor.asset, metric=sensor.metric, unit=sensor.unit,
            direction=side, severity=label, rank=severity,
            limit_name=name, limit_value=float(limit_value), start=int(ts[a]), end=end_ts,
            duration_s=(end_ts - int(ts[a])) / 1000, worst_value=float(v[w]), worst_ts=int(ts[w]),
            ongoing=ongoing, period="day" if day[a] else "night", readings=int(np.count_nonzero(rank[a:b + 1] >= min_rank)),
            reached=reached))
    return out


def find_excursions(store, site: SiteProfile, sensor_ids, start, end, min_severity: str = "alarm",
                    max_gap_s: float = 1800, merge_s: float = 900) -> list[Excursion]:
    """Excursions of the given sensors (all sensors of the profile when None), most severe first."""
    if min_severity not in SEVERITY_RANK:
        raise ValueError(f"min_severity must be one of {', '.join(SEVERITY_RANK)}")
    ids = [s.id for s in site.sensors] if sensor_ids is None else list(sensor_ids)
    s, e, cache = to_ms(start), to_ms(end), {}
    found = [x for sid in ids
             for x in sensor_excursions(store, site, sid, s, e, SEVERITY_RANK[min_severity], max_gap_s, merge_s, cache)]
    found.sort(key=lambda x: (-x.rank, -x.duration_s, x.start))
    return found
