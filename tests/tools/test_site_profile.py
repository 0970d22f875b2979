"""Site profile: the sample loads and agrees with the sample documents; mistakes are reported clearly."""

import re
import tomllib
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import yaml

from tools.errors import ToolConfigError
from tools.site import SiteProfileError, load_site_profile, parse_site_profile

SAMPLES = Path(__file__).resolve().parents[2] / "knowledge" / "samples"
SAMPLE = SAMPLES / "site-profile.toml"
SHANGHAI = 8  # the sample site's UTC offset


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


@pytest.fixture
def raw():
    return tomllib.loads(SAMPLE.read_text(encoding="utf-8"))


def local(h, m=0):
    """A moment on 2025-04-15 at h:m site time, as aware UTC."""
    return datetime(2025, 4, 15, 0, 0, tzinfo=UTC).replace(hour=(h - SHANGHAI) % 24, minute=m)


def _pairs(cell):
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", cell)]


def test_sample_profile_loads(site):
    assert {z.id for z in site.zones} == {"GH-1", "GH-2", "PH-1"}
    assert site.zone("GH-1").crop == "tomato" and site.zone("GH-1").stage == "fruiting"
    assert site.sensor("VT-101").asset == "P-101"
    assert site.sensor("VT-101").mqtt_topic == "site/PH-1/VT-101/vibration_rms"
    assert len(site.topic_map()) == len(site.sensors)


def test_sample_crop_limits_match_the_crop_guide_table(site):
    text = (SAMPLES / "crops" / "tomato-greenhouse-guide.en.md").read_text(encoding="utf-8")
    stages = {"Seedling": "seedling", "Transplanting and establishment": "establishment",
              "Flowering and fruit set": "flowering", "Fruiting and harvest": "fruiting"}
    columns = [("air_temperature", "day"), ("air_temperature", "night"), ("relative_humidity", "day"),
               ("co2", "day"), ("dli", "all"), ("substrate_moisture", "all"), ("feed_ec", "all"), ("feed_ph", "all")]
    checked = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in stages:
            for (metric, period), cell in zip(columns, cells[1:]):
                row = next(r for r in site.limits if r.crop == "tomato" and r.stage == stages[cells[0]]
                           and r.metric == metric and r.period == period)
                assert [row.low, row.high] == _pairs(cell), (cells[0], metric)
                checked += 1
    assert checked == 32
    fruiting_night = site.limits_for("GH-1-TEMP", local(2))
    assert (fruiting_night.limit.alarm_low, fruiting_night.limit.trip_low) == (13, 10)  # guide §2.3
    assert (fruiting_night.limit.alarm_high, fruiting_night.limit.trip_high) == (32, 35)
    seedling = [r for r in site.limits if r.stage == "seedling" and r.metric == "air_temperature"]
    assert {(r.alarm_low, r.trip_low) for r in seedling} == {(15, 12)}


def test_sample_pump_limits_match_the_manual_table(site):
    text = (SAMPLES / "manuals" / "pump-P-101-manual.en.md").read_text(encoding="utf-8")
    row = {c[0]: c for c in ([x.strip() for x in line.strip().strip("|").split("|")]
                             for line in text.splitlines() if line.startswith("|"))}
    vib = site.limit_set("VT-101").day
    assert _pairs(row["Vibration, RMS velocity"][2])[-1] == vib.high == 2.8
    assert _pairs(row["Vibration, RMS velocity"][3]) == [vib.alarm_high] == [4.5]
    assert _pairs(row["Vibration, RMS velocity"][4]) == [vib.trip_high, vib.trip_delay_s] == [7.1, 10]
    bearing = site.limit_set("TT-102").day
    assert (bearing.high, bearing.alarm_high, bearing.trip_high) == (70, 80, 90)
    dp = site.limit_set("PT-102").day
    assert _pairs(row["Discharge pressure"][2]) == [dp.low, dp.high] == [3.0, 3.7]
    assert _pairs(row["Discharge pressure"][3]) == [dp.alarm_low, dp.alarm_high] == [2.6, 3.9]
    assert _pairs(row["Discharge pressure"][4]) == [dp.trip_low, dp.trip_delay_s] == [1.5, 30]
    flow = site.limit_set("FT-101").day
    assert _pairs(row["Flow"][3]) == [flow.alarm_low, flow.alarm_high] == [20, 62]
    assert site.limit_set("VT-101").trip_label == "trip" and site.limit_set("GH-1-TEMP").trip_label == "emergency"


def test_limits_for_picks_day_or_night_by_the_day_hours(site):
    assert site.limits_for("GH-1-TEMP", local(10)).period == "day"
    assert site.limits_for("GH-1-TEMP", local(10)).limit.low == 20
    assert site.limits_for("GH-1-TEMP", local(2)).period == "night"
    assert site.limits_for("GH-1-TEMP", local(5, 59)).period == "night"
    assert site.limits_for("GH-1-TEMP", local(6, 0)).period == "day"
    assert site.limits_for("GH-1-TEMP", local(19, 0)).period == "night"  # day_end is exclusive
    naive_utc = datetime(2025, 4, 15, 2, 0)  # 10:00 in Shanghai
    assert site.limits_for("GH-1-TEMP", naive_utc).period == "day"
    # RH low alarm only in the daytime (guide §2.3)
    assert site.limits_for("GH-1-RH", local(12)).limit.alarm_low == 50
    assert site.limits_for("GH-1-RH", local(2)).limit.alarm_low is None
    assert site.limits_for("GH-1-PAR", local(12)) is None  # no limits for instantaneous light


