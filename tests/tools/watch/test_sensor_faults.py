"""Instrument faults on generated series: each kind found at the right times; normal noise, a slow
legitimate drift and a configured constant setpoint give nothing."""

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tools.errors import ToolInputError
from tools.sensors.store import Reading
from tools.site.layout import Sensor
from tools.watch.sensor_faults import FaultSettings, SensorFaultConfig, check_sensor, find_sensor_faults

T0 = 1_780_000_000_000 - 1_780_000_000_000 % 3_600_000  # on the hour, so 10 min windows align with indices
MIN = 60_000
TT = Sensor(id="TT-101", zone="pumps", asset="P-101", metric="bearing_temperature", unit="°C")


def _series(n=720, seed=0, noise=0.1, drift_per_h=0.0):
    """One reading a minute for 12 h: a slow daily swing, noise, optional drift."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * MIN
    hours = np.arange(n) / 60
    v = 40 + 2 * np.sin(2 * np.pi * hours / 24) + drift_per_h * hours + rng.normal(0, noise, n)
    return ts, np.round(v, 2)


def _kinds(faults):
    return [f.kind for f in faults]


@pytest.mark.parametrize("seed", range(5))
def test_normal_noisy_series_gives_no_fault(seed):
    ts, v = _series(seed=seed)
    assert find_sensor_faults(TT, ts, v) == []


def test_slow_legitimate_drift_gives_no_fault():
    ts, v = _series(noise=0.05, drift_per_h=1.5)  # 18 °C over 12 h: a process change, not an instrument fault
    assert find_sensor_faults(TT, ts, v) == []
    ts, v = _series(noise=0.0, drift_per_h=0.6)  # smooth and quantised to 0.01: still moving
    assert find_sensor_faults(TT, ts, v) == []


def test_flatline_found_with_times_and_numbers():
    ts, v = _series()
    v[300:361] = v[300]  # frozen for 60 min
    faults = find_sensor_faults(TT, ts, v)
    assert _kinds(faults) == ["flatline"]
    f = faults[0]
    assert (f.sensor_id, f.start_ms, f.end_ms, f.ongoing) == ("TT-101", ts[300], ts[360], False)
    assert f.message.startswith(f"TT-101 has not changed from {v[300]:.3g} °C for 60 min; it normally moves")
    assert f.cause == "sensor_flatline:TT-101"


def test_short_repeat_is_not_a_flatline():
    ts, v = _series()
    v[300:320] = v[300]  # 19 min: shorter than flatline_min_s (30 min)
    assert find_sensor_faults(TT, ts, v) == []


def test_flatline_still_going_is_ongoing():
    ts, v = _series()
    v[600:] = v[600]
    (f,) = find_sensor_faults(TT, ts, v)
    assert (f.kind, f.start_ms, f.end_ms, f.ongoing) == ("flatline", ts[600], ts[-1], True)


def test_stuck_value_with_jitter_is_found():
    ts, v = _series()
    v[300:370] = 41.3 + np.tile([0.0, 0.01], 35)  # noise gone, bit jitter only, 70 min
    faults = find_sensor_faults(TT, ts, v)
    assert _kinds(faults) == ["stuck"]
    assert (faults[0].start_ms, faults[0].end_ms) == (ts[300], ts[369])
    assert "has stayed at 41.3 °C" in faults[0].message


def test_dropout_found_and_trailing_silence_with_now():
    ts, v = _series()
    keep = np.ones(ts.size, dtype=bool)
    keep[400:431] = False
    faults = find_sensor_faults(TT, ts[keep], v[keep])
    assert _kinds(faults) == ["dropout"]
    assert (faults[0].start_ms, faults[0].end_ms) == (ts[399], ts[431])
    assert "sent no reading for 32 min" in faults[0].message
    assert "every 60 s" in faults[0].message
    # the sensor stopped altogether: the gap runs to now
    now = int(ts[-1] + 20 * MIN)
    (f,) = find_sensor_faults(TT, ts, v, now_ms=now)
    assert (f.kind, f.start_ms, f.end_ms, f.ongoing) == ("dropout", ts[-1], now, True)
    assert find_sensor_faults(TT, ts, v, now_ms=int(ts[-1] + 3 * MIN)) == []


def test_dropout_uses_profile_report_interval():
    slow = Sensor(id="DLI-1", zone="gh1", metric="dli", unit="mol/m²/d", report_every_s=86400)
    ts = T0 + np.arange(10, dtype=np.int64) * 86_400_000
    v = np.linspace(10, 20, 10)
    assert find_sensor_faults(slow, ts, v) == []  # daily readings are its normal pace


def test_spikes_found_one_per_event():
    ts, v = _series()
    v[200] = 55.0
    v[450:452] = 20.0
    faults = find_sensor_faults(TT, ts, v)
    assert _kinds(faults) == ["spike", "spike"]
    assert (faults[0].start_ms, faults[0].end_ms) == (ts[200], ts[200])
    assert (faults[1].start_ms, faults[1].end_ms) == (ts[450], ts[451])
    assert "jumped to 55 °C" in faults[0].message


def test_a_step_is_not_a_spike():
    ts, v = _series()
    v[360:] += 5  # the process really changed level
    assert "spike" not in _kinds(find_sensor_faults(TT, ts, v))


def test_out_of_range_found_and_not_also_a_spike():
    ts, v = _series()
    v[500:505] = -200.0  # open RTD
    faults = find_sensor_faults(TT, ts, v)
    assert _kinds(faults) == ["out_of_range"]
    f = faults[0]
    assert (f.start_ms, f.end_ms, f.details["readings"]) == (ts[500], ts[504], 5)
    assert "-200 °C, outside what the instrument can measure (-40 to 200 °C)" in f.message


def test_constant_setpoint_configured_is_not_a_flatline():
    sp = Sensor(id="SP-1", zone="gh1", metric="air_temperature", unit="°C")
    ts = T0 + np.arange(720, dtype=np.int64) * MIN
    v = np.where(np.arange(720) < 240, 18 + (np.arange(720) % 7) * 0.5, 22.0)  # ramps, then holds 8 h
    assert "flatline" in _kinds(find_sensor_faults(sp, ts, v))
    settings = FaultSettings(sensors={"SP-1": SensorFaultConfig(constant=True)})
    assert find_sensor_faults(sp, ts, v, settings) == []


def test_settings_forbid_unknown_keys_and_override_range():
    with pytest.raises(ValidationError):
        FaultSettings(flatline_minutes=3)
    ts, v = _series()
    settings = FaultSettings(sensors={"TT-101": SensorFaultConfig(range=(0, 41))})
    assert "out_of_range" in _kinds(find_sensor_faults(TT, ts, v, settings))


def test_check_sensor_reads_store_and_profile(site, store):
    ts, v = _series()
    v[100:103] = 999.0
    store.insert(Reading("TT-101", int(t), float(x)) for t, x in zip(ts, v))
    faults = check_sensor(site, store, "TT-101", int(ts[0]), int(ts[-1]) + 1)
    assert _kinds(faults) == ["out_of_range"]
    assert "°C" in faults[0].message
    with pytest.raises(KeyError):
        check_sensor(site, store, "NOPE", 0, 1)


def test_quantised_quiet_probe_repeating_itself_is_not_a_flatline():
    ts, v = _series(noise=0.03)
    v = np.round(v, 1)  # 0.1 °C resolution: at night it sits on one step for long stretches
    v[300:400] = v[300]
    assert "flatline" not in _kinds(find_sensor_faults(TT, ts, v))


def test_non_number_reading_is_out_of_range():
    ts, v = _series()
    v[50] = np.nan
    (f,) = find_sensor_faults(TT, ts, v)
    assert (f.kind, f.start_ms, f.end_ms) == ("out_of_range", ts[50], ts[50])
    assert f.message.startswith("TT-101 sent readings that are not numbers, 1 reading(s) from")
    with pytest.raises(ToolInputError):
        find_sensor_faults(TT, ts, v[:-1])
    (g,) = find_sensor_faults("X-1", ts, v)  # no metric, no range: still JSON for the alert
    assert g.details["range"] is None and g.details["value"] is None


@pytest.mark.parametrize("current, expect", [(0.0, []), (30.0, ["flatline"])])
def test_flow_flat_while_pump_stopped_is_not_a_fault(site, store, current, expect):
    ts, v = _series()
    v[300:500] = 0.0  # FT-101 reads no flow for 200 min
    store.insert(Reading("FT-101", int(t), float(x)) for t, x in zip(ts, v))
    amps = np.where((np.arange(ts.size) >= 300) & (np.arange(ts.size) < 500), current, 30.0)
    store.insert(Reading("IT-101", int(t), float(x)) for t, x in zip(ts, amps))  # the pump's running sensor
    faults = check_sensor(site, store, "FT-101", int(ts[0]), int(ts[-1]) + 1)
    assert _kinds(faults) == expect


def test_alert_fields_feed_the_alert_store(site, tmp_path):
    from tools.watch.alerts import AlertStore
    from tools.watch.sensor_faults import alert_fields
    ts, v = _series()
    v[300:361] = v[300]
    (f,) = find_sensor_faults(site.sensor("TT-101"), ts, v)
    fields = alert_fields(site, f, ts=ts, values=v, max_readings=10)
    assert (fields["target"], fields["cause"], fields["severity"]) == ("P-101", "sensor_flatline:TT-101", "warning")
    assert len(fields["explanation"]["readings"]) == 10
    assert fields["explanation"]["readings"][0] == [int(ts[300]), float(v[300])]
    with AlertStore(tmp_path / "alerts.sqlite") as alerts:
        alert = alerts.raise_alert(**fields).alert
    assert alert.explanation["type"] == "instrument_fault" and alert.title == f.message


def test_simulated_fault_free_days_give_no_fault_and_injected_ones_are_found(site, store):
    """Two simulated spring days of the sample site: PAR's zero at night, stopped pumps and
    quantised probes are not instrument faults; a transmitter frozen at noon is."""
    from datetime import UTC, datetime

    from tools.sensors.simulator import simulate
    start = datetime(2026, 4, 1, tzinfo=UTC)
    simulate(site, store, hours=48, seed=3, start=start)
    t0 = int(start.timestamp() * 1000)
    end = t0 + 48 * 3_600_000
    found = {sid: _kinds(check_sensor(site, store, sid, t0, end)) for sid in store.sensor_ids()}
    assert {k: v for k, v in found.items() if v} == {}
    # freeze GH-1's air temperature for 90 min from 04:00 UTC on day 2 (noon in Shanghai)
    ts, v = store.series("GH-1-TEMP", t0 + 28 * 3_600_000, t0 + 28 * 3_600_000 + 90 * MIN)
    store.insert(Reading("GH-1-TEMP", int(t), float(v[0])) for t in ts)
    (f,) = check_sensor(site, store, "GH-1-TEMP", t0, end)
    assert (f.kind, f.start_ms, f.end_ms) == ("flatline", ts[0], ts[-1])


def test_a_light_sensor_dark_at_dusk_before_the_profiles_day_ends_is_not_a_fault(tmp_path):
    """1 April in Shanghai: the sun sets about 18:15, the sample profile's day ends at 19:00. The PAR
    sensor's zero from sunset on is the dark; the same zero at noon is a dead sensor."""
    from datetime import UTC, datetime

    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile
    from tools.watch.sensor_faults import check_sensor

    site = load_site_profile(Path(__file__).resolve().parents[3] / "knowledge" / "samples" / "site-profile.toml")
    par = next(s for s in site.sensors if s.metric == "par")
    store = SensorStore(tmp_path / "s.sqlite")
    minute = 60_000

    def zeros_after_light(start_utc: datetime, minutes: int) -> tuple[int, int]:
        """Two hours of moving light readings, then ``minutes`` of zeros from ``start_utc``."""
        t0 = int(start_utc.timestamp() * 1000)
        light = [(par.id, t0 - (120 - i) * minute, 300.0 + 40 * np.sin(i / 5), 0) for i in range(120)]
        store.insert(light + [(par.id, t0 + i * minute, 0.0, 0) for i in range(minutes)])
        return t0 - 120 * minute, t0 + minutes * minute

    dusk = zeros_after_light(datetime(2026, 4, 1, 10, 20, tzinfo=UTC), 40)  # 18:20-19:00 local: after sunset
    assert check_sensor(site, store, par.id, *dusk, now_ms=dusk[1]) == []
    noon = zeros_after_light(datetime(2026, 4, 2, 4, 0, tzinfo=UTC), 40)  # 12:00-12:40 local: a dead sensor
    assert [f.kind for f in check_sensor(site, store, par.id, *noon, now_ms=noon[1])] in (["flatline"], ["stuck"])
