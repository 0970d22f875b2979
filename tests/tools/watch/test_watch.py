"""The site watch on simulated data: limits, instrument faults and early warning raised as alerts,
pass by pass, without duplicates, across a restart, and past a broken sensor series."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore
from tools.site import load_site_profile
from tools.watch.alerts import AlertStore
from tools.watch.watch import CHECKS, SiteWatch, WatchSettings

PROFILE = Path(__file__).resolve().parents[3] / "knowledge" / "samples" / "site-profile.toml"
START = datetime(2026, 4, 1, tzinfo=UTC)
S0 = int(START.timestamp() * 1000)
HOUR = 3_600_000


@pytest.fixture(scope="module")
def site():
    return load_site_profile(PROFILE)


def _run(site, tmp: Path, hours: float, faults, pass_h: float = 6.0, seed: int = 0):
    store = SensorStore(tmp / "sensors.sqlite")
    simulate(site, store, hours, faults, seed=seed, start=START)
    alerts = AlertStore(tmp / "alerts.sqlite")
    watch = SiteWatch(site, store, alerts, WatchSettings(lookback_h=pass_h, reference_h=24), models_dir=tmp / "watch")
    reports = [watch.run_once(S0 + int(h * HOUR)) for h in np.arange(pass_h, hours + 1e-9, pass_h)]
    return store, alerts, watch, reports


def _by_cause(alerts: AlertStore) -> dict:
    return {a.cause: a for a in alerts.list(limit=200).alerts}


@pytest.fixture(scope="module")
def bearing(site, tmp_path_factory):
    return _run(site, tmp_path_factory.mktemp("bearing"), 96, ["bearing_wear:P-101@24"])


def test_bearing_wear_is_alerted_before_the_vibration_alarm(bearing):
    store, alerts, _, reports = bearing
    found = _by_cause(alerts)
    ts, v = store.series("VT-101", S0, S0 + 97 * HOUR)
    alarm_at = int(ts[np.flatnonzero(v > 4.5)[0]])  # OM-P-101 §3.1: alarm above 4.5 mm/s
    anomaly = found["anomaly:P-101"]
    assert anomaly.target == "P-101" and anomaly.first_seen < alarm_at - 24 * HOUR  # a day ahead at least
    top = [t["sensor"] for t in anomaly.explanation["top_sensors"]]
    assert set(top) & {"VT-101", "IT-101", "TT-101"} and top[0] in anomaly.title
    limit = found["limit_high:VT-101"]
    assert limit.target == "P-101" and limit.severity in ("alarm", "critical")
    assert alarm_at <= limit.first_seen <= alarm_at + HOUR
    assert limit.explanation["limit"]["source"].startswith("asset P-101 (OM-P-101 §3.1")
    assert limit.explanation["limit"]["documents"] and limit.explanation["readings"]["worst"] > 4.5
    assert "OM-P-101" in limit.title
    # opened once, then updated or escalated: never a second alert for the same key
    opened = [a["cause"] for r in reports for a in r.opened]
    assert len(opened) == len(set(opened))
    assert all(not r.errors for r in reports)
    assert reports[0].models["P-101"]["state"] == "learning" and reports[-1].models["P-101"]["state"] == "watching"
    assert not [c for c in found if c.startswith("sensor_")]  # no instrument fault in a clean simulation


def test_rerun_and_restart_do_not_duplicate(bearing, site):
    store, alerts, watch, _ = bearing
    before = {a.id: a.count for a in alerts.list(limit=200).alerts}
    again = watch.run_once(S0 + 96 * HOUR)  # the same moment: nothing new to look at
    assert not again.opened and not again.escalated
    model_file = watch.models_dir / "P-101.json"
    saved = json.loads(model_file.read_text())
    assert saved["format"] == "onsite.asset_watch/1" and saved["reference_ms"][0] >= S0
    restarted = SiteWatch(site, store, alerts, WatchSettings(lookback_h=6), models_dir=watch.models_dir)
    assert restarted.cursor == watch.cursor
    report = restarted.run_once(S0 + 96 * HOUR + 1000)
    assert not report.opened and not report.escalated and not report.errors
    assert restarted.asset_watch("P-101", []).reference == tuple(saved["reference_ms"])  # reloaded, not refitted
    assert {a.id for a in alerts.list(limit=200).alerts} == set(before)
    # a restart that lost its cursor looks back over alerts already raised: updated, not opened again
    (watch.models_dir / "state.json").unlink()
    fresh = SiteWatch(site, store, alerts, WatchSettings(lookback_h=12), models_dir=watch.models_dir)
    report = fresh.run_once(S0 + 96 * HOUR)
    assert not report.opened and report.updated >= 1


def test_fault_free_run_raises_no_process_alert(site, tmp_path):
    # 48 simulated hours, seed 0: no limit, anomaly or instrument alert. (Measured over a simulated
    # week, the pump's normal vibration creep gives at most one anomaly alert per week and seed,
    # which the target, <= 1 false alert per zone per week, allows.)
    _, alerts, _, reports = _run(site, tmp_path, 48, [], pass_h=4)
    assert _by_cause(alerts) == {}
    assert reports[-1].findings == {"limits": 0, "sensor_faults": 0, "early_warning": 0, "forecast": 0}
    assert all(r.ms < 2000 for r in reports)


def test_heater_failure_raises_a_zone_alert_past_a_broken_sensor(site, tmp_path):
    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 36, ["heater_failure:GH-1@6"], seed=0, start=START)
    # a broken series: text where numbers belong (SQLite keeps it), which fails every read of it
    store.insert([("GH-1-RH", S0 + 10 * HOUR + 1, "n/a", 0)])
    alerts = AlertStore(tmp_path / "alerts.sqlite")
    watch = SiteWatch(site, store, alerts, WatchSettings(lookback_h=12), models_dir=tmp_path / "watch")
    reports = [watch.run_once(S0 + h * HOUR) for h in (12, 24, 36)]
    found = _by_cause(alerts)
    cold = found["limit_low:GH-1-TEMP"]
    assert cold.target == "GH-1" and cold.severity in ("alarm", "critical")
    assert "CG-TOM-01" in cold.explanation["limit"]["source"] and cold.explanation["readings"]["worst"] < 13
    assert "GH-2" not in {a.target for a in found.values()}
    errors = [e for r in reports for e in r.errors]
    assert errors and all("GH-1-RH" in e for e in errors)  # said, and only that sensor skipped


def test_wear_is_forecast_to_reach_the_alarm_before_it_does(bearing):
    store, alerts, _, _ = bearing
    ts, v = store.series("VT-101", S0, S0 + 97 * HOUR)
    alarm_at = int(ts[np.flatnonzero(v > 4.5)[0]])
    forecast = _by_cause(alerts)["forecast_high:VT-101"]
    assert forecast.target == "P-101" and forecast.first_seen < alarm_at
    assert forecast.title.startswith("VT-101 reaches its 4.5 mm/s alarm in about ") and "OM-P-101" in forecast.title
    assert forecast.explanation["type"] == "forecast" and 0 < forecast.explanation["eta_s"] <= 168 * 3600


def test_a_check_is_one_function_in_the_list(site, tmp_path):
    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 2, [], seed=0, start=START)

    def custom(w, start, end, now_ms, errors):
        return [{"target": "P-101", "cause": "custom:P-101", "severity": "warning", "title": "a site's own rule",
                 "at": now_ms}]

    alerts = AlertStore(tmp_path / "alerts.sqlite")
    watch = SiteWatch(site, store, alerts, models_dir=tmp_path / "watch", checks=CHECKS + [("custom", custom)])
    report = watch.run_once(S0 + 2 * HOUR)
    assert report.findings["custom"] == 1 and report.opened[0]["cause"] == "custom:P-101"


def test_run_forever_passes_until_stopped(site, tmp_path):
    import threading

    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 3, ["heater_failure:GH-1"], seed=0)  # ends now
    store.insert([("GH-2-RH", int(datetime.now(UTC).timestamp() * 1000) - 60_000, "n/a", 0)])  # broken series
    watch = SiteWatch(site, store, AlertStore(tmp_path / "alerts.sqlite"), WatchSettings(interval_s=1),
                      models_dir=tmp_path / "watch")
    stop, reports = threading.Event(), []

    def seen(report):
        reports.append(report)
        if len(reports) == 2:
            stop.set()

    thread = threading.Thread(target=watch.run_forever, args=(stop, seen), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive() and len(reports) == 2
    assert any("GH-2-RH" in e for e in reports[0].errors)  # logged and passed over, the loop went on
    assert reports[1].start_ms == reports[0].end_ms  # the second pass starts where the first ended
    assert "sensor_faults" in reports[0].findings and "sensor_faults" not in reports[1].findings  # every 5 min


def test_the_fast_lane_raises_a_limit_alert_between_passes_and_the_pass_only_updates_it(site, tmp_path):
    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 3, [], seed=0, start=START)
    watch = SiteWatch(site, store, AlertStore(tmp_path / "alerts.sqlite"), WatchSettings(lookback_h=3),
                      models_dir=tmp_path / "watch")
    now = S0 + 3 * HOUR
    watch.run_once(now)
    cursor = watch.cursor
    quiet = watch.run_fast(now + 1_000)  # nothing new beyond a level: no limit check at all
    assert quiet.findings == {} and not quiet.opened and watch.cursor == cursor
    store.insert([("TT-101", now + 2_000, 85.0, 0)])  # bearing temperature over its 80 °C alarm (OM-P-101 §3.1)
    fast = watch.run_fast(now + 3_000)
    assert [a["cause"] for a in fast.opened] == ["limit_high:TT-101"] and watch.cursor == cursor
    assert watch.run_fast(now + 4_000).findings == {}  # the same reading is not looked at twice
    full = watch.run_once(now + 60_000)
    assert not full.opened and full.updated >= 1  # the pass sees the same excursion: one alert


def test_run_forever_raises_a_limit_alert_long_before_the_next_pass(site, tmp_path):
    import threading
    import time

    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 3, [], seed=0)  # ends now
    alerts = AlertStore(tmp_path / "alerts.sqlite")
    watch = SiteWatch(site, store, alerts, WatchSettings(interval_s=600, fast_limits_s=0.2),
                      models_dir=tmp_path / "watch")
    stop, passes = threading.Event(), []
    thread = threading.Thread(target=watch.run_forever, args=(stop, passes.append), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not passes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert passes, "the first pass did not finish"
        store.insert([("TT-101", int(time.time() * 1000), 85.0, 0)])
        deadline = time.monotonic() + 30  # the next pass is 600 s away: only the fast lane can raise it
        while not alerts.list(target="P-101").alerts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.cause for a in alerts.list(target="P-101").alerts] == ["limit_high:TT-101"]
        # raised between passes, by the fast lane (which reports what it opened, and checks limits only)
        assert len(passes) == 2 and set(passes[1].findings) == {"limits"} and passes[1].opened
    finally:
        stop.set()
        thread.join(timeout=20)


def test_a_reading_the_instrument_cannot_make_is_its_fault_not_a_process_alarm(site, tmp_path):
    store = SensorStore(tmp_path / "sensors.sqlite")
    simulate(site, store, 3, [], seed=0, start=START)
    watch = SiteWatch(site, store, AlertStore(tmp_path / "alerts.sqlite"), WatchSettings(lookback_h=3, faults_every_s=0),
                      models_dir=tmp_path / "watch")
    now = S0 + 3 * HOUR
    watch.run_once(now)
    store.insert([("GH-2-TEMP", now + 60_000 * i, -150.0, 0) for i in range(1, 4)])  # a broken RTD
    assert watch.run_fast(now + 4 * 60_000).opened == []  # not a cold glasshouse
    report = watch.run_once(now + 5 * 60_000)
    assert [a["cause"] for a in report.opened] == ["sensor_out_of_range:GH-2-TEMP"]
