"""Can the watch keep up with a large site? (``onsite bench watch``)

A synthetic site profile in a temporary folder: the sample profile's zones, limits and documents,
plus pumps (6 sensors each, with limits like P-101's) and greenhouse zones (4 climate sensors
each, under the sample's tomato limits) until ``sensors`` sensors. A real SensorStore gets a
history first (``reference_h`` at one reading a minute, so the early-warning models are fitted
and watching, as in a server that has run for days, then ``fault_context_h`` at ``rate`` per
second, what the instrument checks re-read), then the measured ``minutes`` at ``rate`` readings
per second per sensor, written second by second; the watch runs a pass every ``interval_s``
(its settings) of that time, as ``run_forever`` does in ``onsite serve``.

Simulated time, measured CPU: each second's insert and each pass are timed with
``time.process_time`` (this process does nothing else meanwhile), so the figures are CPU seconds
per second of site time, i.e. the share of one core the watch (and, apart, the ingest) would take
live, without waiting ten real minutes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.watch_sim import SAMPLE

PUMP = {  # metric: (unit, mean, noise, limits); the running sensor first
    "motor_current": ("A", 11.6, 0.1, "low = 10\nhigh = 13\nalarm_high = 14.5"),
    "vibration_rms": ("mm/s", 1.8, 0.05, "high = 2.8\nalarm_high = 4.5\ntrip_high = 7.1\ntrip_delay_s = 10"),
    "bearing_temperature": ("°C", 45.0, 0.3, "high = 70\nalarm_high = 80\ntrip_high = 90"),
    "discharge_pressure": ("bar", 3.34, 0.02, "low = 3.0\nhigh = 3.7\nalarm_low = 2.6\nalarm_high = 3.9"),
    "suction_pressure": ("bar", 0.23, 0.01, "low = 0.05\nhigh = 0.35\nalarm_low = -0.10"),
    "flow": ("m³/h", 48.0, 0.8, "low = 40\nhigh = 55\nalarm_low = 20\nalarm_high = 62"),
}
ZONE = {"air_temperature": ("°C", 21.0, 0.15), "relative_humidity": ("%", 72.0, 0.8), "co2": ("ppm", 850.0, 12.0),
        "substrate_moisture": ("%", 62.0, 0.25)}


def build_profile(dest: Path, sensors: int) -> Path:
    """The sample profile (its 26 sensors) plus generated pumps and zones up to ``sensors`` sensors."""
    from tools.site import load_site_profile

    have = len(load_site_profile(SAMPLE).sensors)
    out, n, k = [SAMPLE.read_text(encoding="utf-8")], have, 0
    while n < sensors:
        k += 1
        if k % 3:  # two pumps for every zone: pump sensors are the watch's heaviest (anomaly models, forecasts)
            pid = f"P-{k:03d}"
            out.append(f'[[assets]]\nid = "{pid}"\nzone = "PH-1"\nkind = "pump"\nrunning_sensor = "{pid}-IT"\n'
                       f"running_above = 2.0\n")
            for metric, (unit, _, _, lim) in PUMP.items():
                if n < sensors:
                    sid = f"{pid}-IT" if metric == "motor_current" else f"{pid}-{metric}"
                    out.append(f'[[sensors]]\nid = "{sid}"\nzone = "PH-1"\nasset = "{pid}"\nmetric = "{metric}"\n'
                               f'unit = "{unit}"\n')
                    out.append(f'[[limits]]\nasset = "{pid}"\nmetric = "{metric}"\n{lim}\nsource = "OM-P-101 §3.1"\n')
                    n += 1
        else:
            zid = f"GH-{k:03d}"
            out.append(f'[[zones]]\nid = "{zid}"\nkind = "greenhouse"\ncrop = "tomato"\nstage = "fruiting"\n')
            for metric, (unit, _, _) in ZONE.items():
                if n < sensors:
                    out.append(f'[[sensors]]\nid = "{zid}-{metric}"\nzone = "{zid}"\nmetric = "{metric}"\n'
                               f'unit = "{unit}"\n')
                    n += 1
    path = dest / "site-profile.toml"
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def _signals(site, ts: np.ndarray, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Plausible, steady values for every sensor at ``ts``: its metric's mean, a daily wave, noise."""
    sample = {"vibration_rms": 1.8, "bearing_temperature": 45.0, "discharge_pressure": 3.34, "suction_pressure": 0.23,
              "flow": 48.0, "motor_current": 11.6, "air_temperature": 21.0, "relative_humidity": 72.0, "co2": 850.0,
              "substrate_moisture": 62.0, "par": 300.0, "dli": 20.0, "substrate_ec": 3.8, "feed_ec": 3.1,
              "feed_ph": 5.8, "tank_level": 2.5}
    noise = {m: v[2] for m, v in (PUMP | ZONE).items()}
    wave = np.sin(2 * np.pi * (ts / 3.6e6) / 24)
    out = []
    for s in site.sensors:
        mean = sample.get(s.metric, 10.0)
        sigma = noise.get(s.metric, 0.01 * abs(mean))
        out.append((s.id, mean * (1 + 0.02 * wave) + sigma * rng.standard_normal(ts.size)))
    return out


