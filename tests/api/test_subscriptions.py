"""/api/v1/push: a mini-program user reports wx.requestSubscribeMessage's result, sees their counts,
sets preferences; the WeChat channel then spends exactly those authorisations (the login and the
push both against the loopback stand-in)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.api.routes import subscriptions
from tests.api.conftest import ADMIN, OPERATOR, bearer
from tests.wechat_standin import TEMPLATES
from tools.push.channel import PushMessage
from tools.push.wechat_settings import WeChatPushSettings
from tools.push.wechat_subscribe import make_wechat_channel

ALERT_T, ADVICE_T = TEMPLATES[0], TEMPLATES[1]
WECHAT = WeChatPushSettings(enabled=True, timezone="Asia/Shanghai", templates={
    "alert": {"id": ALERT_T, "fields": {"thing1": "title", "time2": "created", "thing3": "target"}},
    "advice": {"id": ADVICE_T, "fields": {"thing1": "title", "time2": "created"}}})


@pytest.fixture
def api(client_factory, settings):
    client = client_factory(settings)
    client.app.state.wechat_push_settings = WECHAT
    subscriptions.install(client.app)
    return client


def login(client, code: str = "alice") -> dict[str, str]:
    r = client.post("/api/v1/auth/wechat/login", json={"code": code})
    assert r.status_code == 200, r.text
    return bearer(r.json()["data"]["token"])


def report(client, headers, results: dict[str, Any], **extra) -> Any:
    return client.post("/api/v1/push/subscriptions", json={"results": results, **extra}, headers=headers)


def test_each_accept_is_one_more_message_and_the_counts_come_back_per_kind(api):
    alice = login(api)
    r = report(api, alice, {"errMsg": "requestSubscribeMessage:ok", ALERT_T: "accept", ADVICE_T: "reject"})
    assert r.status_code == 200 and r.json()["code"] == 0
    r = report(api, alice, {"errMsg": "requestSubscribeMessage:ok", ALERT_T: "accept", ADVICE_T: "accept"})
    data = r.json()["data"]
    assert data["subscriptions"]["alert"] == {"template_id": ALERT_T, "remaining": 2, "pending": 0}
    assert data["subscriptions"]["advice"] == {"template_id": ADVICE_T, "remaining": 1, "pending": 0}
    assert data["subscriptions"]["reminder"] == {"template_id": None, "remaining": 0, "pending": 0}
    assert data["preferences"]["alert"] == {"min_severity": "alarm", "targets": None}
    assert data["openid_ok"] is True
    assert api.get("/api/v1/push/subscriptions", headers=alice).json()["data"] == data
    bob = login(api, "bob")  # each user has their own
    assert api.get("/api/v1/push/subscriptions", headers=bob).json()["data"]["subscriptions"]["alert"]["remaining"] == 0


def test_a_retried_report_counts_once(api):
    alice = login(api)
    for _ in range(3):
        r = report(api, alice, {ALERT_T: "accept"}, report_id="req-1765-01")
    assert r.json()["data"]["subscriptions"]["alert"]["remaining"] == 1


def test_unknown_templates_and_results_are_refused_with_the_known_ones(api):
    alice = login(api)
    r = report(api, alice, {"TPL-not-ours-00000": "accept", ALERT_T: "accept"})
    assert r.status_code == 422 and r.json()["code"] == 422
    data = r.json()["data"]
    assert data["error"] == "unknown_template" and data["unknown"] == ["TPL-not-ours-00000"]
    assert data["known"] == {ALERT_T: "alert", ADVICE_T: "advice"}
    assert "TPL-not-ours-00000" in r.json()["msg"]
    r = report(api, alice, {ALERT_T: "yes please"})
    assert r.status_code == 422 and "accept, reject, ban or filter" in r.json()["msg"]
    r = report(api, alice, {"errMsg": "requestSubscribeMessage:ok"})
    assert r.status_code == 422
    r = api.post("/api/v1/push/subscriptions", json={"results": {ALERT_T: "accept"}, "openid": "o-bob"}, headers=alice)
    assert r.status_code == 422  # nobody reports for someone else
    assert api.get("/api/v1/push/subscriptions", headers=alice).json()["data"]["subscriptions"]["alert"]["remaining"] == 0


def test_only_a_wechat_sign_in_has_subscriptions(api):
    for headers in (OPERATOR, ADMIN):
        r = report(api, headers, {ALERT_T: "accept"})
        assert r.status_code == 403 and r.json()["data"]["error"] == "wechat_user_required"
        assert "wx.login" in r.json()["msg"] or "mini-program" in r.json()["msg"]
    assert api.get("/api/v1/push/subscriptions").status_code == 401
    assert api.put("/api/v1/push/preferences", json={}, headers=OPERATOR).status_code == 403


def test_preferences_are_per_kind_and_kinds_left_out_stay(api):
    alice = login(api)
    r = api.put("/api/v1/push/preferences", json={"alert": {"min_severity": "warning", "targets": ["P-101", "GH-1"]}},
                headers=alice)
    assert r.status_code == 200
    prefs = r.json()["data"]["preferences"]
    assert prefs["alert"] == {"min_severity": "warning", "targets": ["GH-1", "P-101"]}
    assert prefs["advice"] == {"min_severity": "info", "targets": None}
    r = api.put("/api/v1/push/preferences", json={"advice": {"targets": ["GH-1"]}}, headers=alice)
    prefs = r.json()["data"]["preferences"]
    assert prefs["alert"]["min_severity"] == "warning" and prefs["advice"] == {"min_severity": "info", "targets": ["GH-1"]}
    r = api.put("/api/v1/push/preferences", json={"alert": {"min_severity": "loud"}}, headers=alice)
    assert r.status_code == 422
    r = api.put("/api/v1/push/preferences", json={"alarm": {}}, headers=alice)
    assert r.status_code == 422


def test_round_trip_the_channel_spends_what_the_user_reported(api, settings, wechat_server):
    wechat_server.push.reset()
    alice, bob = login(api), login(api, "bob")
    report(api, alice, {ALERT_T: "accept"})
    report(api, alice, {ALERT_T: "accept"})
    report(api, bob, {ALERT_T: "accept"})
    api.put("/api/v1/push/preferences", json={"alert": {"min_severity": "critical"}}, headers=bob)
    channel = make_wechat_channel(WECHAT, settings.api.wechat_appid, settings.api.wechat_secret,
                                  settings.api.wechat_base_url, settings.home)
    try:
        for n in (1, 2, 3):
            message = PushMessage(f"alert:{n}:opened", "alert", "P-101", "alarm", f"Pump P-101 vibration #{n}", "",
                                  1_796_711_400_000, link=f"pages/alerts/detail?id={n}")
            recipients = channel.recipients(message)
            assert recipients == (["o-alice"] if n < 3 else [])  # bob wants critical only; alice has two
            for openid in recipients:
                assert channel.send(message, openid).ok
    finally:
        channel.close()
    assert [b["touser"] for b in wechat_server.push.sent] == ["o-alice", "o-alice"]
    assert wechat_server.push.sent[0]["data"]["time2"] == {"value": "2026-12-08 14:30"}
    data = api.get("/api/v1/push/subscriptions", headers=alice).json()["data"]
    assert data["subscriptions"]["alert"] == {"template_id": ALERT_T, "remaining": 0, "pending": 0}
    assert api.get("/api/v1/push/subscriptions", headers=bob).json()["data"]["subscriptions"]["alert"]["remaining"] == 1
