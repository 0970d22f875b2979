"""The agent on a real llama.cpp model: the tiny random-weight GGUF the tests write. The route
decision is constrained by the tools' JSON-schema grammar for real; the random answer fails its
checks twice and the turn falls back to the labelled extract."""

from __future__ import annotations

from assistant.llm.llamacpp import LlamaCppChatModel
from assistant.settings import LLMSettings
from tests.assistant.llm.conftest import tiny_gguf  # noqa: F401 - fixture
from tests.assistant.test_agent import run


def test_constrained_route_and_checked_answer_on_a_real_gguf(make_service, tiny_gguf):  # noqa: F811
    model = LlamaCppChatModel(LLMSettings(llamacpp={"n_ctx": 4096, "n_batch": 64, "threads": 1}, deadline_s=60), tiny_gguf)
    svc = make_service(model, agent={"answer_max_tokens": 48}, simulate_hours=2)
    events, answer = run(svc.turns.ask("P-101 vibration trend today?"))
    assert not any(c["name"] == "route" and "rule-based" in c["detail"] for c in answer["checks"]), answer["checks"]
    assert events.get("token"), "the model streamed a draft"
    # random weights cannot cite: the draft fails, is regenerated once, then the extract answers
    assert answer["mode"] == "extractive" and any(c["name"] == "fallback" for c in answer["checks"])
    assert sum(1 for c in events["check"] if c.get("retry")) >= 2
