"""The recording fake passes the channel contract (so the dispatcher tests that use it stand for a
real channel), and its scripting works."""

from __future__ import annotations

import pytest

from tools.push.fake import RecordingChannel

from .contract import ChannelContract, alert_message


class FakeHarness:
    def __init__(self):
        self.channel = RecordingChannel("fake", recipients=["r1", "r2"])

    def down(self):
        self.channel.down = True

    def up(self):
        self.channel.down = False

    def delivered(self):
        return [(s.message.key, s.recipient) for s in self.channel.sent]

    def message(self, key):
        return alert_message(key)


class TestRecordingChannel(ChannelContract):
    @pytest.fixture
    def harness(self):
        return FakeHarness()


def test_scripted_failures():
    ch = RecordingChannel(min_severity="alarm")
    assert ch.recipients(alert_message("a", "warning")) == [] and ch.recipients(alert_message("b")) == ["r1"]
    ch.fail_next, ch.final = 1, True
    d = ch.send(alert_message("b"), "r1")
    assert not d.ok and not d.retry
    ch.raise_next = 1
    with pytest.raises(RuntimeError):
        ch.send(alert_message("b"), "r1")
    assert ch.send(alert_message("b"), "r1").ok and ch.keys() == ["b"] and len(ch.attempts) == 3
