"""End to end in a real browser: ``onsite serve`` started as a process on loopback with the sample
knowledge (extractive mode, no model), driven by Debian's ``chromium`` headless through
Playwright (``executable_path``; Playwright never downloads a browser here).

One server for the test session (``browser_server`` in tests/ui/conftest.py; the first start
builds the sample index: ~35 s on 2 cores, and learns the sample product of the photo check).
Run alone: ``.venv/bin/pytest tests/ui/test_browser.py -q``.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tests.ui.browser import BROWSER, OPERATOR_KEY, watch

pytestmark = BROWSER

QUESTION = "What is the maximum discharge pressure of pump P-101?"


@pytest.fixture
def server(browser_server):
    return browser_server


@pytest.fixture
def page_of(browser, server):
    """page_of(locale) → a fresh page on the chat page; records requests leaving the loopback host."""
    contexts = []

    def make(locale: str = "en-US"):
        ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
        contexts.append(ctx)
        page = watch(ctx.new_page(), server["url"])
        page.set_default_timeout(60_000)
        page.goto(f"{server['url']}/ui/")
        page.wait_for_selector("#onsite-input textarea")
        return page

    yield make
    for ctx in contexts:
        ctx.close()


_RECORD_CHAT = """() => {
  window.__chatSnapshots = [];
  const chat = document.querySelector('#onsite-chat');
  new MutationObserver(() => window.__chatSnapshots.push(chat.innerText))
    .observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def test_ask_streams_a_cited_answer_and_opens_the_source(page_of, server):
    page = page_of()
    page.evaluate(_RECORD_CHAT)
    page.fill("#onsite-input textarea", QUESTION)
    page.keyboard.press("Enter")
    badge = page.locator("#onsite-chat", has_text="Extract from the documents")
    badge.wait_for()
    final = page.inner_text("#onsite-chat")
    assert QUESTION in final
    assert re.search(r"\[\d+\]", final), final  # the answer cites its sources
    snapshots = page.evaluate("window.__chatSnapshots")
    # Streamed: the page showed the turn in progress before the answer arrived, and its steps stay.
    assert any(QUESTION in s and "Extract from the documents" not in s for s in snapshots), snapshots[-5:]
    assert "Searching the documents" in final, final

    # The sources panel lists the cited sources with file names; open the first one. The panel
    # is filled by the turn's last event, which may land just after the answer text: wait for it.
    page.locator("#onsite-sources-list", has_text="cited").wait_for()
    listing = page.inner_text("#onsite-sources-list")
    assert "cited" in listing and ".md" in listing
    first = page.locator("#onsite-source-pick label").first
    label = first.inner_text()
    n = re.match(r"\[(\d+)\]", label.strip()).group(1)
    first.click()
    detail = page.locator("#onsite-source-detail")
    detail.locator(f"text=[{n}]").first.wait_for()
    assert len(detail.inner_text()) > 40  # the whole cited passage

    # Nothing in the answer loads from elsewhere; the page makes no request off the box.
    srcs = page.eval_on_selector_all("#onsite-chat img", "els => els.map(e => e.src)")
    assert all(s.startswith((server["url"], "data:", "blob:")) for s in srcs), srcs
    assert page.outside == [], page.outside
    assert page.errors == [], page.errors


def test_photo_check_shows_the_annotated_result(page_of, server):
    page = page_of()
    page.click("#onsite-tab-inspect-button, button[role=tab]:has-text('Photo check')")
    page.locator("#onsite-insp-photo input[type=file]").set_input_files(str(server["photo"]))
    page.locator("#onsite-insp-photo img").first.wait_for()  # the preview of the uploaded photo
    page.locator("#onsite-insp-product input").first.wait_for()
    page.click("#onsite-insp-run")
    verdict = page.locator("#onsite-insp-verdict", has_text=re.compile("DEFECTIVE|GOOD"))
    verdict.wait_for()
    result = page.locator("#onsite-insp-result img").first
    result.wait_for()
    page.wait_for_function("() => { const i = document.querySelector('#onsite-insp-result img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert "DEFECTIVE" in verdict.inner_text()  # a photo with a stain on the label
    assert page.outside == [], page.outside


def test_html_and_remote_images_in_the_chat_stay_text(page_of):
    page = page_of()
    hostile = "<img src=http://203.0.113.7/a.png> ![x](http://203.0.113.7/b.png) <b>pump</b> P-101 pressure?"
    page.fill("#onsite-input textarea", hostile)
    page.keyboard.press("Enter")
    page.locator("#onsite-chat", has_text="Extract from the documents").wait_for()
    text = page.inner_text("#onsite-chat")
    assert "<img src=http://203.0.113.7/a.png>" in text and "<b>pump</b>" in text  # shown, not rendered
    assert page.eval_on_selector_all("#onsite-chat img[src*='203.0.113.7']", "els => els.length") == 0
    assert page.eval_on_selector_all("#onsite-chat b", "els => els.filter(e => e.innerText === 'pump').length") == 0
    page.reload()  # the conversation comes back, still as text
    page.locator("#onsite-chat", has_text="<b>pump</b>").wait_for()
    assert page.eval_on_selector_all("#onsite-chat img[src*='203.0.113.7']", "els => els.length") == 0
    assert page.outside == [], page.outside


def test_labels_follow_the_browser_language_or_the_setting(page_of):
    page = page_of("zh-CN")
    page.locator("button[role=tab]", has_text="问答").first.wait_for()
    assert "对话" in page.inner_text("#onsite-chat") and "仅摘录" in page.inner_text("#onsite-status")
    page.click("#onsite-status summary")  # the badge's details: one tap away
    page.locator("#onsite-status .onsite-badge-details", has_text="知识库版本").wait_for()
    page.locator("#onsite-lang label", has_text="English").click()
    page.locator("button[role=tab]", has_text="Ask").first.wait_for()
    page.reload()  # the setting is remembered in this browser
    page.locator("#onsite-status", has_text="Extracts only").first.wait_for()  # written once the page loaded
    assert page.locator("button[role=tab]", has_text="问答").count() == 0
    page.locator("#onsite-input textarea[placeholder^='Ask about']").wait_for()


def test_the_page_works_under_its_security_headers(page_of, server):
    """The page's CSP (no framing, nothing from elsewhere) blocks nothing the page needs: the chat,
    the sensor plot and the photo check all run, and the browser reports no violation."""
    import httpx

    headers = httpx.get(f"{server['url']}/ui/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    # reached by a LAN address, a foreign origin is not reflected (Gradio's own CORS would, with credentials)
    lan = httpx.get(f"{server['url']}/ui/config", headers={"Host": "192.168.1.10:7860", "Origin": "http://evil.example"})
    assert lan.status_code == 200 and "access-control-allow-origin" not in lan.headers
    assert "access-control-allow-credentials" not in lan.headers
    page = page_of()
    page.fill("#onsite-input textarea", QUESTION)
    page.keyboard.press("Enter")
    page.locator("#onsite-chat .message", has_text="[1]").first.wait_for()
    page.click("#onsite-tab-sensors-button")
    page.locator("#onsite-sensor-plot canvas, #onsite-sensor-plot svg").first.wait_for()
    page.wait_for_timeout(1000)
    assert page.csp == [] and page.errors == []


def _boiler_manual(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Boiler B-7 operating manual", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "This manual covers the hot-water boiler B-7 that heats glasshouse 3.")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, "Spare parts", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Spare burner gaskets for boiler B-7 are kept in the blue cabinet 42 in the boiler house. "
                   "Replace the burner gasket of boiler B-7 every 2000 operating hours.")
    pdf.output(str(path))
    return path


def test_documents_are_added_rebuilt_and_their_pdf_pages_shown(page_of, tmp_path):
    """Last in the module: it publishes a new index version."""
    manual = _boiler_manual(tmp_path / "boiler-B7-manual.pdf")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"garbage" * 100)
    page = page_of()
    page.click("#onsite-tab-admin-button")
    page.locator("#onsite-doc-files input[type=file]").set_input_files([str(manual), str(broken)])
    page.locator("#onsite-doc-files", has_text="broken").first.wait_for()
    page.click("#onsite-doc-save")
    page.locator("#onsite-admin-message", has_text="Saved 2 file(s)").wait_for()
    page.evaluate("""() => { window.__admin = [];
      const el = document.querySelector('#onsite-admin-message');
      new MutationObserver(() => window.__admin.push(el.innerText))
        .observe(el, {subtree: true, childList: true, characterData: true}); }""")
    page.click("#onsite-rebuild")
    page.locator("#onsite-admin-message", has_text="is live").wait_for()
    assert any("Rebuilding" in m for m in page.evaluate("window.__admin"))  # progress was shown
    report = page.inner_text("#onsite-report")
    assert re.search(r"boiler-B7-manual\.pdf\s+indexed", report), report
    assert re.search(r"broken\.pdf\s+skipped\s+0\s+malformed", report), report

    page.click("#onsite-tab-chat-button")
    page.fill("#onsite-input textarea", "Where are the spare burner gaskets for boiler B-7 kept?")
    page.keyboard.press("Enter")
    try:  # the first question on a freshly published version also loads it: allow for a busy CI box
        page.locator("#onsite-chat", has_text="cabinet 42").wait_for(timeout=150_000)
    except Exception as exc:
        raise AssertionError(f"no answer from the new document; the chat shows: {page.inner_text('#onsite-chat')[-600:]}") from exc
    page.locator("#onsite-source-pick label", has_text="boiler-B7-manual.pdf").first.click()
    page.wait_for_function("() => { const i = document.querySelector('#onsite-page-image img');"
                           " return i && i.complete && i.naturalWidth > 200; }")
    assert "boiler-B7-manual.pdf, p. " in page.inner_text("#onsite-source-detail")
    assert page.outside == [], page.outside


# --- sign-in (its own small server: the page over a stand-in service, with API keys) ---------------


@pytest.fixture
def signed_site(tmp_path, monkeypatch):
    """The full app (API + page) over the stand-in service, with an operator and an admin key, under
    uvicorn on a free loopback port in this process."""
    import threading

    import uvicorn

    from assistant.api.metrics import ApiMetrics
    from assistant.server import build_app
    from assistant.settings import Settings
    from tests.ui.fakes import FakeService

    monkeypatch.delenv("ONSITE_API_KEYS", raising=False)
    service = FakeService(tmp_path / "home")
    service.settings = Settings(home=tmp_path / "home", llm={"backend": "extractive"}, api={
        "api_keys": [f"{OPERATOR_KEY}:operator:floor-tablet", "admin-key-fedcba9876543210xyz:admin:ops-console"],
        "rate_limit_per_minute": 0})
    app = build_app(service.settings, service, metrics=ApiMetrics())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_sign_in_as_an_operator_and_out_again(browser, signed_site):
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith((signed_site, "data:", "blob:")) else outside.append(r.url))
        page.goto(f"{signed_site}/ui/")
        assert "/ui-login" in page.url  # no session: the sign-in page
        page.fill("#onsite-key", "not-the-right-key-at-all")
        page.click("#onsite-sign-in")
        page.locator("text=That key is not valid.").wait_for()
        page.fill("#onsite-key", OPERATOR_KEY)
        page.click("#onsite-sign-in")
        page.wait_for_selector("#onsite-input textarea")
        page.locator("#onsite-account", has_text="floor-tablet").wait_for()
        assert not page.locator("#onsite-tab-admin-button").is_visible()  # documents: admins only
        page.click("#onsite-logout")
        page.locator("text=You are signed out.").wait_for()
        page.goto(f"{signed_site}/ui/")
        assert "/ui-login" in page.url
        assert outside == [], outside
    finally:
        ctx.close()
