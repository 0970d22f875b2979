"""SensorService: every sensor with its status, one sensor's latest reading, bucketed series, and
the refusals (unknown sensor, bad windows, a store that cannot be read)."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tools.errors import NotFoundError, ToolError, ToolInputError
from tools.sensors.service import MAX_SERIES_DAYS, MAX_SERIES_POINTS, SensorService
from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore

START = datetime(2025, 4, 14, 16, 0, tzinfo=UTC)  # 00:00 at the site (UTC+8)
NOW = START + timedelta(hours=6)  # 06:00 at the site, the heater of GH-1 broken since midnight


@pytest.fixture(scope="module")
def store(site, tmp_path_factory):
    s = SensorStore(tmp_path_factory.mktemp("sensor-service") / "sensors.sqlite")
    simulate(site, s, 6, ["heater_failure:GH-1"], seed=7, start=START)
    yield s
    s.close()


@pytest.fixture(scope="module")
def service(site, store):
    return SensorService(site, store, clock=lambda: NOW)


def test_now_is_the_given_clock_and_defaults_to_the_real_time(site, store, service):
    assert service.now() == NOW
    before = datetime.now(UTC)
    assert before <= SensorService(site, store).now() <= datetime.now(UTC)


def test_list_has_every_profile_sensor_once_with_its_status(site, service):
    rows = service.list_sensors()
    assert [r["id"] for r in rows] == [s.id for s in site.sensors]
    temp = next(r for r in rows if r["id"] == "GH-1-TEMP")
    assert temp["zone"] == "GH-1" and temp["unit"] == "°C" and isinstance(temp["value"], float)
    assert temp["status"] in ("alarm", "emergency") and temp["stale"] is False
    assert temp["ts"].endswith("+08:00")
    assert {r["status"] for r in rows} <= {"normal", "warning", "alarm", "trip", "emergency", "no_data", "no_limits",
                                           "stopped", "bad_quality"}


def test_an_empty_store_lists_no_data(site, tmp_path):
    with SensorStore(tmp_path / "empty.sqlite") as empty:
        rows = SensorService(site, empty, clock=lambda: NOW).list_sensors()
    assert {r["status"] for r in rows} == {"no_data"} and all(r["value"] is None for r in rows)


def test_latest_is_judged_against_the_limits_in_force(service):
    data = service.sensor_latest("GH-1-TEMP")
    assert data["id"] == "GH-1-TEMP" and data["metric"] == "air_temperature" and data["zone"] == "GH-1"
    assert data["as_of"] == "2025-04-15T06:00:00+08:00" and data["age_s"] == 0
    assert data["direction"] == "low" and data["limits"]["alarm_low"] == 13 and "GH-1-TEMP" in data["summary"]
    assert "sensor_id" not in data


def test_unknown_sensor_is_not_found(service):
    for read in (service.sensor_latest, service.sensor_series):
        with pytest.raises(NotFoundError, match="no sensor 'NOPE-1' in the site profile"):
            read("NOPE-1")


def test_series_defaults_to_the_last_24_hours_in_5_minute_buckets(service):
    data = service.sensor_series("GH-1-TEMP")
    assert data["bucket_s"] == 300 and data["to"] == "2025-04-15T06:00:00+08:00"
    assert data["from"] == "2025-04-14T06:00:00+08:00"
    assert len(data["points"]) == 72  # the 6 simulated hours
    assert all(p["min"] <= p["mean"] <= p["max"] and p["count"] >= 1 for p in data["points"])
    assert data["limits_now"]["period"] in ("day", "night") and "alarm_low" in data["limits_now"]


def test_series_window_and_bucket_naive_times_are_site_local(service):
    data = service.sensor_series("GH-1-TEMP", start=datetime(2025, 4, 15, 2, 0), end=datetime(2025, 4, 15, 4, 0),
                                 bucket_s=1800)
    assert data["from"] == "2025-04-15T02:00:00+08:00" and data["to"] == "2025-04-15T04:00:00+08:00"
    assert data["bucket_s"] == 1800 and len(data["points"]) == 4
    week = service.sensor_series("GH-1-TEMP", start=NOW - timedelta(days=7))
    assert week["bucket_s"] == 1800  # chosen for at most 500 buckets


@pytest.mark.parametrize("window, words", [
    ({"start": NOW, "end": NOW - timedelta(hours=1)}, "'from' must be before 'to'"),
    ({"start": NOW - timedelta(days=MAX_SERIES_DAYS + 1)}, f"at most {MAX_SERIES_DAYS} days"),
    ({"bucket_s": 0}, "at least 1 second"),
    ({"bucket_s": 1}, f"86400 buckets asked; at most {MAX_SERIES_POINTS}"),
])
def test_bad_windows_are_refused(service, window, words):
    with pytest.raises(ToolInputError, match=words):
        service.sensor_series("GH-1-TEMP", **window)


def test_a_store_that_cannot_be_read_is_a_tool_error(site, tmp_path):
    path = tmp_path / "broken.sqlite"
    with SensorStore(path) as broken:
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE readings")  # a damaged database
        with pytest.raises(ToolError, match="readings"):
            SensorService(site, broken, clock=lambda: NOW).sensor_latest("GH-1-TEMP")
