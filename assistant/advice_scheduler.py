"""The daily advice's scheduler: a thread of ``onsite serve`` next to the watch thread (its own
thread, not a step of the watch: composing retrieves from the knowledge index and may call the
model, which must not delay the watch's limit checks). Every ``advice.check_s`` it asks the
Advisor for today's advice of every zone once the configured hour has come; the store makes that
idempotent, so a restart after the hour finds the rows and makes (and pushes) nothing twice."""

from __future__ import annotations

import logging
import threading

from assistant.advice import Advisor

log = logging.getLogger(__name__)


class AdviceScheduler:
    def __init__(self, advisor: Advisor):
        self.advisor = advisor
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run_forever, name="onsite-advice", daemon=True)

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                for a in self.advisor.run_due():
                    log.info("advice %s %s: %s", a.zone, a.date, a.headline)
            except Exception:  # noqa: BLE001 - the scheduler keeps running; the next check retries
                log.exception("daily advice check failed")
            self.stop_event.wait(self.advisor.settings.check_s)

    def start(self) -> "AdviceScheduler":
        if self.advisor.settings.enabled:
            self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)


def start_advice(services) -> AdviceScheduler:
    """The scheduler over the service bundle's Advisor, started (unless ``advice.enabled`` is off)."""
    from assistant.advice import advisor_for

    return AdviceScheduler(advisor_for(services)).start()
