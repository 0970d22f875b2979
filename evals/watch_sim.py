"""The site watch on the simulator, pass by pass as it runs live (``onsite eval watch-sim``).

For every injectable fault x seed: simulate the sample site (readings every ``STEP_S`` s), run
the watch once over everything up to ``CATCH_UP_H`` before the onset (a watch that was already
running; the early-warning models learn their reference there), then every ``pass_s`` simulated
seconds, as ``run_forever`` would, and record the alerts each pass opens.

Attribution (``attributable``): an alert belongs to the fault when its target is the fault's
asset / zone (a sensor's asset, else its zone) and its cause names what the fault moves:
- heater_failure:ZONE   → limit_low / forecast_low on the zone's air temperature
- vent_stuck:ZONE       → limit_high / forecast_high on the zone's air temperature or humidity
- ec_drift:ZONE         → any limit / forecast on the zone's feed or slab EC
- bearing_wear:PUMP     → anomaly:PUMP, or limit / forecast high on its vibration or bearing temperatures
- filter_clog:PUMP      → anomaly:PUMP, or limit / forecast on its suction / discharge pressure, flow,
                          current (low) or vibration (high)
- sensor_<kind>:SENSOR  → sensor_<kind>:SENSOR (flatline and stuck accept each other: the same frozen
                          instrument, told apart only by its last digit)
The alarm or trip moment of a process fault is the first time the profile's alarm (or trip) level
of one of those sensors counts (its delay included), computed from the run's readings after the
onset, as the plant's own alarm would see them. Instrument faults have no alarm: the criterion
is an attributable alert within ``instrument_window_min`` of the onset. Every other alert opened
before the alarm (or, for instrument faults, in the run), and any alert opened before the onset,
is counted as a false alert of the run. As in the fault-free runs, a simulated operator closes
alerts not seen for ``CLOSE_AFTER_H``, so an alert left over from before the onset does not hide
the fault's own.

Fault-free: ``fault_free_days`` simulated days per seed; alert openings per zone (an asset counts to
its zone) per simulated week. A simulated operator closes every alert not seen for ``CLOSE_AFTER_H``
(at that simulated time; the store's quiet period then applies), so a finding that recurs every
evening opens again every evening and is counted each time, as it would page each time. Passes
there are hourly (``fault_free_pass_s``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parent.parent / "knowledge" / "samples" / "site-profile.toml"
START = datetime(2026, 4, 1, tzinfo=UTC)  # 08:00 at the site (Asia/Shanghai), spring, tomato fruiting / flowering
STEP_S = 60  # simulated reading interval
CATCH_UP_H = 2.0
CLOSE_AFTER_H = 2.0  # a simulated operator closes an alert not seen for this long, so a recurring one opens again


@dataclass(frozen=True)
class Spec:
    target: str
    onset_h: float  # hours after START
    after_h: float  # run length after the onset


# Onsets after the 48 h early-warning reference; heater_failure at 18:00 local (the night follows),
# vent_stuck and the instrument faults at 10:00 / 12:00 local.
SPECS = {
    "heater_failure": Spec("GH-1", 58.0, 24.0), "vent_stuck": Spec("GH-1", 50.0, 48.0),
    "ec_drift": Spec("GH-1", 50.0, 72.0), "bearing_wear": Spec("P-101", 48.0, 120.0),
    "filter_clog": Spec("P-101", 50.0, 96.0),
    "sensor_flatline": Spec("GH-1-TEMP", 52.0, 6.0), "sensor_stuck": Spec("GH-1-CO2", 52.0, 6.0),
    "sensor_dropout": Spec("GH-2-RH", 52.0, 6.0), "sensor_spike": Spec("TT-101", 52.0, 6.0),
    "sensor_out_of_range": Spec("GH-2-TEMP", 52.0, 6.0),
}


def parse_faults(text: str) -> list[str]:
    """``all``, ``none`` or a comma-separated list of ``kind``, ``kind:TARGET`` or ``kind:TARGET@HOURS``."""
    from tools.sensors.simulator import Fault

    if text.strip() == "none":  # only the fault-free runs
        return []
    items = list(SPECS) if text.strip() == "all" else [x.strip() for x in text.split(",") if x.strip()]
    out = []
    for item in items:
        f = Fault.parse(item)
        if f.kind not in SPECS:
            raise ValueError(f"unknown fault {f.kind!r}; faults: {', '.join(SPECS)}")
        spec = SPECS[f.kind]
        out.append(f"{f.kind}:{f.target or spec.target}@{f.start_h if '@' in item else spec.onset_h:g}")
    return out


def _related(site, fault) -> tuple[str, dict[str, set[str]]]:
    """(target of the alerts, {sensor id: causes' kinds that fit}) for a process fault."""
    z = [s for s in site.sensors if s.zone == fault.target]
    a = [s for s in site.sensors if s.asset == fault.target]
    both, low, high = {"limit_low", "limit_high", "forecast_low", "forecast_high"}, {"limit_low", "forecast_low"}, \
        {"limit_high", "forecast_high"}
    if fault.kind == "heater_failure":
        return fault.target, {s.id: low for s in z if s.metric == "air_temperature"}
    if fault.kind == "vent_stuck":
        return fault.target, {s.id: high for s in z if s.metric in ("air_temperature", "relative_humidity")}
    if fault.kind == "ec_drift":
        return fault.target, {s.id: both for s in z if s.metric in ("feed_ec", "substrate_ec")}
    if fault.kind == "bearing_wear":
        return fault.target, {s.id: high for s in a if s.metric in ("vibration_rms", "bearing_temperature")}
    return fault.target, {s.id: high if s.metric == "vibration_rms" else low for s in a  # filter_clog
                          if s.metric in ("vibration_rms", "suction_pressure", "discharge_pressure", "flow",
                                          "motor_current")}


def attributable(site, fault, target: str, cause: str) -> bool:
    kind, _, subject = cause.partition(":")
    if fault.kind.startswith("sensor_"):
        s = site.sensor(fault.target)
        fits = {fault.kind} | ({"sensor_flatline", "sensor_stuck"} if fault.kind in ("sensor_flatline", "sensor_stuck")
                               else set())
        return target == (s.asset or s.zone) and subject == fault.target and kind in fits
    want, sensors = _related(site, fault)
    if target != want:
        return False
    if kind == "anomaly":
        return fault.kind in ("bearing_wear", "filter_clog") and subject == want
    return kind in sensors.get(subject, ())


def alarm_ms(site, store, fault, onset: int, end: int) -> int | None:
    """When the plant's own alarm (or trip) would first fire on a sensor the fault moves."""
    from tools.sensors.excursions import sensor_excursions

    _, sensors = _related(site, fault)
    first = None
    for sid in sensors:
        for x in sensor_excursions(store, site, sid, onset, end, 2):
            at = [ms for level, ms in x.reached.items() if level != "warning" and ms >= onset]
            if at and (first is None or min(at) < first):
                first = min(at)
    return first


def _watch(site, store, d: Path, settings):
    from tools.watch.alerts import AlertStore
    from tools.watch.watch import SiteWatch

    return SiteWatch(site, store, AlertStore(d / "alerts.sqlite"), settings, models_dir=d / "models")


def run_fault(fault_text: str, seed: int, pass_s: float, hours: float | None, window_min: float,
              overrides: dict | None = None) -> dict[str, Any]:
    from tools.sensors.simulator import Fault, simulate
    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile
    from tools.watch.settings import WatchSettings

    site = load_site_profile(SAMPLE)
    fault = Fault.parse(fault_text)
    total_h = hours if hours is not None else fault.start_h + SPECS[fault.kind].after_h
    s0 = int(START.timestamp() * 1000)
    onset, end = s0 + int(fault.start_h * 3_600_000), s0 + int(total_h * 3_600_000)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onsite-watch-sim-") as tmp:
        d = Path(tmp)
        store = SensorStore(d / "sensors.sqlite")
        simulate(site, store, total_h, [fault], seed=seed, start=START, step_s=STEP_S)
        alarm = None if fault.kind.startswith("sensor_") else alarm_ms(site, store, fault, onset, end + 1)
        # the watch runs until an hour after the alarm (what comes later cannot be early), or the
        # instrument window, or the end of the run
        stop = min(end, alarm + 3_600_000 if alarm is not None else onset + int(max(window_min, 60) * 120_000)
                   if fault.kind.startswith("sensor_") else end)
        first_pass = max(onset - int(CATCH_UP_H * 3_600_000), s0 + 3_600_000)
        watch = _watch(site, store, d, WatchSettings(**(overrides or {}) | {
            "lookback_h": (first_pass - s0) / 3_600_000 + 0.01}))
        opened: list[tuple[int, str, str]] = []
        now, passes = first_pass, 0
        while now <= stop:
            opened += [(now, o["target"], o["cause"]) for o in watch.run_once(now).opened]
            _operator(watch, now)
            now, passes = now + int(pass_s * 1000), passes + 1
        store.close()
    hit = next(((at, c) for at, tg, c in opened if at >= onset and attributable(site, fault, tg, c)), None)
    until = alarm if alarm is not None else stop + 1
    false = sorted({c for at, tg, c in opened if at < until and (at < onset or not attributable(site, fault, tg, c))})
    out = {"fault": fault_text, "seed": seed, "passes": passes, "detected": hit is not None,
           "detected_h": None if hit is None else round((hit[0] - s0) / 3.6e6, 3), "cause": hit and hit[1],
           "onset_h": fault.start_h, "false_alerts": false, "seconds": round(time.perf_counter() - t0, 1)}
    if fault.kind.startswith("sensor_"):
        delay = None if hit is None else (hit[0] - onset) / 60_000
        out |= {"delay_min": delay, "before_alarm": delay is not None and delay <= window_min}
    else:
        out |= {"alarm_h": None if alarm is None else round((alarm - s0) / 3.6e6, 3),
                "lead_h": None if hit is None or alarm is None else round((alarm - hit[0]) / 3.6e6, 2),
                "before_alarm": hit is not None and (alarm is None or hit[0] < alarm)}
    return out


def _operator(watch, now: int) -> None:
    """A person closes every alert not seen for ``CLOSE_AFTER_H`` (at the simulated time)."""
    for a in watch.alerts.list(state="active", limit=500).alerts:
        if now - a.last_seen >= CLOSE_AFTER_H * 3_600_000:
            watch.alerts.close_alert(a.id, "operator", "quiet (simulated operator)", at=now)


def run_fault_free(seed: int, days: float, pass_s: float, overrides: dict | None = None) -> dict[str, Any]:
    from tools.sensors.simulator import simulate
    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile
    from tools.watch.settings import WatchSettings

    site = load_site_profile(SAMPLE)
    zone_of = {a.id: a.zone for a in site.assets}
    s0 = int(START.timestamp() * 1000)
    end = s0 + int(days * 86_400_000)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onsite-watch-sim-") as tmp:
        d = Path(tmp)
        store = SensorStore(d / "sensors.sqlite")
        simulate(site, store, days * 24, [], seed=seed, start=START, step_s=STEP_S)
        watch = _watch(site, store, d, WatchSettings(**(overrides or {}) | {"lookback_h": pass_s / 3600 + 0.01}))
        opened, now = [], s0 + int(pass_s * 1000)
        while now <= end:
            opened += [(now, zone_of.get(o["target"], o["target"]), o["cause"]) for o in watch.run_once(now).opened]
            _operator(watch, now)
            now += int(pass_s * 1000)
        store.close()
    return {"seed": seed, "days": days, "opened": [{"h": round((at - s0) / 3.6e6, 2), "zone": z, "cause": c}
                                                   for at, z, c in opened],
            "seconds": round(time.perf_counter() - t0, 1)}


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def evaluate_watch_sim(seeds: int = 10, faults: str = "all", hours: float | None = None, fault_free_days: float = 30,
                       pass_s: float = 300, fault_free_pass_s: float = 3600, instrument_window_min: float = 60,
                       jobs: int = 1, fault_free_seeds: int | None = None, watch_settings: dict | None = None,
                       progress=None) -> dict[str, Any]:
    """``watch_settings``: overrides of WatchSettings (which checks run and how), the same in every run."""
    from tools.site import load_site_profile

    if seeds < 1 or pass_s <= 0 or fault_free_pass_s <= 0 or fault_free_days < 0 or jobs < 1:
        raise ValueError("seeds and jobs >= 1, pass intervals > 0, fault-free days >= 0")
    specs = parse_faults(faults)
    if hours is not None and any(float(f.rsplit("@", 1)[1]) >= hours for f in specs):
        raise ValueError(f"--hours {hours:g} ends before a fault's onset: {', '.join(specs)}")
    from tools.watch.settings import WatchSettings

    WatchSettings(**(watch_settings or {}))  # a bad override fails here, not in every run
    zones = [z.id for z in load_site_profile(SAMPLE).zones]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs) if jobs > 1 else _Inline() as pool:
        fut = {(f, s): pool.submit(run_fault, f, s, pass_s, hours, instrument_window_min, watch_settings) for f in specs
               for s in range(seeds)}
        free_seeds = seeds if fault_free_seeds is None else fault_free_seeds
        free = [pool.submit(run_fault_free, s, fault_free_days, fault_free_pass_s, watch_settings)
                for s in range(free_seeds if fault_free_days else 0)]
        runs = {}
        for key, f in fut.items():
            runs[key] = f.result()
            if progress:
                r = runs[key]
                progress(f"{key[0]} seed {key[1]}: detected {r['detected']} before alarm {r['before_alarm']} "
                         f"lead {r.get('lead_h')} delay {r.get('delay_min')} ({r['seconds']} s)")
        free_runs = [f.result() for f in free]
    per_fault: dict[str, Any] = {}
    for spec in specs:
        rs = [runs[(spec, s)] for s in range(seeds)]
        leads = [r["lead_h"] for r in rs if r.get("lead_h") is not None]
        delays = [r["delay_min"] for r in rs if r.get("delay_min") is not None]
        per_fault[spec] = {
            "runs": len(rs), "detected": sum(r["detected"] for r in rs), "before_alarm": sum(r["before_alarm"] for r in rs),
            "lead_h": {"median": _median(leads), "min": min(leads) if leads else None},
            "delay_min": {"median": _median(delays), "max": max(delays) if delays else None},
            "alarm_h_median": _median([r["alarm_h"] for r in rs if r.get("alarm_h") is not None]),
            "false_alerts": sorted({c for r in rs for c in r["false_alerts"]}),
            "false_alerts_per_run": round(sum(len(r["false_alerts"]) for r in rs) / len(rs), 2),
            "seeds": rs}
    weeks = len(free_runs) * fault_free_days / 7
    by_zone = {z: 0 for z in zones}
    for r in free_runs:
        for o in r["opened"]:
            by_zone[o["zone"]] = by_zone.get(o["zone"], 0) + 1
    per_zone = {z: round(n / weeks, 3) for z, n in by_zone.items()} if weeks else {}
    bearing = [v["lead_h"]["min"] for k, v in per_fault.items() if k.startswith("bearing_wear")]
    causes: dict[str, int] = {}
    for r in free_runs:
        for o in r["opened"]:
            causes[o["cause"].split(":")[0]] = causes.get(o["cause"].split(":")[0], 0) + 1
    return {
        "faults": per_fault,
        "all_before_alarm": all(v["before_alarm"] == v["runs"] for v in per_fault.values()),
        "not_before_alarm": sorted(k for k, v in per_fault.items() if v["before_alarm"] < v["runs"]),
        "bearing_wear_lead_h_min": bearing[0] if bearing and bearing[0] is not None else None,
        "false_alerts_per_zone_week": max(per_zone.values()) if per_zone else None,
        "false_alerts_by_zone_week": per_zone, "fault_free_openings_by_cause": causes,
        "fault_free": [{"seed": r["seed"], "opened": r["opened"]} for r in free_runs],
        "config": {"seeds": seeds, "fault_free_seeds": len(free_runs), "step_s": STEP_S, "pass_s": pass_s, "fault_free_pass_s": fault_free_pass_s,
                   "fault_free_days": fault_free_days, "instrument_window_min": instrument_window_min,
                   "catch_up_h": CATCH_UP_H, "close_after_h": CLOSE_AFTER_H, "start": START.isoformat(),
                   "watch_settings": watch_settings or "defaults"},
        "seconds": round(time.perf_counter() - t0, 1)}


class _Inline:
    """A stand-in for the process pool (``jobs=1``): each job runs here when its result is asked for,
    so progress is reported run by run."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        return _Later(fn, args)


class _Later:
    def __init__(self, fn, args):
        self.fn, self.args, self.done, self.value = fn, args, False, None

    def result(self):
        if not self.done:
            self.value, self.done = self.fn(*self.args), True
        return self.value
