"""How long from an alert opened to its webhook arriving, signed, at a receiver (target ≤ 2 s).

Two ways:
- default: the dispatcher ``onsite serve`` runs (``build_push`` with the default settings: a pass
  every ``push.interval_s`` = 1 s) over a fresh alert store in a temp home, in this process;
- ``--serve HOME``: a real ``onsite serve`` subprocess on ``--port`` over HOME (use a copy of a
  data home with a built index), with the webhook set through the environment; the alerts are
  raised into HOME's alert store from this process, as ``onsite watch`` or the server's watch do.

Alerts are raised at random moments (so the phase against the 1-s pass varies); the receiver
(tools.push.fake.WebhookReceiver) checks every signature.

usage: python -m evals.push_latency [--n 20] [--json] [--serve HOME --port 8710]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.push.fake import WebhookReceiver
from tools.watch.alerts import AlertStore

SECRET = "latency-eval-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def _measure(alerts: AlertStore, receiver: WebhookReceiver, n: int, rng: random.Random) -> list[float]:
    took = []
    for i in range(n):
        time.sleep(rng.uniform(0.1, 1.2))
        t0 = time.time()
        a = alerts.raise_alert("P-101", f"anomaly:latency-{t0:.6f}", "alarm", f"latency probe {i}", {}).alert
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            hit = [r for r in receiver.accepted() if r.body.get("fields", {}).get("alert_id") == a.id]
            if hit:
                took.append(hit[0].at - t0)
                break
            time.sleep(0.005)
        else:
            took.append(float("inf"))
    return took


def in_process(n: int, receiver: WebhookReceiver, rng: random.Random) -> list[float]:
    from assistant.settings import Settings
    from tools.push.dispatcher import PushThread
    from tools.push.registry import build_push

    home = Path(tempfile.mkdtemp(prefix="push-latency-"))
    settings = Settings(home=home, push={"webhooks": [{"name": "eval", "url": receiver.url, "secret": SECRET}]})
    alerts = AlertStore(settings.alerts_db)
    thread = PushThread(build_push(settings, alerts)).start()
    try:
        return _measure(alerts, receiver, n, rng)
    finally:
        thread.stop()
        alerts.close()


def served(n: int, receiver: WebhookReceiver, rng: random.Random, home: Path, port: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONSITE_HOME": str(home), "ONSITE_LLM__BACKEND": "extractive",
           "ONSITE_PUSH__WEBHOOKS": json.dumps([{"name": "eval", "url": receiver.url, "secret": SECRET}])}
    log = (home / "push-latency-serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port), "--feed", "off"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            if "push:" in line and "webhook:eval" not in line:
                raise SystemExit(f"the server did not configure the webhook: {line.strip()}")
            if "push:" in line or time.monotonic() > deadline:
                break
        alerts = AlertStore(home / "alerts.sqlite")
        try:
            return _measure(alerts, receiver, n, rng)
        finally:
            alerts.close()
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", type=Path, help="a data home (a copy) for a real `onsite serve`")
    p.add_argument("--port", type=int, default=8710)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    receiver = WebhookReceiver(SECRET).start()
    rng = random.Random(args.seed)
    try:
        took = served(args.n, receiver, rng, args.serve, args.port) if args.serve else in_process(args.n, receiver, rng)
    finally:
        receiver.stop()
    ok = sorted(t for t in took if t != float("inf"))
    result = {
        "mode": "serve" if args.serve else "in_process", "alerts": args.n, "delivered": len(ok),
        "all_signatures_verified": all(r.verified for r in receiver.received),
        "latency_s_median": round(statistics.median(ok), 3) if ok else None,
        "latency_s_p95": round(ok[min(len(ok) - 1, int(0.95 * len(ok)))], 3) if ok else None,
        "latency_s_max": round(ok[-1], 3) if ok else None,
        "within_2s": sum(t <= 2.0 for t in ok),
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
