"""Tokens (issue, verify, expiry, tampering), the signing key file, API keys and roles."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from assistant.api.app import api_router
from assistant.api.auth import (
    AdminPrincipal,
    Authenticator,
    AuthError,
    KeyStore,
    Principal,
    TokenSigner,
    keys_from_settings,
    load_or_create_secret,
    parse_key_spec,
)
from assistant.api.envelope import Envelope, ok
from assistant.errors import ConfigError
from assistant.settings import Settings

from .conftest import ADMIN_KEY, OPERATOR_KEY, bearer

ALICE = Principal(id="wx:o-alice", role="operator", name="Alice", via="wechat")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_round_trip_and_expiry():
    clock = Clock()
    signer = TokenSigner(os.urandom(32), ttl_s=3600, clock=clock)
    issued = signer.issue(ALICE)
    assert issued.expires_in == 3600 and issued.expires_at == int(clock.now) + 3600
    assert signer.verify(issued.token) == ALICE
    clock.now += 3599
    assert signer.verify(issued.token) == ALICE
    clock.now += 1
    with pytest.raises(AuthError, match="expired"):
        signer.verify(issued.token)


def _swap_payload(token: str, **changes) -> str:
    prefix, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{sig}"


def test_tampered_forged_and_foreign_tokens_are_refused():
    signer = TokenSigner(os.urandom(32), ttl_s=3600)
    token = signer.issue(ALICE).token
    bad = [
        _swap_payload(token, role="admin"),
        _swap_payload(token, exp=4_000_000_000),
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        TokenSigner(os.urandom(32), ttl_s=3600).issue(ALICE).token,
        "ons1.e30.",
        "ons1..",
        "ons1.not-base64!.x",
        "garbage",
        token + ".extra",
    ]
    for forged in bad:
        with pytest.raises(AuthError):
            signer.verify(forged)


def test_token_from_the_future_is_refused():
    clock = Clock()
    future = TokenSigner(b"k" * 32, ttl_s=3600, clock=Clock(clock.now + 3600)).issue(ALICE).token
    with pytest.raises(AuthError):
        TokenSigner(b"k" * 32, ttl_s=7200, clock=clock).verify(future)


def test_secret_file_is_created_0600_and_reused(tmp_path):
    path = tmp_path / "deep" / "api-token.key"
    first = load_or_create_secret(path)
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp file left
    path.write_text("abcd\n")
    with pytest.raises(ConfigError, match="too short"):
        load_or_create_secret(path)


def test_tokens_survive_a_restart_with_the_same_home(settings):
    token = Authenticator.from_settings(settings).issue(ALICE).token
    assert Authenticator.from_settings(settings).authenticate(token) == ALICE
    assert (settings.home / "api-token.key").is_file()


def test_key_specs_env_and_keys_file(tmp_path, monkeypatch):
    assert parse_key_spec("k" * 20) == ("k" * 20, "operator", None)
    assert parse_key_spec("k" * 20 + ":admin:ops") == ("k" * 20, "admin", "ops")
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# clients\n{'f' * 24} admin  grafana box\n\n{'g' * 24} operator   # tablet\n")
    monkeypatch.setenv("ONSITE_API__API_KEYS", f"{'a' * 20},{'b' * 20}:admin")
    monkeypatch.setenv("ONSITE_API_KEYS", f"{'c' * 20}:operator:legacy")
    s = Settings(home=tmp_path, api={"keys_file": "keys.txt"})
    store = keys_from_settings(s)
    assert len(store) == 5
    assert store.lookup("a" * 20).role == "operator"
    assert store.lookup("b" * 20).role == "admin"
    assert store.lookup("c" * 20).id == "key:legacy"
    assert store.lookup("f" * 24) == Principal(id="key:grafana box", role="admin", name="grafana box", via="api_key")
    assert store.lookup("g" * 24).role == "operator"
    assert store.lookup("a" * 19) is None and store.lookup("") is None
    assert "a" * 20 not in repr(s)  # keys are secrets in the settings


def test_weak_or_malformed_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="shorter than 16"):
        KeyStore([("key1", "operator", None)])
    with pytest.raises(ConfigError, match="role"):
        KeyStore([("x" * 20, "root", None)])
    with pytest.raises(ConfigError, match="does not exist"):
        keys_from_settings(Settings(home=tmp_path, api={"keys_file": tmp_path / "missing"}))


@pytest.fixture
def role_client(client):
    router = api_router(tags=["test"])

    @router.post("/admin/reindex", response_model=Envelope[Principal])
    def admin_only(principal: AdminPrincipal):
        return ok(principal)

    client.app.include_router(router)
    return client


def test_api_keys_and_roles(role_client):
    c = role_client
    r = c.get("/api/v1/auth/me", headers=bearer(OPERATOR_KEY))
    assert r.status_code == 200
    assert r.json()["data"] == {"id": "key:floor-tablet", "role": "operator", "name": "floor-tablet", "via": "api_key"}
    assert c.get("/api/v1/auth/me", headers={"X-API-Key": ADMIN_KEY}).json()["data"]["role"] == "admin"

    r = c.post("/api/v1/admin/reindex", headers=bearer(OPERATOR_KEY))
    assert r.status_code == 403 and r.json()["code"] == 403 and r.json()["data"]["error"] == "forbidden"
    r = c.post("/api/v1/admin/reindex", headers=bearer(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["data"]["role"] == "admin"

    for headers in ({}, bearer("wrong-key-0123456789abcdef"), {"Authorization": f"Basic {OPERATOR_KEY}"}):
        r = c.post("/api/v1/admin/reindex", headers=headers)
        assert r.status_code == 401 and r.json()["data"]["error"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_our_tokens_work_and_bad_ones_get_401(role_client):
    c = role_client
    auth = c.app.state.authenticator
    admin = Principal(id="wx:o-boss", role="admin", name="Boss", via="wechat")
    token = auth.issue(admin).token
    assert c.post("/api/v1/admin/reindex", headers=bearer(token)).json()["data"]["id"] == "wx:o-boss"
    forged = _swap_payload(auth.issue(ALICE).token, role="admin")
    r = c.post("/api/v1/admin/reindex", headers=bearer(forged))
    assert r.status_code == 401 and "sign in" in r.json()["msg"].lower()
    expired = auth.signer.issue(ALICE, ttl_s=-1).token
    r = c.get("/api/v1/auth/me", headers=bearer(expired))
    assert r.status_code == 401 and "expired" in r.json()["msg"]
