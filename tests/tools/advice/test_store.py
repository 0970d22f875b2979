"""The advice store: one row per (zone, date) whatever happens (idempotent), kept across a reopen
(durable), and the push source over it (one message per advice, cursor = row id)."""

from __future__ import annotations

from tools.advice.push_source import AdvicePushSource
from tools.advice.store import AdviceStore
from tools.push.channel import MessageSource, PushMessage


def _save(store, zone="GH-1", date="2026-03-11", severity="warning", headline="GH-1: nights too cold"):
    return store.save(zone, date, "en", severity, headline, "body [1]\n\nSources:\n[1] guide", {"findings": [{}],
                      "mode": "extractive"}, created_ms=1_000)


def test_save_is_idempotent_and_durable(tmp_path):
    path = tmp_path / "advice.sqlite"
    store = AdviceStore(path)
    first, made = _save(store)
    again, made_again = _save(store, headline="another text")
    assert made and not made_again and again == first and again.headline == "GH-1: nights too cold"
    other, _ = _save(store, zone="GH-2")
    assert other.id > first.id and store.count() == 2
    store.close()
    reopened = AdviceStore(path)
    assert reopened.get("GH-1", "2026-03-11") == first and reopened.count() == 2
    assert [a.zone for a in reopened.since(0)] == ["GH-1", "GH-2"] and reopened.since(other.id) == []
    assert reopened.delete("GH-1", "2026-03-11") and reopened.get("GH-1", "2026-03-11") is None
    reopened.close()


def test_push_source_yields_one_message_per_advice_with_a_cursor(tmp_path):
    store = AdviceStore(tmp_path / "advice.sqlite")
    source = AdvicePushSource(store, batch=1)
    assert isinstance(source, MessageSource) and source.name == "advice"
    assert source.messages_since(0) == ([], 0)
    a, _ = _save(store)
    b, _ = _save(store, zone="GH-2", severity="info", headline="GH-2: all within targets")
    msgs, cursor = source.messages_since(0)
    assert cursor == a.id and len(msgs) == 1
    m = msgs[0]
    assert isinstance(m, PushMessage) and m.key == "advice:GH-1:2026-03-11" and m.kind == "advice"
    assert m.severity == "warning" and m.target == "GH-1" and m.title == "GH-1: nights too cold"
    assert "[1] guide" in m.body and m.link == "pages/advice/index?zone=GH-1&date=2026-03-11"
    assert m.fields["zone"] == "GH-1" and m.fields["date"] == "2026-03-11" and m.fields["headline"] == m.title
    assert PushMessage.from_dict(m.to_dict()) == m
    msgs, cursor = source.messages_since(cursor)
    assert [x.key for x in msgs] == ["advice:GH-2:2026-03-11"] and msgs[0].severity == "info" and cursor == b.id
    assert source.messages_since(cursor) == ([], cursor)
    store.close()


def test_advice_goes_through_the_outbox_once_and_a_first_start_skips_older_days(tmp_path):
    from tools.push.dispatcher import Dispatcher
    from tools.push.fake import RecordingChannel
    from tools.push.outbox import Outbox
    from tools.push.settings import PushSettings

    store = AdviceStore(tmp_path / "advice.sqlite")
    _save(store, date="2026-03-10")  # made before push was switched on: not pushed
    channel = RecordingChannel()

    def dispatcher():
        return Dispatcher(Outbox(tmp_path / "push.sqlite"), [AdvicePushSource(store)], [channel], PushSettings())

    d = dispatcher()
    assert d.run_once().sent == 0
    _save(store, date="2026-03-11")
    assert d.run_once().sent == 1
    d.outbox.close()
    d = dispatcher()  # a restart: the cursor is kept, nothing is sent again
    assert d.run_once().sent == 0
    assert [s.message.key for s in channel.sent] == ["advice:GH-1:2026-03-11"]
    d.outbox.close()
