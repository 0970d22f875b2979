"""The WeChat channel passes the same channel contract as the webhook and the fake, against the
loopback stand-in of WeChat's servers; and ``build_push`` wires it from the settings tree, so an
alarm the watch opens reaches a subscribed mini-program user through the outbox."""

from __future__ import annotations

import pytest

from assistant.settings import Settings
from tests.tools.push.conftest import ALERT_FIELDS, push_settings
from tests.tools.push.contract import ChannelContract, alert_message
from tests.wechat_standin import APP_SECRET, APPID, TEMPLATES
from tools.push.registry import build_push
from tools.watch.alerts import AlertStore

CONTRACT_USER = "o-contract-user"
KEYED_FIELDS = {**ALERT_FIELDS, "character_string9": "key"}  # the message key travels, so deliveries can be told apart


class WeChatHarness:
    def __init__(self, channel, wechat):
        self.channel, self.wechat = channel, wechat
        for n in range(20):  # twenty "accept"s: twenty one-time authorisations
            channel.store.record_results(CONTRACT_USER, {TEMPLATES[0]: "accept"}, report_id=f"r{n}")

    def down(self):
        self.wechat.state.script[CONTRACT_USER] = [503] * 1000  # WeChat's gateway answers 503

    def up(self):
        self.wechat.state.script.pop(CONTRACT_USER, None)

    def delivered(self):
        return [(body["data"]["character_string9"]["value"], body["touser"]) for body in self.wechat.state.sent]

    def message(self, key):
        return alert_message(key, severity="alarm")


class TestWeChatChannel(ChannelContract):
    @pytest.fixture
    def harness(self, make_channel, wechat):
        channel = make_channel(templates={"alert": {"id": TEMPLATES[0], "fields": KEYED_FIELDS}})
        return WeChatHarness(channel, wechat)


def test_build_push_sends_an_alarm_to_a_subscribed_user_through_the_outbox(tmp_path, wechat):
    settings = Settings(home=tmp_path / "home", api={"wechat_appid": APPID, "wechat_secret": APP_SECRET,
                                                     "wechat_base_url": wechat.url},
                        push={"wechat": push_settings().model_dump()})
    alerts = AlertStore(tmp_path / "alerts.sqlite")
    dispatcher = build_push(settings, alerts)
    assert dispatcher is not None and list(dispatcher.channels) == ["wechat"]
    wechat_channel = dispatcher.channels["wechat"]
    wechat_channel.store.record_results("o-floor-lead", {TEMPLATES[0]: "accept"})
    try:
        alerts.raise_alert("P-101", "limit_high:VT-101", "alarm", "VT-101 above its alarm 4.5 mm/s",
                           {"sensor": "VT-101", "unit": "mm/s", "readings": {"worst": 4.9},
                            "limit": {"value": 4.5, "source": "OM-P-101 §3.1"}})
        alerts.raise_alert("GH-1", "limit_high:GH-1-RH", "warning", "GH-1 humidity above target",
                           {"sensor": "GH-1-RH", "unit": "%", "readings": {"worst": 91}})
        report = dispatcher.run_once()
        assert report.sent == 1 and report.failed == 0, report
        (body,) = wechat.state.sent
        assert body["touser"] == "o-floor-lead" and body["template_id"] == TEMPLATES[0]
        assert "P-101" in body["data"]["thing3"]["value"]
        # the one authorisation is spent: the next alarm finds nobody to send to
        alerts.raise_alert("P-101", "limit_high:PT-101", "alarm", "PT-101 above its alarm",
                           {"sensor": "PT-101", "unit": "bar", "readings": {"worst": 6.1}})
        assert dispatcher.run_once().enqueued == 0 and len(wechat.state.sent) == 1
    finally:
        dispatcher.outbox.close()
        for channel in dispatcher.channels.values():
            getattr(channel, "close", lambda: None)()
        alerts.close()


def test_without_an_app_secret_the_wechat_channel_is_not_built(tmp_path, wechat):
    settings = Settings(home=tmp_path / "home", api={"wechat_appid": APPID, "wechat_base_url": wechat.url},
                        push={"wechat": push_settings().model_dump()})
    assert build_push(settings, AlertStore(tmp_path / "alerts.sqlite")) is None
