"""Time left until a limit: right on a known rise, says "not expected" for a flat signal and
"already" beyond it, works downwards, and its range covers the real crossing of simulated wear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tools.errors import ToolInputError
from tools.watch.forecast import DAY_S, _buckets, forecast_crossing

HOUR_MS = 3_600_000
SAMPLE = Path(__file__).resolve().parents[3] / "knowledge" / "samples" / "site-profile.toml"


def series(days: float, level, noise: float = 0.05, seed: int = 0, step_s: int = 60):
    rng = np.random.default_rng(seed)
    ts = np.arange(0, int(days * DAY_S), step_s, dtype=np.int64) * 1000
    t_d = ts / 1000 / DAY_S
    return ts, level(t_d) + rng.normal(0, noise, len(ts))


def test_a_steady_rise_is_forecast_with_a_range_that_holds_the_truth():
    ts, v = series(3, lambda d: 2.0 + 0.5 * d)  # 3.5 now, 4.5 in 2 days
    f = forecast_crossing(ts, v, 4.5)
    assert f.model == "linear" and f.rate_per_day == pytest.approx(0.5, rel=0.05)
    assert f.eta_s / DAY_S == pytest.approx(2.0, rel=0.1)
    assert f.eta_low_s <= 2 * DAY_S <= f.eta_high_s
    assert f.message("VT-101", "alarm", "mm/s").startswith("VT-101 reaches its 4.5 mm/s alarm in about 48 h")
    f.eta_s, f.eta_low_s, f.eta_high_s = 5 * DAY_S, 3 * DAY_S, 8 * DAY_S
    assert f.message("VT-101", "alarm", "mm/s") == "VT-101 reaches its 4.5 mm/s alarm in about 5 days (3–8 days) at the current rate"
    f.eta_high_s = None
    assert "(3 days – more than 30 days)" in f.message("VT-101", "alarm", "mm/s")


def test_accelerating_wear_is_caught_by_the_curve():
    ts, v = series(2.5, lambda d: 2.0 + 0.3 * d * d, noise=0.02)  # reaches 4.7 at day 3: half a day after now
    f = forecast_crossing(ts, v, 4.7)
    assert f.model == "quadratic"
    assert f.eta_low_s <= 0.5 * DAY_S <= f.eta_high_s and f.eta_s == pytest.approx(0.5 * DAY_S, rel=0.25)


def test_flat_signal_is_not_expected_to_cross_and_beyond_is_already():
    ts, v = series(3, lambda d: 2.0 + 0 * d, noise=0.1)
    f = forecast_crossing(ts, v, 4.5)
    assert f.eta_s is None and "is not expected to reach its 4.5 alarm within 30 days" in f.message("VT-101", "alarm")
    f = forecast_crossing(ts, v + 3, 4.5)
    assert f.eta_s == 0 and f.message("VT-101", "alarm", "mm/s") == "VT-101 is already above its 4.5 mm/s alarm"


def test_a_falling_value_towards_a_low_limit():
    ts, v = series(2, lambda d: 6.0 - 1.0 * d)  # 4.0 now, 3.0 in a day
    f = forecast_crossing(ts, v, 3.0, side="low")
    assert f.eta_s / DAY_S == pytest.approx(1.0, rel=0.1) and f.rate_per_day == pytest.approx(-1.0, rel=0.05)
    assert "falls to its 3 low" in f.message("PT-101", "low")


def test_bad_input_and_too_little_data():
    with pytest.raises(ToolInputError, match="side"):
        forecast_crossing(np.arange(3), np.arange(3.0), 1.0, side="up")
    with pytest.raises(ToolInputError, match="same length"):
        forecast_crossing(np.arange(3), np.arange(4.0), 1.0)
    ts, v = series(0.2, lambda d: d)  # under 5 hourly buckets
    assert forecast_crossing(ts, v, 10.0) is None
    assert forecast_crossing(np.array([]), np.array([]), 1.0) is None


def test_simulated_bearing_wear_crossing_is_inside_the_range(tmp_path):
    """The simulator's wear grows with the pump's running hours (8 h a day here): 2 days before
    the hourly median vibration crosses its alarm, the range holds that moment."""
    from tools.sensors.simulator import simulate
    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile

    site = load_site_profile(SAMPLE)
    start = datetime(2025, 4, 14, 16, 0, tzinfo=UTC)
    with SensorStore(tmp_path / "sensors.sqlite") as store:
        simulate(site, store, 24 * 8, ["bearing_wear:P-101@12"], seed=7, start=start, step_s=300)
        ts, v = store.series("VT-101", start, start + timedelta(days=8))
    ts, v = np.asarray(ts), np.asarray(v)
    running = v > 0.5
    bt, bv = _buckets((ts[running] - ts[0]) / 1000.0, v[running], 3600)
    crossing = ts[0] + bt[bv >= 4.5][0] * 1000
    now = crossing - 48 * HOUR_MS
    window = running & (ts <= now) & (ts > now - 3 * DAY_S * 1000)
    f = forecast_crossing(ts[window], v[window], 4.5, now_ms=int(now))
    assert f.eta_low_s <= 48 * 3600 <= f.eta_high_s
    assert 24 * 3600 <= f.eta_s <= 96 * 3600
