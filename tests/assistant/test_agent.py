"""The agent graph with a scripted model (FakeChatModel): routing, tool errors, approval pause
and resume, regeneration on a fabricated number, fallback to the extract, abstention,
follow-up rewriting, admission. Retrieval, tools and stores are the real ones."""

from __future__ import annotations

import numpy as np
import pytest

from assistant import prompts
from assistant.llm.base import FakeChatModel, InvalidDecisionError, ModelBusyError
from assistant.types import Decision

LIMIT_Q = "What bearing temperature is normal for pump P-101?"
NO_TOOLS = {"calls": [], "search": "P-101 bearing temperature normal"}


def run(events):
    """(events by type, the done Answer dict)."""
    by_type: dict[str, list] = {}
    for ev in events:
        by_type.setdefault(ev.type, []).append(ev.data)
    return by_type, by_type["done"][-1] if "done" in by_type else None


def manual_source(answer) -> int:
    return next(s["n"] for s in answer["sources"] if "70 °C" in s["text"])


def test_answer_streams_cites_and_passes_its_checks(make_service):
    svc = make_service()  # extractive service first, to learn the source number of the manual passage
    _, probe = run(svc.turns.ask(LIMIT_Q))
    n = manual_source(probe)
    reply = f"A bearing temperature up to 40 K above ambient and not above 70 °C is normal [{n}]."
    fake = FakeChatModel([reply])
    events, answer = run(make_service(fake).turns.ask(LIMIT_Q))
    assert "".join(e["text"] for e in events["token"]) == reply
    assert answer["text"] == reply and answer["status"] == "answered" and answer["mode"] == "llm"
    assert {c["name"]: c["ok"] for c in answer["checks"]} == {"content": True, "citations": True, "numbers": True, "safety": True, "status": True,
                                                                  "support": True}
    assert answer["cited"] == [n]
    answer_prompt = fake.calls[0][-1].content
    assert "<<<" in answer_prompt and "70 °C" in answer_prompt and "English" in answer_prompt


def test_fabricated_number_is_regenerated_once_with_the_failure_stated(make_service):
    _, probe = run(make_service().turns.ask(LIMIT_Q))
    n = manual_source(probe)
    fabricated = f"Bearings are fine up to 95 °C [{n}]."
    fixed = f"Up to 70 °C is normal [{n}]."
    fake = FakeChatModel([fabricated, fixed])
    events, answer = run(make_service(fake).turns.ask(LIMIT_Q))
    assert answer["text"] == fixed and answer["mode"] == "llm"
    assert any(c["name"] == "numbers" and not c["ok"] and c["retry"] for c in events["check"])
    regenerate = fake.calls[1]
    assert regenerate[-2].content == fabricated and "95 °C" in regenerate[-1].content
    assert all(c["ok"] for c in answer["checks"])


def test_two_failed_drafts_fall_back_to_the_labelled_extract(make_service):
    fake = FakeChatModel(["It is fine up to 95 °C [1].", "Still 95 °C [1]."])
    _, answer = run(make_service(fake).turns.ask(LIMIT_Q))
    assert answer["mode"] == "extractive" and "95 °C" not in answer["text"]
    assert prompts.FALLBACK_REASON["checks"] in answer["text"]  # the label says why
    assert any(c["name"] == "fallback" for c in answer["checks"]) and "70 °C" in answer["text"]


def test_out_of_knowledge_question_abstains_without_generating(make_service):
    fake = FakeChatModel([])
    _, answer = run(make_service(fake).turns.ask("What is the capital of France?"))
    assert answer["status"] == "abstained" and answer["text"].startswith(prompts.ABSTAIN["en"])
    assert "capital of France" in answer["text"]  # says what was searched
    assert fake.calls == []  # a knowledge question is routed by the rules, and nothing was generated


def test_chinese_question_abstains_in_chinese(make_service):
    _, answer = run(make_service().turns.ask("明天上海股市会涨吗？"))
    assert answer["status"] == "abstained" and answer["text"].startswith(prompts.ABSTAIN["zh"])


def test_rules_route_what_they_can_and_the_model_is_not_asked(make_service):
    fake = FakeChatModel(["Check the vibration trend [1]."])
    svc = make_service(fake, simulate_hours=6)
    events, answer = run(svc.turns.ask("P-101 vibration trend today?"))
    assert [r["tool"] for r in answer["tool_results"]] == ["sensor_history"]
    assert events["tool"][0]["phase"] == "started"
    assert len(fake.calls) == 1 and "Sources:" in fake.calls[0][-1].content  # the answer was the only call


def test_invalid_route_decision_falls_back_to_the_rule_router(make_service):
    # live words but no place the site profile names: the rules cannot decide, the model is asked
    fake = FakeChatModel([InvalidDecisionError("bad json twice"), "Check the vent settings [1]."])
    _, answer = run(make_service(fake, simulate_hours=6).turns.ask("Is everything fine in the tomato house right now?"))
    assert any(c["name"] == "route" and "rule-based router" in c["detail"] for c in answer["checks"])
    assert answer["tool_results"] == []