def _fill(store, site, start_ms: int, end_ms: int, step_ms: int, rng) -> int:
    ts = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
    n = 0
    for lo in range(0, ts.size, 1000):  # bounded batches: a long history does not sit in memory at once
        part = ts[lo:lo + 1000]
        rows = [(sid, int(t), round(float(v), 3), 0) for sid, vs in _signals(site, part, rng) for t, v in zip(part, vs)]
        n += store.insert(rows)
    return n


def run_watch_load(sensors: int = 200, rate: float = 1.0, minutes: float = 10.0, interval_s: float | None = None,
                   progress=None) -> dict[str, Any]:
    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile
    from tools.watch.alerts import AlertStore
    from tools.watch.settings import WatchSettings
    from tools.watch.watch import SiteWatch

    if not 2 <= sensors <= 5000 or not 0 < rate <= 10 or not 0 < minutes <= 240:
        raise ValueError("sensors in [2, 5000], rate in (0, 10] per second, minutes in (0, 240]")
    say = progress or (lambda m: None)
    settings = WatchSettings() if interval_s is None else WatchSettings(interval_s=interval_s)
    step_ms = int(1000 / rate)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="onsite-bench-watch-") as tmp:
        d = Path(tmp)
        site = load_site_profile(build_profile(d, sensors))
        store = SensorStore(d / "sensors.sqlite")
        t0 = int(time.time() // 60 * 60_000) - int(minutes * 60_000)  # the measured minutes end now
        fast_from = t0 - int(settings.fault_context_h * 3_600_000)
        hist_from = fast_from - int(settings.reference_h * 3_600_000) - 3_600_000
        say(f"{len(site.sensors)} sensors: writing {settings.reference_h + 1:g} h of history at 1/min and "
            f"{settings.fault_context_h:g} h at {rate:g}/s …")
        history = _fill(store, site, hist_from, fast_from, 60_000, rng) + _fill(store, site, fast_from, t0, step_ms, rng)
        watch = SiteWatch(site, store, AlertStore(d / "alerts.sqlite"), settings.model_copy(
            update={"lookback_h": (t0 - hist_from) / 3.6e6}), models_dir=d / "models")
        c = time.process_time()
        first = watch.run_once(t0)
        catch_up_s = time.process_time() - c
        say(f"catch-up pass: {catch_up_s:.1f} s CPU, models: {sorted({m['state'] for m in first.models.values()})}; "
            f"measuring {minutes:g} min …")
        ingest_cpu = watch_cpu = 0.0
        pass_ms, opened = [], len(first.opened)
        next_pass = t0 + int(settings.interval_s * 1000)
        end = t0 + int(minutes * 60_000)
        for second in range(t0 + 1000, end + 1, 1000):
            ts = np.arange(second - 1000 + step_ms, second + 1, step_ms, dtype=np.int64)
            rows = [(sid, int(t), round(float(v), 3), 0) for sid, vs in _signals(site, ts, rng) for t, v in zip(ts, vs)]
            c = time.process_time()
            store.insert(rows)
            ingest_cpu += time.process_time() - c
            if second >= next_pass:
                c = time.process_time()
                rep = watch.run_once(second)
                pass_ms.append((time.process_time() - c) * 1000)
                watch_cpu += pass_ms[-1] / 1000
                opened += len(rep.opened)
                next_pass += int(settings.interval_s * 1000)
        written = store.count() - history
        store.close()
    span_s = minutes * 60
    return {"sensors": len(site.sensors), "rate_per_s": rate, "minutes": minutes, "interval_s": settings.interval_s,
            "readings_measured": written, "history_readings": history, "passes": len(pass_ms),
            "watch_cpu_pct_of_core": round(100 * watch_cpu / span_s, 2),
            "ingest_cpu_pct_of_core": round(100 * ingest_cpu / span_s, 2),
            "pass_cpu_ms": {"median": round(float(np.median(pass_ms)), 1) if pass_ms else None,
                            "max": round(float(np.max(pass_ms)), 1) if pass_ms else None},
            "catch_up_pass_cpu_s": round(catch_up_s, 1), "models": first.models and sorted(
                {m["state"] for m in first.models.values()}), "alerts_opened": opened,
            "target_pct": 10.0, "ok": 100 * watch_cpu / span_s <= 10.0}
