"""The turn's steps called alone, without LangGraph: each is a function of (state, deps), with the
events it emits and the decision it asks for given by the test."""

from dataclasses import replace
from dataclasses import dataclass as _dataclass

from assistant import nodes


def _deps(svc, decision=None):
    events: list[tuple[str, dict]] = []
    asked: list[dict] = []

    def interrupt(request: dict) -> dict:
        asked.append(request)
        return decision or {}

    deps = replace(svc.parts.agent.deps, emit=lambda kind, **data: events.append((kind, data)), interrupt=interrupt)
    return deps, events, asked


def _state(**extra):
    call = {"tool": "create_work_order", "args": {"asset": "P-101", "problem": "bearing hot", "priority": "high"}}
    return {"question": "P-101 bearing is hot", "tool_results": [], "pending": [call], "sources": [], "draft": "",
            "plan": {"calls": [call], "rejected": [], "search": "P-101"}, **extra}


def test_propose_writes_the_order_only_after_approval(make_service):
    svc = make_service()
    deps, events, asked = _deps(svc, {"approved": True, "by": "Li Wei", "reason": "go"})
    update = nodes.propose(_state(), deps)
    assert asked[0]["kind"] == "approval" and asked[0]["args"]["asset"] == "P-101"
    [result] = update["tool_results"]
    assert result["ok"] and result["approval"] == {"approved": True, "by": "Li Wei", "reason": "go"}
    [order] = svc.parts.work_order_store.list(None, None, 10)
    assert order.requested_by == "Li Wei (via assistant)" and order.status == "pending"
    assert events[-1][0] == "tool" and update["pending"] == []


def test_propose_writes_nothing_when_the_person_declines(make_service):
    svc = make_service()
    deps, _, _ = _deps(svc, {"approved": False, "by": "Li Wei", "reason": "not now"})
    [result] = nodes.propose(_state(), deps)["tool_results"]
    assert not result["ok"] and result["summary"] == "not approved by Li Wei: not now"
    assert svc.parts.work_order_store.list(None, None, 10) == []


def test_after_verify_regenerates_once_then_falls_back():
    failed = {"name": "numbers", "ok": False, "detail": "95 °C is not in [1]"}
    assert nodes.after_verify({"mode": "llm", "attempts": 1, "checks": [failed]}) == "answer"
    assert nodes.after_verify({"mode": "llm", "attempts": 2, "checks": [failed]}) == "fallback"
    assert nodes.after_verify({"mode": "extractive", "attempts": 1, "checks": [failed]}) == "propose"
    assert nodes.after_verify({"mode": "llm", "attempts": 1, "checks": [{**failed, "ok": True}]}) == "propose"


def test_finish_marks_a_turn_with_a_failed_tool_partial(make_service):
    deps, _, _ = _deps(make_service())
    state = _state(status="answered", answer="Up to 70 °C [1].",
                   tool_results=[{"tool": "sensor_latest", "ok": False, "error": "no readings"}])
    update = nodes.finish(state, deps)
    assert update["status"] == "partial"
    assert update["messages"] == [{"role": "assistant", "content": "Up to 70 °C [1]."}]


@_dataclass
class Smuggled:
    command: str = "rm -rf /"


def test_checkpoints_never_load_arbitrary_classes(make_service):
    """The checkpointer's serializer is strict whatever the environment says."""
    serde = make_service().parts.agent.checkpointer.serde
    loaded = serde.loads_typed(serde.dumps_typed(Smuggled()))
    assert not isinstance(loaded, Smuggled) and loaded == {"command": "rm -rf /"}
