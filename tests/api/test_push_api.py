"""Push in the served app: an alert raised in the server's store reaches a configured webhook (a
verifying loopback receiver) through the dispatcher thread ``onsite serve`` runs; the admin view of
the outbox (filters, 401/403/404/409/422) and the requeue of a failed push; the push metrics."""

from __future__ import annotations

import time

import pytest

from assistant.api.routes.push import attach_dispatcher
from assistant.server import push_thread
from tools.push.fake import WebhookReceiver

from .conftest import ADMIN, OPERATOR

SECRET = "api-push-secret-0123456789"


@pytest.fixture
def receiver():
    r = WebhookReceiver(SECRET).start()
    yield r
    r.stop()


def _push(receiver, **kw):
    return {"interval_s": 0.1, "backoff": {"base_s": 0.1}, **kw,
            "webhooks": [{"name": "ops", "url": receiver.url, "secret": SECRET, "min_severity": "warning"}]}


def _wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_an_alert_reaches_the_webhook_from_the_served_app(app_client, make_api_service, receiver):
    service = make_api_service(simulate_hours=0, push=_push(receiver))
    c = app_client(service)
    thread = push_thread(service.settings, service)
    assert thread is not None and list(thread.dispatcher.channels) == ["webhook:ops"]
    attach_dispatcher(c.app, thread.dispatcher)
    thread.start()
    try:
        alert = service.parts.alert_store.raise_alert("P-101", "anomaly:P-101", "alarm", "P-101 departs", {}).alert
        assert _wait(lambda: receiver.accepted(), 5)
        got = receiver.accepted()[0]  # how fast: python -m evals.push_latency --json (not a timed test)
        assert got.verified and got.key == f"alert:{alert.id}:opened:1"
        service.parts.alert_store.raise_alert("P-101", "anomaly:P-102", "info", "below the floor", {})
        receiver.status = 503
        service.parts.alert_store.raise_alert("GH-1", "limit_high:GH-1-TEMP", "alarm", "GH-1 hot", {})
        assert _wait(lambda: len(receiver.received) >= 3)  # 503, then retried
        text = c.get("/metrics", headers=ADMIN).text
        assert 'onsite_pushes_total{channel="webhook:ops",outcome="sent"} 1.0' in text
        assert 'onsite_pushes_total{channel="webhook:ops",outcome="retry"}' in text
        assert "onsite_push_outbox_pending 1.0" in text
        receiver.status = 200
        assert _wait(lambda: len(receiver.accepted()) == 2, 5)
    finally:
        thread.stop()
    assert [r.body["fields"]["alert_id"] for r in receiver.accepted()] == [alert.id, alert.id + 2]


def test_no_push_thread_without_a_channel_or_when_off(make_api_service, receiver):
    plain = make_api_service(simulate_hours=0)
    assert push_thread(plain.settings, plain) is None
    service = make_api_service(simulate_hours=0, push=_push(receiver, enabled=False))
    assert push_thread(service.settings, service) is None


def test_the_outbox_for_admins(app_client, make_api_service):
    from tools.push.outbox import Outbox
    from tests.tools.push.contract import alert_message

    service = make_api_service(simulate_hours=0)
    c = app_client(service)
    assert c.get("/api/v1/push/outbox").status_code == 401
    r = c.get("/api/v1/push/outbox", headers=OPERATOR)
    assert r.status_code == 403 and r.json()["data"]["error"] == "forbidden"
    r = c.get("/api/v1/push/outbox", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"] == {"rows": [], "total": 0, "next_offset": None}

    box = Outbox(service.settings.push_db)
    box.enqueue(alert_message("alert:1:opened:1"), [("webhook:ops", "ops"), ("wechat", "o1")])
    box.enqueue(alert_message("alert:2:opened:2"), [("webhook:ops", "ops")])
    rows = box.due(limit=2)
    box.mark_failed(rows[0].id, "http_404", {"status": 404})
    box.mark_sent(rows[1].id)

    page = c.get("/api/v1/push/outbox", params={"state": "failed"}, headers=ADMIN).json()["data"]
    assert page["total"] == 1 and page["rows"][0]["last_error"] == "http_404"
    failed = page["rows"][0]
    assert failed["message"]["key"] == "alert:1:opened:1"
    assert failed["delivery_id"] == "webhook:ops/ops/alert:1:opened:1"
    assert c.get("/api/v1/push/outbox", params={"channel": "wechat"}, headers=ADMIN).json()["data"]["total"] == 1
    assert c.get("/api/v1/push/outbox", params={"state": "lost"}, headers=ADMIN).status_code == 422
    assert c.get("/api/v1/push/outbox", params={"limit": 0}, headers=ADMIN).status_code == 422

    assert c.post(f"/api/v1/push/outbox/{failed['id']}/retry", headers=OPERATOR).status_code == 403
    r = c.post(f"/api/v1/push/outbox/{failed['id']}/retry", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"]["state"] == "pending" and r.json()["data"]["attempts"] == 0
    r = c.post(f"/api/v1/push/outbox/{failed['id']}/retry", headers=ADMIN)
    assert r.status_code == 409 and "only a failed row" in r.json()["msg"]
    assert c.post("/api/v1/push/outbox/999/retry", headers=ADMIN).status_code == 404
    assert c.post("/api/v1/push/outbox/x/retry", headers=ADMIN).status_code == 422
    assert "onsite_push_outbox_pending 2.0" in c.get("/metrics", headers=ADMIN).text
    box.close()
