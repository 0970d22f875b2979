"""Issue 13, item 5: the red team's low findings, each as the attack it was.

- malformed input that gave 500: ``stream_options: "yes"``, sensor windows in year 1;
- the chat page reached by a LAN address reflected any Origin with credentials;
- ``/readyz`` (no sign-in) and extractive answers told the model file's folder; ``/metrics`` was
  open; no security headers;
- the databases were created world-readable under a 022 umask.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from assistant.api.app import create_app
from assistant.api.metrics import ApiMetrics
from assistant.settings import Settings

from .conftest import ADMIN, ADMIN_KEY, OPERATOR, OPERATOR_KEY, wait_job

QUESTION = "What bearing temperature is normal for pump P-101?"
LAN = {"Host": "192.168.1.10:7860", "Origin": "http://evil.example"}


# --- 1. 4xx, not 500 ------------------------------------------------------------------------------


@pytest.mark.parametrize("options", ["yes", 1, ["include_usage"], {"include_usage": "maybe"}])
def test_stream_options_that_are_not_an_object_are_refused(app_client, options):
    c = app_client(simulate_hours=0)
    r = c.post("/v1/chat/completions", headers=OPERATOR,
               json={"model": "onsite", "stream": True, "stream_options": options,
                     "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 422, r.text
    assert "stream_options" in r.text and set(r.json()) == {"error"}  # OpenAI's error shape


@pytest.mark.parametrize("params", [
    {"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00"},  # the red team's request
    {"to": "0001-01-01T12:00:00"},  # 24 h before it is before year 1
    {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-01T06:00:00+14:00"},  # to UTC: year 0
    {"from": "9999-12-31T00:00:00", "to": "9999-12-31T23:59:59-12:00"},  # to UTC: year 10000
    {"from": "1969-12-31T00:00:00", "to": "1969-12-31T06:00:00"},  # before the epoch the store keeps
    {"from": "2200-01-01T00:00:00", "to": "2200-01-02T00:00:00"},
])
def test_sensor_windows_outside_the_years_are_400(app_client, params):
    c = app_client(simulate_hours=0)
    r = c.get("/api/v1/sensors/GH-1-TEMP/series", params=params, headers=OPERATOR)
    assert r.status_code == 400, r.text
    assert "between 1970-01-02 and 2100-01-01" in r.json()["msg"]


def test_sensor_windows_at_the_edges_still_answer(app_client):
    c = app_client(simulate_hours=0)
    for params in ({"from": "1970-01-02T00:00:00", "to": "1970-01-03T00:00:00"},
                   {"from": "2099-12-31T00:00:00", "to": "2100-01-01T00:00:00"}):
        r = c.get("/api/v1/sensors/GH-1-TEMP/series", params=params, headers=OPERATOR)
        assert r.status_code == 200 and r.json()["data"]["points"] == []


# --- 2. the chat page's CORS --------------------------------------------------------------------


@pytest.fixture
def page(tmp_path):
    """The real chat page (Gradio) mounted on the API app, over the page's stand-in services."""
    from tests.ui.fakes import FakeService
    from ui import mount

    def make(**api) -> TestClient:
        service = FakeService(tmp_path / f"home{len(api)}")
        settings = Settings(home=service.settings.home, llm={"backend": "extractive"}, api=api)
        app = create_app(settings, services=service, metrics=ApiMetrics())
        mount(app, service, settings)
        return TestClient(app)

    return make


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_the_page_reached_by_a_lan_address_does_not_reflect_a_foreign_origin(page):
    c = page()
    for path in ("/ui/", "/ui/config", "/ui/gradio_api/info"):
        r = c.get(path, headers=LAN)
        assert r.status_code == 200, path
        assert "access-control-allow-origin" not in r.headers, path
        assert "access-control-allow-credentials" not in r.headers, path
    pre = c.options("/ui/gradio_api/queue/join", headers={**LAN, "Access-Control-Request-Method": "POST",
                                                           "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in pre.headers and "access-control-allow-credentials" not in pre.headers
    assert pre.status_code == 400  # "Disallowed CORS origin"
    # the page's own requests (same origin) are not hindered
    same = c.get("/ui/config", headers={"Host": "192.168.1.10:7860", "Origin": "http://192.168.1.10:7860"})
    assert same.status_code == 200


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_only_configured_origins_are_allowed(page):
    c = page(cors_origins=["https://ops.example"])
    ok = c.get("/ui/config", headers={"Host": "192.168.1.10:7860", "Origin": "https://ops.example"})
    assert ok.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-credentials" not in ok.headers  # bearer tokens, not cookies, cross-site
    assert "access-control-allow-origin" not in c.get("/ui/config", headers=LAN).headers


# --- 3. what strangers see: paths, metrics, headers ------------------------------------------------


@pytest.fixture
def missing_model(make_api_service, tmp_path):
    """A service whose configured model file is absent: extractive mode, with a reason naming it."""
    model = tmp_path / "secret-folder" / "missing-model.gguf"
    return make_api_service(None, simulate_hours=0, llm={"backend": "llamacpp", "llamacpp": {"model": str(model)}})


def test_readyz_names_the_model_file_without_its_folder(app_client, missing_model, tmp_path):
    c = app_client(missing_model)
    public = c.get("/readyz")
    assert public.status_code == 200
    assert "missing-model.gguf" in public.json()["data"]["model"]["reason"]
    assert "secret-folder" not in public.text and str(tmp_path) not in public.text
    operator = c.get("/readyz", headers=OPERATOR)
    assert "secret-folder" not in operator.text
    admin = c.get("/readyz", headers=ADMIN).json()["data"]
    assert str(tmp_path / "secret-folder" / "missing-model.gguf") in admin["model"]["reason"]  # admins see where


def test_extractive_answers_name_the_model_file_without_its_folder(app_client, missing_model, tmp_path):
    c = app_client(missing_model)
    answer = c.post("/api/v1/chat", json={"question": QUESTION}, headers=OPERATOR)
    data = answer.json()["data"]
    assert data["mode"] == "extractive" and "missing-model.gguf" in data["answer"] + (data["mode_reason"] or "")
    completion = c.post("/v1/chat/completions", headers=OPERATOR,
                        json={"model": "onsite", "messages": [{"role": "user", "content": QUESTION}]})
    assert completion.status_code == 200
    streamed = c.post("/v1/chat/completions", headers=OPERATOR,
                      json={"model": "onsite", "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
    for r in (answer, completion, streamed):
        assert "secret-folder" not in r.text and str(tmp_path) not in r.text


def test_metrics_need_an_admin_by_default(client_factory, settings_factory):
    assert Settings().api.metrics == "key"
    c = client_factory(settings_factory())
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}).status_code == 403
    assert c.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert c.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_metrics_can_be_open_or_off(client_factory, settings_factory):
    opened = client_factory(settings_factory(metrics="open"))
    assert opened.get("/metrics").status_code == 200 and "onsite_http_requests_total" in opened.get("/metrics").text
    off = client_factory(settings_factory(metrics="off"))
    assert off.get("/metrics").status_code == 404
    assert off.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404


def _assert_common(r) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_api_answers_carry_security_headers(app_client):
    c = app_client(simulate_hours=0)
    for r in (c.get("/healthz"), c.get("/readyz"), c.get("/api/v1/auth/me"), c.get("/api/v1/sensors", headers=OPERATOR),
              c.get("/v1/models", headers=OPERATOR), c.get("/no/such/path"), c.get("/openapi.json"),
              c.post("/api/v1/chat/stream", json={"question": QUESTION}, headers=OPERATOR)):
        _assert_common(r)
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_the_page_carries_security_headers(page):
    c = page()
    r = c.get("/ui/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    _assert_common(r)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "http" not in csp  # nothing from elsewhere
    assert r.headers["referrer-policy"] == "same-origin"
    _assert_common(c.get("/ui/config"))
    served = c.get("/ui/gradio_api/file=/tmp/gradio/upload/x.svg")  # a file the page serves runs nothing
    _assert_common(served)
    assert served.headers["content-security-policy"].startswith("default-src 'none'")
    signed = page(api_keys=[f"{ADMIN_KEY}:admin:boss"])
    login = signed.get("/ui-login")  # its own stricter policy (a nonce per answer) is kept
    assert login.status_code == 200 and "nonce-" in login.headers["content-security-policy"]
    _assert_common(login)


# --- 4. private files -----------------------------------------------------------------------------


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()




def _entries(root: Path) -> dict[Path, int]:
    out = {root: stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            if not p.is_symlink():
                out[p] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_data_files_are_private_under_a_permissive_umask(app_client, make_api_service, tmp_path):
    old = os.umask(0o022)
    try:
        home = tmp_path / "svc0"  # make_api_service's first home
        service = make_api_service(None, own_index=True, simulate_hours=1)
        before = {p for p in _entries(home) if "index" in p.relative_to(home).parts[:1]}  # the copied index
        c = app_client(service)
        assert c.post("/api/v1/chat", json={"question": QUESTION}, headers=OPERATOR).status_code == 200
        assert c.post("/v1/chat/completions", headers=OPERATOR, json={
            "model": "onsite", "messages": [{"role": "user", "content": QUESTION}]}).status_code == 200
        assert c.post("/api/v1/uploads", files={"file": ("leaf.png", _png())}, headers=OPERATOR).status_code == 201
        note = b"# SL-7\n\nThe belt of the sorting line SL-7 is re-tensioned every 400 operating hours.\n"
        assert c.post("/api/v1/knowledge/documents", files={"file": ("sl7.md", note)}, headers=ADMIN).status_code in (200, 201)
        assert wait_job(c, c.post("/api/v1/knowledge/jobs", headers=ADMIN).json()["data"]["id"])["state"] == "done"
        made = {p: m for p, m in _entries(home).items() if p not in before}
    finally:
        os.umask(old)
    names = {p.name for p in made}
    for expected in ("audit.sqlite", "audit.sqlite-wal", "conversations.sqlite", "sensors.sqlite", "workorders.sqlite"):
        assert any(n == expected for n in names), (expected, sorted(names))
    assert any(p.suffix == ".png" for p in made) and any(p.name == "sl7.md" for p in made)
    assert any(p.name == "v000002" for p in made)  # the rebuilt index version
    loose = {str(p.relative_to(tmp_path)): oct(m) for p, m in made.items()
             if (m & 0o077) or (p.is_dir() and m != 0o700) or (p.is_file() and m != 0o600)}
    assert not loose, loose
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_an_old_world_readable_database_is_tightened(tmp_path):
    from assistant.audit import AuditLog

    old = os.umask(0o022)
    try:
        path = tmp_path / "audit.sqlite"
        AuditLog(path).close()
        os.chmod(path, 0o644)  # as an earlier version left it
        for side in ("-wal", "-shm"):
            Path(f"{path}{side}").touch(mode=0o644)
        log = AuditLog(path)
        log.close()
    finally:
        os.umask(old)
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_the_command_line_writes_private_files_too(tmp_path):
    """`onsite sensors simulate` (any command) under a 022 umask: the store and its WAL are 0600."""
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {**os.environ, "ONSITE_HOME": str(home)}
    env.pop("ONSITE_CONFIG", None)
    old = os.umask(0o022)
    try:
        run = subprocess.run([sys.executable, "-c", "from assistant.cli import main; main()", "sensors", "simulate",
                              "--hours", "0.2"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.umask(old)
    assert run.returncode == 0, run.stderr
    made = _entries(home)
    assert any(p.name == "sensors.sqlite" for p in made)
    assert all(m == (0o700 if p.is_dir() else 0o600) for p, m in made.items()), {str(p): oct(m) for p, m in made.items()}
