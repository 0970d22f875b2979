"""Simulator: realistic, deterministic signals; injected faults are what site_check then finds."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tools.base import call
from tools.site import load_site_profile
from tools.sensors.simulator import Fault, SiteSimulator, simulate
from tools.sensors.store import SensorStore, from_ms
from tools.sensors.tools import SiteCheck

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
START = datetime(2025, 4, 14, 16, 0, tzinfo=UTC)  # 2025-04-15 00:00 at the site, mid-April, fruiting
HOURS = 48
END = START + timedelta(hours=HOURS)


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


@pytest.fixture(scope="module")
def runs(site, tmp_path_factory):
    """One 48-hour backfill per scenario, shared by the tests below."""
    out = {}
    for name, faults in {"none": [], "heater": ["heater_failure:GH-1"], "vent": ["vent_stuck"],
                         "bearing": ["bearing_wear:P-101"]}.items():
        store = SensorStore(tmp_path_factory.mktemp(name) / "sensors.sqlite")
        report = simulate(site, store, HOURS, faults, seed=7, start=START)
        out[name] = (store, report)
    yield out
    for store, _ in out.values():
        store.close()


def site_check(site, store, **args):
    res = call(SiteCheck(site, store, clock=lambda: END), {"hours": HOURS, **args})
    assert res.ok, res.error
    return res


def local_hour(site, ms):
    return from_ms(ms, site.tz).hour


def test_backfill_is_fast_and_complete(runs):
    store, report = runs["none"]
    steps = HOURS * 60 + 1
    assert report.mode == "store" and report.skipped_sensors == []
    assert report.readings == store.count() == steps * 24 + 2 * 2  # + one light integral per house and day
    assert report.seconds < 10 and "readings of 26 sensors" in report.summary


def test_same_seed_same_signals_other_seed_other_signals(site):
    def first(seed):
        sim = SiteSimulator(site, START, 2, seed=seed)
        return [(r.sensor_id, r.ts, r.value) for _, rs in sim for r in rs]

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_no_fault_no_alarms(site, runs):
    store, _ = runs["none"]
    res = site_check(site, store)
    assert res.data["count"] == 0 and res.data["no_data"] == [], res.summary
    assert res.summary.startswith("No excursions beyond alarm limits")


def test_diurnal_climate_irrigation_and_pump(site, runs):
    store, _ = runs["none"]
    ts, temp = store.series("GH-1-TEMP", START, END)
    _, rh = store.series("GH-1-RH", START, END)
    _, co2 = store.series("GH-1-CO2", START, END)
    _, par = store.series("GH-1-PAR", START, END)
    hours = np.array([local_hour(site, t) for t in ts])
    day, night = (hours >= 10) & (hours < 16), (hours >= 0) & (hours < 4)
    assert 16 <= temp[night].mean() <= 18 and 21 <= temp[day].mean() <= 26  # night / day setpoints
    assert np.corrcoef(temp[hours >= 6], rh[hours >= 6])[0, 1] < -0.3  # humidity falls as the air warms
    assert par[night].max() == 0 and par[day].mean() > 400
    morning, noon = (hours >= 7) & (hours < 9), (hours >= 12) & (hours < 14)
    assert co2[morning].max() > 800 > co2[noon].mean()  # dosed while the vents are shut, diluted when open
    assert 500 < co2[night].mean() < 700  # builds up at night without dosing
    _, wc = store.series("GH-1-WC", START, END)
    rising = np.diff(wc) > 0.4  # a 4-minute shot adds 3.5 points: the saw-tooth's rising edges
    shots = np.count_nonzero(rising[1:] & ~rising[:-1])
    assert 10 <= shots <= 60, shots  # about one shot per 20–60 min of daylight
    dli = store.series("GH-1-DLI", START, END)[1]
    assert len(dli) == 2 and all(15 <= v <= 32 for v in dli)  # fruiting target 20–30 mol/m²/d
    flow_ts, flow = store.series("FT-101", START, END)
    running = flow > 20
    assert running.any() and not running.all() and not running[[local_hour(site, t) < 5 for t in flow_ts]].any()
    _, vib = store.series("VT-101", START, END)
    assert 1.4 < vib[running].mean() < 2.0


def test_heater_failure_gives_a_night_low_temperature_excursion(site, runs):
    store, _ = runs["heater"]
    res = site_check(site, store)
    temp = [x for x in res.data["excursions"] if x["sensor_id"] == "GH-1-TEMP"]
    assert temp and all(x["direction"] == "low" for x in temp)
    assert any(x["period"] == "night" and x["severity"] in ("alarm", "emergency") for x in temp)
    assert {x["zone"] for x in res.data["excursions"]} == {"GH-1"}  # GH-2 still heats
    assert res.data["excursions"][0]["severity"] == "emergency" and res.summary.startswith(f"{res.data['count']} excursion")
    assert "emergency GH-1-TEMP low" in res.summary


def test_vent_stuck_gives_hot_humid_days(site, runs):
    store, _ = runs["vent"]
    found = {(x["sensor_id"], x["direction"]) for x in site_check(site, store).data["excursions"]}
    assert ("GH-1-TEMP", "high") in found and ("GH-1-RH", "high") in found
    assert not any(s.startswith("GH-2") for s, _ in found)


def test_bearing_wear_goes_through_alarm_to_trip(site, runs):
    store, _ = runs["bearing"]
    res = site_check(site, store, target="P-101")
    vib = next(x for x in res.data["excursions"] if x["sensor_id"] == "VT-101")
    assert vib["severity"] == "trip" and vib["limit"] == "trip_high" and vib["worst_value"] > 7.1
    assert vib["reached"]["alarm"] < vib["reached"]["trip"]
    assert res.data["excursions"][0]["sensor_id"] == "VT-101"
    bearing = [x for x in res.data["excursions"] if x["sensor_id"] in ("TT-101", "TT-102")]
    assert bearing and bearing[0]["worst_value"] > 80  # bearing temperature follows
    # the trip stopped the pump for the rest of the run
    trip_at = datetime.fromisoformat(vib["reached"]["trip"])
    _, flow = store.series("FT-101", trip_at + timedelta(minutes=2), END)
    assert len(flow) > 0 and flow.max() == 0
    assert not [x for x in site_check(site, runs["none"][0], target="P-101").data["excursions"]]


def test_fault_parsing_and_validation(site):
    assert Fault.parse("bearing_wear:P-101@6") == Fault("bearing_wear", "P-101", 6.0)
    assert Fault.parse("heater_failure") == Fault("heater_failure", None, 0.0)
    with pytest.raises(ValueError, match="unknown fault 'flood'; faults: heater_failure, vent_stuck, bearing_wear"):
        SiteSimulator(site, START, 1, ["flood"])
    with pytest.raises(ValueError, match="unknown target 'GH-9'; choose from GH-1, GH-2"):
        SiteSimulator(site, START, 1, ["heater_failure:GH-9"])
    with pytest.raises(ValueError, match="bad fault"):
        Fault.parse("vent_stuck:GH-1@noon")
    assert SiteSimulator(site, START, 1, ["vent_stuck"]).faults == [Fault("vent_stuck", "GH-1", 0.0)]


def test_fault_start_time_is_respected(site, tmp_path):
    store = SensorStore(tmp_path / "s.sqlite")
    simulate(site, store, 30, ["heater_failure:GH-2@24"], seed=1, start=START)  # fails on the second night only
    found = store.excursions(site, ["GH-2-TEMP"], START, START + timedelta(hours=30))
    assert found and all(x.start >= int((START + timedelta(hours=24)).timestamp() * 1000) for x in found)
    store.close()
