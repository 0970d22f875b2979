"""Settings of the site watch and of its instrument-fault rules: plain pydantic, nothing heavy, so
that the settings tree (and with it `onsite --help`) loads without numpy (tests/assistant/test_cli_startup.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["flatline", "stuck", "dropout", "spike", "out_of_range"]
FAULT_KINDS: tuple[str, ...] = ("flatline", "stuck", "dropout", "spike", "out_of_range")

# What a sensor of each metric can physically report; beyond it the reading is an instrument fault
# (a broken RTD reads -200 °C or 850 °C, a 4-20 mA loop below 3.6 mA reads under range).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "air_temperature": (-40.0, 70.0), "bearing_temperature": (-40.0, 200.0), "relative_humidity": (0.0, 100.0),
    "co2": (0.0, 10_000.0), "par": (0.0, 3_000.0), "dli": (0.0, 80.0), "substrate_moisture": (0.0, 100.0),
    "substrate_ec": (0.0, 25.0), "feed_ec": (0.0, 25.0), "feed_ph": (0.0, 14.0), "vibration_rms": (0.0, 100.0),
    "discharge_pressure": (-1.0, 100.0), "suction_pressure": (-1.0, 100.0), "flow": (0.0, 10_000.0),
    "motor_current": (0.0, 2_000.0), "tank_level": (0.0, 50.0),
}


class SensorFaultConfig(BaseModel):
    """Per-sensor overrides."""

    model_config = ConfigDict(extra="forbid")
    constant: bool = Field(False, description="A legitimately constant signal (a setpoint, a fixed dosing "
                           "target): never reported as flatline or stuck.")
    range: tuple[float, float] | None = Field(None, description="Physical range (low, high) of this instrument.")
    interval_s: float | None = Field(None, gt=0, description="Expected reading interval (default: the site "
                                     "profile's report_every_s, else the median interval of the readings).")


class FaultSettings(BaseModel):
    """Thresholds of the sensor-fault rules."""

    model_config = ConfigDict(extra="forbid")
    flatline_intervals: float = Field(30.0, ge=2, description="A flatline is no change at all for longer than this "
                                      "many usual reading intervals ...")
    flatline_min_s: float = Field(1800.0, ge=0, description="... and at least this long.")
    stuck_band: float = Field(0.05, gt=0, lt=1, description="Stuck: the readings stay within this fraction of the "
                              "sensor's usual movement per window (noise gone, but not bit-for-bit constant) ...")
    stuck_min_s: float = Field(2700.0, ge=0, description="... for at least this long.")
    move_window_s: float = Field(600.0, gt=0, description="Window over which 'usual movement' is measured (the "
                                 "median of max - min over windows of this length).")
    dropout_intervals: float = Field(5.0, ge=1.5, description="A dropout is no reading for longer than this many "
                                     "expected intervals ...")
    dropout_min_s: float = Field(120.0, ge=0, description="... and at least this long.")
    spike_window: int = Field(21, ge=5, le=301, description="Readings in the centred window of the spike test.")
    spike_mads: float = Field(8.0, gt=1, description="A spike is further than this many robust sigmas "
                              "(1.4826 MAD) from the window's median ...")
    spike_max_points: int = Field(3, ge=1, description="... for at most this many readings in a row (longer is a "
                                  "step, which the process may really make).")
    severity: dict[FaultKind, Literal["info", "warning", "alarm", "critical"]] = Field(
        default_factory=lambda: {"flatline": "warning", "stuck": "warning", "dropout": "warning", "spike": "info",
                                 "out_of_range": "alarm"},
        description="Alert severity by fault kind (a reading the instrument cannot make hides the process).")
    dark_metrics: list[str] = Field(default_factory=lambda: ["par"], description="Metrics that rest at the bottom "
                                    "of their range at night (light): a flatline there, mostly outside the zone's "
                                    "day hours, is the dark, not a fault.")
    dark_below_sun_deg: float = Field(3.0, ge=-18, le=30, description="A light sensor resting at its bottom counts "
                                      "as dark, not dead, while the sun is below this elevation (site latitude and "
                                      "longitude) or outside the day hours.")
    ranges: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_RANGES),
                                                   description="Physical range by metric.")
    sensors: dict[str, SensorFaultConfig] = Field(default_factory=dict, description="Overrides by sensor id.")


class WatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval_s: float = Field(60.0, ge=1, le=86_400, description="Seconds between passes of `run_forever`.")
    fast_limits_s: float = Field(
        1.0, ge=0, le=60, description="Between passes, look this often at each sensor's newest reading and check the "
        "limits of those beyond one at once, so a limit alert is raised seconds after its reading, not at the next "
        "pass (0: only in passes).")
    lookback_h: float = Field(24.0, gt=0, le=24 * 366, description="On a first start (no saved cursor), how far "
                              "back the first pass looks.")
    limit_min_severity: Literal["warning", "alarm", "trip"] = Field(
        "alarm", description="Lowest limit level that raises an alert (warning: outside the normal range).")
    limit_context_h: float = Field(2.0, ge=0, description="History read before the window for delays and merging.")
    max_gap_s: float = Field(1800.0, gt=0, description="A data gap up to this long does not split an excursion.")
    merge_s: float = Field(900.0, ge=0, description="A brief return into range up to this long does not either.")
    fault_context_h: float = Field(6.0, ge=0, description="History read before the window for instrument faults.")
    # the instrument checks re-read their context every time they run (90 % of a pass at 1 reading/s, measured),
    # and their rules span tens of minutes anyway: every 5 min is as timely and a fifth of the work
    faults_every_s: float = Field(300.0, ge=0, description="Instrument-fault checks run at most this often "
                                  "(0: every pass); each covers the readings since the last one.")
    faults: FaultSettings = Field(default_factory=FaultSettings)
    forecast_warn_h: float = Field(168.0, ge=0, description="Alert when an equipment sensor is forecast to reach "
                                   "its alarm within this many hours (0: no forecasts).")
    forecast_window_h: float = Field(72.0, gt=0, description="Readings the forecast is fitted to (evals/forecast_wear.py).")
    forecast_every_s: float = Field(3600.0, ge=0, description="Forecasts run at most this often.")
    early_warning: bool = Field(True, description="Per-asset anomaly score (assets with >= 2 sensors).")
    # 5 min, not 1: at 1-min rows the sensors' correlated noise makes every one of them "slow" (judged by
    # its rate, see early_warning.py) and a slow wear ramp stayed unseen until after its alarm (measured)
    grid_s: int = Field(300, ge=1, le=3600, description="Early warning: rows are per-sensor medians over this grid.")
    # two days, not one: a one-day reference learned one day's weather and noise, and fault-free simulated
    # weeks then alarmed after 54-80 h; with two days after 120-127 h, and wear still ~67 h before its alarm
    reference_h: float = Field(48.0, gt=0, description="Early warning: hours of data from the first row the watch "
                               "sees for an asset, taken as normal operation.")
    reference_periods: dict[str, tuple[datetime, datetime]] = Field(
        default_factory=dict, description="Early warning: a configured reference period by asset id (overrides "
        "reference_h).")
    persistence_k: int = Field(5, ge=1, description="An anomaly needs k of the last n rows over the threshold.")
    persistence_n: int = Field(10, ge=1, description="... the n of k of n (rows of grid_s).")
    early_warning_config: dict[str, int | float] = Field(
        default_factory=lambda: {"rate_window": 12}, description="Overrides of the model's parameters (alpha, "
        "rate_window in grid rows, shrinkage, margin, spread_margin).")
    anomaly_severity: Literal["info", "warning", "alarm"] = Field("warning", description="Severity of an early-warning alert.")
