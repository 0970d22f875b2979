"""Nothing lost, nothing sent twice beyond the at-least-once window, across kill -9.

A real dispatcher process (``build_push`` from the settings, as ``onsite serve`` makes it: alert
source, outbox, webhook) pushes alerts to a verifying loopback receiver that is slow on purpose,
and is killed with SIGKILL in the middle of its loop, three times, while alerts keep opening.
After the last restart every alert has arrived; a message may arrive twice (a send the receiver
took while the process died before marking it: the at-least-once window, one repeat at most per
crash), and when it does, it carries the same delivery id, so the receiver de-duplicates it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tools.push.fake import WebhookReceiver
from tools.push.outbox import Outbox
from tools.watch.alerts import AlertStore

ROOT = Path(__file__).resolve().parents[3]
SECRET = "kill9-secret-0123456789abcdef"
SCRIPT = """
import threading
from assistant.settings import Settings
from tools.push.registry import build_push
from tools.watch.alerts import AlertStore
s = Settings()
d = build_push(s, AlertStore(s.alerts_db, s.alerts))
print("ready", flush=True)
d.run_forever(threading.Event())
"""


def _start(env: dict, cwd: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip() == "ready", p.stderr.read()
    return p


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_kill_9_in_the_middle_of_dispatching(tmp_path):
    receiver = WebhookReceiver(SECRET).start()
    receiver.delay_s = 0.05  # each delivery takes a while: the kill lands in the middle of sends
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONSITE_HOME": str(home),
           "ONSITE_PUSH__WEBHOOKS": json.dumps([{"name": "ops", "url": receiver.url, "secret": SECRET}]),
           "ONSITE_PUSH__INTERVAL_S": "0.05", "ONSITE_PUSH__BATCH": "5", "ONSITE_PUSH__LEASE_S": "1",
           "ONSITE_PUSH__BACKOFF__BASE_S": "0.2"}
    env.pop("ONSITE_CONFIG", None)
    home.mkdir()
    alerts = AlertStore(home / "alerts.sqlite")  # the watch (another process in real life)
    raised = 0

    def open_alerts(n: int) -> None:
        nonlocal raised
        for _ in range(n):
            raised += 1
            alerts.raise_alert("P-101", f"anomaly:test-{raised}", "alarm", f"alert {raised}", {})

    try:
        for crash in range(3):
            proc = _start(env, tmp_path)
            open_alerts(15)
            before = len(receiver.received)
            assert _wait(lambda: len(receiver.received) >= before + 4, 15), "nothing was delivered"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()
        receiver.delay_s = 0
        open_alerts(5)  # while nothing runs
        proc = _start(env, tmp_path)
        try:
            want = {f"alert {i}" for i in range(1, raised + 1)}
            assert _wait(lambda: {r.body["fields"]["title"] for r in receiver.accepted()} >= want, 30), \
                f"lost: {sorted(want - {r.body['fields']['title'] for r in receiver.accepted()})}"
            time.sleep(0.5)  # nothing more comes
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()
    finally:
        receiver.stop()
        alerts.close()

    got = receiver.accepted()
    assert all(r.verified for r in got)
    ids_by_key: dict[str, set[str]] = {}
    for r in got:
        ids_by_key.setdefault(r.key, set()).add(r.delivery_id)
    assert len(ids_by_key) == raised and all(len(ids) == 1 for ids in ids_by_key.values())
    repeats = Counter(r.key for r in got)
    assert max(repeats.values()) <= 2, repeats.most_common(3)  # one crash mid-send repeats one send once
    assert sum(n - 1 for n in repeats.values()) <= 3  # at most one repeat per kill (a batch is sent one by one)
    box = Outbox(home / "push.sqlite")
    assert box.stats() == {"webhook:ops": {"pending": 0, "sent": raised, "failed": 0}}
    box.close()
