"""The page mounted on the API app: served at /ui, nothing exposed it should not be — no API of
the handlers, no files from the data home or elsewhere, no analytics, no flagging."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from assistant.api.app import create_app
from tests.ui.fakes import FakeService
from ui import blocked_paths, mount

# Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


@pytest.fixture
def mounted(tmp_path):
    service = FakeService(tmp_path / "home")
    app = create_app(service.settings, services=service)
    path = mount(app, service, service.settings)
    with TestClient(app) as client:
        yield client, service, path


def test_importing_ui_does_not_import_gradio():
    code = "import sys, ui; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_page_is_served_at_ui(mounted):
    client, _, path = mounted
    assert path == "/ui/"
    assert client.get("/ui/").status_code == 200
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/ui/"
    assert client.get("/healthz").status_code == 200  # the API is still there


def test_safe_settings(mounted):
    client, service, _ = mounted
    cfg = client.get("/ui/config").json()
    assert cfg["analytics_enabled"] is False and cfg["show_error"] is False
    assert cfg["footer_links"] == [] and cfg["run_history"] is False and cfg["mcp_server"] is False
    assert cfg["max_file_size"] == int(service.settings.api.max_upload_mb * 1024 * 1024)
    assert {d["api_visibility"] for d in cfg["dependencies"]} == {"private"}
    info = client.get("/ui/gradio_api/info").json()
    assert info == {"named_endpoints": {}, "unnamed_endpoints": {}}
    assert "flag" not in json.dumps(cfg).lower()


def test_blocked_paths_cover_the_data_home(tmp_path):
    service = FakeService(tmp_path / "home")
    blocked = blocked_paths(service.settings)
    home = str(service.settings.home.resolve())
    assert blocked[0] == home
    assert str(service.settings.models_dir.resolve()) in blocked and str(service.settings.index_dir.resolve()) in blocked


def test_no_file_outside_the_upload_cache_is_served(mounted, tmp_path):
    client, service, _ = mounted
    home = service.settings.home
    (home / "index").mkdir(parents=True, exist_ok=True)
    (home / "index" / "CURRENT").write_text("v1")
    (home / "notes.txt").write_text("private")
    for target in (home / "index" / "CURRENT", home / "notes.txt", "/etc/passwd", tmp_path / "x.txt"):
        assert client.get(f"/ui/gradio_api/file={target}").status_code in (403, 404), target


def _join(client, fn: int, data: list) -> dict:
    session = uuid.uuid4().hex[:10]
    r = client.post("/ui/gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session})
    assert r.status_code == 200
    with client.stream("GET", f"/ui/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("no result")


def test_a_crafted_request_cannot_make_the_server_read_its_files(mounted, tmp_path):
    client, service, _ = mounted
    cfg = client.get("/ui/config").json()
    submit = next(i for i, d in enumerate(cfg["dependencies"]) if any(t[1] == "submit" for t in d["targets"]))
    secret = service.settings.home / "secret.png"
    outside = tmp_path / "outside.png"
    for p in (secret, outside):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
        data = [{"text": "x", "files": [{"path": str(p), "meta": {"_type": "gradio.FileData"}}]}, [], None, "", "", "en"]
        assert _join(client, submit, data)["success"] is False
    assert service.asked == []
