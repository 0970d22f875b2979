"""From a reading to the alert on the SSE stream, through a real server (``onsite bench alert-latency``).

Starts ``onsite serve`` (extractive, a temporary home, its own mosquitto broker: the bench needs
the Debian package 'mosquitto'), opens ``GET /api/v1/alerts/stream``, and per trial sends one
reading beyond an alarm limit without a delay (a zone sensor: judged day and night) the way
readings enter the server: published to its broker on the sensor's topic. Latency = from just before the publish to the alert's "opened" event arriving on
the stream. Each trial breaks a different (sensor, side), because a key that is already open
only updates. The watch pass interval bounds the latency: on average the reading waits half an
interval for the next pass, at worst a whole one, plus the stream's poll (0.25 s).
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from evals.watch_sim import SAMPLE

ROOT = Path(__file__).resolve().parent.parent


def _targets(site) -> list[tuple[str, str, float]]:
    """(sensor, side, value beyond its alarm) for zone sensors whose alarm has no delay."""
    from datetime import UTC, datetime

    out = []
    for s in site.sensors:
        if s.asset or site.limit_set(s) is None:
            continue
        active = site.limits_for(s.id, datetime.now(UTC))
        lim = active.limit if active else None
        if lim is None:
            continue
        for side in ("high", "low"):
            level = getattr(lim, f"alarm_{side}", None)
            if level is not None and not getattr(lim, "alarm_delay_s", None):
                out.append((s.id, side, level + (1 if side == "high" else -1) * max(1.0, abs(level) * 0.1)))
    return out


def _wait(lines: queue.Queue, pattern: str, timeout: float, seen: list[str]) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return m
    raise RuntimeError(f"the server did not say {pattern!r}:\n{''.join(seen[-30:])}")


def run_alert_latency(trials: int = 10, interval_s: float | None = None, home: str | None = None, port: int = 8731,
                      progress=None) -> dict[str, Any]:
    import httpx

    from tools.site import load_site_profile

    say = progress or (lambda m: None)
    site = load_site_profile(SAMPLE)
    targets = _targets(site)
    if trials > len(targets):
        raise ValueError(f"at most {len(targets)} trials (one per sensor and side with an undelayed alarm)")
    tmp = Path(tempfile.mkdtemp(prefix="onsite-bench-latency-"))
    data = tmp / "home"
    if home:
        shutil.copytree(Path(home).expanduser(), data)
    env = {**os.environ, "ONSITE_HOME": str(data), "ONSITE_LLM__BACKEND": "extractive", "HF_HUB_OFFLINE": "1",
           "ONSITE_LLM__FETCH_ON_START": "false", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    if not home:
        env["ONSITE_EMBEDDING__MODEL"] = "fake"  # the index does not matter here: build it fast
    if interval_s is not None:
        env["ONSITE_WATCH__INTERVAL_S"] = str(interval_s)
    for name in ("ONSITE_CONFIG", "ONSITE_API_KEYS", "ONSITE_API__API_KEYS", "ONSITE_API__KEYS_FILE"):
        env.pop(name, None)
    t_start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=lambda: ([lines.put(x) for x in proc.stdout], lines.put(None)), daemon=True).start()
    stop = threading.Event()
    try:
        url = _wait(lines, r"onsite is serving on (http://127\.0\.0\.1:\d+)/", 300, seen).group(1)
        feed = _wait(lines, r"sensors:\s+(\S+)", 10, seen).group(1)
        interval = float(_wait(lines, r"site watch:\s+every ([\d.]+) s", 10, seen).group(1))
        key = _wait(lines, r"API key:\s+(\S+)", 10, seen).group(1)  # the banner's order
        say(f"serving at {url} after {time.monotonic() - t_start:.0f} s; readings via {feed}; watch every {interval:g} s")
        headers = {"Authorization": f"Bearer {key}"}
        arrivals: queue.Queue = queue.Queue()

        def listen() -> None:
            try:
                with httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=None)) as http:
                    with http.stream("GET", "/api/v1/alerts/stream", headers=headers) as r:
                        for line in r.iter_lines():
                            if stop.is_set():
                                return
                            if line.startswith("data:"):
                                arrivals.put((time.monotonic(), json.loads(line[5:])))
            except httpx.HTTPError:  # the server stopped at the end of the bench; a trial that waits says so
                pass

        threading.Thread(target=listen, daemon=True).start()
        time.sleep(max(2.0, interval + 1))  # the watch's first (catch-up) pass has run; the stream is open
        while not arrivals.empty():
            arrivals.get()
        send = _sender(feed, site)
        rng, latencies, missed = random.Random(0), [], []
        for sid, side, value in targets[:trials]:
            time.sleep(rng.uniform(0, interval))  # a random phase against the watch's passes
            cause = f"limit_{side}:{sid}"
            t0 = time.monotonic()
            send(sid, value)
            deadline = t0 + max(10.0, 3 * interval)
            got = None
            while got is None and time.monotonic() < deadline:
                try:
                    at, change = arrivals.get(timeout=0.2)
                except queue.Empty:
                    continue
                alert = change.get("alert") or {}
                if alert.get("cause") == cause and change.get("action") in ("opened", "escalated"):
                    got = at
            if got is None:
                missed.append(cause)
            else:
                latencies.append((got - t0) * 1000)
            say(f"{cause}: {'missed' if got is None else f'{(got - t0) * 1000:.0f} ms'}")
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else None
    return {"trials": trials, "via": "mqtt" if feed.startswith("mqtt://") else "store", "watch_interval_s": interval,
            "median_ms": round(statistics.median(lat)) if lat else None, "p95_ms": None if p95 is None else round(p95),
            "max_ms": round(lat[-1]) if lat else None, "latencies_ms": [round(x) for x in latencies], "missed": missed,
            "target_ms": 2000, "ok": bool(lat) and not missed and p95 <= 2000}


def _sender(feed: str, site):
    """send(sensor, value): the way a reading enters this server."""
    if feed.startswith("mqtt://"):
        from tools.sensors.mqtt import MqttPublisher, MqttTarget, make_payload

        host, _, port = feed.removeprefix("mqtt://").partition(":")
        pub = MqttPublisher(MqttTarget(host, int(port)))

        def send(sid: str, value: float) -> None:
            s = site.sensor(sid)
            pub.publish(s.mqtt_topic, make_payload(int(time.time() * 1000), value, s.unit))
        return send
    raise RuntimeError(f"the server's feed is {feed!r}, not MQTT; start it where mosquitto is installed")
