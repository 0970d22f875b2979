"""OpenAICompatChatModel against a real HTTP server on loopback: a small FastAPI app that speaks
the OpenAI chat-completions protocol. The request's ``model`` field picks the server's behaviour."""

import asyncio
import json
import socket
import threading
import time
from typing import Literal

import pytest
from pydantic import BaseModel

from assistant.llm.base import (
    CancelledError,
    ChatMessage,
    DeadlineExceededError,
    GenerationOptions,
    InvalidDecisionError,
    ModelBusyError,
    ModelError,
    collect,
)
from assistant.llm.openai_compat import OpenAICompatChatModel, _sse_data
from assistant.settings import LLMSettings

MSGS = [ChatMessage("system", "You help greenhouse staff."), ChatMessage("user", "Is pump 3 running?")]


class Action(BaseModel):
    action: Literal["answer", "sensor", "refuse"]
    reason: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


USAGE = {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24,
         "prompt_tokens_details": {"cached_tokens": 16}}
DONE = b"data: [DONE]\n\n"


class Server:
    """Records requests; per-scenario hit counters; a release event for incremental tests."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.release = threading.Event()
        self.disconnected = threading.Event()

    def hits(self, model: str) -> int:
        return sum(1 for r in self.requests if r["model"] == model)


def _app(state: Server):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()

    def sse(gen):
        return StreamingResponse(gen, media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        model, n = body["model"], state.hits(body["model"])

        if model == "tokens":  # first token, then wait for the test to release the rest
            async def gen():
                yield _chunk("Pump 3")
                for _ in range(500):
                    if state.release.is_set():
                        break
                    await asyncio.sleep(0.01)
                yield _chunk(" is running")
                yield _chunk(None, "stop")
                yield f"data: {json.dumps({'choices': [], 'usage': USAGE})}\n\n".encode()
                yield DONE
            return sse(gen())

        if model == "split":  # the raw bytes cut every 5 bytes: inside lines and inside 泵/运
            payload = _chunk("水泵") + b": keep-alive\n\n" + _chunk("运行中。") + _chunk(None, "stop") + DONE

            async def gen():
                for i in range(0, len(payload), 5):
                    yield payload[i:i + 5]
                    await asyncio.sleep(0.002)
            return sse(gen())

        if model == "stop":  # a server that ignores `stop`; the stop string arrives split
            async def gen():
                for piece in ["The answer", " is 42.", "\nE", "ND", " and more text"]:
                    yield _chunk(piece)
                yield _chunk(None, "length")
                yield DONE
            return sse(gen())

        if model.startswith("decide"):
            good = '{"action": "sensor", "reason": "需要读取传感器"}'
            bad = '{"action": "fly", "reason": 3}'
            text = {"decide-valid": good, "decide-retry": bad if n == 1 else good}.get(model, "not json {")

            async def gen():
                for i in range(0, len(text), 4):
                    yield _chunk(text[i:i + 4])
                yield _chunk(None, "stop")
                yield DONE
            return sse(gen())

        if model == "flaky":
            if n == 1:
                return JSONResponse({"error": {"message": "worker crashed"}}, status_code=500)
            return sse(iter([_chunk("ok"), _chunk(None, "stop"), DONE]))

        if model == "busy":
            if n == 1:
                return JSONResponse({"error": {"message": "queue full"}}, status_code=429, headers={"Retry-After": "1"})
            return sse(iter([_chunk("ok"), _chunk(None, "stop"), DONE]))

        if model == "always-busy":
            return JSONResponse({"error": {"message": "queue full"}}, status_code=429, headers={"Retry-After": "7"})

        if model == "unauthorised":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)

        if model == "stall":  # one token, then silence until the client goes away
            async def gen():
                yield _chunk("Pump")
                try:
                    for _ in range(1000):
                        await asyncio.sleep(0.01)
                        if await request.is_disconnected():
                            break
                finally:
                    state.disconnected.set()
                yield DONE
            return sse(gen())

        if model == "slow-headers":
            await asyncio.sleep(1.5)
            return sse(iter([_chunk("late"), DONE]))

        if model == "broken":  # tokens, then the connection dies mid-stream
            async def gen():
                yield _chunk("Pump")
                yield _chunk(" 3")
                await asyncio.sleep(0.05)
                raise RuntimeError("server died")
            return sse(gen())

        return JSONResponse({"error": {"message": f"unknown scenario {model}"}}, status_code=404)

    return app


@pytest.fixture(scope="module")
def server():
    import uvicorn

    state = Server()
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.started, "test server did not start"
    state.base_url = f"http://127.0.0.1:{port}/v1"
    yield state
    srv.should_exit = True
    thread.join(5)


@pytest.fixture(autouse=True)
def _fresh_record(server):
    server.requests.clear()
    server.headers.clear()


def model(server, scenario: str, **kw) -> OpenAICompatChatModel:
    settings = LLMSettings(backend="openai", openai_base_url=server.base_url, openai_model=scenario, **kw)
    m = OpenAICompatChatModel(settings)
    m._backoff_s = 0.05  # keep the retry tests fast; the schedule itself is not under test
    return m


def test_tokens_arrive_incrementally_then_usage_and_timings(server):
    server.release.clear()
    events = model(server, "tokens", openai_api_key="sekret").stream(MSGS)
    start = time.monotonic()
    first = next(events)  # arrives while the server still holds the rest back (for up to 5 s)
    assert time.monotonic() - start < 2.0
    assert first.kind == "token" and first.text == "Pump 3"
    server.release.set()
    text, done = collect(events)
    assert first.text + text == "Pump 3 is running"
    assert done.finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.cached_prompt_tokens) == (21, 3, 16)
    assert done.usage.prefill_tokens == 5
    assert 0 < done.timings.ttft_s <= done.timings.total_s
    sent = server.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][1] == {"role": "user", "content": "Is pump 3 running?"}
    assert server.headers[-1]["authorization"] == "Bearer sekret"


def test_no_key_no_authorization_header(server):
    collect(model(server, "flaky").stream(MSGS))
    assert "authorization" not in server.headers[-1]


def test_chunks_splitting_lines_and_chinese_characters(server):
    text, done = collect(model(server, "split").stream(MSGS))
    assert text == "水泵运行中。" and done.finish_reason == "stop"
    assert done.usage.completion_tokens == 2  # no usage from the server: content chunks counted


def test_sse_parser_every_split_point():
    payload = _chunk("温室") + b":ping\r\n\r\n" + _chunk("ok") + DONE
    for cut in range(1, len(payload)):
        events = list(_sse_data(iter([payload[:cut], payload[cut:]])))
        assert [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:2]] == ["温室", "ok"]
        assert events[2] == "[DONE]"


def test_stop_sequence_enforced_even_when_split_across_chunks(server):
    opts = GenerationOptions(max_tokens=50, stop=["\nEND"])
    text, done = collect(model(server, "stop").stream(MSGS, opts))
    assert text == "The answer is 42."
    assert done.finish_reason == "stop_sequence"
    assert server.requests[-1]["stop"] == ["\nEND"] and server.requests[-1]["max_tokens"] == 50


def test_decision_valid_with_json_schema_response_format(server):
    got = model(server, "decide-valid").decide(MSGS, Action)
    assert got == Action(action="sensor", reason="需要读取传感器")
    sent = server.requests[-1]
    fmt = sent["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Action" and fmt["json_schema"]["strict"]
    assert fmt["json_schema"]["schema"]["properties"]["action"]["enum"] == ["answer", "sensor", "refuse"]
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert sent["temperature"] == 0.0


def test_decision_invalid_then_valid_retries_once_with_the_error(server):
    got = model(server, "decide-retry").decide(MSGS, Action)
    assert got.action == "sensor" and server.hits("decide-retry") == 2
    retry = server.requests[-1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"action": "fly", "reason": 3}'}
    assert retry[-1]["role"] == "user" and "action" in retry[-1]["content"] and "reason" in retry[-1]["content"]


def test_decision_invalid_twice_raises(server):
    with pytest.raises(InvalidDecisionError, match="Action.*not valid JSON"):
        model(server, "decide-bad").decide(MSGS, Action)
    assert server.hits("decide-bad") == 2


def test_server_error_then_success_is_retried(server):
    text, _ = collect(model(server, "flaky").stream(MSGS))
    assert text == "ok" and server.hits("flaky") == 2


def test_429_honours_retry_after(server):
    start = time.monotonic()
    text, done = collect(model(server, "busy").stream(MSGS))
    assert text == "ok" and server.hits("busy") == 2
    assert time.monotonic() - start >= 0.95
    assert done.timings.queue_s >= 0.95  # the wait shows as queueing, not as time to first token


def test_429_until_retries_run_out_is_model_busy(server):
    with pytest.raises(ModelBusyError, match="HTTP 429: queue full") as info:
        collect(model(server, "always-busy", openai_retries=0).stream(MSGS))
    assert info.value.retry_after_s == 7


def test_client_errors_are_not_retried_and_say_what_to_check(server):
    with pytest.raises(ModelError, match="HTTP 401: invalid api key.*openai_api_key"):
        collect(model(server, "unauthorised").stream(MSGS))
    assert server.hits("unauthorised") == 1


def test_no_retry_after_tokens_were_streamed(server):
    got = []
    with pytest.raises(ModelError, match="broke off"):
        for ev in model(server, "broken").stream(MSGS):
            got.append(ev.text)
    assert "".join(got) == "Pump 3" and server.hits("broken") == 1


def test_deadline_while_server_stalls(server):
    start = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="deadline"):
        collect(model(server, "stall").stream(MSGS, GenerationOptions(deadline_s=0.5)))
    assert time.monotonic() - start < 2.0


def test_read_timeout_is_a_clear_error(server):
    with pytest.raises(ModelError, match=r"did not answer within 0.3 s$"):
        collect(model(server, "slow-headers", openai_timeout_s=0.3, openai_retries=0).stream(MSGS))


def test_cancel_while_blocked_closes_the_stream(server):
    server.disconnected.clear()
    cancel = threading.Event()
    events = model(server, "stall").stream(MSGS, GenerationOptions(cancel=cancel))
    assert next(events).text == "Pump"
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(CancelledError):
        next(events)
    assert time.monotonic() - start < 1.0
    assert server.disconnected.wait(3), "the server never saw the client go away"


def test_unreachable_server_is_a_clear_error():
    port = _free_port()  # nothing listens there
    m = OpenAICompatChatModel(LLMSettings(openai_base_url=f"http://127.0.0.1:{port}/v1", openai_retries=1))
    m._backoff_s = 0.05
    expected = rf"cannot reach the model server at http://127.0.0.1:{port}/v1: .*tried 2 times"
    with pytest.raises(ModelError, match=expected):
        collect(m.stream(MSGS))
