"""WeChat login against a stand-in WeChat server on loopback: success, the documented error codes,
an unreachable / slow / garbled WeChat, and no session_key or app secret in any answer or log."""

from __future__ import annotations

import logging
import socket

import pytest

from assistant.api.wechat import WeChatClient, WeChatLoginError

from .conftest import APP_SECRET, APPID, SESSION_KEY, bearer

LOGIN = "/api/v1/auth/wechat/login"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_login_returns_our_token_and_nothing_of_wechats(client, wechat_server, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post(LOGIN, json={"code": "0a3Kxx000Ex9XM1N"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 0 and body["msg"] == "ok"
    data = body["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == client.app.state.settings.api.token_ttl_s
    assert data["principal"] == {"id": "wx:o-0a3Kxx000Ex9XM1N", "role": "operator", "name": "WeChat user", "via": "wechat"}
    # the stand-in got what WeChat documents
    assert wechat_server.calls[-1] == {"appid": APPID, "js_code": "0a3Kxx000Ex9XM1N",
                                       "grant_type": "authorization_code", "secret_ok": "True"}
    # the token works
    me = client.get("/api/v1/auth/me", headers=bearer(data["token"]))
    assert me.status_code == 200 and me.json()["data"]["id"] == "wx:o-0a3Kxx000Ex9XM1N"
    # nothing secret anywhere
    for text in (r.text, me.text, caplog.text):
        assert SESSION_KEY not in text and "session_key" not in text and APP_SECRET not in text
    assert any("jscode2session" in rec.getMessage() for rec in caplog.records)  # httpx logged it, redacted


def test_admin_openids_get_the_admin_role(client_factory, settings_factory):
    c = client_factory(settings_factory(wechat_admin_openids="o-admin-openid,o-someone-else"))
    r = c.post(LOGIN, json={"code": "admin-code-1"})
    assert r.json()["data"]["principal"]["role"] == "admin"


@pytest.mark.parametrize(
    ("code", "status", "kind", "errcode", "retry_after"),
    [
        ("bad-code", 401, "wechat_invalid_code", 40029, None),
        ("rate-limited", 429, "wechat_rate_limited", 45011, "60"),
        ("risky-user", 403, "wechat_high_risk_user", 40226, None),
        ("busy", 503, "wechat_busy", -1, "5"),
        ("odd-error", 502, "wechat_login_failed", 48001, None),
        ("not-json", 502, "wechat_bad_response", None, None),
        ("no-openid", 502, "wechat_bad_response", None, None),
    ],
)
def test_wechat_errors_become_clear_messages(client, caplog, code, status, kind, errcode, retry_after):
    caplog.set_level(logging.DEBUG)
    r = client.post(LOGIN, json={"code": code})
    body = r.json()
    assert r.status_code == status and body["code"] == status, r.text
    assert body["data"]["error"] == kind and body["data"].get("wechat_errcode") == errcode
    assert r.headers.get("Retry-After") == retry_after
    assert body["msg"] and "errmsg" not in body["msg"]
    for text in (r.text, caplog.text):
        assert SESSION_KEY not in text and APP_SECRET not in text


def test_wrong_app_secret_is_an_operator_problem_not_the_users(client_factory, settings_factory, caplog):
    caplog.set_level(logging.DEBUG)
    c = client_factory(settings_factory(wechat_secret="WRONG-secret-value-123"))
    r = c.post(LOGIN, json={"code": "fine"})
    assert r.status_code == 503 and r.json()["data"]["error"] == "wechat_misconfigured"
    assert "WRONG-secret-value-123" not in caplog.text and "WRONG-secret-value-123" not in r.text
    assert any(rec.levelno == logging.ERROR and "40125" in rec.getMessage() for rec in caplog.records)


def test_unreachable_slow_and_unconfigured_wechat(client_factory, settings_factory, caplog):
    caplog.set_level(logging.DEBUG)
    down = client_factory(settings_factory(wechat_base_url=f"http://127.0.0.1:{_free_port()}"))
    r = down.post(LOGIN, json={"code": "fine"})
    assert r.status_code == 503 and r.json()["data"]["error"] == "wechat_unreachable" and r.headers["Retry-After"] == "5"
    slow = client_factory(settings_factory(wechat_timeout_s=0.3))
    r = slow.post(LOGIN, json={"code": "slow"})
    assert r.status_code == 503 and r.json()["data"]["error"] == "wechat_unreachable"
    off = client_factory(settings_factory(wechat_appid=None))
    r = off.post(LOGIN, json={"code": "fine"})
    assert r.status_code == 503 and r.json()["data"]["error"] == "wechat_not_configured"
    assert APP_SECRET not in caplog.text


@pytest.mark.parametrize("code", ["", "x" * 129, "abc def", "a&secret=1"])
def test_malformed_codes_are_422_without_asking_wechat(client, wechat_server, code):
    before = len(wechat_server.calls)
    r = client.post(LOGIN, json={"code": code})
    assert r.status_code == 422 and r.json()["data"]["errors"][0]["loc"] == ["body", "code"]
    assert len(wechat_server.calls) == before


def test_client_never_exposes_the_secret(wechat_server):
    c = WeChatClient(APPID, APP_SECRET, wechat_server.url)
    assert APP_SECRET not in repr(c) and APP_SECRET not in str(vars(c))
    identity = c.code2session("direct")
    assert identity.openid == "o-direct" and identity.unionid == "u-direct"
    assert not hasattr(identity, "session_key") and SESSION_KEY not in repr(identity)
    with pytest.raises(WeChatLoginError) as info:
        c.code2session("bad-code")
    assert info.value.http_status == 401 and info.value.errcode == 40029
    with pytest.raises(ValueError):
        WeChatClient(APPID, APP_SECRET, "ftp://example")
