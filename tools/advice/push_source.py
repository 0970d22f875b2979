"""The daily advice as a push ``MessageSource`` (tools/push/channel.py): one ``PushMessage`` per
stored advice, in the order they were stored; the cursor is the advice store's row id, and the
message key ``advice:{zone}:{date}`` keeps a re-read from paging anyone twice."""

from __future__ import annotations

from tools.advice.store import AdviceStore, StoredAdvice
from tools.push.channel import PushMessage

BATCH = 100


def advice_message(a: StoredAdvice) -> PushMessage:
    fields = {"zone": a.zone, "date": a.date, "headline": a.headline,
              "findings": len(a.data.get("findings") or []), "mode": a.data.get("mode", "")}
    return PushMessage(key=f"advice:{a.zone}:{a.date}", kind="advice", target=a.zone, severity=a.severity,
                       title=a.headline, body=a.body, created_ms=a.created_ms, lang=a.lang,
                       link=f"pages/advice/index?zone={a.zone}&date={a.date}", fields=fields)


class AdvicePushSource:
    name = "advice"

    def __init__(self, store: AdviceStore, batch: int = BATCH):
        self.store, self.batch = store, batch

    def start_cursor(self) -> int:
        """Where a first start begins: after the newest stored advice (earlier days are not pushed)."""
        return self.store.last_id()

    def messages_since(self, cursor: int) -> tuple[list[PushMessage], int]:
        rows = self.store.since(cursor, self.batch)
        return [advice_message(a) for a in rows], (rows[-1].id if rows else cursor)
