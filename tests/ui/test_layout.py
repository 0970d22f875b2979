"""The page's layout in a real browser at a phone (390×844), a tablet (800×1280) and a desktop
(1280×900): after the page loads and after an answer, the question box and the last answer are
on the first screen, and nothing sticks out sideways — open and signed in, in English and in
Chinese (by the browser's language, by the language pick and by asking in Chinese on Auto); the
sign-in page in both languages. One browser, one context per size and visitor.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.ui.browser import BROWSER, OPERATOR_KEY, OVERFLOW_JS, PLACES_JS, copy_index, onsite_server, sign_in, watch

pytestmark = BROWSER

SIZES = {"phone": (390, 844), "tablet": (800, 1280), "desktop": (1280, 900)}
QUESTION_EN = "What is the maximum discharge pressure of pump P-101?"
QUESTION_ZH = "番茄的适宜温度是多少？"


def check_layout(page, where: str, answered: bool = False) -> None:
    """The question box whole on the first screen; after an answer, the last message's end shown
    in the chat and on the screen; no element overflowing sideways (named in the message)."""
    page.evaluate("window.scrollTo(0, 0)")
    places = page.evaluate(PLACES_JS)
    height = places["viewport"]["height"]
    box = places["input"]
    assert box and box["top"] >= 0 and box["bottom"] <= height, f"{where}: question box at {box}, viewport {height}"
    if answered:
        last, chat = places["last"], places["chat"]
        assert last is not None, f"{where}: no message in the chat"
        assert 0 < last["bottom"] <= min(height, chat["bottom"] + 2), \
            f"{where}: last message ends at {last['bottom']:.0f} (chat {chat}, viewport {height})"
    overflowing = page.evaluate(OVERFLOW_JS)
    assert overflowing == [], f"{where}: overflowing horizontally: {overflowing}"


# the badge every finished extractive answer carries (an extract, or no answer), in either language
FINISHED = re.compile("Extract from the documents|Not answered|文档摘录|未回答")


def ask(page, question: str) -> None:
    """Ask and wait for the answer's badge in the last message."""
    before = page.locator("#onsite-chat .message-row").count()
    page.fill("#onsite-input textarea", question)
    page.keyboard.press("Enter")
    page.locator("#onsite-chat .message-row").nth(before + 1).wait_for()
    page.locator("#onsite-chat .message-row").last.filter(has_text=FINISHED).wait_for()
    page.wait_for_timeout(500)  # the turn's last event (sources) and the chat's scroll to its end


def open_page(browser, server: dict, size: str, locale: str):
    width, height = SIZES[size]
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    page = watch(ctx.new_page(), server["url"])
    page.set_default_timeout(60_000)
    return ctx, page


@pytest.mark.parametrize("size", list(SIZES))
def test_open_page_in_english_then_chinese(browser, browser_server, size):
    """English browser: load, answer, the badge's details; then Chinese — on the phone by asking in
    Chinese on Auto, elsewhere by the language pick."""
    ctx, page = open_page(browser, browser_server, size, "en-US")
    try:
        page.goto(f"{browser_server['url']}/ui/")
        page.locator("#onsite-status", has_text="Extracts only").wait_for()
        check_layout(page, f"{size}, open, en, loaded")
        ask(page, QUESTION_EN)
        check_layout(page, f"{size}, open, en, answered", answered=True)
        page.click("#onsite-status summary")  # the badge's details: one tap away, inside the screen
        details = page.locator("#onsite-status .onsite-badge-details")
        details.wait_for()
        assert "Knowledge index" in details.inner_text()
        check_layout(page, f"{size}, open, en, badge details open", answered=True)
        page.click("#onsite-status summary")
        if size == "phone":
            ask(page, QUESTION_ZH)  # Auto follows the question's language
            page.locator("button[role=tab]", has_text="问答").first.wait_for()
            assert "仅摘录" in page.inner_text("#onsite-status")
            check_layout(page, f"{size}, open, zh by the question, answered", answered=True)
        else:
            page.locator("#onsite-lang label", has_text="中文").click()
            page.locator("button[role=tab]", has_text="问答").first.wait_for()
            check_layout(page, f"{size}, open, zh by the pick, answered", answered=True)
        assert page.errors == [] and page.outside == []
    finally:
        ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_signed_in_page_in_chinese(browser, browser_server_keys, size):
    """A Chinese browser (Accept-Language) signed in as an operator: load, answer."""
    ctx, page = open_page(browser, browser_server_keys, size, "zh-CN")
    try:
        sign_in(page, browser_server_keys["url"], OPERATOR_KEY)
        page.locator("#onsite-account", has_text="floor-tablet").wait_for(state="attached")
        page.locator("button[role=tab]", has_text="问答").first.wait_for()
        check_layout(page, f"{size}, signed in, zh, loaded")
        ask(page, QUESTION_ZH)
        check_layout(page, f"{size}, signed in, zh, answered", answered=True)
        assert page.errors == [] and page.outside == []
    finally:
        ctx.close()


@pytest.mark.parametrize("locale, heading", [("zh-CN", "登录现场助手"), ("en-US", "Sign in to the plant assistant")])
def test_sign_in_page_fits_in_both_languages(browser, browser_server_keys, locale, heading):
    ctx, page = open_page(browser, browser_server_keys, "phone", locale)
    try:
        page.goto(f"{browser_server_keys['url']}/ui/")
        page.locator("h1", has_text=heading).wait_for()
        assert page.evaluate(OVERFLOW_JS) == []
        other = "English" if locale == "zh-CN" else "中文"
        page.click("#onsite-login-lang")  # the other language, one tap
        page.locator("#onsite-login-lang", has_text="中文" if other == "English" else "English").wait_for()
        assert page.evaluate(OVERFLOW_JS) == []
        assert page.outside == []
    finally:
        ctx.close()


GGUF = Path(os.environ.get("ONSITE_TEST_GGUF", "/work/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))


@pytest.mark.slow
@pytest.mark.skipif(not GGUF.is_file(), reason=f"no GGUF at {GGUF} (set ONSITE_TEST_GGUF)")
def test_with_a_model_the_badge_names_it_and_the_answer_fits(browser, sample_index, tmp_path):
    """The real model loaded (the 0.5B GGUF placed in the models folder, as `onsite model pull`
    leaves it): the badge names the model in one line, and a written answer keeps the question
    box and its own end on the first screen of a phone and a tablet."""
    home = tmp_path / "home"
    copy_index(sample_index[0].parent, home)
    (home / "models").mkdir()
    (home / "models" / GGUF.name).symlink_to(GGUF)
    with onsite_server(home, ONSITE_LLM__BACKEND="llamacpp", ONSITE_LLM__FETCH_ON_START="false") as server:
        for size in ("phone", "tablet"):
            ctx, page = open_page(browser, server, size, "en-US")
            try:
                page.goto(f"{server['url']}/ui/")
                badge = page.locator("#onsite-status summary")
                page.wait_for_function("() => /qwen/i.test(document.querySelector('#onsite-status')?.innerText || '')",
                                       timeout=120_000)
                assert "\n" not in badge.inner_text().strip() and "Extracts only" not in badge.inner_text()
                check_layout(page, f"{size}, model, loaded")
                page.fill("#onsite-input textarea", QUESTION_EN)
                page.keyboard.press("Enter")
                page.locator("#onsite-sources-list", has_text="[1]").wait_for(timeout=240_000)
                page.wait_for_timeout(1000)
                check_layout(page, f"{size}, model, answered", answered=True)
                assert page.errors == [] and page.outside == []
            finally:
                ctx.close()
