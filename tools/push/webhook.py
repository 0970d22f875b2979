"""A generic webhook channel: the message as JSON, POSTed and signed with HMAC-SHA256, for any
receiver (a relay to WeCom, DingTalk or Feishu robots, a ticket system, a script).

The body is the message's ``to_dict()`` plus ``sent_at`` (ms since the epoch, UTC) and
``delivery_id``. Headers:

- ``X-Onsite-Timestamp``: Unix seconds of this attempt.
- ``X-Onsite-Signature``: ``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.
- ``X-Onsite-Delivery``: the same for every attempt of one message to one webhook (also after a
  restart); delivery is at least once, so a receiver keeps the ids it has seen and ignores repeats.

Verifying on the receiver (reject stale timestamps: a captured request cannot be replayed later)::

    import hashlib, hmac, time

    def verify(secret: bytes, headers, body: bytes, max_age_s: int = 300) -> bool:
        ts = headers.get("X-Onsite-Timestamp", "")
        sig = headers.get("X-Onsite-Signature", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > max_age_s:
            return False
        mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sig, "sha256=" + mac)

Outcomes: 2xx sent; 408, 429, 5xx, connection errors and timeouts are retried (a Retry-After in
seconds is honoured); any other status fails the row with it (``http_404``…): the receiver will
not take it however often it is sent. The URL and the secret are never logged or stored in the
outbox (the URL may carry a robot's access token): the recipient is the webhook's name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from tools.push.channel import Delivery, PushMessage
from tools.push.outbox import delivery_id
from tools.push.settings import WebhookSettings

SEVERITY_RANK = {"info": 0, "warning": 1, "alarm": 2, "critical": 3}
RETRY_STATUSES = {408, 425, 429}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, settings: WebhookSettings, client: httpx.Client | None = None):
        self.settings = settings
        self.name = f"webhook:{settings.name}"
        self._secret = settings.secret.get_secret_value().encode()
        self._client = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=False,
                                              headers={"User-Agent": "onsite-push/1"})

    def close(self) -> None:
        self._client.close()

    def recipients(self, message: PushMessage) -> list[str]:
        s = self.settings
        if message.kind not in s.kinds:
            return []
        if SEVERITY_RANK.get(message.severity, 0) < SEVERITY_RANK[s.min_severity]:
            return []
        return [s.name]

    def send(self, message: PushMessage, recipient: str) -> Delivery:
        did = delivery_id(message.key, self.name, recipient)
        payload = {**message.to_dict(), "sent_at": int(time.time() * 1000), "delivery_id": did}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Onsite-Timestamp": ts,
                   "X-Onsite-Signature": sign(self._secret, ts, body), "X-Onsite-Delivery": did}
        try:
            r = self._client.post(self.settings.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Delivery(False, retry=True, error="timeout")
        except httpx.TransportError as exc:  # refused, reset, DNS: the receiver may come back
            return Delivery(False, retry=True, error=f"connection: {type(exc).__name__}")
        detail: dict[str, Any] = {"status": r.status_code, "delivery_id": did}
        if 200 <= r.status_code < 300:
            return Delivery(True, detail=detail)
        if r.status_code in RETRY_STATUSES or r.status_code >= 500:
            after = _retry_after(r.headers.get("Retry-After"))
            if after is not None:
                detail["retry_after_s"] = after
            return Delivery(False, retry=True, error=f"http_{r.status_code}", detail=detail)
        detail["body"] = r.text[:200]
        return Delivery(False, error=f"http_{r.status_code}", detail=detail)

    def __repr__(self) -> str:  # never the URL or the secret
        return f"WebhookChannel({self.name!r})"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or odd."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
