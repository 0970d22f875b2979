"""/api/v1/chat and /api/v1/chat/stream over a real service (extractive mode, or a fake model):
envelope, auth, answer shape, conversations per principal, limits, 429 when the queue is full,
SSE framing (split at every byte, UTF-8 included), disconnects, approvals."""

from __future__ import annotations

import threading

import pytest

from assistant.api.sse import SSEDecoder, parse_sse
from assistant.llm.base import FakeChatModel, ModelBusyError

from .conftest import ADMIN, OPERATOR
from .fakes import EchoModel

LIMIT_Q = "What bearing temperature is normal for pump P-101?"
ZH_Q = "P-101 轴承温度正常范围是多少？"


def test_chat_answers_in_the_envelope_with_sources(app_client):
    c = app_client()
    r = c.post("/api/v1/chat", json={"question": LIMIT_Q}, headers=OPERATOR)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 0 and body["msg"] == "ok"
    data = body["data"]
    assert data["status"] == "answered" and data["mode"] == "extractive" and data["mode_reason"]
    assert "70 °C" in data["answer"] and len(data["conversation_id"]) == 32
    doc = next(s for s in data["sources"] if s["kind"] == "document")
    assert doc["title_path"][0].startswith("Centrifugal pump P-101") and doc["file"] == "pump-P-101-manual.en.md"
    assert doc["snippet"] and "/" not in (doc["file"] or "")
    assert all(s["n"] == i for i, s in enumerate(data["sources"], 1))
    assert set(data["cited"]) <= {s["n"] for s in data["sources"]}
    assert {"tool_calls", "checks", "pending", "timings"} <= set(data)


