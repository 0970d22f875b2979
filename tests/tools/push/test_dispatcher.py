"""The dispatcher with recording channels (which pass the channel contract, test_fake_channel.py)
and a fake clock: a channel that raises or is down does not hold up the others; give-up after
max_attempts and final failures recorded, an admin requeue sent; the backoff doubles, jitters,
caps; a source or a recipients() that fails leaves the cursor (nothing skipped); a first start
begins at the source's present; outcome counts and observers; the loop stops."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tools.push.dispatcher import Dispatcher, PushThread
from tools.push.fake import RecordingChannel
from tools.push.outbox import Outbox
from tools.push.settings import PushSettings

from .contract import Clock, ListSource, alert_message, dispatcher_for


@pytest.fixture
def clock():
    return Clock()


def test_a_failing_channel_does_not_hold_up_the_others(tmp_path, clock):
    good, broken, down = RecordingChannel("good"), RecordingChannel("broken"), RecordingChannel("down")
    broken.raise_next, down.down = 10, True
    source = ListSource([alert_message("a"), alert_message("b")])
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [source], [broken, down, good], clock=clock)
    report = d.run_once()
    assert report.enqueued == 6 and report.sent == 2 and report.retried == 4 and not report.errors
    assert good.keys() == ["a", "b"]
    rows = d.outbox.list(channel="broken")["rows"]
    assert {r["last_error"] for r in rows} == {"exception: RuntimeError"} and {r["state"] for r in rows} == {"pending"}
    assert d.counts == {("good", "sent"): 2, ("broken", "retry"): 2, ("down", "retry"): 2}


def test_give_up_after_max_attempts_and_final_failures(tmp_path, clock):
    flaky, refusing = RecordingChannel("flaky"), RecordingChannel("refusing")
    flaky.down = True
    refusing.fail_next, refusing.final = 1, True
    d = dispatcher_for(flaky, tmp_path / "p.sqlite", ListSource([alert_message("a")]), clock, max_attempts=3)
    d.channels["refusing"] = refusing
    d.outbox.enqueue(alert_message("z"), [("refusing", "r1")])
    for _ in range(5):
        d.run_once()
        clock.now += 3_600_000
    rows = {r["channel"]: r for r in d.outbox.list()["rows"]}
    assert rows["flaky"]["state"] == "failed" and rows["flaky"]["attempts"] == 3
    assert rows["flaky"]["last_error"] == "down (gave up after 3 attempts)" and len(flaky.attempts) == 3
    assert rows["refusing"]["state"] == "failed" and rows["refusing"]["attempts"] == 1
    # the admin fixed the receiver and requeues it
    flaky.down = False
    d.outbox.retry_failed(rows["flaky"]["id"])
    assert d.run_once().sent == 1 and flaky.keys() == ["a"]


def test_backoff_doubles_jitters_and_is_capped(tmp_path):
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [], [], PushSettings(backoff={"base_s": 5, "max_s": 60}),
                   rng=random.Random(3))
    for attempt, base in ((1, 5), (2, 10), (3, 20), (4, 40)):
        for _ in range(20):
            assert base * 0.8 * 1000 <= d.backoff_ms(attempt) <= base * 1.2 * 1000
    assert max(d.backoff_ms(a) for a in range(5, 40) for _ in range(5)) <= 60_000
    assert d.backoff_ms(1, retry_after_s=30) == 30_000 and d.backoff_ms(1, retry_after_s=10**6) == 60_000
    assert d.backoff_ms(1, retry_after_s="soon") <= 6000
    d.outbox.close()


def test_severity_floors_make_no_rows_but_move_the_cursor(tmp_path, clock):
    ch = RecordingChannel("c", min_severity="alarm")
    source = ListSource([alert_message("w", "warning"), alert_message("a", "alarm")])
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [source], [ch], clock=clock)
    d.run_once()
    assert ch.keys() == ["a"] and d.outbox.cursor("list") == 2 and d.outbox.list()["total"] == 1


class _BrokenSource(ListSource):
    name = "broken"

    def __init__(self, messages):
        super().__init__(messages)
        self.fail = True

    def messages_since(self, cursor):
        if self.fail:
            raise OSError("store unavailable")
        return super().messages_since(cursor)


def test_a_failing_source_or_recipients_skips_nothing(tmp_path, clock):
    ch = RecordingChannel("c")
    broken = _BrokenSource([alert_message("s1")])
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [broken, ListSource([alert_message("l1")])], [ch], clock=clock)
    report = d.run_once()
    assert ch.keys() == ["l1"] and report.errors == ["source broken: OSError: store unavailable"]
    assert d.outbox.cursor("broken") == 0
    broken.fail = False
    d.run_once()
    assert ch.keys() == ["l1", "s1"]
    # a channel that cannot say who gets a message: the batch waits (cursor stays), then goes through
    picky = RecordingChannel("picky")
    d2 = Dispatcher(Outbox(tmp_path / "q.sqlite"), [ListSource([alert_message("m")])], [picky], clock=clock)
    original, calls = picky.recipients, []

    def flaky(message):
        calls.append(message.key)
        if len(calls) == 1:
            raise OSError("subscriptions locked")
        return original(message)

    picky.recipients = flaky
    assert d2.run_once().errors and d2.outbox.cursor("list") == 0 and picky.keys() == []
    d2.run_once()
    assert picky.keys() == ["m"] and d2.outbox.cursor("list") == 1


class _Present(ListSource):
    def start_cursor(self):
        return len(self.messages)


def test_a_first_start_begins_at_the_present_then_keeps_its_cursor(tmp_path, clock):
    ch = RecordingChannel("c")
    source = _Present([alert_message("old")])
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [source], [ch], clock=clock)
    source.messages.append(alert_message("new"))
    d.run_once()
    assert ch.keys() == ["new"]
    d.outbox.close()
    source.messages.append(alert_message("while-down"))
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [source], [ch], clock=clock)  # restart: the saved cursor
    d.run_once()
    assert ch.keys() == ["new", "while-down"]


def test_rows_of_a_channel_no_longer_configured_wait(tmp_path, clock):
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [], [RecordingChannel("c")], clock=clock)
    d.outbox.enqueue(alert_message("m"), [("wechat", "o1")])
    d.run_once()
    assert d.outbox.list()["rows"][0]["state"] == "pending" and d.outbox.list()["rows"][0]["attempts"] == 0


def test_observers_and_the_loop(tmp_path):
    ch = RecordingChannel("c")
    source = ListSource()
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [source], [ch], PushSettings(interval_s=0.05))
    seen = []
    d.observers.append(lambda channel, outcome: seen.append((channel, outcome)))
    d.observers.append(lambda channel, outcome: 1 / 0)  # a broken observer changes nothing
    t = PushThread(d).start()
    source.messages.append(alert_message("a"))
    deadline = time.monotonic() + 5
    while not ch.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    t.stop()
    assert time.monotonic() - t0 < 2 and not t.thread.is_alive()
    assert ch.keys() == ["a"] and seen == [("c", "sent")]


def test_stop_during_a_pass_gives_the_claimed_rows_back(tmp_path, clock):
    ch = RecordingChannel("c")
    stop = threading.Event()
    d = Dispatcher(Outbox(tmp_path / "p.sqlite"), [], [ch], clock=clock)
    for k in "abc":
        d.outbox.enqueue(alert_message(k), [("c", "r1")])
    original = ch.send

    def send_then_stop(message, recipient):
        stop.set()
        return original(message, recipient)

    ch.send = send_then_stop
    d.run_once(stop)
    assert ch.keys() == ["a"]
    again = d.outbox.due(clock.now)  # due now, not after the lease, and their attempt not counted
    assert [(r.key, r.attempts) for r in again] == [("b", 1), ("c", 1)]
