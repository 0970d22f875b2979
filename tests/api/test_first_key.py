"""The generated first API key (issue 14: after a plain `make run` every API call answered 401 with
no way in): made once when no key is configured, private, reused, accepted by the API only — the
page stays open and no page sign-in is made with it; nothing is generated when keys are set."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.api.auth import Authenticator
from assistant.api.routes import install_routes
from assistant.api.first_key import FIRST_KEY_FILE, ensure_first_key
from assistant.settings import Settings
from assistant.startup import api_lines

from .conftest import ADMIN_KEY


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("ONSITE_API_KEYS", "ONSITE_API__API_KEYS", "ONSITE_API__KEYS_FILE", "ONSITE_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_made_once_private_and_reused(tmp_path, no_keys):
    settings = Settings(home=tmp_path / "home")
    first = ensure_first_key(settings)
    assert first is not None and first.created and len(first.key) >= 32
    assert first.path == settings.home / FIRST_KEY_FILE
    assert os.stat(first.path).st_mode & 0o777 == 0o600
    again = ensure_first_key(settings)
    assert again.key == first.key and not again.created


def test_a_file_without_a_usable_key_is_replaced(tmp_path, no_keys):
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir(parents=True)
    (settings.home / FIRST_KEY_FILE).write_text("short\n")
    first = ensure_first_key(settings)
    assert first.created and first.key != "short" and (settings.home / FIRST_KEY_FILE).read_text().strip() == first.key


def test_nothing_is_generated_when_keys_are_configured(tmp_path, monkeypatch, no_keys):
    monkeypatch.setenv("ONSITE_API_KEYS", f"{ADMIN_KEY}:admin:boss")
    settings = Settings(home=tmp_path / "home")
    assert ensure_first_key(settings) is None
    assert not (settings.home / FIRST_KEY_FILE).exists()


def test_the_key_opens_the_api_but_not_a_page_sign_in(tmp_path, no_keys):
    settings = Settings(home=tmp_path / "home")
    first = ensure_first_key(settings)
    auth = Authenticator.from_settings(settings, first.store())
    app = create_app(settings, authenticator=auth)
    install_routes(app)
    with TestClient(app) as client:
        ok = client.get("/api/v1/auth/sessions", headers={"Authorization": f"Bearer {first.key}"})
        assert ok.status_code == 200, ok.text  # an admin-only endpoint: the first key is an admin
        assert client.get("/api/v1/auth/sessions", headers={"X-API-Key": first.key}).status_code == 200
        assert client.get("/api/v1/auth/sessions", headers={"Authorization": "Bearer " + "x" * 43}).status_code == 401
        assert client.get("/api/v1/auth/sessions").status_code == 401
        # no configured keys: the page needs no sign-in, and the session endpoint makes none with this key
        refused = client.post("/api/v1/auth/session", json={"key": first.key})
        assert refused.status_code == 401 and "no api keys are configured" in refused.text.lower()
    assert len(auth.keys) == 0  # what the page reads to decide whether it asks for a key


def test_banner_lines(tmp_path, no_keys):
    first = ensure_first_key(Settings(home=tmp_path / "home"))
    generated = api_lines("http://127.0.0.1:8080", 0, first)
    assert first.key in generated[0] and str(first.path) in generated[0] and "ONSITE_API_KEYS" in generated[0]
    assert generated[1].endswith(f'curl -H "Authorization: Bearer {first.key}" http://127.0.0.1:8080/api/v1/sensors')
    configured = api_lines("http://127.0.0.1:8080", 2, None)
    assert len(configured) == 1 and "Authorization: Bearer $KEY" in configured[0]
