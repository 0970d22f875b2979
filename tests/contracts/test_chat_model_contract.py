"""The ChatModel contract (``assistant/llm/base.py``): one suite, run over every implementation,
as haystack's ``DocumentStoreBaseTests`` is — the shipped fake, extractive mode, llama.cpp on a
tiny random-weight GGUF, and the OpenAI-compatible backend against its loopback server.

The text of a random-weight model is arbitrary: the assertions are about the shape of what comes
back (events, types, validation, errors), never about its content or its length. A test that an
implementation cannot be driven through skips for that implementation only, saying why.
"""

from __future__ import annotations

import threading
from typing import Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from assistant.llm.base import (CancelledError, ChatMessage, ChatModel, DeadlineExceededError, FakeChatModel,
                                GenerationOptions, InvalidDecisionError, ModelError, StreamEvent, Timings, Usage,
                                collect)
from assistant.llm.extractive import ExtractiveModel
from assistant.llm.settings import LLMSettings
from knowledge.embedding import FakeEmbedder

# With the tiny model's seed-0 weights, greedy decoding of this conversation runs to max_tokens
# (no end-of-generation token in 1500 tokens): the mid-stream cancellation has time to land.
MESSAGES = [ChatMessage("system", "You help greenhouse staff."),
            ChatMessage("user", "How warm should tomatoes be at night?")]
FINISH_REASONS = {"stop", "length", "stop_sequence"}


class Decision(BaseModel):
    kind: Literal["irrigate", "ventilate", "nothing"]
    zone: int = Field(ge=1, le=8)
    urgent: bool


class Unsatisfiable(BaseModel):
    """An easy JSON schema whose validator refuses every value: no output can satisfy it."""

    kind: Literal["irrigate", "ventilate"]

    @field_validator("kind")
    @classmethod
    def _never(cls, value: str) -> str:
        raise ValueError("no output can satisfy this schema")


def options(**kw) -> GenerationOptions:
    return GenerationOptions(**{"max_tokens": 16, "temperature": 0.0, **kw})


