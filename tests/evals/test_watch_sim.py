"""evals/watch_sim.py: which alert belongs to which injected fault, and one short run end to end
(the real simulator, sensor store, watch and alert store)."""

from pathlib import Path

import pytest

from evals.watch_sim import SPECS, attributable, evaluate_watch_sim, parse_faults
from tools.sensors.simulator import FAULTS, Fault
from tools.site import load_site_profile

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


def test_every_injectable_fault_is_evaluated_and_lists_parse():
    assert set(SPECS) == set(FAULTS)
    assert parse_faults("all")[0] == "heater_failure:GH-1@58" and len(parse_faults("all")) == len(FAULTS)
    assert parse_faults("bearing_wear, sensor_spike:TT-102@3") == ["bearing_wear:P-101@48", "sensor_spike:TT-102@3"]
    assert parse_faults("none") == []
    with pytest.raises(ValueError, match="unknown fault 'pump_fire'"):
        parse_faults("pump_fire")


@pytest.mark.parametrize("fault, target, cause, fits", [
    ("heater_failure:GH-1", "GH-1", "limit_low:GH-1-TEMP", True),
    ("heater_failure:GH-1", "GH-1", "limit_high:GH-1-TEMP", False),  # the wrong side
    ("heater_failure:GH-1", "GH-2", "limit_low:GH-2-TEMP", False),  # the other house
    ("vent_stuck:GH-2", "GH-2", "limit_high:GH-2-RH", True),
    ("ec_drift:GH-1", "GH-1", "limit_high:GH-1-SLAB-EC", True),
    ("bearing_wear:P-101", "P-101", "anomaly:P-101", True),
    ("bearing_wear:P-101", "P-101", "forecast_high:VT-101", True),
    ("bearing_wear:P-101", "P-101", "limit_low:FT-101", False),
    ("filter_clog:P-101", "P-101", "limit_low:PT-101", True),
    ("filter_clog:P-101", "P-101", "forecast_high:VT-101", True),
    ("sensor_stuck:GH-1-CO2", "GH-1", "sensor_flatline:GH-1-CO2", True),  # the same frozen probe
    ("sensor_stuck:GH-1-CO2", "GH-1", "sensor_spike:GH-1-CO2", False),
    ("sensor_out_of_range:GH-2-TEMP", "GH-2", "limit_low:GH-2-TEMP", False),  # an instrument fault, not the process
    ("sensor_spike:TT-101", "P-101", "sensor_spike:TT-101", True),
    ("sensor_spike:TT-101", "P-101", "anomaly:P-101", False),
])
def test_attribution(site, fault, target, cause, fits):
    assert attributable(site, Fault.parse(fault), target, cause) is fits


def test_a_short_run_end_to_end(site):
    r = evaluate_watch_sim(seeds=1, faults="sensor_dropout:GH-2-RH@3", fault_free_days=0.1, pass_s=600)
    run = r["faults"]["sensor_dropout:GH-2-RH@3"]
    assert run["runs"] == run["detected"] == run["before_alarm"] == 1 and r["all_before_alarm"] is True
    assert 0 < run["delay_min"]["median"] <= 20 and run["seeds"][0]["cause"] == "sensor_dropout:GH-2-RH"
    assert run["false_alerts"] == []
    assert set(r["false_alerts_by_zone_week"]) == {z.id for z in site.zones} and r["false_alerts_per_zone_week"] >= 0
    assert r["bearing_wear_lead_h_min"] is None and r["config"]["step_s"] == 60


def test_the_command_refuses_an_unknown_fault_clearly():
    from typer.testing import CliRunner

    from assistant.cli import app

    res = CliRunner().invoke(app, ["eval", "watch-sim", "--faults", "pump_fire", "--json"])
    assert res.exit_code != 0 and "unknown fault 'pump_fire'" in res.output
