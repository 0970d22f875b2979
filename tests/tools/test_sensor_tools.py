"""The sensor tools through the tool framework: arguments checked against the profile, readable results."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.base import ToolRegistry
from tools.site import load_site_profile
from tools.sensors.simulator import simulate
from tools.sensors.store import Reading, SensorStore, to_ms
from tools.sensors.tools import SensorHistory, SensorLatest, SiteCheck, age_words

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
START = datetime(2025, 4, 14, 16, 0, tzinfo=UTC)  # 00:00 at the site
NIGHT = START + timedelta(hours=27)  # 03:00 on the second night, heater broken since the start


def _sensor_tools(site, store, clock):
    return [SensorLatest(site, store, clock=clock), SensorHistory(site, store, clock=clock),
            SiteCheck(site, store, clock=clock)]


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


@pytest.fixture(scope="module")
def store(site, tmp_path_factory):
    s = SensorStore(tmp_path_factory.mktemp("tools") / "sensors.sqlite")
    simulate(site, s, 27, ["heater_failure:GH-1", "bearing_wear:P-101"], seed=7, start=START)
    yield s
    s.close()


@pytest.fixture(scope="module")
def registry(site, store):
    return ToolRegistry(_sensor_tools(site, store, lambda: NIGHT))


def test_registry_schemas_list_what_exists(registry):
    assert registry.names() == ["sensor_history", "sensor_latest", "site_check"]
    schemas = {s["name"]: s for s in registry.schemas()}
    assert all(not s["side_effects"] for s in schemas.values())
    latest = schemas["sensor_latest"]["parameters"]["properties"]["target"]
    assert {"GH-1", "P-101", "VT-101"} <= set(latest["enum"])
    history = schemas["sensor_history"]["parameters"]["properties"]
    assert "GH-1" not in history["sensor_id"]["enum"] and history["hours"]["maximum"] == 744
    assert None in schemas["site_check"]["parameters"]["properties"]["target"]["enum"]
    assert "Read-only" in schemas["site_check"]["description"]


def test_sensor_latest_zone(registry):
    res = registry.call("sensor_latest", {"target": "gh-1"})  # any letter case
    assert res.ok and res.data["target"] == "GH-1" and res.data["as_of"].endswith("+08:00")
    rows = {r["sensor_id"]: r for r in res.data["readings"]}
    temp = rows["GH-1-TEMP"]
    assert temp["status"] in ("alarm", "emergency") and temp["direction"] == "low" and temp["period"] == "night"
    assert temp["unit"] == "°C" and temp["age_s"] == 0 and not temp["stale"] and temp["limits"]["alarm_low"] == 13
    assert "GH-1-TEMP" in res.data["out_of_range"] and "GH-1-TEMP" in res.summary and "below" in res.summary
    assert rows["GH-1-PAR"]["status"] == "no_limits"
    assert rows["GH-1-DLI"]["stale"] is False  # sent once a day: 8 h old is fine
    json.dumps(res.to_dict())


def test_sensor_latest_stopped_pump_and_healthy_zone(registry):
    pump = registry.call("sensor_latest", {"target": "P-101"})
    assert pump.ok and {r["status"] for r in pump.data["readings"]} == {"stopped"}
    assert "P-101 stopped" in pump.summary and pump.data["out_of_range"] == []
    gh2 = registry.call("sensor_latest", {"target": "GH-2-TEMP"})
    assert gh2.ok and gh2.data["readings"][0]["status"] == "normal"
    # one reading is one reading, and a reading taken this minute is "just now", not "0 min old"
    assert gh2.summary.startswith("GH-2-TEMP: the reading is within limits (taken just now) — ")
    row = gh2.data["readings"][0]
    low, high = row["limits"]["low"], row["limits"]["high"]
    assert f"{row['value']:.1f} °C (normal {low:.1f}–{high:.1f}, {row['period']})" in gh2.summary  # the value is said


def test_sensor_latest_unknown_target_lists_what_exists(registry):
    res = registry.call("sensor_latest", {"target": "GH-9"})
    assert not res.ok and "unknown zone, asset or sensor 'GH-9'" in res.error
    assert "GH-1" in res.error and "P-101" in res.error and "VT-101" in res.error
    assert not registry.call("sensor_latest", {}).ok


def test_sensor_latest_stale_bad_and_missing(site, tmp_path):
    store = SensorStore(tmp_path / "s.sqlite")
    now = START + timedelta(hours=3)
    store.insert([Reading("GH-2-TEMP", to_ms(now - timedelta(hours=2)), 17.0),
                  Reading("GH-2-RH", to_ms(now), 99.0, 2)])
    tool = SensorLatest(site, store, clock=lambda: now, stale_after_s=600)
    registry = ToolRegistry([tool])
    res = registry.call("sensor_latest", {"target": "GH-2"})
    rows = {r["sensor_id"]: r for r in res.data["readings"]}
    assert rows["GH-2-TEMP"]["stale"] and rows["GH-2-TEMP"]["age_s"] == 7200
    assert rows["GH-2-RH"]["status"] == "bad_quality" and rows["GH-2-RH"]["quality"] == "bad"
    assert rows["GH-2-CO2"]["status"] == "no_data"
    assert "GH-2-TEMP stale (last reading 2 h ago)" in res.summary and "GH-2-CO2 no data" in res.summary
    assert res.summary.startswith("GH-2: 9 sensors, ")
    single = registry.call("sensor_latest", {"target": "GH-2-CO2"})
    assert single.summary.startswith("GH-2-CO2: 1 sensor, 1 to look at — GH-2-CO2 no data")
    store.close()


def _all_within_limits(site, path, now, spacing_s):
    """A store with one reading of every GH-2 sensor, mid-band, ``spacing_s`` apart before ``now``."""
    store = SensorStore(path)
    readings = []
    for i, s in enumerate(site.sensors_of("GH-2")):
        active = site.limits_for(s, now)
        low = active.limit.low if active and active.limit.low is not None else 0.0
        high = active.limit.high if active and active.limit.high is not None else low + 2
        readings.append(Reading(s.id, to_ms(now - timedelta(seconds=spacing_s * i)), (low + high) / 2))
    store.insert(readings)
    return store, len(readings)


def test_the_reading_line_counts_and_ages_in_plain_words(site, tmp_path):
    """Every sensor of a zone within its limits: "all 9 readings … (oldest taken 3 min ago)";
    all of them this minute: "(all taken just now)"."""
    now = START + timedelta(hours=12)
    store, n = _all_within_limits(site, tmp_path / "a.sqlite", now, 20)
    res = ToolRegistry([SensorLatest(site, store, clock=lambda: now)]).call("sensor_latest", {"target": "GH-2"})
    assert n > 1 and res.data["out_of_range"] == []
    assert res.summary == f"GH-2: all {n} readings within limits (oldest taken {20 * (n - 1) / 60:.0f} min ago)"
    store.close()
    store, n = _all_within_limits(site, tmp_path / "b.sqlite", now, 5)
    res = ToolRegistry([SensorLatest(site, store, clock=lambda: now)]).call("sensor_latest", {"target": "GH-2"})
    assert res.summary == f"GH-2: all {n} readings within limits (all taken just now)"
    store.close()


@pytest.mark.parametrize("seconds, words", [(0, "just now"), (59, "just now"), (60, "1 min ago"), (150, "2 min ago"),
                                            (7199, "120 min ago"), (7200, "2 h ago"), (30 * 3600, "30 h ago")])
def test_ages_are_said_in_words(seconds, words):
    assert age_words(seconds) == words


def test_sensor_history_buckets_trend_and_excursions(registry):
    res = registry.call("sensor_history", {"sensor_id": "GH-1-TEMP", "hours": 24})
    assert res.ok and res.data["window"]["bucket_minutes"] == 30 and len(res.data["buckets"]) == 48
    b = res.data["buckets"][0]
    assert b["count"] == 30 and b["min"] <= b["mean"] <= b["max"] and set(b) == {"start", "count", "min", "mean", "max", "last"}
    assert res.data["overall"]["count"] == 24 * 60 and res.data["limits_now"]["period"] == "night"
    assert res.data["excursions"] and res.data["excursions"][0]["direction"] == "low"
    assert res.summary.startswith("GH-1-TEMP over 24 h:") and "excursion" in res.summary
    vib = registry.call("sensor_history", {"sensor_id": "vt-101", "hours": 20, "end": "2025-04-15T16:00:00"})
    assert vib.ok and vib.data["window"]["end"] == "2025-04-15T16:00:00+08:00"  # naive end = site time
    assert vib.data["trend_per_hour"] > 0  # the bearing is wearing


def test_sensor_history_bounds(registry):
    too_long = registry.call("sensor_history", {"sensor_id": "GH-1-TEMP", "hours": 800})
    assert not too_long.ok and "less than or equal to 744" in too_long.error
    fine = registry.call("sensor_history", {"sensor_id": "GH-1-TEMP", "hours": 744, "bucket_minutes": 1})
    assert fine.ok and fine.data["window"]["bucket_minutes"] == 120 and "bucket widened" in fine.data["note"]
    unknown = registry.call("sensor_history", {"sensor_id": "GH-1"})
    assert not unknown.ok and "unknown sensor 'GH-1'" in unknown.error and "GH-1-TEMP" in unknown.error
    empty = registry.call("sensor_history", {"sensor_id": "GH-1-TEMP", "hours": 2, "end": "2025-01-01T00:00:00+08:00"})
    assert empty.ok and empty.data["buckets"] == [] and "no readings" in empty.summary


def test_site_check_ranks_by_severity(registry):
    res = registry.call("site_check", {"hours": 27})
    assert res.ok
    ranks = [{"warning": 1, "alarm": 2, "trip": 3, "emergency": 3}[x["severity"]] for x in res.data["excursions"]]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] == 3
    sensors = {x["sensor_id"] for x in res.data["excursions"]}
    assert {"GH-1-TEMP", "VT-101"} <= sensors and not any(s.startswith("GH-2") for s in sensors)
    assert res.data["count"] == len(res.data["excursions"]) and sum(res.data["by_severity"].values()) == res.data["count"]
    x = res.data["excursions"][0]
    assert {"start", "end", "duration_min", "worst_value", "limit", "limit_value", "severity"} <= set(x)
    assert res.summary.startswith(f"{res.data['count']} excursion(s) in the 27 h to 04-16 03:00")
    json.dumps(res.to_dict())


def test_site_check_filters_warnings_and_silence(registry, site, tmp_path):
    only = registry.call("site_check", {"hours": 27, "target": "p-101"})
    assert only.ok and {x["asset"] for x in only.data["excursions"]} == {"P-101"}
    calm = registry.call("site_check", {"hours": 27, "target": "GH-2"})
    assert calm.ok and calm.data["count"] == 0 and calm.summary.startswith("No excursions beyond alarm limits in GH-2")
    warn = registry.call("site_check", {"hours": 27, "target": "GH-2", "include_warnings": True, "limit": 3})
    assert warn.data["count"] > 0 and len(warn.data["excursions"]) <= 3
    assert set(warn.data["by_severity"]) == {"warning"}
    bad = registry.call("site_check", {"target": "Atlantis"})
    assert not bad.ok and "the site has" in bad.error
    empty = SensorStore(tmp_path / "empty.sqlite")
    silent = ToolRegistry(_sensor_tools(site, empty, lambda: NIGHT)).call("site_check", {})
    assert silent.ok and len(silent.data["no_data"]) == len(site.sensors) and "No data from all 26 sensor(s)" in silent.summary
    empty.close()


def test_site_check_does_not_call_silence_a_clean_bill(site, tmp_path):
    """Sensors that sent nothing were not checked: all silent is "no data", not "no excursions"."""
    store = SensorStore(tmp_path / "s.sqlite")
    now = START + timedelta(hours=24)
    tools = ToolRegistry(_sensor_tools(site, store, lambda: now))
    silent = tools.call("site_check", {"target": "GH-2"})
    assert silent.ok and silent.summary.startswith("No data from all 9 sensor(s) in GH-2 in the 24 h to")
    assert "nothing to check" in silent.summary and "No excursions" not in silent.summary
    assert set(silent.data) == {"window", "sensors_checked", "count", "by_severity", "excursions", "no_data"}
    assert silent.data["sensors_checked"] == 9 and len(silent.data["no_data"]) == 9 and silent.data["count"] == 0
    # two of nine report, within limits: no excursions among those, the others named
    store.insert([Reading(sid, to_ms(now - timedelta(minutes=m)), value) for sid, value in
                  (("GH-2-TEMP", 21.0), ("GH-2-RH", 75.0)) for m in range(0, 60, 5)])
    some = tools.call("site_check", {"target": "GH-2"})
    assert some.summary.startswith("No excursions beyond alarm limits in GH-2 in the 24 h to")
    assert "among the 2 sensor(s) that reported; no data from 7: GH-2-CO2" in some.summary
    assert some.data["sensors_checked"] == 9 and len(some.data["no_data"]) == 7
    store.close()


def test_a_reading_stamped_now_is_in_every_tool(site, tmp_path):
    """sensor_latest (ts <= now), sensor_history and site_check agree at the same clock: the
    window is (start, end], so the reading stamped exactly now is the history's last."""
    store = SensorStore(tmp_path / "s.sqlite")
    now = START + timedelta(hours=6)
    store.insert([Reading("VT-101", to_ms(now - timedelta(minutes=10 * i)), 2.0 + 0.1 * (i == 0) + (i == 0) * 5)
                  for i in range(37)])  # every 10 min for 6 h at 2.0; the one stamped now is 7.1
    tools = ToolRegistry(_sensor_tools(site, store, lambda: now))
    latest = tools.call("sensor_latest", {"target": "VT-101"}).data["readings"][0]
    history = tools.call("sensor_history", {"sensor_id": "VT-101", "hours": 6})
    assert latest["value"] == history.data["overall"]["last"] == pytest.approx(7.1)
    assert history.data["overall"]["count"] == 36  # (now - 6 h, now]: not the one at the start
    assert history.data["buckets"][0]["start"] == history.data["window"]["start"]  # labels stay on the grid
    assert "last 7.10" in history.summary
    check = tools.call("site_check", {"target": "VT-101", "hours": 1, "include_warnings": True})
    assert check.data["count"] == 1 and check.data["excursions"][0]["worst_value"] == pytest.approx(7.1)
    store.close()


