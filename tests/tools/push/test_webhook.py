"""The webhook channel against a real loopback receiver (tools.push.fake.WebhookReceiver) that
verifies each signature as the module's docstring tells a receiver to: the channel contract, the
HMAC (and a wrong secret or a tampered body failing it), the outcomes by status (2xx sent; 503,
429, 408, timeouts, a stopped receiver retried, Retry-After honoured; 404 failed for good), the
filters, and a secret that never shows."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random

import pytest

from tools.push.dispatcher import Dispatcher
from tools.push.fake import WebhookReceiver
from tools.push.outbox import Outbox
from tools.push.settings import PushSettings, WebhookSettings
from tools.push.webhook import WebhookChannel, sign

from .contract import ChannelContract, Clock, ListSource, alert_message

SECRET = "webhook-secret-0123456789-abc"


def webhook(receiver: WebhookReceiver, **kw) -> WebhookChannel:
    return WebhookChannel(WebhookSettings(name=kw.pop("name", "ops"), url=receiver.url, secret=SECRET,
                                          timeout_s=kw.pop("timeout_s", 2.0), **kw))


@pytest.fixture
def receiver():
    r = WebhookReceiver(SECRET).start()
    yield r
    r.stop()


class WebhookHarness:
    def __init__(self, receiver: WebhookReceiver):
        self.receiver = receiver
        self.channel = webhook(receiver)

    def down(self):
        self.receiver.stop()

    def up(self):
        self.receiver.start()

    def delivered(self):
        got = self.receiver.accepted()
        assert all(r.verified for r in got), "a delivery failed the receiver's signature check"
        return [(r.key, "ops") for r in got]

    def message(self, key):
        return alert_message(key)


class TestWebhookChannel(ChannelContract):
    @pytest.fixture
    def harness(self, receiver):
        h = WebhookHarness(receiver)
        yield h
        h.channel.close()


def test_the_receiver_verifies_the_signature_and_reads_the_message(receiver):
    ch = webhook(receiver)
    msg = alert_message("alert:7:opened:3", fields={"alert_id": 7, "value": 4.9})
    assert ch.send(msg, "ops").ok
    got = receiver.received[-1]
    assert got.verified and got.delivery_id == "webhook:ops/ops/alert:7:opened:3"
    body = got.body
    assert body["key"] == msg.key and body["title"] == msg.title and body["fields"] == {"alert_id": 7, "value": 4.9}
    assert body["delivery_id"] == got.delivery_id and body["sent_at"] >= msg.created_ms
    # the same signature by hand, and what a wrong secret or a changed body gives
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert sign(SECRET.encode(), "1700000000", raw) == "sha256=" + hmac.new(
        SECRET.encode(), b"1700000000." + raw, hashlib.sha256).hexdigest()
    wrong = WebhookReceiver("another-secret-0123456789").start()
    try:
        assert webhook(wrong).send(msg, "ops").ok  # the receiver answers 200 but its check fails
        assert not wrong.received[-1].verified
    finally:
        wrong.stop()


def test_outcomes_by_status(receiver):
    ch = webhook(receiver, timeout_s=0.5)
    msg = alert_message("k")
    for status in (503, 502, 429, 408):
        receiver.status = status
        d = ch.send(msg, "ops")
        assert not d.ok and d.retry and d.error == f"http_{status}", d
    receiver.status, receiver.retry_after = 503, 120
    d = ch.send(msg, "ops")
    assert d.retry and d.detail["retry_after_s"] == 120
    receiver.status, receiver.retry_after = 404, None
    d = ch.send(msg, "ops")
    assert not d.ok and not d.retry and d.error == "http_404"
    receiver.status, receiver.delay_s = 200, 1.0
    d = ch.send(msg, "ops")
    assert not d.ok and d.retry and d.error == "timeout"
    receiver.delay_s = 0
    receiver.stop()
    d = ch.send(msg, "ops")
    assert not d.ok and d.retry and d.error.startswith("connection")
    receiver.start()
    assert ch.send(msg, "ops").ok
    # every attempt of one message carried the same delivery id
    assert {r.delivery_id for r in receiver.received} == {"webhook:ops/ops/k"}


def test_retry_after_sets_the_next_try(receiver, tmp_path):
    receiver.status, receiver.retry_after = 503, 600
    clock, source = Clock(), ListSource([alert_message("k")])
    d = Dispatcher(Outbox(tmp_path / "push.sqlite"), [source], [webhook(receiver)], PushSettings(), clock=clock,
                   rng=random.Random(0))
    assert d.run_once().retried == 1
    row = d.outbox.list()["rows"][0]
    assert row["next_try_ms"] - clock.now == 600_000 and row["last_error"] == "http_503"
    d.outbox.close()


def test_filters_by_severity_and_kind(receiver):
    ch = webhook(receiver, min_severity="alarm", kinds=["alert"])
    assert ch.recipients(alert_message("a", "warning")) == []
    assert ch.recipients(alert_message("a", "critical")) == ["ops"]
    assert ch.recipients(alert_message("a", "critical", kind="advice")) == []


def test_the_secret_never_shows(receiver, caplog, tmp_path):
    """Nor the URL (it may carry a robot's access token) in what onsite logs or stores."""
    caplog.set_level(logging.DEBUG, logger="onsite")
    s = WebhookSettings(name="ops", url=receiver.url + "?access_token=tok-123", secret=SECRET)
    ch = WebhookChannel(s)
    receiver.status = 404
    d = ch.send(alert_message("k"), "ops")
    for text in (repr(ch), repr(s), str(s.model_dump())):
        assert SECRET not in text
    clock = Clock()
    disp = Dispatcher(Outbox(tmp_path / "push.sqlite"), [ListSource([alert_message("k")])], [ch], clock=clock)
    assert disp.run_once().failed == 1
    stored = (tmp_path / "push.sqlite").read_bytes() + (tmp_path / "push.sqlite-wal").read_bytes()
    for text in (repr(ch), json.dumps(d.detail), d.error, caplog.text, stored.decode("utf-8", "replace")):
        assert SECRET not in text and "tok-123" not in text
    disp.outbox.close()


def test_settings_refuse_bad_webhooks():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 16"):
        WebhookSettings(name="a", url="http://x/", secret="short")
    with pytest.raises(ValidationError):
        WebhookSettings(name="a", url="ftp://x/", secret=SECRET)
    with pytest.raises(ValidationError, match="given twice"):
        PushSettings(webhooks=[{"name": "a", "url": "http://x/", "secret": SECRET}] * 2)
    with pytest.raises(ValidationError):
        PushSettings(webhook=[])  # extra="forbid": a typo is an error