class ChatModelContract:
    """Subclass once per implementation with a ``model`` fixture. The class attributes name what
    the implementation cannot be driven to, and why; those tests then skip with that reason."""

    invalid_decision_unreachable: str | None = None
    no_cancellation: str | None = None

    def script(self, model: ChatModel, *replies: object) -> None:
        """What a real model would reply, for a scripted implementation; the others ignore it."""

    @staticmethod
    def generating(model: ChatModel) -> None:
        if model.mode != "llm":
            pytest.skip(f"mode {model.mode!r} generates nothing (test_extractive_mode_refuses_to_generate)")

    # -- every implementation ----------------------------------------------------------------------

    def test_is_a_chat_model_with_a_name_and_a_mode(self, model):
        assert isinstance(model, ChatModel)
        assert isinstance(model.name, str) and model.name
        assert model.mode in ("llm", "extractive")

    # -- mode "llm": streaming ---------------------------------------------------------------------

    def test_stream_yields_tokens_then_exactly_one_done_event(self, model):
        self.generating(model)
        self.script(model, "Keep the night temperature at 16 to 18 degrees.")
        events = list(model.stream(MESSAGES, options()))
        assert events and all(isinstance(e, StreamEvent) for e in events)
        *tokens, done = events
        assert all(e.kind == "token" and isinstance(e.text, str) and e.text for e in tokens)
        assert done.kind == "done" and done.finish_reason in FINISH_REASONS
        usage = done.usage
        assert isinstance(usage, Usage) and usage.prompt_tokens > 0 and usage.completion_tokens >= 0
        assert 0 <= usage.cached_prompt_tokens <= usage.prompt_tokens
        assert isinstance(done.timings, Timings) and done.timings.total_s >= 0

    def test_joined_text_is_a_str_and_default_options_work(self, model):
        self.generating(model)
        self.script(model, "The vents open above the set point.")
        text, done = collect(model.stream(MESSAGES))
        assert isinstance(text, str) and done.kind == "done" and done.finish_reason in FINISH_REASONS

    # -- mode "llm": decisions ---------------------------------------------------------------------

    def test_decide_returns_a_validated_instance_of_the_schema(self, model):
        self.generating(model)
        self.script(model, {"kind": "ventilate", "zone": 3, "urgent": False})
        decision = model.decide(MESSAGES, Decision, options(max_tokens=64))
        assert type(decision) is Decision
        assert Decision.model_validate(decision.model_dump()) == decision  # bounds hold: 1 <= zone <= 8

    def test_a_schema_no_output_satisfies_raises_invalid_decision(self, model):
        self.generating(model)
        if self.invalid_decision_unreachable:
            pytest.skip(self.invalid_decision_unreachable)
        self.script(model, {"kind": "irrigate"}, {"kind": "ventilate"})
        with pytest.raises(InvalidDecisionError):
            model.decide(MESSAGES, Unsatisfiable, options(max_tokens=64))

    # -- mode "llm": cancellation and deadlines ----------------------------------------------------

    def _cancellable(self, model: ChatModel) -> None:
        self.generating(model)
        if self.no_cancellation:
            pytest.skip(self.no_cancellation)

    def test_cancelled_before_the_start_raises_cancelled(self, model):
        self._cancellable(model)
        cancel = threading.Event()
        cancel.set()
        events: list[StreamEvent] = []
        with pytest.raises(CancelledError):
            events.extend(model.stream(MESSAGES, options(cancel=cancel)))
        assert all(e.kind == "token" for e in events)
        with pytest.raises(CancelledError):
            model.decide(MESSAGES, Decision, options(max_tokens=64, cancel=cancel))

    def test_a_passed_deadline_raises_deadline_exceeded(self, model):
        self._cancellable(model)
        events: list[StreamEvent] = []
        with pytest.raises(DeadlineExceededError):
            events.extend(model.stream(MESSAGES, options(deadline_s=1e-6)))
        assert all(e.kind == "token" for e in events)
        with pytest.raises(DeadlineExceededError):
            model.decide(MESSAGES, Decision, options(max_tokens=64, deadline_s=1e-6))

    def test_cancel_while_streaming_ends_the_stream_without_done(self, model):
        self._cancellable(model)
        cancel = threading.Event()
        events: list[StreamEvent] = []
        with pytest.raises(CancelledError):
            for event in model.stream(MESSAGES, options(max_tokens=1500, cancel=cancel)):
                events.append(event)
                cancel.set()
        assert events and all(e.kind == "token" for e in events)
        text, done = collect(model.stream(MESSAGES, options(max_tokens=4)))  # and the model still answers
        assert isinstance(text, str) and done.kind == "done"

    # -- mode "extractive" -------------------------------------------------------------------------

    def test_extractive_mode_refuses_to_generate(self, model):
        if model.mode != "extractive":
            pytest.skip("mode 'llm' generates (the tests above)")
        with pytest.raises(ModelError, match="no language model is loaded"):
            list(model.stream(MESSAGES, options()))
        with pytest.raises(ModelError, match="no language model is loaded"):
            model.decide(MESSAGES, Decision, options())


# -- the implementations ---------------------------------------------------------------------------


class TestFakeChatModel(ChatModelContract):
    no_cancellation = "FakeChatModel replays a script: it looks at neither cancel nor deadlines"

    @pytest.fixture
    def model(self):
        return FakeChatModel([])

    def script(self, model, *replies):
        model.add_replies(*replies)


class TestExtractiveModel(ChatModelContract):
    @pytest.fixture
    def model(self):
        return ExtractiveModel(FakeEmbedder(), reason="no model file is configured")


@pytest.fixture(scope="module")
def tiny_llamacpp(tmp_path_factory):
    from assistant.llm.gguf_synth import write_tiny_model
    from assistant.llm.llamacpp import LlamaCppChatModel

    path = write_tiny_model(tmp_path_factory.mktemp("contract-gguf") / "tiny.gguf")
    # one thread: a two-thread barrier on a shared 2-core box stalls whenever a neighbour runs
    settings = LLMSettings(max_tokens=16, queue_depth=2, deadline_s=30,
                           llamacpp={"n_ctx": 2048, "n_batch": 64, "threads": 1})
    model = LlamaCppChatModel(settings, path)
    yield model
    model.close()


@pytest.fixture(scope="module")
def loopback_openai():
    from assistant.llm.openai_compat import OpenAICompatChatModel
    from tests.assistant.llm.loopback import serve

    with serve() as server:
        settings = LLMSettings(backend="openai", max_tokens=16, deadline_s=30,
                               openai={"base_url": server.base_url, "model": "contract", "retries": 0})
        model = OpenAICompatChatModel(settings)
        yield model
        model.close()


class TestLlamaCppChatModel(ChatModelContract):
    @pytest.fixture
    def model(self, tiny_llamacpp):
        return tiny_llamacpp


class TestOpenAICompatChatModel(ChatModelContract):
    @pytest.fixture
    def model(self, loopback_openai):
        return loopback_openai