def test_chat_needs_credentials(app_client):
    c = app_client()
    r = c.post("/api/v1/chat", json={"question": LIMIT_Q})
    assert r.status_code == 401 and r.json()["code"] == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = c.post("/api/v1/chat/stream", json={"question": LIMIT_Q}, headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert r.status_code == 401 and r.json()["data"]["error"] == "unauthorized"


@pytest.mark.parametrize("body, where", [
    ({"question": ""}, "question"),
    ({"question": "x" * 2001}, None),  # the turn service refuses it: 422 question_too_long
    ({"question": "ok?", "conversation_id": "../etc"}, "conversation_id"),
    ({"question": "ok?", "photos": ["not-an-id"]}, None),
    ({"question": "ok?", "scope": {"zone": "GH 1 ; drop"}}, "zone"),
    ({"question": "ok?", "surprise": 1}, "surprise"),
])
def test_invalid_requests_are_422_envelopes(app_client, body, where):
    r = app_client().post("/api/v1/chat", json=body, headers=OPERATOR)
    assert r.status_code in (400, 422), r.text
    assert r.json()["code"] == r.status_code
    if where:
        assert where in str(r.json()["data"]["errors"])


def test_question_length_limit_from_settings(app_client):
    c = app_client(agent={"max_question_chars": 20})
    r = c.post("/api/v1/chat", json={"question": "x" * 21}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["data"]["error"] == "question_too_long"


def test_unknown_photo_is_a_404_before_the_turn(app_client):
    r = app_client().post("/api/v1/chat", json={"question": "look", "photos": ["f" * 32]}, headers=OPERATOR)
    assert r.status_code == 404 and "upload" in r.json()["msg"]


def test_follow_up_and_conversations_are_per_principal(app_client):
    c = app_client()
    first = c.post("/api/v1/chat", json={"question": LIMIT_Q, "conversation_id": "shift-a"}, headers=OPERATOR).json()
    assert first["data"]["conversation_id"] == "shift-a"
    c.post("/api/v1/chat", json={"question": "and the vibration?", "conversation_id": "shift-a"}, headers=OPERATOR)
    mine = c.get("/api/v1/conversations/shift-a", headers=OPERATOR).json()["data"]
    assert [m["role"] for m in mine["messages"]] == ["user", "assistant", "user", "assistant"]
    theirs = c.get("/api/v1/conversations/shift-a", headers=ADMIN).json()["data"]
    assert theirs["messages"] == []  # the same id under another principal is another conversation


def test_full_queue_is_429_with_retry_after_and_recovers(app_client, make_api_service):
    service = make_api_service(llm={"queue_depth": 1})
    c = app_client(service)
    held = service.turns.ask("How do I lock out the pump?")  # admitted, not finished: the one slot is taken
    for path in ("/api/v1/chat", "/api/v1/chat/stream"):
        r = c.post(path, json={"question": LIMIT_Q}, headers=OPERATOR)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["code"] == 429 and r.json()["data"]["error"] == "model_busy"
    r = c.post("/v1/chat/completions", json={"model": "onsite", "messages": [{"role": "user", "content": "hi?"}]},
               headers=OPERATOR)
    assert r.status_code == 429 and r.json()["error"]["code"] == "model_busy" and r.headers["Retry-After"]
    list(held)
    assert c.post("/api/v1/chat", json={"question": LIMIT_Q}, headers=OPERATOR).status_code == 200
    assert service.turns.turns_in_flight == 0


def stream(c, question, **extra):
    r = c.post("/api/v1/chat/stream", json={"question": question, **extra}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    return r


def test_stream_is_sse_with_done_last(app_client):
    r = stream(app_client(EchoModel()), LIMIT_Q)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no" and "content-encoding" not in r.headers
    assert "content-length" not in r.headers  # chunked
    assert r.content.endswith(b"data: [DONE]\n\n")
    events = parse_sse(r.content)
    assert events[-1] == "[DONE]"
    types = [e["type"] for e in events[:-1]]
    assert types[-1] == "done" and "sources" in types and "token" in types and "check" in types
    assert types.index("sources") < types.index("token") < types.index("done")
    done = events[-2]
    tokens = "".join(e["text"] for e in events if isinstance(e, dict) and e["type"] == "token")
    assert tokens == done["answer"] and done["status"] == "answered" and done["mode"] == "llm"
    assert {s["n"] for s in done["sources"]} >= set(done["cited"]) and done["cited"]
    for line in r.content.split(b"\n\n"):
        assert line == b"" or line.startswith((b"data: ", b": ")) and b"\n" not in line


@pytest.mark.parametrize("question", [ZH_Q, LIMIT_Q])
def test_stream_survives_every_chunk_boundary(app_client, question):
    r = stream(app_client(), question)
    body = r.content
    assert any(b > 0x7F for b in body)  # multi-byte UTF-8 (°, Chinese) in the stream
    whole = parse_sse(body)
    for size in (1, 2, 3, 7):
        decoder, events = SSEDecoder(), []
        for i in range(0, len(body), size):
            events += decoder.feed(body[i:i + size])
        decoder.close()
        assert events == whole and decoder.done


def test_decoder_refuses_a_truncated_stream():
    decoder = SSEDecoder()
    decoder.feed('data: {"type":"token","text":"温'.encode()[:-1])
    with pytest.raises(ValueError):
        decoder.close()


def test_error_after_admission_is_an_error_event_then_done(app_client):
    model = FakeChatModel([ModelBusyError("the model queue is full", retry_after_s=2.0)])
    r = stream(app_client(model), LIMIT_Q)
    events = parse_sse(r.content)
    error = next(e for e in events if isinstance(e, dict) and e["type"] == "error")
    assert error["code"] == 429 and error["retry_after_s"] == 2.0 and events[-1] == "[DONE]"
    r = app_client(FakeChatModel([ModelBusyError("full", retry_after_s=2.0)])).post(
        "/api/v1/chat", json={"question": LIMIT_Q}, headers=OPERATOR)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"


def test_client_that_leaves_mid_stream_frees_its_slot(app_client, make_api_service):
    service = make_api_service(EchoModel(token_delay_s=0.05), llm={"queue_depth": 1})
    c = app_client(service)
    with c.stream("POST", "/api/v1/chat/stream", json={"question": LIMIT_Q}, headers=OPERATOR) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            if b'"type":"token"' in chunk:
                break  # leave after the first token
    done = threading.Event()

    def wait_free():
        import time

        for _ in range(200):
            if service.turns.turns_in_flight == 0:
                done.set()
                return
            time.sleep(0.025)

    wait_free()
    assert done.is_set()
    assert c.post("/api/v1/chat", json={"question": LIMIT_Q}, headers=OPERATOR).status_code == 200


def test_proposed_action_is_approved_through_the_conversation(app_client, make_api_service):
    service = make_api_service(FakeChatModel(["Check alignment and the baseplate bolts [1]."]))
    c = app_client(service)
    data = c.post("/api/v1/chat", json={"question": "P-101 vibration is rising", "conversation_id": "wo-1"},
                  headers=OPERATOR).json()["data"]
    assert data["pending"][0]["tool"] == "create_work_order" and service.parts.work_order_store.list() == []
    assert data["status"] == "pending_approval"  # not "answered" while a person has to decide
    # another principal cannot decide it: for them the conversation has nothing pending
    r = c.post("/api/v1/approvals/wo-1", json={"approve": True, "reason": "ok"}, headers=ADMIN)
    assert r.status_code == 404 and r.json()["data"]["error"] == "not_found"
    r = c.post("/api/v1/approvals/wo-1", json={"approve": True, "reason": "go ahead"}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["kind"] == "conversation" and out["answer"]["pending"] == []
    assert out["answer"]["status"] in ("answered", "partial")
    made = next(t for t in out["answer"]["tool_calls"] if t["tool"] == "create_work_order")
    assert made["ok"] and made["approval"]["approved"]
    orders = service.parts.work_order_store.list()
    assert len(orders) == 1 and orders[0].status == "pending" and "floor-tablet" in orders[0].requested_by
