"""The simulator's instrument faults change only what the sensor reports, each as its kind says;
filter_clog and ec_drift move the process towards its alarm."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tools.site import load_site_profile
from tools.sensors.sim_faults import EC_DRIFT_PER_H, SPIKE_EVERY_H
from tools.sensors.simulator import SiteSimulator
from tools.watch.settings import DEFAULT_RANGES

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
START = datetime(2026, 4, 1, tzinfo=UTC)  # 08:00 at the site
S0 = int(START.timestamp() * 1000)


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


def series(site, hours, faults, seed=3):
    out: dict[str, list] = {}
    for _, readings in SiteSimulator(site, START, hours, faults, seed=seed):
        for r in readings:
            out.setdefault(r.sensor_id, []).append((r.ts, r.value))
    return {k: (np.array([t for t, _ in v]), np.array([x for _, x in v])) for k, v in out.items()}


@pytest.fixture(scope="module")
def clean(site):
    return series(site, 8, [])


def after(s, h):
    ts, v = s
    return v[ts >= S0 + h * 3_600_000]


ALL = {"sensor_flatline": "GH-1-TEMP", "sensor_stuck": "GH-1-CO2", "sensor_dropout": "GH-2-RH",
       "sensor_spike": "TT-101", "sensor_out_of_range": "GH-2-TEMP"}


@pytest.fixture(scope="module")
def faulty(site):
    return series(site, 8, [f"{k}:{v}@2" for k, v in ALL.items()])


def test_instrument_faults_leave_every_other_sensor_as_it_was(clean, faulty):
    for sid in clean:
        if sid not in ALL.values():
            assert np.array_equal(clean[sid][1], faulty[sid][1]), sid
    assert np.array_equal(clean["GH-1-TEMP"][1][:100], faulty["GH-1-TEMP"][1][:100])  # before the onset


def test_each_instrument_fault_reports_what_its_kind_says(clean, faulty):
    f = faulty
    flat = after(f["GH-1-TEMP"], 2)
    assert flat.size > 300 and np.all(flat == flat[0]) and np.ptp(after(clean["GH-1-TEMP"], 2)) > 1
    stuck = after(f["GH-1-CO2"], 2)
    assert np.ptp(stuck) == 1 and len(set(stuck)) == 2  # the last digit flickers, nothing else moves
    assert after(f["GH-2-RH"], 2).size == 0 and after(f["GH-2-RH"], -1).size > 100  # silent from the onset
    jump = after(f["TT-101"], 0) - after(clean["TT-101"], 0)
    hits = np.flatnonzero(jump != 0)
    assert list(hits) == [120, 120 + 60 * SPIKE_EVERY_H, 120 + 120 * SPIKE_EVERY_H] and np.all(
        jump[hits] == pytest.approx(9.0))  # 30 sigma
    lo, hi = DEFAULT_RANGES["air_temperature"]
    assert np.all(after(f["GH-2-TEMP"], 2) == lo - (hi - lo))


def test_default_targets_and_bad_targets(site):
    sim = SiteSimulator(site, START, 1, ["sensor_spike", "sensor_stuck@3", "filter_clog", "ec_drift:GH-2"])
    assert [(f.kind, f.target) for f in sim.faults] == [("sensor_spike", "TT-101"), ("sensor_stuck", "GH-1-CO2"),
                                                        ("filter_clog", "P-101"), ("ec_drift", "GH-2")]
    with pytest.raises(ValueError, match="unknown target 'NOPE'"):
        SiteSimulator(site, START, 1, ["sensor_dropout:NOPE"])
    with pytest.raises(ValueError, match="unknown target 'GH-1'"):
        SiteSimulator(site, START, 1, ["filter_clog:GH-1"])


def test_filter_clog_drags_suction_below_its_alarm_while_the_pump_runs(site):
    s = series(site, 96, ["filter_clog:P-101@2"])
    ts, suction = s["PT-101"]
    _, current = s["IT-101"]
    _, flow = s["FT-101"]
    running = current > 2
    early, late = running & (ts < S0 + 14 * 3_600_000), running & (ts > S0 + 84 * 3_600_000)
    assert suction[early].mean() > 0.15 and suction[late].min() < -0.10  # the alarm (OM-P-101 §3.1)
    assert flow[late].mean() < flow[early].mean() - 5 and current[late].mean() < current[early].mean()


def test_ec_drift_raises_feed_ec_steadily_and_the_slab_follows(site):
    s = series(site, 30, ["ec_drift:GH-1@2"])
    ts, feed = s["GH-1-FEED-EC"]
    _, other = s["GH-2-FEED-EC"]
    rise = feed[-60:].mean() - feed[ts < S0 + 2 * 3_600_000].mean()
    assert rise == pytest.approx(EC_DRIFT_PER_H * 28, abs=0.2) and abs(other[-60:].mean() - other[:60].mean()) < 0.2
    _, slab = s["GH-1-SLAB-EC"]
    _, slab2 = s["GH-2-SLAB-EC"]
    assert slab[-60:].mean() - slab2[-60:].mean() > 0.8