def test_model_route_gets_its_time_window_from_the_question_and_the_clock(make_service):
    invented = {"calls": [{"tool": "site_check", "args": {"hours": 1, "end": "2023-04-01T12:00:00Z"}}], "search": "x"}
    fake = FakeChatModel([invented, "See the check [1]."])
    _, answer = run(make_service(fake, simulate_hours=12).turns.ask("Anything unusual at the moment in the last 6 hours?"))
    check = answer["tool_results"][0]
    assert check["tool"] == "site_check" and check["args"]["hours"] == 6 and check["args"].get("end") is None
    assert "no readings" not in check["summary"] and check["data"]["sensors_checked"] > 0


def noise(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((96, 96, 3)) * 255).astype(np.uint8)


def test_photo_without_a_product_is_rejected_with_the_reason(make_service):
    fake = FakeChatModel(["See the result [1]."])
    svc = make_service(fake)
    photo = svc.parts.uploads.save_array(noise(0), "tray.png")
    _, answer = run(svc.turns.ask("Is this seed tray ok?", photos=[photo]))
    # the model forgot the photo: the agent adds the inspection, but no product is set up
    route = [c for c in answer["checks"] if c["name"] == "route"]
    assert route and "say which product" in route[0]["detail"]
    assert answer["status"] == "abstained"
    assert "The photo was not checked: no product has been learned yet" in answer["text"]  # the person learns why


def test_failing_tool_is_reported_and_the_turn_is_partial(make_service):
    fake = FakeChatModel(["See the inspection result [1]."])
    svc = make_service(fake)
    svc.parts.products.fit("tray", [noise(i) for i in range(1, 5)])
    photo = svc.parts.uploads.save_array(noise(9), "tray.png")
    svc.parts.uploads.path(photo).write_bytes(b"\x89PNG\r\n\x1a\n broken on disk")  # the file was damaged after upload
    _, answer = run(svc.turns.ask("Is this tray ok?", photos=[photo]))
    failed = [r for r in answer["tool_results"] if r["tool"] == "inspect_image"]
    assert failed and not failed[0]["ok"] and failed[0]["error"]
    assert answer["status"] == "partial" and answer["text"]  # the turn still answers


def test_unknown_photo_id_is_refused_before_the_turn_starts(make_service):
    from tools.errors import NotFoundError

    with pytest.raises(NotFoundError, match="upload"):
        make_service().turns.ask("look", photos=["f" * 32])


def test_work_order_waits_for_approval_and_is_written_only_after_it(make_service):
    fake = FakeChatModel(["Check alignment and the baseplate bolts [1]."])
    svc = make_service(fake, simulate_hours=24, faults=["bearing_wear"])
    events, answer = run(svc.turns.ask("P-101 vibration is rising", thread_id="wo-1", user="op-zhang"))
    assert events["approval"][0]["pending"][0]["tool"] == "create_work_order"
    assert answer["pending"] and svc.parts.work_order_store.list() == []  # nothing written yet
    pending_args = svc.turns.pending("wo-1")[0]["args"]
    assert any(line.startswith("sensor_history") for line in pending_args["evidence"])

    _, resumed = run(svc.turns.resume("wo-1", Decision(True, "supervisor-li", "go ahead"), user="supervisor-li"))
    orders = svc.parts.work_order_store.list()
    assert len(orders) == 1 and orders[0].status == "pending" and orders[0].priority == "medium"
    assert orders[0].requested_by == "supervisor-li (via assistant)"
    made = [r for r in resumed["tool_results"] if r["tool"] == "create_work_order"][0]
    assert made["ok"] and made["approval"]["approved"] and resumed["pending"] == []
    kinds = [t["kind"] for t in svc.parts.audit.turns("wo-1")]
    assert kinds == ["resume", "ask"]


def test_rejected_proposal_writes_nothing(make_service):
    fake = FakeChatModel(["Check alignment [1]."])
    svc = make_service(fake, simulate_hours=6)
    run(svc.turns.ask("P-101 vibration is rising", thread_id="wo-2"))
    _, resumed = run(svc.turns.resume("wo-2", Decision(False, "supervisor-li", "already being handled")))
    assert svc.parts.work_order_store.list() == []
    made = [r for r in resumed["tool_results"] if r["tool"] == "create_work_order"][0]
    assert not made["ok"] and "already being handled" in made["summary"]
    with pytest.raises(Exception, match="nothing waiting"):
        svc.turns.resume("wo-2", Decision(True, "x"))


def test_a_new_question_supersedes_an_undecided_proposal(make_service):
    fake = FakeChatModel(["Check alignment [1].", {"question": "How do I lock out P-101?"}, "Lock out first [1]."])
    svc = make_service(fake, simulate_hours=6)
    run(svc.turns.ask("P-101 vibration is rising", thread_id="wo-3"))
    run(svc.turns.ask("How do I lock out P-101?", thread_id="wo-3"))
    assert svc.parts.work_order_store.list() == [] and svc.turns.pending("wo-3") == []


