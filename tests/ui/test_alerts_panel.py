"""The page's alerts: the header badge (count of active alerts, coloured by the worst severity,
in English and Chinese), the list refreshed by the timer, and Acknowledge / Close through the
handlers with the roles of the request (operators acknowledge, only admins close)."""

from __future__ import annotations

import re
import time

import gradio as gr
import pytest

from assistant.api.auth import Authenticator
from assistant.settings import Settings
from tests.ui.browser import BROWSER
from tests.ui.fakes import FakeService
from ui.alerts_panel import PAGE_USER, AlertHandlers, alert_badge
from ui.login import OPEN, PageAuth

OPERATOR_KEY = "operator-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210xyz"
OPERATOR = gr.Request(headers={"authorization": f"Bearer {OPERATOR_KEY}"})
ADMIN = gr.Request(headers={"authorization": f"Bearer {ADMIN_KEY}"})


@pytest.fixture
def auth(tmp_path, monkeypatch):
    monkeypatch.delenv("ONSITE_API_KEYS", raising=False)
    settings = Settings(home=tmp_path / "auth", api={"api_keys": [f"{OPERATOR_KEY}:operator:floor-tablet",
                                                                   f"{ADMIN_KEY}:admin:ops-console"]})
    return PageAuth(Authenticator.from_settings(settings))


def _text(badge: str) -> str:
    """The words a tablet or desktop shows (a phone shows the number only)."""
    return re.sub(r"<[^>]+>", "", re.search(r'<span class="word">(.*?)</span>', badge).group(1))


def _class(badge: str) -> str:
    return re.search(r'class="onsite-alerts-badge ([a-z]+)"', badge).group(1)


def test_badge_counts_active_alerts_and_takes_the_worst_colour():
    none = alert_badge({"info": 0, "warning": 0, "alarm": 0, "critical": 0}, "en")
    assert _text(none) == "No alerts" and _class(none) == "none"
    some = alert_badge({"info": 2, "warning": 1, "alarm": 0, "critical": 0}, "en")
    assert _text(some) == "3 alerts" and _class(some) == "warning" and 'title="warning: 1, info: 2"' in some
    worst = alert_badge({"info": 0, "warning": 5, "alarm": 0, "critical": 1}, "zh")
    assert _text(worst) == "6 条告警" and _class(worst) == "critical" and "严重: 1" in worst
    assert '<span class="n">6</span>' in worst and '<span class="n">0</span>' in none
    assert alert_badge(None, "en") == ""  # alerts unreadable: no badge, the page still works


def test_refresh_shows_active_alerts_newest_first(tmp_path):
    service = FakeService(tmp_path / "svc")
    service.add_alert("warning", "P-101", "Vibration <b>rising</b>")
    service.add_alert("alarm", "GH-1", "Temperature high")
    closed = service.add_alert("critical", "P-102", "Old")
    service.close_alert(closed["id"], "boss")
    badge, table, pick, close_box, message = AlertHandlers(service).refresh(None, "en")
    assert _text(badge) == "2 alerts" and _class(badge) == "alarm"
    rows = table["value"].values.tolist()
    assert [r[0] for r in rows] == ["2", "1"] and rows[0][1] == "alarm" and rows[1][4] == "Vibration <b>rising</b>"
    assert pick["value"] == "2" and [c[1] for c in pick["choices"]] == ["2", "1"]
    assert close_box["visible"] is True  # an open page: everyone may close
    # a tick keeps the person's pick while it is still active, and leaves the message alone
    _, _, pick, _, message = AlertHandlers(service).refresh("1", "zh")
    assert pick["value"] == "1" and message == gr.update()


