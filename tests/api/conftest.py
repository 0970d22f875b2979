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
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.api.metrics import ApiMetrics
from assistant.settings import Settings
from tests.wechat_standin import WeChatState, add_push_routes, serve

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


@dataclass
class StandInWeChat:
    url: str
    calls: list[dict[str, str]] = field(default_factory=list)  # what it received, without the secret
    push: WeChatState = field(default_factory=WeChatState)  # its subscribe-message side (tests/wechat_standin.py)


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
    push = WeChatState()
    app = _wechat_app(calls)
    add_push_routes(app, push)
    with serve(app) as url:
        yield StandInWeChat(url, calls, push)


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


# --- the whole app over a real service ------------------------------------------------------------
# The sample knowledge is indexed once per session with the hashing FakeEmbedder (no torch), and
# each test gets its own service home (conversations, audit, sensors, work orders, uploads).


@pytest.fixture(scope="session")
def api_index(tmp_path_factory) -> Path:
    from knowledge.builder import build_index

    home = tmp_path_factory.mktemp("api-index")
    settings = Settings(home=home, embedding={"model": "fake"})
    build_index([settings.samples_dir], settings)
    return home / "index"


@pytest.fixture
def make_api_service(api_index, tmp_path, monkeypatch):
    """make_api_service(model=None, own_index=False, simulate_hours=6, embedder=None, llm={...}, api={...})
    → Service. model None = extractive mode; own_index copies the index (for rebuild / rollback tests)."""
    import shutil
    from datetime import UTC, datetime, timedelta

    from assistant.llm import LoadedModel
    from assistant.wiring import build_services

    monkeypatch.delenv("ONSITE_API_KEYS", raising=False)
    made = []

    def make(model=None, *, own_index: bool = False, simulate_hours: float = 6, embedder=None, **overrides):
        home = tmp_path / f"svc{len(made)}"
        home.mkdir()
        if own_index:
            shutil.copytree(api_index, home / "index")
        else:
            (home / "index").symlink_to(api_index, target_is_directory=True)
        api = {"api_keys": [f"{OPERATOR_KEY}:operator:floor-tablet", f"{ADMIN_KEY}:admin:ops-console"],
               "rate_limit_per_minute": 0, **overrides.pop("api", {})}
        llm = {"backend": "extractive"} if model is None else {}
        settings = Settings(home=home, embedding={"model": "fake"}, llm={**llm, **overrides.pop("llm", {})},
                            api=api, **overrides)
        loaded = None if model is None else LoadedModel(model, "llm", "fake")
        service = build_services(settings, loaded=loaded, embedder=embedder)
        if simulate_hours:
            from tools.sensors.simulator import simulate

            simulate(service.site, service.parts.sensor_store, hours=simulate_hours, seed=3, speed=1e9,
                     start=datetime.now(UTC) - timedelta(hours=simulate_hours))
        made.append(service)
        return service

    yield make
    for s in made:
        s.close()


def _service(make_api_service, service_or_model, kwargs):
    if hasattr(service_or_model, "turns"):
        return service_or_model
    return make_api_service(service_or_model, **kwargs)


@pytest.fixture
def app_client(make_api_service):
    """app_client(service or model=None, **make_api_service kwargs) → TestClient over the full app."""
    from assistant.server import build_app

    def make(service_or_model=None, **kwargs) -> TestClient:
        service = _service(make_api_service, service_or_model, kwargs)
        app = build_app(service.settings, service, ui=False, metrics=ApiMetrics())
        return TestClient(app, raise_server_exceptions=False)

    return make


OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def wait_job(c, job_id: str, timeout: float = 60) -> dict:
    """Poll a knowledge rebuild job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/v1/knowledge/jobs/{job_id}", headers=ADMIN).json()["data"]
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@dataclass
class LiveServer:
    url: str
    service: Any
    app: FastAPI


@pytest.fixture
def live_server(make_api_service):
    """live_server(service or model=None, **make_api_service kwargs) → LiveServer: the full app under a
    real uvicorn on a free loopback port, in a thread; stopped at the end of the test."""
    from assistant.server import build_app

    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(service_or_model=None, **kwargs) -> LiveServer:
        service = _service(make_api_service, service_or_model, kwargs)
        app = build_app(service.settings, service, ui=False, metrics=ApiMetrics())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        running.append((server, thread, sock))
        return LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}", service, app)

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
