"""``RecordingChannel``: a push channel that records what it is given, for tests and for trying the
outbox without a receiver. It can be scripted: fail the next N sends (transiently or for good),
be down (every send fails transiently) or raise, and take a severity floor like a real channel.

``WebhookReceiver``: the other side of the webhook channel, a loopback HTTP server that verifies
each signature as a real receiver should and records what arrived (tests, evals/push_latency.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tools.push.channel import Delivery, PushMessage

RANK = {"info": 0, "warning": 1, "alarm": 2, "critical": 3}


@dataclass(frozen=True)
class Sent:
    message: PushMessage
    recipient: str


class RecordingChannel:
    def __init__(self, name: str = "fake", recipients: list[str] | None = None, min_severity: str = "info"):
        self.name = name
        self.recipient_list = list(recipients or ["r1"])
        self.min_severity = min_severity
        self.sent: list[Sent] = []  # accepted sends, in order
        self.attempts: list[Sent] = []  # every call of send
        self.down = False  # every send fails transiently
        self.fail_next = 0  # the next N sends fail (transiently unless final)
        self.final = False
        self.raise_next = 0  # the next N sends raise
        self._lock = threading.Lock()

    def recipients(self, message: PushMessage) -> list[str]:
        return list(self.recipient_list) if RANK.get(message.severity, 0) >= RANK[self.min_severity] else []

    def send(self, message: PushMessage, recipient: str) -> Delivery:
        with self._lock:
            self.attempts.append(Sent(message, recipient))
            if self.raise_next:
                self.raise_next -= 1
                raise RuntimeError("scripted failure")
            if self.down:
                return Delivery(False, retry=True, error="down")
            if self.fail_next:
                self.fail_next -= 1
                return Delivery(False, retry=not self.final, error="scripted")
            self.sent.append(Sent(message, recipient))
            return Delivery(True)

    def keys(self) -> list[str]:
        return [s.message.key for s in self.sent]


# --- the other side of a webhook ------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    delivery_id: str
    key: str
    verified: bool  # the HMAC signature matched (and the timestamp was fresh)
    status: int  # what the receiver answered
    at: float  # time.time() when it arrived
    body: dict


class WebhookReceiver:
    """A loopback HTTP receiver that checks each POST's signature the way the webhook module's
    docstring tells a receiver to, and records it. ``status`` is what it answers (200, 503, 404 …,
    with ``retry_after``), ``delay_s`` makes it slow; ``stop`` / ``start`` take it down and bring
    it back on the same port."""

    def __init__(self, secret: str, status: int = 200, port: int = 0):
        self.secret = secret.encode()
        self.status, self.retry_after, self.delay_s = status, None, 0.0
        self.received: list[Received] = []
        self.port = port
        self._server = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "WebhookReceiver":
        import http.server

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.status
                receiver._record(self.headers, body, status)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(status)
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _record(self, headers, body: bytes, status: int) -> None:
        import hashlib
        import hmac
        import json

        ts, sig = headers.get("X-Onsite-Timestamp", ""), headers.get("X-Onsite-Signature", "")
        mac = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= 300
        verified = fresh and hmac.compare_digest(sig, "sha256=" + mac)
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        with self._lock:
            self.received.append(Received(headers.get("X-Onsite-Delivery", ""), data.get("key", ""), verified,
                                          status, time.time(), data))

    def accepted(self) -> list[Received]:
        """What arrived while it answered 2xx (the receiver's view of deliveries)."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]
