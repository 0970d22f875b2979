"""Helpers for the browser tests: a real ``onsite serve`` in a temp data home, Debian's chromium
through Playwright, and in-page checks of the layout. The session fixtures are in conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = next((p for p in (os.environ.get("ONSITE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

# Put on a browser test module: ``pytestmark = BROWSER``.
BROWSER = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
]

START_TIMEOUT_S = 240
OPERATOR_KEY = "operator-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210xyz"
API_KEYS = f"{OPERATOR_KEY}:operator:floor-tablet,{ADMIN_KEY}:admin:ops-console"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_index(source_home: Path, home: Path) -> None:
    """Give a second server the first one's built index (not its lock or staging area), so it
    starts without building the sample knowledge again."""
    shutil.copytree(source_home / "index", home / "index", ignore=shutil.ignore_patterns("build.lock", "staging"))


def onsite_command() -> list[str]:
    exe = Path(sys.executable).parent / "onsite"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "assistant.cli"]


@contextmanager
def onsite_server(home: Path, **env_extra: str) -> Iterator[dict]:
    """``onsite serve`` (extractive, loopback, a free port) in ``home`` until the block ends;
    yields {"url", "home", "log"}. Fails the test with the log's end when it does not start."""
    port = free_port()
    env = {**os.environ, "ONSITE_HOME": str(home), "ONSITE_LLM__BACKEND": "extractive", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **env_extra}
    env.pop("ONSITE_CONFIG", None)
    if "ONSITE_API_KEYS" not in env_extra:
        env.pop("ONSITE_API_KEYS", None)
    log_path = home / "serve.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([*onsite_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--feed", "direct"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        import httpx

        while True:
            if proc.poll() is not None:
                pytest.fail(f"onsite serve exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:  # signed in, the page's config answers 401: still, it answers
                if httpx.get(f"{url}/ui/config", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"onsite serve did not start in {START_TIMEOUT_S} s:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "home": home, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def watch(page, base_url: str):
    """Record on ``page``: requests leaving the server (``page.outside``), script errors
    (``page.errors``) and Content-Security-Policy reports (``page.csp``). Observe, do not
    intercept: routing every request would buffer Gradio's event stream."""
    page.outside, page.errors, page.csp = [], [], []
    page.on("request", lambda r: None if r.url.startswith((base_url, "data:", "blob:")) else page.outside.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.csp.append(m.text) if "Content Security Policy" in m.text else None)
    return page


def sign_in(page, base_url: str, key: str) -> None:
    """Through the sign-in page, as a person would."""
    page.goto(f"{base_url}/ui/")
    page.fill("#onsite-key", key)
    page.click("#onsite-sign-in")
    page.wait_for_selector("#onsite-input textarea")


# In the page: elements that stick out of the viewport or out of their own box sideways. An element
# is excused when an ancestor that clips (overflow not visible) keeps it inside the viewport, and a
# scroll container's overflow is its own business (it scrolls). Returns CSS-like selectors.
OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth, bad = [];
  const name = el => {
    let s = el.tagName.toLowerCase();
    if (el.id) return s + '#' + el.id;
    const cls = [...el.classList].filter(c => !c.startsWith('svelte-')).slice(0, 3);
    if (cls.length) s += '.' + cls.join('.');
    const owner = el.closest('[id]');
    return (owner ? '#' + owner.id + ' ' : '') + s;
  };
  const clippedInside = el => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      const st = getComputedStyle(a);
      if (st.overflowX !== 'visible' || st.clip !== 'auto' || st.clipPath !== 'none') {
        return a.getBoundingClientRect().right <= vw + 1;
      }
    }
    return false;
  };
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none' || el.closest('details:not([open]) > :not(summary)')) continue;
    if (r.right > vw + 1 && !clippedInside(el)) bad.push(name(el) + ` (right ${Math.round(r.right)} > ${vw})`);
    else if (st.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
             && !['SVG', 'svg', 'PATH', 'path'].includes(el.tagName) && !clippedInside(el)
             && r.left + el.scrollWidth > vw + 1) {
      bad.push(name(el) + ` (content ${el.scrollWidth} > box ${el.clientWidth})`);
    }
  }
  return [...new Set(bad)];
}"""

# Where the question box and the last chat message are, against the viewport.
PLACES_JS = """() => {
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                      return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
  const msgs = document.querySelectorAll('#onsite-chat .message-row');
  return {viewport: {width: window.innerWidth, height: window.innerHeight},
          input: box(document.querySelector('#onsite-input textarea')), chat: box(document.querySelector('#onsite-chat')),
          last: box(msgs.length ? msgs[msgs.length - 1] : null), messages: msgs.length};
}"""