def test_operator_acknowledges_admin_closes(tmp_path, auth):
    service = FakeService(tmp_path / "svc")
    alert = service.add_alert("alarm", "P-101", "Discharge pressure high")
    h = AlertHandlers(service, auth)
    assert h.refresh(None, "en", OPERATOR)[3]["visible"] is False  # operators do not see Close
    assert h.refresh(None, "en", ADMIN)[3]["visible"] is True

    badge, _, _, _, message = h.close(str(alert["id"]), "done", "en", OPERATOR)
    assert message == "Only an administrator can do this." and service.get_alert(alert["id"])["state"] == "open"
    assert h.acknowledge(str(alert["id"]), "en", None)[4] != f"Alert #{alert['id']} acknowledged by key:floor-tablet."
    assert service.get_alert(alert["id"])["state"] == "open"  # signed out: refused

    message = h.acknowledge(str(alert["id"]), "en", OPERATOR)[4]
    assert message == f"Alert #{alert['id']} acknowledged by key:floor-tablet."
    assert service.get_alert(alert["id"])["acked_by"] == "key:floor-tablet"
    again = h.acknowledge(str(alert["id"]), "en", OPERATOR)[4]
    assert "already acknowledged" in again  # a conflict is a message, not a crash

    badge, table, _, _, message = h.close(str(alert["id"]), "  valve reseated ", "zh", ADMIN)
    assert message == f"告警 #{alert['id']} 已由 key:ops-console 关闭。"
    closed = service.get_alert(alert["id"])
    assert closed["state"] == "closed" and closed["closed_by"] == "key:ops-console" and closed["close_note"] == "valve reseated"
    assert _text(badge) == "无告警" and table["value"].empty


def test_open_page_records_the_page_and_needs_a_pick(tmp_path):
    service = FakeService(tmp_path / "svc")
    h = AlertHandlers(service, OPEN)
    assert h.acknowledge(None, "en")[4] == "Pick an alert first."
    alert = service.add_alert()
    h.acknowledge(str(alert["id"]), "en")
    assert service.get_alert(alert["id"])["acked_by"] == PAGE_USER
    assert "no alert" in h.close("999", "", "en")[4]


def test_the_page_builds_with_the_alerts_and_without(tmp_path):
    from ui.app import build_blocks

    service = FakeService(tmp_path / "svc")
    service.add_alert("critical")
    blocks = build_blocks(service)
    ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    assert {"onsite-alerts-badge", "onsite-alerts", "onsite-alert-ack", "onsite-alert-close"} <= ids
    badge = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "onsite-alerts-badge")
    assert _class(badge.value) == "critical"
    assert any(isinstance(b, gr.Timer) for b in blocks.blocks.values())

    without = type("NoAlerts", (FakeService,), {"alerts": None})(tmp_path / "bare")  # a bundle without the store
    ids = {getattr(b, "elem_id", None) for b in build_blocks(without).blocks.values()}
    assert "onsite-alerts-badge" not in ids and "onsite-status" in ids


# --- in a real browser, against a real `onsite serve` (the session's open page) -------------------


@BROWSER[0]
@BROWSER[1]
@BROWSER[2]
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_a_new_alert_reaches_the_page_within_two_seconds_and_is_dealt_with(browser, browser_server):
    """Raised by another process (as `onsite watch` does) into the server's alert database."""
    from tools.watch.alerts import AlertStore

    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{browser_server['url']}/ui/")
        badge = page.locator("#onsite-alerts-badge .word")
        badge.wait_for()
        before = badge.inner_text()
        with AlertStore(browser_server["home"] / "alerts.sqlite") as store:
            raised = time.monotonic()
            alert = store.raise_alert("P-101", "anomaly:browser-test", "critical", "Seal leak suspected").alert
        while badge.inner_text() == before and time.monotonic() - raised < 5:
            time.sleep(0.05)
        took = time.monotonic() - raised
        assert badge.inner_text() != before and took <= 2.0, f"the badge said {badge.inner_text()!r} after {took:.1f} s"
        assert "critical" in page.locator("#onsite-alerts-badge span").first.get_attribute("class")

        page.locator("#onsite-tab-alerts-button").click()
        page.locator("#onsite-alerts-table", has_text="Seal leak suspected").wait_for()
        page.locator("#onsite-alert-pick input").click()
        page.locator("[role=option]", has_text=f"#{alert.id} ").first.click()
        page.locator("#onsite-alert-ack").click()
        page.locator("#onsite-alerts-message", has_text=f"Alert #{alert.id} acknowledged by page.").wait_for()
        page.locator("#onsite-alert-note textarea").fill("seal replaced")
        page.locator("#onsite-alert-close").click()
        page.locator("#onsite-alerts-message", has_text=f"Alert #{alert.id} closed by page.").wait_for()
        with AlertStore(browser_server["home"] / "alerts.sqlite") as store:
            closed = store.get(alert.id)
        assert (closed.state, closed.closed_by, closed.close_note) == ("closed", "page", "seal replaced")
    finally:
        ctx.close()
