"""Issue 13, item 2 — abandoned requests filled the queue: 8 clients that gave up after a few seconds
held all 8 slots for minutes, and the admin got 429. Against a real server (uvicorn on loopback),
clients that time out on each face — /api/v1/chat, its SSE stream, /v1/chat/completions plain and
streamed — free their slots within a second, the next request is answered (200, not 429), and every
abandoned turn is in the audit log as cancelled."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN, OPERATOR
from .fakes import PrefillModel

QUESTION = "How do I lock out pump P-101?"
GGUF = Path(os.environ.get("ONSITE_TEST_GGUF", "/work/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))


def give_up(url: str, face: str, timeout_s: float) -> str:
    """One request whose client stops waiting after ``timeout_s``; returns what happened."""
    chat = {"question": QUESTION}
    openai = {"model": "onsite", "messages": [{"role": "user", "content": QUESTION}]}
    path, body, stream = {
        "chat": ("/api/v1/chat", chat, False), "sse": ("/api/v1/chat/stream", chat, True),
        "v1": ("/v1/chat/completions", openai, False),
        "v1-sse": ("/v1/chat/completions", {**openai, "stream": True}, True),
    }[face]
    try:
        with httpx.Client(base_url=url, timeout=timeout_s, headers=OPERATOR) as http:
            if stream:
                with http.stream("POST", path, json=body) as r:
                    if r.status_code != 200:
                        return f"HTTP {r.status_code}"
                    for _ in r.iter_bytes():
                        pass
            else:
                return f"HTTP {http.post(path, json=body).status_code}"
    except httpx.TimeoutException:
        return "gave up"
    return "finished"


def abandon(url: str, faces: list[str], timeout_s: float) -> tuple[list[str], float]:
    """All ``faces`` at once; (outcomes, monotonic time the last client gave up)."""
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda f=f: outcomes.append(give_up(url, f, timeout_s))) for f in faces]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes, time.monotonic()


def wait_free(turns, since: float, limit_s: float) -> float:
    while turns.turns_in_flight and time.monotonic() - since < limit_s:
        time.sleep(0.01)
    return time.monotonic() - since


def test_clients_that_give_up_free_every_slot_within_a_second(live_server):
    model = PrefillModel(prefill_s=60.0)
    server = live_server(model, simulate_hours=0, llm={"queue_depth": 8})
    turns = server.service.turns
    try:
        faces = ["chat", "sse", "v1", "v1-sse"] * 2  # 8: the whole queue
        outcomes, gave_up_at = abandon(server.url, faces, timeout_s=1.5)
        assert outcomes == ["gave up"] * 8
        # the server notices a closed connection within 0.2 s, the turn stops within milliseconds
        assert wait_free(turns, gave_up_at, 5.0) < 1.0
        # the model's own queue empties within the same second (its waiters poll every 50 ms)
        deadline = time.monotonic() + 1
        while (model.queue.busy or model.queue.waiting) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert model.queue.waiting == 0
        assert not model.queue.busy  # the 'prefill' was stopped, not left running
        model.prefill_s = 0.0
        r = httpx.post(server.url + "/api/v1/chat", json={"question": QUESTION}, headers=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
        rows = [row for row in turns.audit.turns() if row["status"] == "cancelled"]
        assert len(rows) == 8 and {row["user"] for row in rows} == {"key:floor-tablet"}
        assert all(row["question"] == QUESTION and row["timings"]["release_s"] < 1.0 for row in rows)
    finally:
        model.close()


def test_the_queue_full_of_abandoned_turns_answers_the_next_client(live_server):
    """The reported sequence: the queue full, its clients gone — the admin is answered, not refused."""
    model = PrefillModel(prefill_s=60.0)
    server = live_server(model, simulate_hours=0, llm={"queue_depth": 2})
    try:
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(give_up(server.url, "chat", 1.0)))
                   for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        busy = httpx.post(server.url + "/api/v1/chat", json={"question": QUESTION}, headers=ADMIN, timeout=5)
        assert busy.status_code == 429  # full while its clients still wait
        for t in threads:
            t.join(10)
        model.prefill_s = 0.0
        time.sleep(1.0)
        r = httpx.post(server.url + "/api/v1/chat", json={"question": QUESTION}, headers=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        model.close()


@pytest.mark.slow
@pytest.mark.skipif(not GGUF.is_file(), reason=f"the 0.5B GGUF is not at {GGUF}")
def test_real_model_abandoned_during_prefill_releases_within_a_second(live_server):
    """The real model reading a long prompt (the judge's, forced for every question): the abort
    callback stops the llama.cpp batch; the next question is answered by the model."""
    from assistant.llm.llamacpp import LlamaCppChatModel
    from assistant.llm.settings import LLMSettings

    model = LlamaCppChatModel(LLMSettings(llamacpp={"n_ctx": 4096}), GGUF)
    server = live_server(model, simulate_hours=0, llm={"queue_depth": 4}, agent={"judge_band": (0.0, 1.0)})
    turns = server.service.turns
    try:
        outcomes, gave_up_at = abandon(server.url, ["chat", "sse", "v1", "v1-sse"], timeout_s=3.0)
        assert outcomes == ["gave up"] * 4
        released = wait_free(turns, gave_up_at, 30.0)
        t0 = time.monotonic()
        while model._queue.busy and time.monotonic() - t0 < 30:
            time.sleep(0.01)
        model_free = time.monotonic() - gave_up_at
        print(f"\nreal model: slots free {released:.3f} s and the model idle {model_free:.3f} s after the clients left")
        assert released < 1.0 and model_free < 1.0
        rows = [row for row in turns.audit.turns() if row["status"] == "cancelled"]
        assert len(rows) == 4 and max(row["timings"]["release_s"] for row in rows) < 1.0
        r = httpx.post(server.url + "/api/v1/chat", json={"question": QUESTION}, headers=ADMIN, timeout=300)
        assert r.status_code == 200 and r.json()["data"]["answer"], r.text
    finally:
        model.close()
