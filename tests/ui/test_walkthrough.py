"""The README's "Your first ten minutes", followed as a newcomer would: the same questions, the same
buttons, the same curl lines (read from README.md, pointed at the test's server), in a real
browser on a tablet-sized screen. When the README and the product drift apart, this fails.

The server is ``browser_server`` (tests/ui/conftest.py): a fresh data home, no keys, no model —
what a plain ``make run`` gives on a box where no model can be fetched.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.ui.browser import BROWSER, onsite_command, watch

pytestmark = BROWSER

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8000"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Your first ten minutes")
    end = text.index("\n### ", start + 10)
    return text[start:end]


def step(n: int) -> str:
    """The text of step ``n`` of the walk-through."""
    m = re.search(rf"^{n}\. (.*?)(?=^\d+\. |\Z)", walkthrough(), flags=re.S | re.M)
    assert m, f"the README walk-through has no step {n}"
    return m.group(1)


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def curl_requests(text: str, url: str, key: str) -> list[dict]:
    """Each ``curl`` of a shell block as {method, url, headers, body}, with README's host and
    ``$KEY`` replaced by the test server's."""
    block = "\n".join(re.findall(r"```sh\n(.*?)```", text, flags=re.S)).replace("\\\n", " ")
    out = []
    for line in block.splitlines():
        line = line.strip()
        if not line.startswith("curl "):
            continue
        args = shlex.split(line.replace("$KEY", key))[1:]
        req = {"method": "GET", "headers": {}, "body": None, "url": None}
        i = 0
        while i < len(args):
            if args[i] == "-H":
                name, value = args[i + 1].split(":", 1)
                req["headers"][name.strip()] = value.strip()
                i += 2
            elif args[i] == "-d":
                req["method"], req["body"] = "POST", args[i + 1]
                i += 2
            else:
                req["url"] = args[i].replace(README_URL, url)
                i += 1
        out.append(req)
    return out


@pytest.fixture
def tablet(browser, browser_server):
    ctx = browser.new_context(locale="en-US", viewport={"width": 800, "height": 1280})
    page = watch(ctx.new_page(), browser_server["url"])
    page.set_default_timeout(60_000)
    yield page
    ctx.close()


def _in_view(page, selector: str) -> bool:
    return page.evaluate("""(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight + 1; }""", selector)


def test_step_1_the_banner_says_how_to_reach_the_page_and_the_apis(browser_server):
    log = browser_server["log"].read_text(errors="replace")
    assert "starting onsite" in log.splitlines()[0]
    assert "onsite is serving on http://127.0.0.1:" in log
    key = (browser_server["home"] / "first-api-key").read_text().strip()
    assert re.search(rf"API key:\s+{re.escape(key)} \(generated", log)
    try_line = next(line for line in log.splitlines() if line.strip().startswith("try:"))
    req = curl_requests("```sh\n" + try_line.split("try:", 1)[1].strip() + "\n```", browser_server["url"], key)[0]
    assert httpx.get(req["url"], headers=req["headers"], timeout=30).status_code == 200
    assert "DEBUG" not in log  # a newcomer's terminal carries no library debug lines
    assert "first-api-key" in step(1) and "try:" in step(1)


