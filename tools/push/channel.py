"""The push vocabulary every channel and source shares: a ``PushMessage`` (what to say), a ``Delivery``
(how one attempt went), the ``Channel`` protocol (who gets a message and how it is sent) and the
``MessageSource`` protocol (where messages come from: alert changes, daily advice, reminders).

A message is sent once per (message key, channel, recipient): the key is the idempotency key, so a
source that hands the same message over again after a restart does not page anyone twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

MessageKind = Literal["alert", "advice", "reminder"]


@dataclass(frozen=True)
class PushMessage:
    key: str  # idempotency key, e.g. "alert:42:escalated:17" or "advice:GH-1:2026-12-08"
    kind: MessageKind
    target: str  # the asset or zone id the message is about
    severity: str  # info | warning | alarm | critical (tools.watch.alerts.SEVERITIES)
    title: str  # one short line
    body: str  # the full text, with its sources
    created_ms: int  # ms since the Unix epoch, UTC
    lang: str = "zh"  # the language the text is written in (zh | en)
    link: str = ""  # where the reader opens it: a mini-program page path, e.g. "pages/alerts/detail?id=42"
    fields: dict[str, Any] = field(default_factory=dict)  # structured values: asset, cause, value, limit, time…

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "target": self.target, "severity": self.severity,
                "title": self.title, "body": self.body, "created_ms": self.created_ms, "lang": self.lang,
                "link": self.link, "fields": dict(self.fields)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PushMessage":
        return cls(**{k: d[k] for k in ("key", "kind", "target", "severity", "title", "body", "created_ms")},
                   lang=d.get("lang", "zh"), link=d.get("link", ""), fields=dict(d.get("fields") or {}))


@dataclass(frozen=True)
class Delivery:
    """One send attempt. ``retry`` marks a transient failure (receiver down, busy, token expired):
    the outbox tries again with backoff; a failure without ``retry`` is final and recorded."""

    ok: bool
    retry: bool = False
    error: str = ""  # a short code or text, e.g. "http_503", "wechat_43101"
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    name: str  # unique per configured channel, e.g. "webhook:ops-relay", "wechat"

    def recipients(self, message: PushMessage) -> list[str]:
        """Who on this channel gets ``message`` ([] = nobody, e.g. below the channel's severity floor).
        Called once per message when it enters the outbox."""
        ...

    def send(self, message: PushMessage, recipient: str) -> Delivery:
        """Send to one recipient. Never raises for a receiver's failure: returns a ``Delivery``."""
        ...


@runtime_checkable
class MessageSource(Protocol):
    name: str  # the cursor's name in the outbox, e.g. "alerts", "advice"

    def messages_since(self, cursor: int) -> tuple[list[PushMessage], int]:
        """Messages after ``cursor`` (a number only this source understands) and the new cursor."""
        ...
