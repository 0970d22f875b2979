"""A turn whose caller went away stops and gives its admission slot back within a second — whether
the model is reading a prompt for the judge, the router or the answer, or generating — without
falling back to the extract, and the audit log records it (issue 13, item 2).

The model is ``PrefillModel``: a fake on a real InferenceQueue whose 'prefill' blocks the way a
llama.cpp batch does and ends early only through the job's stop hook (where the real model's abort
callback is wired)."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.llm.base import CancelledError
from assistant.llm.queue import InferenceQueue
from assistant.nodes import turn_options
from assistant.turns import CancelEvent
from tests.api.conftest import api_index, make_api_service  # noqa: F401 - fixtures: the fake embedder's index
from tests.api.fakes import PrefillModel

ANSWERABLE = "How do I lock out pump P-101?"
LIVE = "is the tomato house warm enough now?"  # no place the site names: the model routes it


def consume(events, into: list) -> threading.Thread:
    def run() -> None:
        for ev in events:
            into.append(ev)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def released_within(turns, seconds: float) -> float:
    """Seconds until no turn holds a slot (fails after ``seconds``)."""
    t0 = time.monotonic()
    while turns.turns_in_flight and time.monotonic() - t0 < seconds:
        time.sleep(0.005)
    assert turns.turns_in_flight == 0, "the turn still holds its slot"
    return time.monotonic() - t0


@pytest.fixture
def slow(make_api_service):
    made = []

    def make(prefill_s=30.0, token_delay_s=0.05, **overrides):
        model = PrefillModel(prefill_s=prefill_s, token_delay_s=token_delay_s)
        made.append(model)
        return model, make_api_service(model, simulate_hours=0, **overrides)

    yield make
    for m in made:
        m.close()


@pytest.mark.parametrize("question,agent,stage", [
    (ANSWERABLE, {"judge_band": (0.0, 1.0)}, "judge"),  # the judge's decision reads the answer prompt
    (LIVE, {}, "route"),                                # the router's decision
    (ANSWERABLE, {}, "answer"),                         # the answer's prompt
])
def test_a_cancel_during_prefill_frees_the_slot_within_a_second(slow, question, agent, stage):
    model, svc = slow(agent=agent)
    cancel = CancelEvent()
    events: list = []
    worker = consume(svc.turns.ask(question, cancel=cancel, user="op-7"), events)
    deadline = time.monotonic() + 10
    while model.calls == 0 and time.monotonic() < deadline:  # wait until the model is 'prefilling'
        time.sleep(0.01)
    assert model.calls == 1 and svc.turns.turns_in_flight == 1
    cancel.set()
    assert released_within(svc.turns, 1.0) < 1.0
    worker.join(2)
    assert model.aborted == 1 and model.answers == 0 or stage == "answer"
    assert [e.type for e in events][-1] == "error" and events[-1].data["http_status"] == 499
    assert not any(e.type == "check" and e.data.get("name") == "fallback" for e in events)
    [row] = svc.turns.audit.turns()
    assert (row["status"], row["user"], row["question"], row["kind"]) == ("cancelled", "op-7", question, "ask")
    assert row["timings"]["release_s"] < 1.0 and row["timings"]["cancelled_at"] == pytest.approx(cancel.set_at, abs=1e-3)
    assert "went away" in row["checks"][0]["detail"]
    # the model is free for the next question at once
    model.prefill_s = 0.0
    assert svc.turns.answer(ANSWERABLE).status in ("answered", "partial")


def test_a_step_that_cannot_be_interrupted_still_frees_the_slot_at_once(slow):
    """The slot is given back when the cancel is set; the step ends on its own and the turn is
    audited once, as cancelled (not also as answered)."""
    model, svc = slow(prefill_s=2.0)
    model.honour_stop = False
    cancel = CancelEvent()
    events: list = []
    worker = consume(svc.turns.ask(ANSWERABLE, cancel=cancel), events)
    deadline = time.monotonic() + 10
    while model.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    cancel.set()
    assert svc.turns.turns_in_flight == 0  # at once, from the cancel itself
    worker.join(10)
    assert not worker.is_alive() and "done" not in [e.type for e in events]
    assert [r["status"] for r in svc.turns.audit.turns()] == ["cancelled"]
    assert svc.turns.audit.turns()[0]["timings"]["release_s"] < 0.1


def test_a_cancel_while_tokens_stream_stops_without_the_extract(slow):
    model, svc = slow(prefill_s=0.0, token_delay_s=0.3)
    cancel = CancelEvent()
    events: list = []
    worker = consume(svc.turns.ask(ANSWERABLE, cancel=cancel), events)
    deadline = time.monotonic() + 10
    while not any(e.type == "token" for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    cancel.set()
    assert released_within(svc.turns, 1.0) < 1.0
    worker.join(2)
    types = [e.type for e in events]
    assert "done" not in types and types[-1] == "error"
    assert not any(e.type == "check" for e in events)  # no fallback, no verification of half a draft
    assert svc.turns.audit.turns()[0]["status"] == "cancelled"


def test_closing_the_events_early_is_a_cancellation_too(slow):
    """The chat page's stop and a streaming client that leaves close the turn's events."""
    model, svc = slow(prefill_s=0.0, token_delay_s=0.3)
    events = svc.turns.ask(ANSWERABLE)
    for ev in events:
        if ev.type == "token":
            break
    t0 = time.monotonic()
    events.close()
    assert time.monotonic() - t0 < 1.0 and svc.turns.turns_in_flight == 0
    [row] = svc.turns.audit.turns()
    assert row["status"] == "cancelled" and row["timings"]["release_s"] < 1.0


def test_a_finished_turn_is_audited_once_as_answered(slow):
    model, svc = slow(prefill_s=0.0, token_delay_s=0.0)
    cancel = CancelEvent()
    for ev in svc.turns.ask(ANSWERABLE, cancel=cancel):
        if ev.type == "done":
            cancel.set()  # as the API does when the response is sent
    assert [r["status"] for r in svc.turns.audit.turns()] == ["answered"]


def test_a_cancelled_turn_makes_no_model_call():
    class Deps:
        cancels = {"t1": CancelEvent()}

    state = {"thread_id": "t1", "deadline_at": time.time() + 60}
    assert turn_options(state, Deps(), max_tokens=5).cancel is Deps.cancels["t1"]
    Deps.cancels["t1"].set()
    with pytest.raises(CancelledError):
        turn_options(state, Deps(), max_tokens=5)


def test_the_stop_hook_runs_when_the_caller_abandons_a_running_job():
    q = InferenceQueue(2)
    stopped, started = threading.Event(), threading.Event()
    cancel = threading.Event()

    def job(ctx):
        ctx.on_stop(stopped.set)
        started.set()
        stopped.wait(30)  # 'native code' that only the hook ends
        ctx.check()

    handle = q.submit(job, cancel=cancel)
    started.wait(5)
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        handle.result()
    assert time.monotonic() - t0 < 0.5 and stopped.is_set()
    late = threading.Event()
    handle.context.on_stop(late.set)  # registered after the stop: runs at once
    assert late.is_set()
    q.close()
