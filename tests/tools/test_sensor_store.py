"""Sensor store: WAL + WITHOUT ROWID, batched writes, retention, latest / buckets / trend, excursions."""

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.site import load_site_profile
from tools.sensors.store import Reading, SensorStore, from_ms, parse_quality, parse_ts, to_ms

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
T0 = datetime(2025, 4, 14, 16, 0, tzinfo=UTC)  # 2025-04-15 00:00 at the site (UTC+8): night
MIN = 60_000






def series(sensor, values, start=T0, step_ms=MIN, quality=0):
    t = to_ms(start)
    return [Reading(sensor, t + i * step_ms, float(v), quality) for i, v in enumerate(values) if v is not None]


def test_schema_is_wal_and_without_rowid(store):
    store.insert(series("X", [1]))
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'readings'").fetchone()[0]
    assert "WITHOUT ROWID" in sql and "PRIMARY KEY (sensor_id, ts)" in sql
    conn.close()


def test_latest_and_replace_on_same_key(store):
    store.insert(series("A", [1, 2, 3]) + series("B", [10]))
    store.insert([Reading("A", to_ms(T0) + 2 * MIN, 30.0, 1)])  # same (sensor, ts): replaced
    latest = store.latest(["A", "B", "C"])
    assert latest["A"] == Reading("A", to_ms(T0) + 2 * MIN, 30.0, 1)
    assert latest["B"].value == 10 and "C" not in latest
    assert store.latest(["A"], before=to_ms(T0) + MIN)["A"].value == 2
    assert store.count("A") == 3 and store.count() == 4
    assert store.sensor_ids() == ["A", "B"]


def test_buckets_min_mean_max_last_and_bad_quality_left_out(store):
    store.insert(series("A", range(120)))  # 0..119, one per minute
    store.insert([Reading("A", to_ms(T0) + 30 * MIN + 1, 999.0, 2)])  # bad: kept, not counted
    b = store.buckets("A", T0, T0 + timedelta(hours=2), 3600)
    assert [(x.count, x.min, x.mean, x.max, x.last) for x in b] == [(60, 0, 29.5, 59, 59), (60, 60, 89.5, 119, 119)]
    assert b[1].start == to_ms(T0) + 60 * MIN and b[1].last_ts == to_ms(T0) + 119 * MIN
    assert store.count("A") == 121
    gap = SensorStore(store.path)  # a second store object on the same file sees the same data
    assert len(gap.buckets("A", T0, T0 + timedelta(minutes=90), 1800)) == 3
    gap.close()


def test_trend_is_least_squares_per_hour(store):
    store.insert(series("UP", [10 + 2 * i / 60 for i in range(180)]))  # +2 per hour
    store.insert(series("FLAT", [5] * 10) + series("ONE", [1]))
    t = store.trend("UP", T0, T0 + timedelta(hours=3))
    assert t.slope_per_hour == pytest.approx(2.0, rel=1e-9) and t.r2 == pytest.approx(1.0) and t.count == 180
    assert store.trend("FLAT", T0, T0 + timedelta(hours=1)).slope_per_hour == pytest.approx(0.0)
    assert store.trend("ONE", T0, T0 + timedelta(hours=1)).slope_per_hour is None


def test_retention_deletes_only_old_readings(store):
    now = T0 + timedelta(days=10)
    store.insert(series("A", [1] * 5, start=T0, step_ms=86_400_000) + series("B", [2] * 3, start=now - timedelta(hours=3),
                                                                             step_ms=3_600_000))
    assert store.delete_older_than(7, now=now) == 3  # A on days 0, 1 and 2 are older than 7 days
    assert store.count("A") == 2 and store.count("B") == 3