def test_follow_up_is_rewritten_from_the_conversation(make_service):
    standalone = "What night temperature does tomato need at flowering in GH-2?"
    fake = FakeChatModel(["Up to 70 °C [1].", {"question": standalone}, "See the table [1]."])
    svc = make_service(fake, agent={"rewrite_follow_ups": True})
    run(svc.turns.ask(LIMIT_Q, thread_id="t-1"))
    _, second = run(svc.turns.ask("and for tomatoes at night?", thread_id="t-1"))
    assert LIMIT_Q in fake.calls[1][-1].content  # the rewrite saw the conversation
    assert second["searched"].startswith(standalone)
    assert [m["role"] for m in svc.turns.history("t-1")] == ["user", "assistant", "user", "assistant"]


def test_admission_is_bounded_and_released(make_service):
    svc = make_service(llm={"queue_depth": 1})
    first = svc.turns.ask("How do I lock out the pump?")
    with pytest.raises(ModelBusyError):
        svc.turns.ask("Another question?")
    run(first)
    _, answer = run(svc.turns.ask("How do I lock out the pump?"))
    assert answer["status"] == "answered"


def test_a_turn_past_its_deadline_ends_with_a_clear_error(make_service):
    fake = FakeChatModel(["never streamed"])
    svc = make_service(fake, agent={"deadline_s": 1e-6})
    events, answer = run(svc.turns.ask(LIMIT_Q))
    assert answer is None and events["error"][0]["http_status"] == 504
    assert "deadline" in events["error"][0]["message"]
    _, later = run(make_service().turns.ask(LIMIT_Q))  # the service keeps answering
    assert later["status"] in ("answered", "abstained")


class RecordingModel(FakeChatModel):
    """The scripted fake, also keeping the generation options each stream was given."""

    def __init__(self, replies):
        super().__init__(replies)
        self.options = []

    def stream(self, messages, options=None):
        self.options.append(options)
        return super().stream(messages, options)


def test_a_caller_may_shorten_the_answer_but_not_past_the_server_limit(make_service):
    from assistant.errors import ValidationError

    fake = RecordingModel([NO_TOOLS, "Up to 70 °C is normal [1]."])
    svc = make_service(fake)
    run(svc.turns.ask(LIMIT_Q, max_tokens=32))
    assert fake.options[0].max_tokens == 32
    with pytest.raises(ValidationError, match="max_tokens"):
        svc.turns.ask(LIMIT_Q, max_tokens=10**6)


def test_an_unsure_score_is_settled_by_the_model_on_the_answer_prompt_prefix(make_service):
    question = "How do I lock out the pump?"
    no = FakeChatModel([{"answerable": False}])
    _, refused = run(make_service(no, agent={"judge_band": (0.0, 1.0)}).turns.ask(question))
    assert refused["status"] == "abstained" and "no answer in the sources" in refused["answerability"]["reason"]
    assert len(no.calls) == 1  # judged, nothing generated

    yes = FakeChatModel([{"answerable": True}, "Isolate, lock and tag every energy source [1]."])
    _, answered = run(make_service(yes, agent={"judge_band": (0.0, 1.0)}).turns.ask(question))
    assert answered["status"] == "answered" and answered["answerability"]["judge"] == "model"
    judged, written = yes.calls[0][-1].content, yes.calls[1][-1].content
    shared = judged[: judged.index("Do the sources above")]
    assert shared.startswith("Sources:") and written.startswith(shared)  # the answer reuses the judge's tokens


def test_a_sure_score_is_not_judged(make_service):
    fake = FakeChatModel([])
    _, answer = run(make_service(fake, agent={"judge_band": (0.99, 1.0)}).turns.ask("What is the capital of France?"))
    assert answer["status"] == "abstained" and fake.calls == []


def test_a_follow_up_continues_what_the_model_has_read_and_earlier_sources_stay_citable(make_service):
    question = "How often should the pump bearings be lubricated?"
    fake = FakeChatModel(["Every 3 months or every 2,000 operating hours [1].", "Because grease ages [1]."])
    svc = make_service(fake)
    _, first = run(svc.turns.ask(question, thread_id="f-1"))
    _, second = run(svc.turns.ask("Why is that?", thread_id="f-1"))
    first_prompt = fake.calls[0][-1].content
    system, user1, answer1, user2 = fake.calls[1]
    assert (user1.role, user1.content) == ("user", first_prompt)  # byte for byte: its tokens are cached
    assert (answer1.role, answer1.content) == ("assistant", "Every 3 months or every 2,000 operating hours [1].")
    shown_before = len(first["sources"])
    assert f"Sources [1] to [{shown_before}] above still apply." in user2.content
    assert "<<<" not in user2.content or all(f"[{n}] «" not in user2.content for n in range(1, shown_before + 1))
    assert second["searched"].startswith(question)  # a short follow-up is searched with the question before it
    assert second["status"] == "answered" and second["mode"] == "llm" and second["cited"] == [1]
    assert [s["n"] for s in second["sources"]][:shown_before] == list(range(1, shown_before + 1))
    assert all(c["ok"] for c in second["checks"] if c["name"] in ("citations", "numbers"))
