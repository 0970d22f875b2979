"""The outbox: idempotent rows per (key, channel, recipient), cursors that move with their batch
and only forward, claims with a lease (a second dispatcher does not take a row being sent), the
outcomes, the admin view and requeue, durability across a reopen, and a newer schema refused."""

from __future__ import annotations

import sqlite3

import pytest

from tools.errors import ToolConflictError, ToolInputError
from tools.push.outbox import Outbox, OutboxRowNotFoundError, OutboxStateError

from .contract import alert_message


@pytest.fixture
def box(tmp_path):
    b = Outbox(tmp_path / "push.sqlite")
    yield b
    b.close()


def test_enqueue_is_idempotent_per_key_channel_and_recipient(box):
    m = alert_message("alert:1:opened:1")
    assert box.enqueue(m, [("webhook:a", "a"), ("wechat", "o1"), ("wechat", "o2")]) == 3
    assert box.enqueue(m, [("webhook:a", "a"), ("wechat", "o1")]) == 0
    assert box.enqueue(m, [("wechat", "o3")]) == 1
    assert box.enqueue(alert_message("alert:1:escalated:2"), [("webhook:a", "a")]) == 1
    assert box.stats() == {"webhook:a": {"pending": 2, "sent": 0, "failed": 0},
                           "wechat": {"pending": 3, "sent": 0, "failed": 0}}
    row = box.list(channel="wechat")["rows"][-1]
    assert row["message"] == m.to_dict() and row["delivery_id"] == "wechat/o1/alert:1:opened:1"
    with pytest.raises(ToolInputError):
        box.enqueue(alert_message(""), [("x", "y")])


def test_cursor_moves_with_its_batch_and_only_forward(box):
    assert box.cursor("alerts") is None
    assert box.init_cursor("alerts", 5) == 5 and box.init_cursor("alerts", 9) == 5
    assert box.enqueue_batch([(alert_message("a"), [("c", "r")]), (alert_message("b"), [])], "alerts", 8) == 1
    assert box.cursor("alerts") == 8
    # another dispatcher that read the same batch from an older cursor: nothing added, cursor stays
    assert box.enqueue_batch([(alert_message("a"), [("c", "r")])], "alerts", 7) == 0
    assert box.cursor("alerts") == 8
    # a batch whose rows cannot be written leaves the cursor where it was (one transaction)
    box._db.execute("CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.key = 'bad' BEGIN"
                    " SELECT RAISE(ABORT, 'disk trouble'); END")
    with pytest.raises(sqlite3.DatabaseError):
        box.enqueue_batch([(alert_message("c"), [("c", "r")]), (alert_message("bad"), [("c", "r")])], "alerts", 12)
    assert box.cursor("alerts") == 8 and box.list()["total"] == 1


def test_due_claims_with_a_lease(box, tmp_path):
    for k in "abc":
        box.enqueue(alert_message(k), [("c", "r")])
    now = 10**13
    first = box.due(now, limit=2, lease_ms=30_000)
    assert [r.key for r in first] == ["a", "b"] and all(r.attempts == 1 and r.last_try_ms == now for r in first)
    other = Outbox(tmp_path / "push.sqlite")  # a second process
    assert [r.key for r in other.due(now, lease_ms=30_000)] == ["c"]
    assert other.due(now + 29_999) == []
    again = other.due(now + 30_000)  # the lease ran out: sent again (at least once)
    assert sorted(r.key for r in again) == ["a", "b", "c"] and all(r.attempts == 2 for r in again)
    assert box.due(now, channels=["other"]) == [] and box.due(now, channels=[]) == []
    other.close()


def test_outcomes_and_requeue(box):
    for k in "abc":
        box.enqueue(alert_message(k), [("c", "r")])
    a, b, c = box.due(10**13)
    box.mark_sent(a.id, {"status": 200}, at=10**13 + 5)
    box.mark_retry(b.id, "http_503", 10**13 + 5000, {"status": 503})
    box.mark_failed(c.id, "http_404", {"status": 404})
    box.mark_failed(a.id, "late")  # a sent row stays sent
    rows = {r["key"]: r for r in box.list()["rows"]}
    assert rows["a"]["state"] == "sent" and rows["a"]["sent_ms"] == 10**13 + 5 and rows["a"]["last_error"] is None
    assert rows["b"]["state"] == "pending" and rows["b"]["next_try_ms"] == 10**13 + 5000
    assert rows["b"]["last_error"] == "http_503" and rows["b"]["detail"] == {"status": 503}
    assert rows["c"]["state"] == "failed" and rows["c"]["last_error"] == "http_404"
    assert box.stats() == {"c": {"pending": 1, "sent": 1, "failed": 1}} and box.pending_count() == 1
    assert [r["key"] for r in box.list(state="failed")["rows"]] == ["c"]
    page = box.list(limit=2)
    assert page["total"] == 3 and page["next_offset"] == 2 and [r["key"] for r in page["rows"]] == ["c", "b"]
    with pytest.raises(ToolInputError):
        box.list(state="lost")
    requeued = box.retry_failed(c.id)
    assert requeued.state == "pending" and requeued.attempts == 0 and requeued.last_error == "http_404"
    with pytest.raises(OutboxStateError):
        box.retry_failed(a.id)
    with pytest.raises(OutboxRowNotFoundError):
        box.retry_failed(999)


def test_rows_and_cursors_survive_a_reopen(tmp_path):
    b = Outbox(tmp_path / "push.sqlite")
    b.enqueue_batch([(alert_message("a"), [("c", "r")])], "alerts", 3)
    b.close()
    b = Outbox(tmp_path / "push.sqlite")
    assert b.cursor("alerts") == 3 and b.list()["rows"][0]["key"] == "a"
    b.close()


def test_a_newer_schema_is_refused(tmp_path):
    Outbox(tmp_path / "push.sqlite").close()
    db = sqlite3.connect(tmp_path / "push.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ToolConflictError, match="newer onsite"):
        Outbox(tmp_path / "push.sqlite")
