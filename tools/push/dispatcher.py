"""The push dispatcher: moves messages from their sources into the outbox and from the outbox to
the channels, with retries.

One pass: (1) for each ``MessageSource``, the messages after its saved cursor, each with the
recipients every channel names for it, go into the outbox together with the new cursor (one
transaction, see outbox.py); (2) the rows that are due are claimed and sent. A ``Delivery`` that
is ok marks the row sent; a transient failure (``retry``; also a channel that raises) waits
``base_s * 2^(attempt-1)`` (± jitter, at most ``max_s``, or the receiver's Retry-After) and
after ``max_attempts`` the row is failed with its last error; a final failure marks it failed at
once. One channel's trouble never stops the pass: the others are still sent.

The dispatcher counts outcomes by channel (``counts``; ``observers`` are told each one, which is
how the API's /metrics counter ``onsite_pushes_total`` follows it).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from tools.push.channel import Channel, Delivery, MessageSource, PushMessage
from tools.push.outbox import Outbox, OutboxRow, Target, now_ms
from tools.push.settings import PushSettings

log = logging.getLogger("onsite.push")

Observer = Callable[[str, str], None]  # (channel, outcome: sent | failed | retry)


@dataclass
class PassReport:
    enqueued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Dispatcher:
    def __init__(self, outbox: Outbox, sources: Sequence[MessageSource], channels: Sequence[Channel],
                 settings: PushSettings | None = None, *, clock: Callable[[], int] = now_ms,
                 rng: random.Random | None = None):
        self.outbox, self.sources, self.settings = outbox, list(sources), settings or PushSettings()
        self.channels = {c.name: c for c in channels}
        if len(self.channels) != len(channels):
            raise ValueError("push channels need unique names")
        self.clock, self.rng = clock, rng or random.Random()
        self.counts: dict[tuple[str, str], int] = {}
        self.observers: list[Observer] = []
        self._count_lock = threading.Lock()
        for source in self.sources:  # a first start begins at the source's present (history is not paged)
            if outbox.cursor(source.name) is None:
                start = getattr(source, "start_cursor", None)
                outbox.init_cursor(source.name, int(start()) if callable(start) else 0)

    # -- one pass --------------------------------------------------------------------------------
    def run_once(self, stop: threading.Event | None = None) -> PassReport:
        t0 = time.perf_counter()
        report = PassReport()
        for source in self.sources:
            try:
                report.enqueued += self.collect(source)
            except Exception as exc:  # noqa: BLE001 - the cursor stays: the batch is read again next pass
                log.exception("push: source %s failed; its messages are read again next pass", source.name)
                report.errors.append(f"source {source.name}: {type(exc).__name__}: {exc}")
        self.deliver(report, stop)
        report.ms = (time.perf_counter() - t0) * 1000
        return report

    def collect(self, source: MessageSource) -> int:
        """Enqueue the source's messages after its cursor; returns the rows created."""
        cursor = self.outbox.cursor(source.name) or 0
        messages, new_cursor = source.messages_since(cursor)
        if not messages and new_cursor == cursor:
            return 0
        batch: list[tuple[PushMessage, list[Target]]] = []
        for message in messages:
            # a channel that cannot say who gets a message stops the batch (raises): nothing is skipped
            batch.append((message, [(name, r) for name, ch in self.channels.items() for r in ch.recipients(message)]))
        return self.outbox.enqueue_batch(batch, source.name, new_cursor)

    def deliver(self, report: PassReport | None = None, stop: threading.Event | None = None) -> PassReport:
        """Send the rows that are due, at most ``batch`` of them."""
        report = report or PassReport()
        s = self.settings
        rows = self.outbox.due(self.clock(), s.batch, self.channels, int(s.lease_s * 1000))
        for i, row in enumerate(rows):
            if stop is not None and stop.is_set():
                self.outbox.release([r.id for r in rows[i:]], self.clock())  # untried: due at once, not after the lease
                break
            self._send(row, report)
        return report

    def _send(self, row: OutboxRow, report: PassReport) -> None:
        channel = self.channels[row.channel]
        try:
            delivery = channel.send(row.message, row.recipient)
            if not isinstance(delivery, Delivery):
                raise TypeError(f"send returned {type(delivery).__name__}, not a Delivery")
        except Exception as exc:  # noqa: BLE001 - a broken channel is a transient failure; the pass goes on
            log.exception("push: channel %s raised on row %s", row.channel, row.id)
            delivery = Delivery(False, retry=True, error=f"exception: {type(exc).__name__}")
        if delivery.ok:
            self.outbox.mark_sent(row.id, delivery.detail or None, self.clock())
            report.sent += 1
            self._count(row.channel, "sent")
        elif delivery.retry and row.attempts < self.settings.max_attempts:
            delay_ms = self.backoff_ms(row.attempts, delivery.detail.get("retry_after_s"))
            self.outbox.mark_retry(row.id, delivery.error or "retry", self.clock() + delay_ms, delivery.detail or None)
            report.retried += 1
            self._count(row.channel, "retry")
            log.info("push: %s to %s failed (%s), attempt %d; next in %.0f s", row.key, row.channel,
                     delivery.error, row.attempts, delay_ms / 1000)
        else:
            error = delivery.error or "failed"
            if delivery.retry:
                error = f"{error} (gave up after {row.attempts} attempts)"
            self.outbox.mark_failed(row.id, error, delivery.detail or None)
            report.failed += 1
            self._count(row.channel, "failed")
            log.warning("push: %s to %s failed for good: %s", row.key, row.channel, error)

    def backoff_ms(self, attempts: int, retry_after_s: Any = None) -> int:
        """Delay after the ``attempts``-th failed attempt: doubling from base_s, jittered, capped;
        a receiver's Retry-After (seconds) wins when it is longer."""
        b = self.settings.backoff
        delay = min(b.max_s, b.base_s * 2 ** max(0, attempts - 1))
        delay *= 1 + self.rng.uniform(-b.jitter, b.jitter)
        try:
            if retry_after_s is not None:
                delay = max(delay, float(retry_after_s))
        except (TypeError, ValueError):
            pass
        return int(min(delay, b.max_s) * 1000)

    def _count(self, channel: str, outcome: str) -> None:
        with self._count_lock:
            self.counts[(channel, outcome)] = self.counts.get((channel, outcome), 0) + 1
        for observer in list(self.observers):
            try:
                observer(channel, outcome)
            except Exception:  # noqa: BLE001 - metrics must not stop sending
                log.exception("push: an outcome observer failed")

    # -- the loop --------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Passes every ``interval_s`` until ``stop`` is set; a full batch goes on at once."""
        while not stop.is_set():
            try:
                report = self.run_once(stop)
                busy = report.sent + report.retried + report.failed >= self.settings.batch
            except Exception:  # noqa: BLE001 - e.g. the disk is full: the next pass tries again
                log.exception("push: pass failed")
                busy = False
            if not busy:
                stop.wait(self.settings.interval_s)


class PushThread:
    """A dispatcher in a daemon thread (``onsite serve``, ``onsite watch``); ``stop`` waits for the
    current send to end and closes the outbox."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=dispatcher.run_forever, args=(self.stop_event,),
                                       name="onsite-push", daemon=True)

    def start(self) -> "PushThread":
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.thread.ident is not None:  # started
            self.thread.join(timeout)
        if not self.thread.is_alive():
            self.dispatcher.outbox.close()
            for channel in self.dispatcher.channels.values():
                close = getattr(channel, "close", None)  # e.g. a webhook's HTTP client
                if callable(close):
                    close()
