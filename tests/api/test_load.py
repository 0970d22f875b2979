"""A bounded load test on loopback: 20 concurrent clients against a real server (uvicorn, the
fake model generating at a set pace) through the three ways in — /api/v1/chat, the SSE stream and
/v1/chat/completions. Every request is answered in full or refused with 429 + Retry-After, the
queue drains, and nothing is logged at ERROR. p50 / p95 latencies are printed (run with -s):

    .venv/bin/pytest tests/api/test_load.py -s -m slow      # the longer run
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter

import httpx
import pytest

from assistant.api.sse import parse_sse

from .conftest import OPERATOR_KEY
from .fakes import EchoModel

QUESTIONS = ["What bearing temperature is normal for pump P-101?", "How do I lock out pump P-101?",
             "番茄开花期夜间温度应该是多少？", "What is the alarm limit for vibration on P-101?"]
HEADERS = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def one_request(http: httpx.Client, kind: str, question: str) -> tuple[int, float, str | None]:
    """(status, seconds, problem or None)."""
    t0 = time.perf_counter()
    if kind == "chat":
        r = http.post("/api/v1/chat", json={"question": question}, headers=HEADERS)
        ok = r.status_code != 200 or (r.json()["code"] == 0 and r.json()["data"]["answer"])
    elif kind == "stream":
        r = http.post("/api/v1/chat/stream", json={"question": question}, headers=HEADERS)
        ok = r.status_code != 200 or (parse_sse(r.content)[-1] == "[DONE]"
                                      and parse_sse(r.content)[-2]["type"] == "done")
    else:
        r = http.post("/v1/chat/completions", headers=HEADERS,
                      json={"model": "onsite", "messages": [{"role": "user", "content": question}]})
        ok = r.status_code != 200 or bool(r.json()["choices"][0]["message"]["content"])
    seconds = time.perf_counter() - t0
    problem = None
    if r.status_code not in (200, 429):
        problem = f"{kind}: HTTP {r.status_code} {r.text[:200]}"
    elif r.status_code == 429 and not r.headers.get("Retry-After"):
        problem = f"{kind}: 429 without Retry-After"
    elif not ok:
        problem = f"{kind}: incomplete answer {r.text[:200]}"
    return r.status_code, seconds, problem


def run_load(url: str, clients: int, per_client: int) -> dict:
    results: list[tuple[str, int, float, str | None]] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            start.wait()
            for j in range(per_client):
                kind = ("chat", "stream", "openai")[(i + j) % 3]
                status, seconds, problem = one_request(http, kind, QUESTIONS[(i + j) % len(QUESTIONS)])
                with lock:
                    results.append((kind, status, seconds, problem))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - t0
    answered = sorted(s for _, status, s, _ in results if status == 200)
    quantiles = statistics.quantiles(answered, n=20) if len(answered) >= 2 else [0.0] * 19
    return {
        "requests": len(results), "statuses": Counter(status for _, status, _, _ in results),
        "problems": [p for *_, p in results if p],
        "p50_s": round(statistics.median(answered), 3) if answered else None,
        "p95_s": round(quantiles[18], 3), "wall_s": round(wall, 2),
        "refused_p50_s": round(statistics.median([s for _, st, s, _ in results if st == 429] or [0]), 3),
    }


def check(report: dict, expected: int, server, caplog) -> None:
    print(f"\nload: {report['requests']} requests from 20 clients in {report['wall_s']} s — "
          f"{report['statuses'][200]} answered, {report['statuses'][429]} refused (429); "
          f"answered p50 {report['p50_s']} s, p95 {report['p95_s']} s; refusals p50 {report['refused_p50_s']} s")
    assert report["requests"] == expected
    assert report["problems"] == []
    assert set(report["statuses"]) <= {200, 429} and report["statuses"][200] > 0
    deadline = time.monotonic() + 10
    while server.service.turns.turns_in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.service.turns.turns_in_flight == 0
    assert httpx.get(server.url + "/readyz").status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.fixture
def server(live_server):
    return live_server(EchoModel(token_delay_s=0.01), simulate_hours=1, llm={"queue_depth": 8})


def test_twenty_concurrent_clients(server, caplog):
    caplog.set_level(logging.WARNING)
    report = run_load(server.url, clients=20, per_client=2)
    check(report, 40, server, caplog)


@pytest.mark.slow
def test_twenty_concurrent_clients_longer(server, caplog):
    caplog.set_level(logging.WARNING)
    report = run_load(server.url, clients=20, per_client=15)
    check(report, 300, server, caplog)
    assert report["statuses"][429] > 0  # the queue (8) really was full at times
