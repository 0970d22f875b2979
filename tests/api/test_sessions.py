"""Sessions that can be ended (issue 13, item 3): sign-out, removing a key and an admin's revocation
end tokens at once and across restarts; tokens are short and renewed up to the session's absolute
end. Real apps over TestClient (a restart is a new app on the same data home), the stand-in WeChat."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat

import pytest

from assistant.api.auth import Authenticator, KeyStore, Principal, TokenSigner, load_or_create_secret
from assistant.api.routes import session
from assistant.api.sessions import SessionStore

from .conftest import ADMIN_KEY, OPERATOR_KEY, bearer

ALICE_KEY = "alice-key-0123456789abcdefXYZ"
KEYS = [f"{OPERATOR_KEY}:operator:floor-tablet", f"{ADMIN_KEY}:admin:ops-console", f"{ALICE_KEY}:operator:alice"]
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/wechat/login"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api(client_factory, settings_factory):
    """api(keys=KEYS, authenticator=None, **api settings) → TestClient over create_app with the
    session routes (as ``install_routes`` adds them)."""

    def make(keys=KEYS, authenticator=None, **values):
        settings = settings_factory(api_keys=keys, **values)
        kwargs = {"authenticator": authenticator} if authenticator is not None else {}
        client = client_factory(settings, **kwargs)
        client.app.include_router(session.router)
        return client

    return make


def _page_token(client, key: str) -> str:
    r = client.post("/api/v1/auth/session", json={"key": key})
    assert r.status_code == 200, r.text
    return r.cookies[session.SESSION_COOKIE]


def _wechat_token(client, code: str) -> str:
    r = client.post(LOGIN, json={"code": code})
    assert r.status_code == 200, r.text
    return r.json()["data"]["token"]


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _refused(client, token: str, match: str = "ended") -> None:
    r = client.get(ME, headers=bearer(token))
    assert r.status_code == 401 and r.json()["data"]["error"] == "unauthorized", r.text
    assert match in r.json()["msg"], r.json()["msg"]


# --- sign-out -------------------------------------------------------------------------------------


def test_signing_out_ends_the_token_on_the_server(api):
    c = api()
    token = _page_token(c, OPERATOR_KEY)
    assert c.get(ME, headers=bearer(token)).json()["data"]["id"] == "key:floor-tablet"
    out = c.delete("/api/v1/auth/session")  # with the cookie, as the page does
    assert out.status_code == 200 and out.json()["data"] == {"signed_out": True}
    _refused(c, token)
    c.cookies.clear()
    # a bearer token (the mini-program's) signs out the same way
    wx = _wechat_token(c, "code-signout")
    assert c.get(ME, headers=bearer(wx)).status_code == 200
    assert c.delete("/api/v1/auth/session", headers=bearer(wx)).json()["data"] == {"signed_out": True}
    _refused(c, wx)
    # nothing tells whether a session existed: a forged, a repeated or no credential answer alike
    for headers in (bearer(wx), bearer("ons1.e30.x"), bearer(ADMIN_KEY), {}):
        r = c.delete("/api/v1/auth/session", headers=headers)
        assert r.status_code == 200 and r.json()["data"] == {"signed_out": True}
    assert c.get(ME, headers=bearer(ADMIN_KEY)).status_code == 200  # a static key is not ended by signing out


def test_the_sign_out_holds_after_a_restart(api):
    c = api()
    token = _page_token(c, OPERATOR_KEY)
    other = _page_token(c, OPERATOR_KEY)
    c.cookies.clear()  # (the cookie would be signed out too)
    c.delete("/api/v1/auth/session", headers=bearer(token))
    restarted = api()  # a new app on the same data home
    _refused(restarted, token)
    assert restarted.get(ME, headers=bearer(other)).status_code == 200  # the other session lives on


# --- key removal ----------------------------------------------------------------------------------


def test_removing_a_key_and_restarting_ends_its_sessions(api):
    c = api()
    alice, tablet = _page_token(c, ALICE_KEY), _page_token(c, OPERATOR_KEY)
    assert c.get(ME, headers=bearer(alice)).json()["data"]["id"] == "key:alice"
    restarted = api(keys=[k for k in KEYS if not k.startswith(ALICE_KEY)])
    _refused(restarted, alice)
    assert restarted.get(ME, headers=bearer(tablet)).status_code == 200
    assert restarted.get(ME, headers=bearer(ALICE_KEY)).status_code == 401  # the key itself is gone too
    # the token names the key by a keyed fingerprint only: neither the key nor its digest is in it
    claims = _claims(alice)
    text = json.dumps(claims)
    assert "kfp" in claims and ALICE_KEY not in text
    assert hashlib.sha256(ALICE_KEY.encode()).hexdigest()[:8] not in text
    assert base64.urlsafe_b64encode(hashlib.sha256(ALICE_KEY.encode()).digest())[:8].decode() not in text


def test_a_key_given_another_role_takes_its_sessions_along(api):
    c = api()
    token = _page_token(c, ALICE_KEY)
    promoted = api(keys=[*KEYS[:2], f"{ALICE_KEY}:admin:alice"])
    assert promoted.get(ME, headers=bearer(token)).json()["data"]["role"] == "admin"
    renamed = api(keys=[*KEYS[:2], f"{ALICE_KEY}:operator:mallory"])
    _refused(renamed, token)  # the session was alice's


# --- an admin revokes ------------------------------------------------------------------------------


def test_an_admin_revokes_a_user_at_once_and_others_keep_working(api, caplog):
    caplog.set_level(logging.INFO, logger="onsite.api.session")
    c = api()
    alice_wx, alice_wx2, bob_wx = _wechat_token(c, "alice"), _wechat_token(c, "alice"), _wechat_token(c, "bob")
    tablet = _page_token(c, OPERATOR_KEY)
    r = c.post("/api/v1/auth/revoke", json={"principal": "wx:o-alice", "reason": "phone lost"}, headers=bearer(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["data"] == {"principal": "wx:o-alice", "sessions_ended": 2}
    _refused(c, alice_wx)
    _refused(c, alice_wx2)
    assert c.get(ME, headers=bearer(bob_wx)).status_code == 200
    assert c.get(ME, headers=bearer(tablet)).status_code == 200
    assert "AUDIT sessions of wx:o-alice revoked by key:ops-console" in caplog.text and "phone lost" in caplog.text
    # signing in again makes a new session, which the old revocation does not touch
    assert c.get(ME, headers=bearer(_wechat_token(c, "alice"))).status_code == 200
    # the list shows who ended what and why
    listed = c.get("/api/v1/auth/sessions", params={"principal": "wx:o-alice", "include_ended": True},
                   headers=bearer(ADMIN_KEY)).json()["data"]
    ended = [s for s in listed if not s["active"]]
    assert len(listed) == 3 and len(ended) == 2
    assert all(s["reason"] == "phone lost" and s["revoked_by"] == "key:ops-console" for s in ended)
    assert "key_fp" not in listed[0]
    # one session by its id
    tablet_sid = next(s["id"] for s in c.get("/api/v1/auth/sessions", headers=bearer(ADMIN_KEY)).json()["data"]
                      if s["principal"] == "key:floor-tablet")
    assert c.delete(f"/api/v1/auth/sessions/{tablet_sid}", headers=bearer(ADMIN_KEY)).status_code == 200
    _refused(c, tablet)
    assert c.delete(f"/api/v1/auth/sessions/{tablet_sid}", headers=bearer(ADMIN_KEY)).status_code == 404
    assert c.get(ME, headers=bearer(bob_wx)).status_code == 200
    _refused(api(), alice_wx)  # and after a restart


def test_an_operator_cannot_list_or_revoke_sessions(api):
    c = api()
    bob = _wechat_token(c, "bob")
    for credential in (OPERATOR_KEY, bob, _page_token(c, OPERATOR_KEY)):
        assert c.post("/api/v1/auth/revoke", json={"principal": "wx:o-bob"}, headers=bearer(credential)).status_code == 403
        assert c.get("/api/v1/auth/sessions", headers=bearer(credential)).status_code == 403
        assert c.delete("/api/v1/auth/sessions/x", headers=bearer(credential)).status_code == 403
    assert c.post("/api/v1/auth/revoke", json={"principal": "wx:o-bob"}).status_code == 401
    assert c.get(ME, headers=bearer(bob)).status_code == 200


def test_the_cli_revokes_and_a_running_server_refuses_at_once(api, settings_factory, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app as cli

    c = api()
    alice, bob = _wechat_token(c, "alice"), _wechat_token(c, "bob")
    assert c.get(ME, headers=bearer(alice)).status_code == 200  # now cached in the server's memory
    monkeypatch.setenv("ONSITE_HOME", str(settings_factory().home))
    monkeypatch.delenv("ONSITE_CONFIG", raising=False)
    listed = CliRunner().invoke(cli, ["auth", "sessions", "--json"])
    assert listed.exit_code == 0 and {s["principal"] for s in json.loads(listed.output)} == {"wx:o-alice", "wx:o-bob"}
    revoked = CliRunner().invoke(cli, ["auth", "revoke", "--user", "wx:o-alice", "--reason", "left the site"])
    assert revoked.exit_code == 0 and "1 live session" in revoked.output
    _refused(c, alice)  # another process wrote it: the server's cache noticed
    assert c.get(ME, headers=bearer(bob)).status_code == 200
    text = CliRunner().invoke(cli, ["auth", "sessions", "--all"]).output
    assert "left the site" in text and "wx:o-bob" in text
    assert CliRunner().invoke(cli, ["auth", "revoke"]).exit_code != 0
    assert CliRunner().invoke(cli, ["auth", "revoke", "--session", "nope"]).exit_code == 1


# --- lifetimes and renewal -------------------------------------------------------------------------


@pytest.fixture
def timed(api, settings_factory):
    """(client, clock): tokens of 900 s, sessions of 1,200 s, on a clock the test moves."""
    clock = Clock()
    settings = settings_factory()
    signer = TokenSigner(load_or_create_secret(settings.home / "api-token.key"), 900, clock=clock)
    keys = KeyStore([(OPERATOR_KEY, "operator", "floor-tablet"), (ADMIN_KEY, "admin", "ops-console")])
    auth = Authenticator(signer, keys, SessionStore(settings.home / "sessions.sqlite", clock=clock), 1200)
    return api(authenticator=auth), clock


def test_an_expired_token_is_refused_with_a_clear_message(timed):
    c, clock = timed
    token = _wechat_token(c, "alice")
    clock.now += 899
    assert c.get(ME, headers=bearer(token)).status_code == 200
    clock.now += 1
    _refused(c, token, match="expired")
    r = c.post("/api/v1/auth/refresh", headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.json()["msg"]


def test_refresh_slides_up_to_the_sessions_absolute_end(timed):
    c, clock = timed
    login = c.post(LOGIN, json={"code": "alice"}).json()["data"]
    token, start = login["token"], clock.now
    assert login["expires_in"] == 900 and login["session_expires_at"] == int(start) + 1200
    clock.now += 600
    r = c.post("/api/v1/auth/refresh", headers=bearer(token))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    renewed = r.json()["data"]
    assert renewed["principal"]["id"] == "wx:o-alice" and renewed["token"] != token
    assert renewed["expires_at"] == int(start) + 1200 and renewed["expires_in"] == 600  # capped by the session
    clock.now += 400  # the first token has expired, the renewed one has not
    _refused(c, token, match="expired")
    assert c.get(ME, headers=bearer(renewed["token"])).status_code == 200
    clock.now += 200  # past the session's absolute end: no renewal brings it back
    _refused(c, renewed["token"], match="time limit")
    r = c.post("/api/v1/auth/refresh", headers=bearer(renewed["token"]))
    assert r.status_code == 401 and "time limit" in r.json()["msg"]


def test_refresh_after_revocation_and_of_what_is_not_a_token(timed):
    c, clock = timed
    token = _wechat_token(c, "alice")
    c.post("/api/v1/auth/revoke", json={"principal": "wx:o-alice"}, headers=bearer(ADMIN_KEY))
    clock.now += 10
    r = c.post("/api/v1/auth/refresh", headers=bearer(token))
    assert r.status_code == 401 and "ended" in r.json()["msg"]
    r = c.post("/api/v1/auth/refresh", headers=bearer(OPERATOR_KEY))
    assert r.status_code == 403 and "API key" in r.json()["msg"]
    assert c.post("/api/v1/auth/refresh").status_code == 401
    assert c.post("/api/v1/auth/refresh", headers=bearer("ons1.e30.abc")).status_code == 401


def test_a_page_cookie_lives_the_page_idle_time_and_keeps_it_when_renewed(api, settings_factory):
    """An idle tablet keeps its sign-in for ``api.page_idle_s`` (not the API token's 15 minutes);
    renewing a page token keeps that lifetime, and signing out still ends it at once."""
    clock = Clock()
    settings = settings_factory()
    signer = TokenSigner(load_or_create_secret(settings.home / "api-token.key"), 900, clock=clock)
    keys = KeyStore([(OPERATOR_KEY, "operator", "floor-tablet")])
    auth = Authenticator(signer, keys, SessionStore(settings.home / "sessions.sqlite", clock=clock), 12 * 3600,
                         page_idle_s=3600)
    c = api(authenticator=auth)
    token = _page_token(c, OPERATOR_KEY)
    assert _claims(token)["exp"] - _claims(token)["iat"] == 3600
    clock.now += 1800  # idle past the API token's lifetime: the page is still signed in
    assert c.get(ME, headers=bearer(token)).status_code == 200
    renewed = auth.renew_if_due(token)
    assert renewed is not None and renewed.expires_in == 3600
    clock.now += 3599
    assert c.get(ME, headers=bearer(renewed.token)).status_code == 200
    clock.now += 1  # idle for the whole page lifetime: sign in again
    _refused(c, renewed.token, match="expired")
    wechat = _wechat_token(c, "alice")  # API tokens keep the short lifetime
    assert _claims(wechat)["exp"] - _claims(wechat)["iat"] == 900


def test_tokens_without_a_session_are_refused(api):
    """Tokens signed before sessions existed (they lived 7 days) are over: sign in again."""
    c = api()
    old = c.app.state.authenticator.signer.issue(Principal(id="wx:o-old", role="admin", name="", via="wechat"))
    _refused(c, old.token)


def test_the_default_lifetimes_are_short(settings):
    assert settings.api.token_ttl_s == 900 and settings.api.session_max_s == 12 * 3600
    assert settings.api.page_idle_s == 3600


# --- the store ------------------------------------------------------------------------------------


def test_the_store_is_private_durable_and_holds_no_key(api, settings):
    c = api()
    _page_token(c, ALICE_KEY)
    path = settings.home / "sessions.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert not extra.exists() or stat.S_IMODE(extra.stat().st_mode) == 0o600
    store = SessionStore(path)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    blob = b"".join(p.read_bytes() for p in path.parent.glob("sessions.sqlite*"))
    assert ALICE_KEY.encode() not in blob and hashlib.sha256(ALICE_KEY.encode()).hexdigest().encode() not in blob
    os.chmod(path, 0o644)  # loosened by hand: made private again on the next start
    SessionStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ended_sessions_are_pruned_after_30_days(tmp_path):
    clock = Clock()
    store = SessionStore(tmp_path / "s.sqlite", clock=clock)
    old = store.create(principal="wx:o-a", role="operator", name="", via="wechat", key_fp=None, max_age_s=3600)
    store.revoke_principal("wx:o-a", reason="test", by="key:admin")
    clock.now += 31 * 24 * 3600
    store.create(principal="wx:o-b", role="operator", name="", via="wechat", key_fp=None, max_age_s=3600)
    assert store.get(old.id) is None and [r.principal for r in store.list(include_ended=True)] == ["wx:o-b"]
    store.close()
