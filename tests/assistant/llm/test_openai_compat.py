"""OpenAICompatChatModel against a real HTTP server on loopback (tests/assistant/llm/loopback.py):
a small FastAPI app that speaks the OpenAI chat-completions protocol. The request's ``model``
field picks the server's behaviour."""

import json
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
from assistant.llm.settings import LLMSettings
from tests.assistant.llm.loopback import DONE, chunk as _chunk, free_port as _free_port, serve

MSGS = [ChatMessage("system", "You help greenhouse staff."), ChatMessage("user", "Is pump 3 running?")]


class Action(BaseModel):
    action: Literal["answer", "sensor", "refuse"]
    reason: str


@pytest.fixture(scope="module")
def server():
    with serve() as state:
        yield state


@pytest.fixture(autouse=True)
def _fresh_record(server):
    server.clear()


def model(server, scenario: str, **openai) -> OpenAICompatChatModel:
    settings = LLMSettings(backend="openai", openai={"base_url": server.base_url, "model": scenario, **openai})
    m = OpenAICompatChatModel(settings)
    m._backoff_s = 0.05  # keep the retry tests fast; the schedule itself is not under test
    return m


def test_tokens_arrive_incrementally_then_usage_and_timings(server):
    server.release.clear()
    events = model(server, "tokens", api_key="sekret").stream(MSGS)
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
        collect(model(server, "always-busy", retries=0).stream(MSGS))
    assert info.value.retry_after_s == 7


def test_client_errors_are_not_retried_and_say_what_to_check(server):
    with pytest.raises(ModelError, match=r"HTTP 401: invalid api key.*llm\.openai\.api_key"):
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
        collect(model(server, "slow-headers", timeout_s=0.3, retries=0).stream(MSGS))


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
    m = OpenAICompatChatModel(LLMSettings(openai={"base_url": f"http://127.0.0.1:{port}/v1", "retries": 1}))
    m._backoff_s = 0.05
    expected = rf"cannot reach the model server at http://127.0.0.1:{port}/v1: .*tried 2 times"
    with pytest.raises(ModelError, match=expected):
        collect(m.stream(MSGS))
