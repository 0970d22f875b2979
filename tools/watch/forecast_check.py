"""The watch's time-to-limit check: for each equipment sensor with an alarm limit, the forecast of
its last days (``tools/watch/forecast.py``); an alert when the alarm is expected within
``forecast_warn_h``: "VT-101 reaches its 4.5 mm/s alarm in about 5 days (3–8 days) at the current rate".

Only sensors of an asset (a pump's vibration, a bearing's temperature: things that wear) are
forecast, only while the asset runs, and only once the value has left its normal range for the
warning zone (ISO 10816's zone C: "plan maintenance"): a greenhouse's climate and a pump's
start-up warming swing inside the normal range, and a curve through them says nothing about next
week (measured: fitted inside the normal range, fault-free simulated days gave forecast alerts).
A value already beyond the alarm is the limits check's business. Runs at most every
``forecast_every_s``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tools.watch.forecast import forecast_crossing

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000


def check_forecast(w: Any, start: int, end: int, now_ms: int, errors: list[str]) -> list[dict[str, Any]] | None:
    cfg = w.settings
    if cfg.forecast_warn_h <= 0:
        return []
    if w.forecast_at is not None and now_ms - w.forecast_at < cfg.forecast_every_s * 1000:
        return None  # not due yet
    w.forecast_at = now_ms
    start = end - int(cfg.forecast_window_h * HOUR_MS)
    running_by_asset: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}  # one read per asset and pass
    out = []
    for s in w.site.sensors:
        if not s.asset:
            continue
        ls = w.site.limit_set(s)
        limit = ls.at(True) if ls is not None else None
        if limit is None:
            continue
        sides = [(side, value, normal) for side, value, normal in
                 (("high", limit.alarm_high, limit.high), ("low", limit.alarm_low, limit.low))
                 if value is not None and normal is not None and normal != value]
        if not sides:
            continue
        try:
            ts, values = (np.asarray(x) for x in w.store.series(s.id, start, end))
            if len(ts) == 0:
                continue
            if s.asset not in running_by_asset:
                running_by_asset[s.asset] = _running_series(w, s.asset, start, end)
            running = _running(running_by_asset[s.asset], w.site.asset(s.asset), ts)
            for side, value, normal in sides:
                finding = _forecast_one(w, s, side, value, normal, ls.source, ts[running], values[running], end)
                if finding:
                    out.append(finding)
        except Exception as exc:  # noqa: BLE001 - one bad series must not stop the watch
            log.warning("watch: forecast of %s skipped: %s", s.id, exc)
            errors.append(f"forecast {s.id}: {exc}")
    return out


def _forecast_one(w: Any, sensor, side: str, alarm: float, normal: float, source: str, ts: np.ndarray,
                  values: np.ndarray, end: int) -> dict[str, Any] | None:
    cfg = w.settings
    f = forecast_crossing(ts, values, alarm, side=side, now_ms=end)
    if f is None or not f.eta_s or f.eta_s > cfg.forecast_warn_h * 3600:
        return None  # too little data, already beyond (limits check), or not within the warning horizon
    if (f.level - normal) * (1 if side == "high" else -1) <= 0:
        return None  # still inside its normal range: a curve through normal swings is no forecast
    message = f.message(sensor.id, "alarm", sensor.unit or "")
    return {"target": sensor.asset, "cause": f"forecast_{side}:{sensor.id}", "severity": "warning",
            "title": f"{message} ({source})" if source else message,
            "explanation": {"type": "forecast", "sensor": sensor.id, "unit": sensor.unit,
                            "limit": {"name": f"alarm_{side}", "value": alarm, "source": source},
                            "window_h": cfg.forecast_window_h, **f.to_dict()},
            "at": end}


def _running_series(w: Any, asset_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The asset's running-sensor readings over the window (None: it names no running sensor)."""
    asset = w.site.asset(asset_id)
    if not asset.running_sensor:
        return None
    rt, rv = w.store.series(asset.running_sensor, start, end)
    return np.asarray(rt), np.asarray(rv)


def _running(series: tuple[np.ndarray, np.ndarray] | None, asset, ts: np.ndarray) -> np.ndarray:
    """Which readings were taken while the asset ran (all, when it names no running sensor)."""
    if series is None:
        return np.ones(len(ts), bool)
    rt, rv = series
    if len(rt) == 0:
        return np.zeros(len(ts), bool)
    i = np.clip(np.searchsorted(rt, ts, side="right") - 1, 0, len(rt) - 1)  # latest running reading at or before
    return rv[i] > asset.running_above
