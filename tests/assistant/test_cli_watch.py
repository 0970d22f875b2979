"""`onsite watch --once --json`: one pass over the data home's sensors, the report as JSON, alerts
stored in the home's alert database (a second pass opens nothing new)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from assistant.cli import app
from assistant.settings import Settings
from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore
from tools.watch.alerts import AlertStore


def test_watch_once_json(tmp_path, monkeypatch):
    env = {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_EMBEDDING__MODEL": "fake:64"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    # 23.5 h ending now: a whole night without heating, whatever the time of day the test runs
    simulate(settings.site_profile, SensorStore(settings.sensors_db), 23.5, ["heater_failure:GH-2"], seed=1)
    run = CliRunner()
    out = run.invoke(app, ["watch", "--once", "--json"], env=env)
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert set(report) >= {"start_ms", "end_ms", "findings", "opened", "escalated", "errors", "ms"}
    assert set(report["findings"]) == {"limits", "sensor_faults", "early_warning", "forecast"} and report["errors"] == []
    assert report["models"]["P-101"]["state"] == "learning"  # 23.5 h of data: the 48 h reference is not complete
    assert any(a["target"] == "GH-2" and a["cause"] == "limit_low:GH-2-TEMP" for a in report["opened"])
    stored = AlertStore(settings.home / "alerts.sqlite").list(state="active")
    assert {a.id for a in stored.alerts} == {a["id"] for a in report["opened"]}
    out = run.invoke(app, ["watch", "--once"], env=env)
    assert out.exit_code == 0 and "0 alerts opened" in out.stdout
    out = run.invoke(app, ["watch", "--once", "--lookback-h", "0"], env=env)
    assert out.exit_code == 2
