"""/docs and /redoc render offline: Swagger UI and ReDoc come from the server itself (issue 14, point 3).

In a real Debian chromium (Playwright, ``executable_path``) against the whole API app under uvicorn on
loopback: Swagger UI lists the operations, ReDoc shows its menu, the page's own CSP lets them run,
and no request leaves 127.0.0.1 (FastAPI's stock pages fetch from a CDN and Google Fonts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from assistant.api.docs import ASSETS_PATH, assets_dir

CHROMIUM = next((p for p in (os.environ.get("ONSITE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None



def test_the_pages_name_only_local_assets(client):
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "cdn.jsdelivr" not in r.text and "fonts.googleapis" not in r.text and "https://" not in r.text, r.text
        assert ASSETS_PATH in r.text
        csp = r.headers["content-security-policy"]
        assert "https:" not in csp and "script-src 'self'" in csp
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        assert (assets_dir() / name).is_file()
        r = client.get(f"{ASSETS_PATH}/{name}")
        assert r.status_code == 200 and len(r.content) > 100, name
        assert b"cdn.redoc.ly" not in r.content, name


def test_docs_off_means_no_pages_and_no_assets(client_factory, settings_factory):
    c = client_factory(settings_factory(docs=False))
    for path in ("/docs", "/redoc", f"{ASSETS_PATH}/swagger-ui-bundle.js"):
        assert c.get(path).status_code == 404, path


@pytest.mark.parametrize("path, ready", [("/docs", ".opblock"), ("/redoc", "[role=menuitem], .menu-content li")])
@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')")
def test_pages_render_in_chromium_without_leaving_loopback(live_server, path, ready):
    server = live_server()
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(server.url + path)
            page.wait_for_selector(ready, timeout=10_000)
            shown = page.locator(ready).count()
        finally:
            browser.close()
    assert shown > 3, f"{path}: only {shown} {ready}"
    away = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname != "127.0.0.1"]
    assert not away, away
    assert not [e for e in errors if "Content Security Policy" in e], errors