def test_a_planned_call_for_an_id_the_site_lacks_is_refused_with_its_zones(registry):
    from tools.base import PlanContext

    for tool, args in (("sensor_latest", {"target": "GH-3"}), ("site_check", {"target": "温室3号"}),
                       ("sensor_history", {"sensor_id": "GH-3-TEMP"})):
        _, reason = registry.check(tool, args, PlanContext())
        assert reason.startswith("the site has no ") and f"'{next(iter(args.values()))}'" in reason
        assert "its zones are GH-1 (温室1号 / glasshouse 1), GH-2 (温室2号 / glasshouse 2), PH-1 (泵房 / pump house)" in reason
    _, reason = registry.check("sensor_history", {"sensor_id": "GH-1"}, PlanContext())
    assert reason.startswith("GH-1 is not a sensor; its sensors are GH-1-TEMP")
    assert registry.check("sensor_latest", {"target": "gh-2"}, PlanContext()) == ({"target": "GH-2"}, None)
    _, too_long = registry.check("sensor_history", {"sensor_id": "VT-101", "hours": 800}, PlanContext())
    assert too_long.startswith("invalid arguments")  # other problems: the validator's words


def test_the_reworded_lines_still_ground_a_normal_or_a_stale_claim(registry, site, tmp_path):
    """The answer quotes the tool's line; the grounding check reads "within limits" as a claim of
    normal (true for a healthy sensor) and the stale line as no claim of normal."""
    from assistant.grounding import check_status
    from assistant.types import Source

    gh2 = registry.call("sensor_latest", {"target": "GH-2-TEMP"})
    source = Source(1, "tool", "sensor_latest(target=GH-2-TEMP)", gh2.summary, data=gh2.data)
    assert check_status(f"{gh2.summary} [1]", [source]).ok
    store = SensorStore(tmp_path / "s.sqlite")
    now = START + timedelta(hours=3)
    store.insert([Reading("GH-2-TEMP", to_ms(now - timedelta(hours=2)), 17.0)])
    stale = ToolRegistry([SensorLatest(site, store, clock=lambda: now, stale_after_s=600)]).call(
        "sensor_latest", {"target": "GH-2-TEMP"})
    source = Source(1, "tool", "sensor_latest(target=GH-2-TEMP)", stale.summary, data=stale.data)
    assert not check_status("GH-2-TEMP is within limits [1].", [source]).ok
    store.close()
