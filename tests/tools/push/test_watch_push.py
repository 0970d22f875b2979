"""`onsite watch` alone pushes too: the alerts one `--once` pass opens reach a configured webhook
(signed); a second pass opens nothing and sends nothing again."""

from __future__ import annotations

import json
from typer.testing import CliRunner

from assistant.cli import app
from assistant.settings import Settings
from tools.push.fake import WebhookReceiver
from tools.sensors.simulator import simulate
from tools.sensors.store import SensorStore

SECRET = "watch-push-secret-0123456789"


def test_watch_once_pushes_what_it_opens(tmp_path, monkeypatch):
    receiver = WebhookReceiver(SECRET).start()
    env = {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_EMBEDDING__MODEL": "fake:64",
           "ONSITE_PUSH__WEBHOOKS": json.dumps([{"name": "ops", "url": receiver.url, "secret": SECRET}])}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    store = SensorStore(settings.sensors_db)
    # 23.5 h ending now: a whole night without heating, whatever the time of day the test runs
    simulate(settings.site_profile, store, 23.5, ["heater_failure:GH-1"], seed=1)
    store.close()
    try:
        run = CliRunner()
        out = run.invoke(app, ["watch", "--once", "--json"], env=env)
        assert out.exit_code == 0, out.output
        opened = json.loads(out.stdout)["opened"]
        assert any(a["cause"] == "limit_low:GH-1-TEMP" for a in opened)
        got = receiver.accepted()
        assert all(r.verified for r in got)
        assert sorted(r.body["fields"]["alert_id"] for r in got) == sorted(a["id"] for a in opened)
        out = run.invoke(app, ["watch", "--once"], env=env)
        assert out.exit_code == 0 and "0 alerts opened" in out.stdout and len(receiver.received) == len(got)
    finally:
        receiver.stop()