def test_steps_2_to_4_on_a_tablet_answer_photo_and_sensors(tablet, browser_server):
    page = tablet
    page.goto(f"{browser_server['url']}/ui/")
    page.wait_for_selector("#onsite-input textarea")
    question = next(s for s in code_spans(step(2)) if s.endswith("?"))
    page.fill("#onsite-input textarea", question)
    page.keyboard.press("Enter")
    page.locator("#onsite-sources-list", has_text="cited").wait_for()
    answer = page.locator("#onsite-chat .message").last
    quoted = next(s for s in code_spans(step(2)) if "bar" in s)  # the value the README promises
    assert quoted in answer.inner_text() and re.search(r"\[\d+\]", answer.inner_text()), answer.inner_text()
    assert _in_view(page, "#onsite-input textarea")  # the question box stays on the first screen
    assert "Extracts only" in page.inner_text("#onsite-status")  # the one-line badge of step 2

    # Step 3: the named sample button, then Inspect.
    sample = re.search(r"tap \*(.+?)\*, then \*(\w+)\*", step(3))
    assert sample, step(3)
    page.click("#onsite-tab-inspect-button")
    page.locator("button", has_text=sample.group(1)).click()
    page.locator("#onsite-insp-photo img").first.wait_for()
    page.locator("#onsite-insp-run", has_text=sample.group(2)).click()
    verdict = page.locator("#onsite-insp-verdict", has_text=re.compile("DEFECTIVE|GOOD"))
    verdict.wait_for()
    assert "DEFECTIVE" in verdict.inner_text() and "threshold" in verdict.inner_text()
    page.locator("#onsite-insp-result img").first.wait_for()

    # Step 4: the sensors tab plots a sensor with its status.
    assert "*Sensors*" in step(4)
    page.click("#onsite-tab-sensors-button")
    page.locator("#onsite-sensor-plot canvas, #onsite-sensor-plot svg").first.wait_for()
    page.locator("#onsite-sensor-summary", has_text=re.compile(r"\S")).wait_for()
    assert page.outside == [] and page.errors == [], (page.outside, page.errors)


def test_step_5_the_readmes_curl_lines_work_with_the_generated_key(browser_server):
    key = (browser_server["home"] / "first-api-key").read_text().strip()
    assert "KEY=$(cat ~/.onsite/first-api-key)" in step(5)
    requests = curl_requests(step(5), browser_server["url"], key)
    assert len(requests) >= 2
    for req in requests:
        r = httpx.request(req["method"], req["url"], headers=req["headers"], content=req["body"], timeout=120)
        assert r.status_code == 200, (req["url"], r.text[:500])
        body = r.json()
        if req["method"] == "POST":
            assert re.search(r"\[\d+\]", body["data"]["answer"]) and body["data"]["sources"], body
    # The wrong name of step 5 is refused with the valid ones.
    bad = httpx.post(f"{browser_server['url']}/api/v1/chat", headers={"Authorization": f"Bearer {key}"},
                     json={"question": "temperature?", "scope": {"zone": "GH-9"}}, timeout=30)
    assert bad.status_code == 422 and "GH-1" in bad.text and "GH-9" in bad.text
    # Without the key: 401, as the banner warns.
    assert httpx.get(f"{browser_server['url']}/api/v1/sensors", timeout=30).status_code == 401


def test_step_6_the_api_documents_load_offline(browser, browser_server):
    assert "/docs" in step(6) and "/redoc" in step(6)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch(ctx.new_page(), browser_server["url"])
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{browser_server['url']}/docs")
        page.locator(".opblock").first.wait_for()
        assert page.locator(".opblock").count() > 10
        page.goto(f"{browser_server['url']}/redoc")
        page.locator("[role=menuitem], .menu-content li").first.wait_for()
        assert page.outside == [], page.outside
    finally:
        ctx.close()


def test_step_7_the_terminal_commands(browser_server):
    env = {**os.environ, "ONSITE_HOME": str(browser_server["home"]), "ONSITE_LLM__BACKEND": "extractive",
           "HF_HUB_OFFLINE": "1"}
    commands = [c for c in code_spans(step(7)) if c.startswith(".venv/bin/onsite ")]
    assert {shlex.split(c)[1] for c in commands} >= {"ask", "search", "model"}
    for command in commands:
        args = shlex.split(command)[1:]
        done = subprocess.run([*onsite_command(), *args], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, (command, done.stderr[-1500:])
        if args[0] == "ask":
            assert re.search(r"\[\d+\]", done.stdout), done.stdout[-1500:]
        elif args[0] == "search":
            assert "lockout" in done.stdout.lower(), done.stdout[-1500:]
        elif args[0] == "model":
            assert "SHA-256" in done.stdout or "sha256" in done.stdout.lower(), done.stdout[-1500:]
