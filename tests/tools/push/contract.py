"""The contract every push channel passes (tools/push/channel.py), reused by each channel's tests:

    class TestMyChannel(ChannelContract):
        @pytest.fixture
        def harness(self): ...  # a ChannelHarness around the channel and its (loopback) receiver

The harness can take the receiver down and bring it back, and says what the receiver accepted.
The contract: it is a ``Channel``; ``recipients`` is a list of strings; a send to a healthy
receiver is ok; a send to a receiver that is down is a transient failure, returned, not raised;
and through the real outbox and dispatcher, every message reaches every recipient exactly once
across an outage, with growing delays between the attempts.
"""

from __future__ import annotations

import random
import time
from typing import Protocol

from tools.push.channel import Channel, Delivery, PushMessage
from tools.push.dispatcher import Dispatcher
from tools.push.outbox import Outbox
from tools.push.settings import PushSettings


class ChannelHarness(Protocol):
    channel: Channel

    def down(self) -> None: ...

    def up(self) -> None: ...

    def delivered(self) -> list[tuple[str, str]]:
        """(message key, recipient) of every send the receiver accepted, in order."""
        ...

    def message(self, key: str) -> PushMessage:
        """A message this channel has recipients for."""
        ...


def alert_message(key: str, severity: str = "alarm", **kw) -> PushMessage:
    return PushMessage(key=key, kind=kw.pop("kind", "alert"), target=kw.pop("target", "P-101"), severity=severity,
                       title=kw.pop("title", "[报警] P-101 VT-101：超上限"), body=kw.pop("body", "VT-101 above 4.5 mm/s"),
                       created_ms=kw.pop("created_ms", int(time.time() * 1000)), link="pages/alerts/detail?id=1",
                       fields=kw.pop("fields", {"alert_id": 1, "value": 4.9, "unit": "mm/s"}), **kw)


class ListSource:
    """A MessageSource over a list: the cursor is how many were handed over."""

    name = "list"

    def __init__(self, messages: list[PushMessage] | None = None):
        self.messages = list(messages or [])

    def messages_since(self, cursor: int) -> tuple[list[PushMessage], int]:
        return self.messages[cursor:], len(self.messages)


class Clock:
    def __init__(self, start: int = 1_800_000_000_000):
        self.now = start

    def __call__(self) -> int:
        return self.now


def dispatcher_for(channel: Channel, path, source: ListSource, clock: Clock, **settings) -> Dispatcher:
    s = PushSettings(**{"backoff": {"base_s": 5, "max_s": 1800, "jitter": 0.2}, "max_attempts": 20,
                        "lease_s": 60, **settings})
    return Dispatcher(Outbox(path), [source], [channel], s, clock=clock, rng=random.Random(1))


class ChannelContract:
    def test_is_a_channel_with_a_name(self, harness):
        assert isinstance(harness.channel, Channel)
        assert isinstance(harness.channel.name, str) and harness.channel.name

    def test_recipients_are_strings(self, harness):
        got = harness.channel.recipients(harness.message("c:1"))
        assert got and all(isinstance(r, str) and r for r in got)

    def test_send_to_a_healthy_receiver_is_ok(self, harness):
        msg = harness.message("c:ok")
        recipient = harness.channel.recipients(msg)[0]
        d = harness.channel.send(msg, recipient)
        assert isinstance(d, Delivery) and d.ok, d
        assert ("c:ok", recipient) in harness.delivered()

    def test_a_receiver_that_is_down_is_a_transient_failure(self, harness):
        msg = harness.message("c:down")
        recipient = harness.channel.recipients(msg)[0]
        harness.down()
        try:
            d = harness.channel.send(msg, recipient)  # must not raise
        finally:
            harness.up()
        assert isinstance(d, Delivery) and not d.ok and d.retry and d.error
        assert ("c:down", recipient) not in harness.delivered()

    def test_outbox_delivers_each_message_once_across_an_outage(self, harness, tmp_path):
        clock, source = Clock(), ListSource()
        d = dispatcher_for(harness.channel, tmp_path / "push.sqlite", source, clock)
        msgs = [harness.message(f"c:outage:{i}") for i in range(3)]
        source.messages += msgs
        recipients = {m.key: harness.channel.recipients(m) for m in msgs}
        harness.down()
        tries: list[int] = []
        try:
            for _ in range(4):  # each pass at the moment the rows are due again
                report = d.run_once()
                assert report.sent == 0 and report.retried == sum(map(len, recipients.values()))
                rows = d.outbox.list(state="pending")["rows"]
                assert len(rows) == report.retried
                tries.append(min(r["next_try_ms"] for r in rows) - clock.now)
                clock.now = max(r["next_try_ms"] for r in rows)
        finally:
            harness.up()
        assert all(b > a for a, b in zip(tries, tries[1:])), f"delays do not grow: {tries}"
        report = d.run_once()
        assert report.sent == sum(map(len, recipients.values())) and report.retried == 0
        for _ in range(2):  # nothing is sent twice
            clock.now += 3_600_000
            assert d.run_once().sent == 0
        got = [x for x in harness.delivered() if x[0].startswith("c:outage:")]
        want = [(m.key, r) for m in msgs for r in recipients[m.key]]
        assert sorted(got) == sorted(want), got
        assert d.outbox.stats()[harness.channel.name] == {"pending": 0, "sent": len(want), "failed": 0}
        d.outbox.close()