def test_limit_classification_is_strict_and_ranked(site):
    lim = site.limits_for("GH-1-TEMP", local(2)).limit
    assert lim.classify(17) == (0, None)
    assert lim.classify(18) == (0, None)  # "16–18": 18 is still normal
    assert lim.classify(18.1) == (1, "high")
    assert lim.classify(13) == (1, "low")  # alarm is "below 13"
    assert lim.classify(12.9) == (2, "low")
    assert lim.classify(9.9) == (3, "low")
    assert lim.classify(36) == (3, "high")


def test_yaml_profile_is_equivalent_and_reads_unquoted_times(tmp_path, raw, site):
    text = yaml.safe_dump(raw, allow_unicode=True).replace("'06:00'", "06:00")
    assert "day_start: 06:00" in text  # YAML 1.1 reads this as the number 360
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_site_profile(path)
    assert loaded.day_start == time(6, 0)
    assert loaded == site


def _problems(data):
    with pytest.raises(SiteProfileError) as err:
        parse_site_profile(data, "test.toml")
    assert isinstance(err.value, ToolConfigError)
    return str(err.value)


def test_every_problem_is_reported_at_once(raw):
    raw["sensors"][0]["zone"] = "GH-9"
    raw["sensors"][1]["id"] = raw["sensors"][2]["id"]
    raw["assets"][0]["zone"] = "nowhere"
    message = _problems(raw)
    assert "sensor GH-1-TEMP: unknown zone 'GH-9' (zones: GH-1, GH-2, PH-1)" in message
    assert "duplicate id 'GH-1-CO2'" in message
    assert "asset P-101: unknown zone 'nowhere'" in message


def test_low_above_high_is_reported_with_the_row(raw):
    row = next(r for r in raw["limits"] if r.get("asset") == "P-101" and r["metric"] == "discharge_pressure")
    row["low"], row["high"] = 3.7, 3.0
    assert "limit row for asset P-101 discharge_pressure (all): low (3.7) > high (3)" in _problems(raw)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["sensors"][0].update(topic="site/GH-2/climate-box-1/air_temperature"), "must name its zone 'GH-1'"),
    (lambda d: d["sensors"][0].update(topic="site/GH-1/air_temperature"), "is not site/<zone>/<device>/<metric>"),
    (lambda d: d["sensors"][1].update(topic=d["sensors"][0]["topic"].replace("air_temperature", "relative_humidity"))
     or d["sensors"][2].update(topic=d["sensors"][1]["topic"]), "already used by GH-1-RH"),
    (lambda d: d["zones"][0].update(stage="fruting"), "no limits for crop 'tomato' stage 'fruting'"),
    (lambda d: d["zones"][0].pop("crop"), "zone GH-1: a greenhouse needs crop and stage"),
    (lambda d: d["sensors"][-2].update(asset="P-999"), "unknown asset 'P-999'"),
    (lambda d: d["sensors"][-1].update(asset="P-101", zone="GH-1", topic=None), "asset P-101 is in zone PH-1, not GH-1"),
    (lambda d: d["assets"][0].update(running_sensor="GH-1-TEMP"), "is not a sensor of this asset"),
    (lambda d: d["limits"].append(dict(d["limits"][0])), "given twice"),
    (lambda d: d["limits"].append({"asset": "P-101", "crop": "tomato", "stage": "x", "metric": "flow", "high": 1}),
     "exactly one of crop (with stage), asset or sensor"),
    (lambda d: d.update(timezone="Mars/Olympus"), "unknown time zone"),
    (lambda d: d.update(day_start="6 am"), "HH:MM"),
    (lambda d: d["sensors"][0].update(id="GH 1/TEMP"), "String should match pattern"),
])
def test_validation_messages(raw, change, expected):
    change(raw)
    assert expected in _problems(raw)


def test_zone_day_hours_override_and_sensor_limit_rows(raw):
    raw["zones"].append({"id": "PROP-1", "name": "Propagation", "kind": "propagation", "crop": "tomato",
                         "stage": "seedling", "day_start": "04:00", "day_end": "20:00"})
    raw["sensors"].append({"id": "PROP-1-TEMP", "zone": "PROP-1", "metric": "air_temperature", "unit": "°C"})
    raw["limits"].append({"sensor": "LT-101", "low": 2.0, "high": 3.5, "alarm_low": 1.5, "trip_low": 1.0})
    site = parse_site_profile(raw)
    assert site.sensor("PROP-1-TEMP").mqtt_topic == "site/PROP-1/PROP-1-TEMP/air_temperature"
    assert site.limits_for("PROP-1-TEMP", local(5)).period == "day"  # lit from 04:00
    assert site.limits_for("GH-1-TEMP", local(5)).period == "night"
    assert site.limits_for("PROP-1-TEMP", local(5)).limit.alarm_low == 15  # seedling alarm
    assert site.limits_for("LT-101", local(5)).limit.low == 2.0  # a sensor row beats the asset row
    assert site.limit_set("LT-101").source.startswith("sensor LT-101")


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(SiteProfileError, match="cannot read"):
        load_site_profile(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed", encoding="utf-8")
    with pytest.raises(SiteProfileError, match="not valid TOML"):
        load_site_profile(bad)
    other = tmp_path / "site.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(SiteProfileError, match="unsupported file type"):
        load_site_profile(other)
    y = tmp_path / "bad.yaml"
    y.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(SiteProfileError, match="top level must be a table"):
        load_site_profile(y)
