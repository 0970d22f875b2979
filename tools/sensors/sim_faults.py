"""Instrument faults for the simulator: what a broken transmitter, cable or logger makes of the
true (noisy, rounded) reading. The process is untouched; only what the sensor reports changes.

- ``sensor_flatline``: the value freezes bit for bit at the onset (a hung transmitter, a
  logger repeating its last value);
- ``sensor_stuck``: the value stays at the onset value, dithering by one resolution step
  (a seized element: the noise is gone but the last digit still flickers);
- ``sensor_dropout``: no readings at all from the onset (a cut cable, a dead radio);
- ``sensor_spike``: single readings far from the truth (30 noise sigmas up) at the onset and
  every ``SPIKE_EVERY_H`` after (interference on the loop);
- ``sensor_out_of_range``: from the onset the sensor reads below what it can measure (a broken
  RTD or a 4-20 mA loop under 3.6 mA): the physical range's low end minus its width.
Each lasts to the end of the run.
"""

from __future__ import annotations

import numpy as np

from tools.watch.settings import DEFAULT_RANGES

INSTRUMENT_FAULTS = ("sensor_flatline", "sensor_stuck", "sensor_dropout", "sensor_spike", "sensor_out_of_range")
# The sensor each instrument fault hits when none is named: a quick probe (1 min, fine resolution
# against its movement) so the fault is visible in the readings, as each kind would be in the field.
INSTRUMENT_DEFAULTS = {"sensor_flatline": "GH-1-TEMP", "sensor_stuck": "GH-1-CO2", "sensor_dropout": "GH-2-RH",
                       "sensor_spike": "TT-101", "sensor_out_of_range": "GH-2-TEMP"}
SPIKE_EVERY_H = 3.0
SPIKE_SIGMAS = 30.0
CLOG_RUN_H = 30.0  # filter_clog: running hours from a clean strainer to fully blocked
EC_DRIFT_PER_H = 0.06  # ec_drift: feed EC error growth, mS/cm per hour


class InstrumentFaults:
    """Applies the instrument faults of a run to each reading, in time order."""

    def __init__(self, faults, sensors: dict, noise: dict[str, tuple[float, int]], seed: int):
        self.by_sensor = {}
        for f in faults:
            self.by_sensor.setdefault(f.target, []).append(f)
        self.sensors, self.noise = sensors, noise
        self.rng = np.random.default_rng([seed, 16])
        self.frozen: dict[tuple[str, str], float] = {}
        self.next_spike: dict[str, float] = {}

    def apply(self, sensor, ts: int, elapsed_h: float, v: float) -> float | None:
        """The reported value (None: no reading) for the true value ``v`` of ``sensor`` at ``ts``."""
        for f in self.by_sensor.get(sensor.id, ()):
            if elapsed_h < f.start_h:
                continue
            sigma, decimals = self.noise[sensor.metric]
            if f.kind == "sensor_dropout":
                return None
            if f.kind in ("sensor_flatline", "sensor_stuck"):
                base = self.frozen.setdefault((f.kind, sensor.id), v)
                v = base if f.kind == "sensor_flatline" else round(base + int(self.rng.integers(0, 2)) * 10.0 ** -decimals,
                                                                     decimals)
            elif f.kind == "sensor_spike":
                due = self.next_spike.setdefault(sensor.id, f.start_h)
                if elapsed_h >= due:
                    self.next_spike[sensor.id] = due + SPIKE_EVERY_H
                    scale = sigma * abs(v) if sensor.metric in ("par", "vibration_rms") else sigma
                    v = round(v + SPIKE_SIGMAS * max(scale, 10.0 ** -decimals), decimals)
            elif f.kind == "sensor_out_of_range":
                lo, hi = DEFAULT_RANGES.get(sensor.metric, (0.0, 100.0))
                v = round(lo - (hi - lo), decimals)
        return v