def test_timestamp_and_quality_parsing():
    ms = to_ms(datetime(2025, 4, 15, 0, 0, tzinfo=UTC))
    assert parse_ts(ms) == ms and parse_ts(ms / 1000) == ms and parse_ts(str(ms)) == ms
    assert parse_ts("2025-04-15T00:00:00Z") == ms == parse_ts("2025-04-15T08:00:00+08:00") == parse_ts("2025-04-15 00:00")
    for bad in ("yesterday", None, True, float("nan"), -5, [1]):
        with pytest.raises(ValueError):
            parse_ts(bad)
    assert [parse_quality(q) for q in (None, "GOOD", "uncertain", "bad", 2, "1")] == [0, 0, 1, 2, 2, 1]
    with pytest.raises(ValueError):
        parse_quality("excellent")
    assert from_ms(ms) == datetime(2025, 4, 15, tzinfo=UTC)


def test_writer_and_readers_in_threads(store):
    errors = []

    def write():
        try:
            for k in range(20):
                store.insert(series("W", range(500), start=T0 + timedelta(days=k)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def read():
        try:
            for _ in range(50):
                store.latest(["W"])
                store.buckets("W", T0, T0 + timedelta(days=30), 86_400)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count("W") == 10_000


def test_a_threads_connection_is_closed_when_the_thread_ends(store):
    """The agent reads sensors from short-lived pool threads: their connections must not pile up
    (they held the server's memory growing with every question)."""
    store.insert(series("W", range(10)))
    for _ in range(60):
        t = threading.Thread(target=lambda: store.latest(["W"]))
        t.start()
        t.join()
    assert store.open_connections <= 2  # this thread's, and at most one not yet collected
    store.close()
    assert store.open_connections == 0
    assert store.latest(["W"])["W"].value == 9.0  # a closed store opens a new connection on use


def test_batched_insert_rate(store):
    rows = [(f"S{i % 20}", to_ms(T0) + (i // 20) * 1000, float(i), 0) for i in range(100_000)]
    t = time.perf_counter()
    for k in range(0, len(rows), 5000):
        store.insert(rows[k:k + 5000])
    rate = len(rows) / (time.perf_counter() - t)
    assert store.count() == 100_000
    assert rate > 20_000, f"{rate:.0f} rows/s"


# -- excursions --------------------------------------------------------------------------------

def test_night_cold_spell_is_one_emergency_excursion(store, site):
    temps = [17] * 30 + [15, 14, 12.5, 11, 9.5, 9.2, 9.8, 11, 12.5, 14, 16.5] + [17] * 30
    store.insert(series("GH-1-TEMP", temps))
    found = store.excursions(site, ["GH-1-TEMP"], T0, T0 + timedelta(hours=2))
    assert len(found) == 1
    x = found[0]
    assert (x.severity, x.direction, x.limit_name, x.limit_value) == ("emergency", "low", "emergency_low", 10)
    assert x.start == to_ms(T0) + 32 * MIN  # first reading below 13
    assert x.end == to_ms(T0) + 39 * MIN  # first reading back above 13
    assert x.duration_s == 7 * 60 and x.worst_value == 9.2 and x.worst_ts == to_ms(T0) + 35 * MIN
    assert x.period == "night" and not x.ongoing and x.readings == 7
    assert x.reached == {"alarm": x.start, "emergency": to_ms(T0) + 34 * MIN}
    warn = store.excursions(site, ["GH-1-TEMP"], T0, T0 + timedelta(hours=2), "warning")
    assert len(warn) == 1 and warn[0].start == to_ms(T0) + 30 * MIN and warn[0].severity == "emergency"


def test_gaps_noise_and_day_night(store, site):
    # below the alarm, a 10-minute hole in the data, still below: one excursion
    store.insert(series("GH-1-TEMP", [12] * 5 + [None] * 10 + [12] * 5 + [17] * 5))
    one = store.excursions(site, ["GH-1-TEMP"], T0, T0 + timedelta(hours=1))
    assert len(one) == 1 and one[0].readings == 10 and one[0].duration_s == 20 * 60
    # the same with a 2-hour hole: two excursions
    store.insert(series("GH-2-TEMP", [12] * 5 + [None] * 120 + [12] * 5 + [17]))
    assert len(store.excursions(site, ["GH-2-TEMP"], T0, T0 + timedelta(hours=3))) == 2
    # noise chattering around a limit is one excursion, not twenty
    store.insert(series("GH-1-RH", ([86, 84] * 20), start=T0 + timedelta(hours=3)))
    chat = store.excursions(site, ["GH-1-RH"], T0, T0 + timedelta(hours=5), "warning")
    assert len(chat) == 1 and chat[0].readings == 20
    # day limits from 06:00 site time: 700 ppm CO2 is below the daytime dosing target, not an alarm
    day = T0 + timedelta(hours=8)
    store.insert(series("GH-2-CO2", [700] * 30, start=day))
    assert store.excursions(site, ["GH-2-CO2"], day, day + timedelta(hours=1), "warning")[0].limit_value == 800
    assert store.excursions(site, ["GH-2-CO2"], day, day + timedelta(hours=1)) == []


def test_delays_and_the_last_reading(store, site):
    # RH above 90 for 30 min is not an alarm (needs more than 1 h), for 2 h it is
    store.insert(series("GH-1-RH", [80] + [93] * 30 + [80] * 20 + [95] * 120 + [80]))
    found = store.excursions(site, ["GH-1-RH"], T0, T0 + timedelta(hours=4))
    assert len(found) == 1 and found[0].worst_value == 95 and found[0].severity == "alarm"
    assert found[0].reached["alarm"] == found[0].start + 3_600_000
    # ends out of range: ongoing, ends at the last reading
    store.insert(series("GH-2-TEMP", [17, 17, 11, 11]))
    x = store.excursions(site, ["GH-2-TEMP"], T0, T0 + timedelta(hours=1))[0]
    assert x.ongoing and x.end == to_ms(T0) + 3 * MIN


def test_stopped_pump_readings_are_not_judged(store, site):
    running = [11.6] * 10 + [0.0] * 10 + [11.6] * 10
    flow = [48] * 10 + [0] * 10 + [10] * 3 + [48] * 7  # no flow while stopped is fine; 10 m³/h running is not
    store.insert(series("IT-101", running) + series("FT-101", flow))
    found = store.excursions(site, ["FT-101"], T0, T0 + timedelta(hours=1))
    assert len(found) == 1 and found[0].start == to_ms(T0) + 20 * MIN and found[0].worst_value == 10
    # the trip is "below 15 m³/h for 60 s": three minutes of it count, from 60 s in
    assert (found[0].severity, found[0].limit_name) == ("trip", "trip_low")
    assert found[0].reached == {"alarm": found[0].start, "trip": found[0].start + 60_000}
    store.insert(series("PT-102", [3.3] * 20 + [1.2] + [3.3] * 9))  # 60 s below 1.5 bar(g): the trip needs 30 s
    store.insert(series("PT-101", [0.2] * 20 + [-0.5] + [0.2] * 9, step_ms=5_000))  # 5 s below -0.30: needs 10 s
    assert store.excursions(site, ["PT-102"], T0, T0 + timedelta(hours=1))[0].severity == "trip"
    assert store.excursions(site, ["PT-101"], T0, T0 + timedelta(hours=1))[0].severity == "alarm"


def test_ranking_across_sensors(store, site):
    store.insert(series("GH-1-TEMP", [17, 11, 11, 17]) + series("GH-2-TEMP", [17, 9, 9, 17])
                 + series("VT-101", [1.6, 5.0, 5.0, 5.0, 1.6]) + series("IT-101", [11.6] * 5))
    found = store.excursions(site, None, T0, T0 + timedelta(hours=1))
    assert [(x.sensor_id, x.severity) for x in found] == [("GH-2-TEMP", "emergency"), ("VT-101", "alarm"),
                                                          ("GH-1-TEMP", "alarm")]
    with pytest.raises(ValueError, match="min_severity"):
        store.excursions(site, None, T0, T0 + timedelta(hours=1), "panic")
