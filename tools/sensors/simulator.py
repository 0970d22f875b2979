"""Realistic sensor signals for a site profile, into the store (fast backfill) or over MQTT.

A simple, deterministic (seeded) model of the sample site, driven by the clock and the sun:
- greenhouses: a climate computer heats to the crop stage's day / night setpoint (from the
  profile's limits; the morning rise is limited to 1.5 °C/h as the crop guide asks) and opens
  the vents above setpoint + 2 °C or at high humidity; the sun heats the house; humidity is a
  vapour balance (transpiration in, ventilation out), so it falls as the air warms; CO2 is dosed
  in daylight while the vents are nearly closed and builds up at night; irrigation shots follow
  the accumulated light (substrate moisture saw-tooth, slab EC rising as the slab dries);
- pumps run while irrigation is possible, with vibration and bearing temperature creeping up;
  a trip-level vibration or bearing temperature stops the pump for the rest of the run;
- tanks drain while the pump runs and refill otherwise.
Outside weather is a mild spring (nights ≈ 5 °C, afternoons ≈ 17 °C); the sun follows the
real date and the site's latitude / longitude. Faults: ``heater_failure`` (heating off: the
night temperature falls below the alarm), ``vent_stuck`` (vents stay shut: hot, humid days),
``bearing_wear`` (vibration ramps through alarm to trip over the pump's running time, bearing
temperature follows), ``filter_clog`` (the pump's suction strainer clogs over its running hours:
suction pressure, flow, discharge pressure and current fall, cavitation adds vibration), ``ec_drift``
(a zone's fertiliser dosing drifts: feed EC rises steadily, the slab EC follows). Instrument faults
(``tools.sensors.sim_faults``), target a sensor: ``sensor_flatline``, ``sensor_stuck``,
``sensor_dropout``, ``sensor_spike``, ``sensor_out_of_range``. Written as ``kind``,
``kind:TARGET`` or ``kind:TARGET@HOURS`` (start).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from tools.site import GROWING_KINDS, SiteProfile, load_site_profile
from tools.sensors.sim_faults import (CLOG_RUN_H, EC_DRIFT_PER_H, INSTRUMENT_DEFAULTS, INSTRUMENT_FAULTS,
                                      InstrumentFaults)
from tools.sensors.store import Reading, SensorStore, from_ms, to_ms

PROCESS_FAULTS = ("heater_failure", "vent_stuck", "bearing_wear", "filter_clog", "ec_drift")
FAULTS = PROCESS_FAULTS + INSTRUMENT_FAULTS
# AR(1) noise amplitude and rounding (decimals) per metric
NOISE = {"air_temperature": (0.15, 1), "relative_humidity": (0.8, 1), "co2": (12, 0), "par": (0.03, 0),
         "dli": (0, 1), "substrate_moisture": (0.25, 1), "substrate_ec": (0.03, 2), "feed_ec": (0.02, 2),
         "feed_ph": (0.03, 2), "vibration_rms": (0.03, 2), "bearing_temperature": (0.3, 1),
         "discharge_pressure": (0.02, 2), "suction_pressure": (0.01, 3), "flow": (0.8, 1),
         "motor_current": (0.1, 1), "tank_level": (0.01, 2)}
RELATIVE_NOISE = {"par", "vibration_rms"}


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str | None = None  # zone (heater_failure, vent_stuck, ec_drift), pump (bearing_wear, filter_clog), sensor
    start_h: float = 0.0  # hours after the start of the run

    @classmethod
    def parse(cls, text: "str | Fault") -> "Fault":
        if isinstance(text, Fault):
            return text
        rest, _, start = str(text).strip().partition("@")
        kind, _, target = rest.partition(":")
        try:
            return cls(kind.strip(), target.strip() or None, float(start) if start else 0.0)
        except ValueError:
            raise ValueError(f"bad fault {text!r}: write kind, kind:TARGET or kind:TARGET@HOURS") from None


@dataclass
class SimReport:
    mode: str  # "store" or "mqtt"
    start: datetime
    end: datetime
    readings: int = 0
    sensors: list[str] = field(default_factory=list)
    skipped_sensors: list[str] = field(default_factory=list)  # metrics the model does not produce
    faults: list[Fault] = field(default_factory=list)
    seconds: float = 0.0
    failed: int = 0  # MQTT publishes paho refused

    @property
    def summary(self) -> str:
        rate = self.readings / self.seconds if self.seconds else 0
        faults = ", ".join(f.kind + (f":{f.target}" if f.target else "") for f in self.faults) or "none"
        return (f"{self.readings} readings of {len(self.sensors)} sensors, {self.start:%Y-%m-%d %H:%M} → "
                f"{self.end:%Y-%m-%d %H:%M} UTC, to {self.mode} in {self.seconds:.1f} s ({rate:.0f}/s); faults: {faults}")


class _Noise:
    def __init__(self, rng: np.random.Generator, sigma: float, phi: float = 0.9):
        self.rng, self.sigma, self.phi, self.x = rng, sigma, phi, 0.0

    def __call__(self) -> float:
        self.x = self.phi * self.x + math.sqrt(1 - self.phi ** 2) * self.sigma * float(self.rng.standard_normal())
        return self.x


def _esat(t: float) -> float:
    """Saturation vapour pressure (kPa) at t °C (Tetens)."""
    return 0.6108 * math.exp(17.27 * t / (t + 237.3))


def _band(site: SiteProfile, zone, metric: str, period: str, default: tuple[float, float]) -> tuple[float, float]:
    rows = [r for r in site.limits if r.crop == zone.crop and r.stage == zone.stage and r.metric == metric]
    row = next((r for r in rows if r.period == period), next((r for r in rows if r.period == "all"), None))
    if row is None or row.low is None or row.high is None:
        return default
    return row.low, row.high


class _Clock:
    """Local time of day, the sun, and the outside weather at one instant."""

    def __init__(self, site: SiteProfile, rng: np.random.Generator):
        self.site, self.tz, self.rng = site, site.tz, rng
        self._days: dict = {}

    def at(self, ts_ms: int) -> None:
        utc = from_ms(ts_ms)
        local = utc.astimezone(self.tz)
        self.minute = local.hour * 60 + local.minute + local.second / 60
        self.date = local.date()
        if self.date not in self._days:  # per-day weather: cloudiness and a warmer or cooler day
            self._days[self.date] = (float(self.rng.uniform(0.65, 1.0)), float(self.rng.normal(0, 1.5)))
        self.cloud, t_off = self._days[self.date]
        doy = utc.timetuple().tm_yday
        decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
        solar_h = utc.hour + utc.minute / 60 + utc.second / 3600 + self.site.longitude / 15
        lat, hour_angle = math.radians(self.site.latitude), math.radians(15 * (solar_h - 12))
        sin_el = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
        # PAR at crop level: clear-sky outside PAR x glass transmission x the day's clouds
        self.par = 2000 * max(0.0, sin_el) ** 1.15 * 0.6 * self.cloud
        self.sun = self.par / 1000  # ~1 at a bright noon
        self.t_out = 11 + t_off + 6.5 * math.sin(2 * math.pi * (self.minute / 60 - 9) / 24)
        self.e_out = 0.75 * _esat(self.t_out)

    def in_day(self, zone_id: str, pre_min: float = 0, post_min: float = 0) -> bool:
        start, end = (t.hour * 60 + t.minute for t in self.site.day_hours(zone_id))
        return start - pre_min <= self.minute < end - post_min


class _Greenhouse:
    def __init__(self, site: SiteProfile, zone, rng: np.random.Generator):
        self.zone = zone
        # setpoints inside the stage's normal ranges: heat to just above the low end
        self.day_sp = _band(site, zone, "air_temperature", "day", (20, 25))[0] + 1.0
        self.night_sp = _band(site, zone, "air_temperature", "night", (16, 18))[0] + 0.8
        self.co2_sp = sum(_band(site, zone, "co2", "day", (800, 1000))) / 2
        self.feed_ec = sum(_band(site, zone, "feed_ec", "all", (2.8, 3.5))) / 2
        self.feed_ph = sum(_band(site, zone, "feed_ph", "all", (5.5, 6.0))) / 2
        wc = _band(site, zone, "substrate_moisture", "all", (55, 70))
        self.wc_cap = wc[1] - 1.0  # the slab drains above this
        self.sp = self.t = self.night_sp
        self.e = 0.75 * _esat(self.t)
        self.co2, self.wc, self.ec = 550.0, wc[0] + 8, self.feed_ec + 0.7
        self.shot_acc, self.shot_left, self.was_in_window = 0.0, 0.0, False
        self.dli, self.dli_date, self.dli_sent = 0.0, None, True
        end = site.day_hours(zone.id)[1]
        self.day_end = end.hour * 60 + end.minute
        self.heater_ok, self.vents_ok = True, True
        self.ec_offset = 0.0  # ec_drift: the dosing unit's error in feed EC (mS/cm)
        self.drift = _Noise(rng, 0.05, 0.999)

    def step(self, c: _Clock, dt_h: float, water: bool) -> None:
        zid = self.zone.id
        target = self.day_sp if c.in_day(zid, pre_min=60) else self.night_sp
        self.sp = min(target, self.sp + 1.5 * dt_h) if target > self.sp else target
        rh = 100 * self.e / _esat(self.t)
        v_temp = min(1.0, max(0.0, (self.t - (self.sp + 2)) / 4))
        v_hum = min(1.0, max(0.0, (rh - 80) / 10)) * 0.3
        v = max(v_temp, v_hum) if self.vents_ok else 0.0
        t_free = c.t_out + 2.5 + 16 * c.sun
        t_eq = t_free - 0.9 * v * (t_free - c.t_out)
        if self.heater_ok:
            t_eq = max(t_eq, self.sp)
        self.t = t_eq + (self.t - t_eq) * math.exp(-dt_h / 0.5)
        x = 0.35 + 8 * v  # air exchanges per hour
        e_eq = c.e_out + (0.2 + 3.5 * c.sun) / x
        self.e = min(e_eq + (self.e - e_eq) * math.exp(-x * dt_h), 0.99 * _esat(self.t))
        dosing = c.in_day(zid) and c.sun > 0.05
        c_eq = 420 + (60 - 300 * c.sun) / x
        if dosing:
            c_eq, x = (self.co2_sp, max(x, 3.0)) if v <= 0.1 else (max(c_eq, 430), x)
        self.co2 = c_eq + (self.co2 - c_eq) * math.exp(-x * dt_h)
        # irrigation: shots by accumulated light inside the window (1.5 h after day start, 2.5 h before its end)
        wc_old = self.wc
        self.wc -= (0.4 + 5.0 * c.sun) * dt_h * min(1.0, max(0.0, (self.wc - 20) / 25))  # a dry slab gives little
        in_window = c.in_day(zid, pre_min=-90, post_min=150)
        if in_window:
            self.shot_acc += c.sun * dt_h
            if self.shot_acc >= 0.4 or not self.was_in_window:  # the first shot opens the window
                self.shot_acc, self.shot_left = 0.0, 4 / 60  # a 4-minute shot
        self.was_in_window = in_window
        if self.shot_left > 0 and water:
            self.wc += 3.5 * min(dt_h, self.shot_left) / (4 / 60)
            self.ec += 0.3 * (self.feed_ec + self.ec_offset + 0.5 - self.ec) * min(dt_h, self.shot_left) / (4 / 60)
        self.shot_left = max(0.0, self.shot_left - dt_h)
        self.wc = min(self.wc, self.wc_cap)
        self.ec *= (wc_old / self.wc) ** 0.7 if self.wc < wc_old else 1.0
        self._roll_day(c)
        self.dli += c.par * dt_h * 3600 / 1e6

    def _roll_day(self, c: _Clock) -> None:
        if c.date != self.dli_date:  # a new local day: a new light integral, sent only if the run saw it whole
            self.dli_date, self.dli = c.date, 0.0
            self.dli_sent = not (c.par == 0 and c.minute < 720)

    def values(self, c: _Clock) -> dict[str, float | None]:
        self._roll_day(c)
        dli = None
        if not self.dli_sent and c.minute >= self.day_end:
            dli, self.dli_sent = self.dli, True
        return dict(air_temperature=self.t, relative_humidity=100 * self.e / _esat(self.t), co2=self.co2,
                    par=c.par, dli=dli, substrate_moisture=self.wc, substrate_ec=self.ec,
                    feed_ec=self.feed_ec + self.ec_offset + self.drift(), feed_ph=self.feed_ph)


class _Pump:
    def __init__(self, site: SiteProfile, asset, run_total_h: float, wear_from_h: float | None,
                 clog_from_h: float | None = None):
        self.asset = asset
        rows = {r.metric: r for r in site.limits if r.asset == asset.id}
        self.trip_vib = getattr(rows.get("vibration_rms"), "trip_high", None) or 7.1
        self.trip_bearing = getattr(rows.get("bearing_temperature"), "trip_high", None) or 90.0
        self.run_total_h, self.wear_from_h = run_total_h, wear_from_h
        self.run_h = self.wear_run_h = self.extra = 0.0
        self.clog_from_h, self.clog_run_h, self.clog = clog_from_h, 0.0, 0.0  # clog: 0 clean .. 1 blocked
        self.tripped = self.running = False
        self.vib, self.bearing = 0.05, 18.0

    def step(self, c: _Clock, dt_h: float, window: bool, elapsed_h: float) -> bool:
        running = window and not self.tripped
        extra = 0.0
        if running:
            self.run_h += dt_h
            if self.wear_from_h is not None and elapsed_h >= self.wear_from_h:
                self.wear_run_h += dt_h
            if self.clog_from_h is not None and elapsed_h >= self.clog_from_h:
                self.clog_run_h += dt_h
                self.clog = min(1.0, self.clog_run_h / CLOG_RUN_H)
        if self.wear_from_h is not None and self.run_total_h > 0:
            extra = 6.8 * (self.wear_run_h / self.run_total_h) ** 2
        self.extra = extra
        amb = 14 + 0.5 * (c.t_out - 5)
        if running:
            self.vib = 1.6 + 0.05 * self.run_h / 24 + extra + 1.2 * self.clog ** 4  # cavitation
            b_eq, tau = amb + 28 + 0.2 * self.run_h / 24 + 7.5 * extra, 0.5
        else:
            self.vib, b_eq, tau = 0.05, amb, 1.0
        self.bearing = b_eq + (self.bearing - b_eq) * math.exp(-dt_h / tau)
        self.running = running
        return running

    def check_trip(self, metric: str, measured: float) -> None:
        """The interlock acts on measured values; nobody restarts the pump during the run."""
        if self.running and (metric == "vibration_rms" and measured > self.trip_vib
                             or metric == "bearing_temperature" and measured > self.trip_bearing):
            self.tripped = True

    def values(self, level: float) -> dict[str, float]:
        if not self.running:
            return dict(vibration_rms=self.vib, bearing_temperature=self.bearing, discharge_pressure=0.1 * level,
                        suction_pressure=0.098 * level, flow=0.0, motor_current=0.0)
        c2 = self.clog ** 2  # the strainer's loss grows with the square of the blockage
        return dict(vibration_rms=self.vib, bearing_temperature=self.bearing, discharge_pressure=3.34 - 0.6 * c2,
                    suction_pressure=0.098 * level - 0.06 - 0.45 * c2, flow=48.0 * (1 - 0.35 * c2),
                    motor_current=11.6 + 0.15 * self.extra - 1.5 * c2)


class SiteSimulator:
    """Steps through time and yields the readings of every modelled sensor."""

    def __init__(self, site: SiteProfile, start: datetime | int, hours: float, faults: Iterable[str | Fault] = (),
                 seed: int = 0, step_s: int = 60):
        if not 0 < hours <= 24 * 366:
            raise ValueError("hours must be in (0, 8784]")
        if not 1 <= step_s <= 3600:
            raise ValueError("step_s must be in [1, 3600]")
        self.site, self.start, self.hours, self.step_s = site, to_ms(start), hours, int(step_s)
        self.rng = np.random.default_rng(seed)
        self.clock = _Clock(site, self.rng)
        self.faults = [self._check(Fault.parse(f)) for f in faults]
        self.houses = {z.id: _Greenhouse(site, z, self.rng) for z in site.zones if z.kind in GROWING_KINDS}
        pumps = [a for a in site.assets if a.kind == "pump"]
        wear = {f.target: f.start_h for f in self.faults if f.kind == "bearing_wear"}
        clog = {f.target: f.start_h for f in self.faults if f.kind == "filter_clog"}
        self.pumps = {a.id: _Pump(site, a, self._run_hours(wear[a.id]) if a.id in wear else 0.0, wear.get(a.id),
                                  clog.get(a.id)) for a in pumps}
        self.tanks = {a.id: 3.0 for a in site.assets if a.kind == "tank"}
        self.sensors, self.skipped = [], []
        for s in site.sensors:
            modelled = (s.asset in self.pumps or s.asset in self.tanks) if s.asset else s.zone in self.houses
            (self.sensors if modelled and s.metric in NOISE else self.skipped).append(s)
        self.noise = {s.id: _Noise(self.rng, NOISE[s.metric][0]) for s in self.sensors}
        first: dict[str, str] = {}
        self.second_bearing = {s.id for s in self.sensors if s.metric == "bearing_temperature" and s.asset
                               and first.setdefault(s.asset, s.id) != s.id}
        # its own random stream, so a run with an instrument fault keeps the same process as without
        self.instruments = InstrumentFaults([f for f in self.faults if f.kind in INSTRUMENT_FAULTS],
                                            {s.id: s for s in self.sensors}, NOISE, seed)

    def _check(self, f: Fault) -> Fault:
        if f.kind not in FAULTS:
            raise ValueError(f"unknown fault {f.kind!r}; faults: {', '.join(FAULTS)}")
        if f.kind in ("bearing_wear", "filter_clog"):
            ok = [a.id for a in self.site.assets if a.kind == "pump"]
        elif f.kind in INSTRUMENT_FAULTS:
            ok = [s.id for s in self.site.sensors if s.metric in NOISE]
            if f.target is None and INSTRUMENT_DEFAULTS[f.kind] in ok:
                return Fault(f.kind, INSTRUMENT_DEFAULTS[f.kind], f.start_h)
        else:
            ok = [z.id for z in self.site.zones if z.kind in GROWING_KINDS]
        if not ok:
            raise ValueError(f"fault {f.kind}: the site has nothing it can apply to")
        if f.target is not None and f.target not in ok:
            raise ValueError(f"fault {f.kind}: unknown target {f.target!r}; choose from {', '.join(ok)}")
        return Fault(f.kind, f.target or ok[0], f.start_h)

    def _window(self, c: _Clock) -> bool:
        """Irrigation may run (and the pumps with it) while any house is inside its shot window."""
        return any(c.in_day(z, pre_min=-90, post_min=150) for z in self.houses or [self.site.zones[0].id])

    def _run_hours(self, from_h: float) -> float:
        """Hours the pumps will run from ``from_h`` to the end (the wear ramp spreads over them)."""
        c, total = _Clock(self.site, np.random.default_rng(0)), 0.0
        for k in range(int(from_h * 12), int(self.hours * 12)):  # 5-minute steps
            c.at(self.start + k * 300_000)
            total += self._window(c) / 12
        return total

    def _physics(self, ts: int, dt_h: float, elapsed_h: float) -> None:
        """Advance every model by one sub-step ending at ``ts``."""
        c = self.clock
        c.at(ts)
        window = self._window(c)
        water = any([p.step(c, dt_h, window, elapsed_h) for p in self.pumps.values()]) or not self.pumps
        for tank in self.tanks:
            self.tanks[tank] = min(3.2, self.tanks[tank] + (-0.12 if water and self.pumps else 0.15) * dt_h)
        for house in self.houses.values():
            house.step(c, dt_h, water)

    def __iter__(self) -> Iterator[tuple[int, list[Reading]]]:
        sub = max(1, math.ceil(self.step_s / 60))  # physics in steps of at most one minute
        dt_h, dt_ms = self.step_s / 3600 / sub, self.step_s * 1000 // sub
        for j in range(1, 1441):  # a day of warm-up so the first readings start from settled states
            self._physics(self.start - 86_400_000 + j * 60_000, 1 / 60, -1.0)
        for p in self.pumps.values():
            p.run_h = p.wear_run_h = 0.0
        for k in range(int(self.hours * 3600 // self.step_s) + 1):
            ts, elapsed_h = self.start + k * self.step_s * 1000, k * self.step_s / 3600
            for f in self.faults:
                if f.kind in ("heater_failure", "vent_stuck") and elapsed_h >= f.start_h:
                    setattr(self.houses[f.target], "heater_ok" if f.kind == "heater_failure" else "vents_ok", False)
                elif f.kind == "ec_drift":
                    self.houses[f.target].ec_offset = EC_DRIFT_PER_H * max(0.0, elapsed_h - f.start_h)
            for i in range(sub if k else 0):
                self._physics(ts - (sub - 1 - i) * dt_ms, dt_h, elapsed_h)
            self.clock.at(ts)
            yield ts, self._readings(ts)

    def _readings(self, ts: int) -> list[Reading]:
        houses = {z: h.values(self.clock) for z, h in self.houses.items()}
        level = next(iter(self.tanks.values()), 2.5)
        pumps = {a: p.values(level) for a, p in self.pumps.items()}
        out = []
        for s in self.sensors:
            if s.asset in self.pumps:
                v = pumps[s.asset][s.metric]
                if s.id in self.second_bearing:  # the coupling-end bearing runs cooler and sees less of the wear
                    v -= 2.0 + 0.3 * self.pumps[s.asset].extra
            else:
                v = self.tanks[s.asset] if s.asset in self.tanks else houses[s.zone][s.metric]
            if v is None:
                continue
            if v != 0 or s.metric not in ("flow", "motor_current"):  # a stopped pump reads a clean zero
                n = self.noise[s.id]()
                v = v * (1 + n) if s.metric in RELATIVE_NOISE else v + n
            v = v if s.metric == "suction_pressure" else max(v, 0.0)
            v = min(v, 100.0) if s.metric in ("relative_humidity", "substrate_moisture") else v
            v = round(v, NOISE[s.metric][1])
            if s.asset in self.pumps:  # the interlock has its own switch: an instrument fault does not trip
                self.pumps[s.asset].check_trip(s.metric, v)
            v = self.instruments.apply(s, ts, (ts - self.start) / 3_600_000, v)
            if v is not None:
                out.append(Reading(s.id, ts, v))
        return out


def simulate(profile: SiteProfile | str | Path, store_or_mqtt, hours: float, faults: Iterable[str | Fault] = (),
             seed: int = 0, speed: float = 1.0, *, start: datetime | None = None, step_s: int = 60,
             batch: int = 5000, stop=None) -> SimReport:
    """Run the simulator: into a SensorStore as fast as possible (backfill ending now by default),
    or to MQTT (``MqttTarget`` or ``"mqtt://host:port"``) in real time sped up ``speed`` times.
    Over MQTT the run starts ``hours * (1 - 1/speed)`` ago by default, so it ends at the present
    and never publishes a timestamp in the future. ``stop``: an optional threading.Event."""
    from tools.sensors.mqtt import MqttTarget

    site = profile if isinstance(profile, SiteProfile) else load_site_profile(profile)
    to_store = isinstance(store_or_mqtt, SensorStore)
    if not to_store and not isinstance(store_or_mqtt, (MqttTarget, str)):
        raise TypeError("simulate() writes to a SensorStore or publishes to an MqttTarget / 'mqtt://host:port'")
    if speed <= 0:
        raise ValueError("speed must be positive")
    now = datetime.now(UTC).replace(microsecond=0)
    if start is None:
        start = now - timedelta(hours=hours) if to_store else now - timedelta(hours=hours * (1 - 1 / speed))
    sim = SiteSimulator(site, start, hours, faults, seed, step_s)
    report = SimReport("store" if to_store else "mqtt", from_ms(sim.start), from_ms(sim.start) + timedelta(hours=hours),
                       sensors=[s.id for s in sim.sensors], skipped_sensors=[s.id for s in sim.skipped],
                       faults=sim.faults)
    t0 = time.perf_counter()
    if to_store:
        pending: list[Reading] = []
        for _, readings in sim:
            pending.extend(readings)
            if len(pending) >= batch:
                report.readings += store_or_mqtt.insert(pending)
                pending = []
            if stop is not None and stop.is_set():
                break
        report.readings += store_or_mqtt.insert(pending)
    else:
        from tools.sensors.mqtt import MqttPublisher

        target = store_or_mqtt
        if isinstance(target, str):
            host, _, port = target.removeprefix("mqtt://").partition(":")
            target = MqttTarget(host or "127.0.0.1", int(port or 1883))
        pub = MqttPublisher(target)
        try:
            report.readings = pub.publish_paced(sim, {s.id: s for s in sim.sensors}, sim.start, speed, stop)
        finally:
            pub.close()
            report.failed = pub.failed
    report.seconds = time.perf_counter() - t0
    return report
