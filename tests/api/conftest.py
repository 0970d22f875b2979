"""API test fixtures: a stand-in WeChat server (real uvicorn on a loopback port, in a thread),
settings pointing at it, and a TestClient factory over ``create_app``."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.api.metrics import ApiMetrics
from assistant.settings import Settings

APPID = "wx0123456789abcdef"
APP_SECRET = "APPSECRET-do-not-leak-4b9e2c71d0"
SESSION_KEY = "SESSIONKEY-do-not-leak-Zq81+Kw=="
OPERATOR_KEY = "operator-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210xyz"

# js_code → what the stand-in answers (as WeChat does: JSON labelled text/plain)
ERROR_REPLIES: dict[str, dict[str, Any]] = {
    "bad-code": {"errcode": 40029, "errmsg": "invalid code, rid: 6650f1a2-1"},
    "rate-limited": {"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"},
    "risky-user": {"errcode": 40226, "errmsg": "high risk user"},
    "busy": {"errcode": -1, "errmsg": "system error"},
    "odd-error": {"errcode": 48001, "errmsg": "api unauthorized"},
}


class _QuietH11(H11Protocol):
    """The stand-in's own access log would print the app secret it receives (as any server's
    would); it is not the code under test, so it stays quiet."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.access_log = False


@dataclass
class StandInWeChat:
    url: str
    calls: list[dict[str, str]] = field(default_factory=list)  # what it received, without the secret


def _wechat_app(calls: list[dict[str, str]]) -> FastAPI:
    app = FastAPI()

    @app.get("/sns/jscode2session")
    def jscode2session(appid: str = "", secret: str = "", js_code: str = "", grant_type: str = "") -> PlainTextResponse:
        calls.append({"appid": appid, "js_code": js_code, "grant_type": grant_type,
                      "secret_ok": str(secret == APP_SECRET)})

        def reply(payload: dict[str, Any]) -> PlainTextResponse:
            return PlainTextResponse(json.dumps(payload), media_type="text/plain")

        if appid != APPID:
            return reply({"errcode": 40013, "errmsg": "invalid appid"})
        if secret != APP_SECRET:
            return reply({"errcode": 40125, "errmsg": "invalid appsecret"})
        if grant_type != "authorization_code":
            return reply({"errcode": 40002, "errmsg": "invalid grant_type"})
        if js_code in ERROR_REPLIES:
            return reply(ERROR_REPLIES[js_code])
        if js_code == "not-json":
            return PlainTextResponse("<html>gateway error</html>", status_code=502)
        if js_code == "no-openid":
            return reply({"session_key": SESSION_KEY})
        if js_code == "slow":
            time.sleep(1.5)
        openid = "o-admin-openid" if js_code.startswith("admin") else f"o-{js_code}"
        return reply({"openid": openid, "session_key": SESSION_KEY, "unionid": f"u-{js_code}"})

    return app


@pytest.fixture(scope="session")
def wechat_server() -> Iterator[StandInWeChat]:
    calls: list[dict[str, str]] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_wechat_app(calls), log_config=None, access_log=False, lifespan="off", http=_QuietH11)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stand-in WeChat server did not start")
        time.sleep(0.01)
    yield StandInWeChat(f"http://127.0.0.1:{port}", calls)
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture
def settings_factory(tmp_path: Path, wechat_server: StandInWeChat, monkeypatch) -> Callable[..., Settings]:
    monkeypatch.delenv("ONSITE_API_KEYS", raising=False)

    def make(**api: Any) -> Settings:
        values: dict[str, Any] = {
            "wechat_appid": APPID,
            "wechat_secret": APP_SECRET,
            "wechat_base_url": wechat_server.url,
            "wechat_timeout_s": 5.0,
            "api_keys": [f"{OPERATOR_KEY}:operator:floor-tablet", f"{ADMIN_KEY}:admin:ops-console"],
            "rate_limit_per_minute": 0,
        }
        values.update(api)
        return Settings(home=tmp_path / "home", api=values)

    return make


@pytest.fixture
def settings(settings_factory) -> Settings:
    return settings_factory()


@pytest.fixture
def client_factory(settings_factory) -> Callable[..., TestClient]:
    def make(settings: Settings | None = None, **kwargs: Any) -> TestClient:
        kwargs.setdefault("metrics", ApiMetrics())
        app = create_app(settings or settings_factory(), **kwargs)
        return TestClient(app, raise_server_exceptions=False)

    return make


@pytest.fixture
def client(client_factory, settings) -> TestClient:
    return client_factory(settings)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}
