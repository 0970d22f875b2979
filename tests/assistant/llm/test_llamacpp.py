"""LlamaCppChatModel on a real llama.cpp context, with a tiny random-weight GGUF written by the tests."""

from __future__ import annotations

import enum
import threading
import time

import psutil
import pytest
from pydantic import BaseModel, Field, field_validator

from assistant.llm.base import (
    CancelledError, ChatMessage, ChatModel, DeadlineExceededError, GenerationOptions, InvalidDecisionError,
    ModelBusyError, ModelError, collect,
)
from assistant.llm.gguf_synth import write_tiny_model
from assistant.llm.llamacpp import LlamaCppChatModel, _stop_split, grammar_schema
from assistant.llm.queue import InferenceQueue
from tests.assistant.llm.conftest import with_llamacpp

SYSTEM = ChatMessage("system", "You are the greenhouse assistant. Answer from the evidence and cite it. " * 4)


def user(text: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", text)]


@pytest.fixture
def model(tiny_gguf, tiny_settings):
    m = LlamaCppChatModel(tiny_settings, tiny_gguf)
    yield m
    m.close()


def greedy(max_tokens: int = 40, **kw) -> GenerationOptions:
    return GenerationOptions(max_tokens=max_tokens, temperature=0.0, **kw)


# -- loading and the prompt ------------------------------------------------------------------------


def test_loads_as_a_chat_model(model, tiny_gguf, tiny_settings):
    assert isinstance(model, ChatModel)
    assert model.mode == "llm" and model.name == "tiny"
    assert model.n_ctx == tiny_settings.llamacpp.n_ctx
    default = LlamaCppChatModel(with_llamacpp(tiny_settings, threads=None), tiny_gguf)
    assert default.threads == psutil.cpu_count(logical=False)
    default.close()


def test_missing_file_is_a_model_error(tmp_path, tiny_settings):
    with pytest.raises(ModelError, match="not found"):
        LlamaCppChatModel(tiny_settings, tmp_path / "absent.gguf")


def test_prompt_is_the_gguf_chat_template_with_chatml_control_tokens(model):
    prompt = model.render_prompt(user("温室湿度多少? humidity?"))
    assert prompt == (
        f"<|im_start|>system\n{SYSTEM.content}<|im_end|>\n"
        "<|im_start|>user\n温室湿度多少? humidity?<|im_end|>\n<|im_start|>assistant\n"
    )
    tokens = model.tokenize(prompt)
    [im_start] = model.tokenize("<|im_start|>")  # one control token, not 12 characters
    assert tokens.count(im_start) == 3
    # byte-level vocabulary: Chinese survives the round trip
    assert model._llm.detokenize(model.tokenize("温室通风 ok")).decode() == "温室通风 ok"


def test_template_comes_from_the_gguf(tmp_path, tiny_settings):
    template = "{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}[ASSISTANT]"
    path = write_tiny_model(tmp_path / "custom.gguf", chat_template=template)
    m = LlamaCppChatModel(tiny_settings, path)
    assert m.render_prompt(user("hi")) == f"[SYSTEM] {SYSTEM.content}\n[USER] hi\n[ASSISTANT]"
    m.close()


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{% for m in messages %}{{ m.content }}{% endfor %}{{ self.__init__.__globals__ }}",
])
def test_hostile_chat_template_is_refused_by_the_sandbox(tmp_path, tiny_settings, template):
    marker = tmp_path / "pwned"
    path = write_tiny_model(tmp_path / "evil.gguf", chat_template=template.replace("MARKER", str(marker)))
    with pytest.raises(ModelError, match="chat template"):
        LlamaCppChatModel(tiny_settings, path)
    assert not marker.exists()


def test_template_failing_only_on_some_conversations_fails_the_call(tmp_path, tiny_settings):
    template = ("{% for m in messages %}{{ m.content }}{% endfor %}"
                "{% if messages | length > 2 %}{{ ''.__class__.__mro__ }}{% endif %}")
    m = LlamaCppChatModel(tiny_settings, write_tiny_model(tmp_path / "late.gguf", chat_template=template))
    with pytest.raises(ModelError, match="sandbox"):
        m.stream([*user("a"), ChatMessage("assistant", "b")], greedy())
    m.close()


# -- streaming -------------------------------------------------------------------------------------


def test_stream_yields_tokens_then_one_done_event(model):
    events = list(model.stream(user("How warm should tomatoes be at night?"), greedy(30)))
    assert [e.kind for e in events[:-1]] == ["token"] * (len(events) - 1) and len(events) > 1
    done = events[-1]
    assert done.kind == "done" and done.finish_reason in {"length", "stop"}
    prompt_tokens = len(model.tokenize(model.render_prompt(user("How warm should tomatoes be at night?"))))
    assert done.usage.prompt_tokens == prompt_tokens
    assert 0 < done.usage.completion_tokens <= 30
    t = done.timings
    assert t.ttft_s > 0 and t.prefill_s > 0 and t.decode_s >= 0 and t.total_s >= t.ttft_s
    assert all(e.text for e in events[:-1])


def test_greedy_output_is_reproducible_and_respects_max_tokens(model):
    a, done_a = collect(model.stream(user("x"), greedy(25)))
    b, done_b = collect(model.stream(user("x"), greedy(25)))
    assert a == b and done_a.usage.completion_tokens == done_b.usage.completion_tokens
    if done_a.finish_reason == "length":
        assert done_a.usage.completion_tokens == 25


def test_stop_sequence_ends_the_answer_before_it(model):
    full, _ = collect(model.stream(user("Describe the pump."), greedy(60)))
    assert len(full) > 12
    stop = full[8:11]
    expected = full[: full.find(stop)]
    events = list(model.stream(user("Describe the pump."), greedy(60, stop=["never-there", stop])))
    text = "".join(e.text for e in events if e.kind == "token")
    assert text == expected  # nothing of the stop sequence leaked, not even a prefix held back
    assert events[-1].finish_reason == "stop_sequence"


def test_stop_split_holds_back_a_possible_stop_prefix():
    assert _stop_split("abc<|en", ["<|end|>"]) == ("abc", "<|en", False)
    assert _stop_split("abc<|end|>rest", ["<|end|>"]) == ("abc", "", True)
    assert _stop_split("abc", ["xyz"]) == ("abc", "", False)
    assert _stop_split("aXb", ["b", "X"]) == ("a", "", True)  # the earliest stop wins


def test_prompt_longer_than_the_context_is_refused(model):
    with pytest.raises(ModelError, match="context"):
        collect(model.stream(user("word " * 3000), greedy()))


# -- KV cache prefix reuse -------------------------------------------------------------------------


def test_follow_up_reuses_the_system_prompt_kv_cache(model, tiny_gguf, tiny_settings):
    system_tokens = len(model.tokenize(model.template.render([SYSTEM], add_generation_prompt=False)))
    _, first = collect(model.stream(user("What is the humidity limit?"), greedy(10)))
    assert first.usage.cached_prompt_tokens == 0
    text, second = collect(model.stream(user("When do I replace the filter?"), greedy(10)))
    assert second.usage.cached_prompt_tokens >= system_tokens
    assert second.usage.prefill_tokens == second.usage.prompt_tokens - second.usage.cached_prompt_tokens
    # the reused cache is the right one: a fresh context produces the same greedy answer
    fresh = LlamaCppChatModel(tiny_settings, tiny_gguf)
    fresh_text, fresh_done = collect(fresh.stream(user("When do I replace the filter?"), greedy(10)))
    fresh.close()
    assert fresh_done.usage.cached_prompt_tokens == 0
    assert fresh_text == text


def test_decision_after_an_answer_also_reuses_the_prefix(model):
    collect(model.stream(user("first"), greedy(5)))
    model.decide(user("second"), Action)
    assert model.last_done.usage.cached_prompt_tokens > 0


# -- schema-constrained decisions -----------------------------------------------------------------


class Kind(str, enum.Enum):
    irrigate = "irrigate"
    ventilate = "ventilate"
    nothing = "nothing"


class Action(BaseModel):
    kind: Kind
    minutes: int = Field(ge=0, le=120)
    zone: int = Field(ge=1, le=8)


@pytest.mark.parametrize("question", ["It is hot in zone 3", "温室太潮湿了", "pump pressure low", "?", "x" * 50])
def test_decide_forces_valid_json_even_on_random_weights(model, question):
    decision = model.decide(user(question), Action)
    assert isinstance(decision, Action)
    assert isinstance(decision.kind, Kind) and 0 <= decision.minutes <= 120 and 1 <= decision.zone <= 8


def test_grammar_schema_turns_small_int_ranges_into_enums():
    spec = grammar_schema(Action.model_json_schema())
    assert spec["properties"]["zone"] == {"enum": [1, 2, 3, 4, 5, 6, 7, 8]}
    wide = grammar_schema({"type": "integer", "minimum": 0, "maximum": 10**9})
    assert wide == {"type": "integer", "minimum": 0, "maximum": 10**9}


def test_long_length_bounds_are_left_to_validation_so_the_grammar_compiles():
    # llama.cpp unrolls length bounds into repetitions; several 2000-character strings in one
    # union (the route decision) exceed its rule limits. The agent's route test compiles that one.
    import json

    from llama_cpp import LlamaGrammar

    class Order(BaseModel):
        problem: str = Field(..., min_length=5, max_length=2000)
        evidence: list[str] = Field(default_factory=list, max_length=10)
        code: str = Field("", max_length=8)

    spec = grammar_schema(Order.model_json_schema())
    assert "maxLength" not in spec["properties"]["problem"] and spec["properties"]["code"]["maxLength"] == 8
    assert LlamaGrammar.from_json_schema(json.dumps(spec), verbose=False) is not None


def test_invalid_decision_is_retried_once_then_refused(model):
    attempts = []

    class Picky(BaseModel):
        kind: Kind

        @field_validator("kind")
        @classmethod
        def never(cls, v):
            attempts.append(v)
            raise ValueError("not acceptable today")

    with pytest.raises(InvalidDecisionError, match="not acceptable today"):
        model.decide(user("choose"), Picky)
    assert len(attempts) == 2


# -- the shared queue: busy, deadline, cancellation -------------------------------------------------


def test_full_queue_refuses_and_waiting_request_is_served_later(tiny_gguf, tiny_settings):
    q = InferenceQueue(depth=1)
    m = LlamaCppChatModel(tiny_settings, tiny_gguf, queue=q)
    release, started = threading.Event(), threading.Event()
    q.submit(lambda ctx: (started.set(), release.wait(10)))  # someone else holds the model
    assert started.wait(5)
    waiting = m.stream(user("first in line"), greedy(5))
    with pytest.raises(ModelBusyError) as info:
        m.stream(user("one too many"), greedy(5))
    assert info.value.retry_after_s >= 1
    release.set()
    text, done = collect(waiting)
    assert done.usage.completion_tokens > 0 and done.timings.queue_s > 0
    m.close()


def test_deadline_stops_a_running_generation(tiny_gguf, tiny_settings):
    m = LlamaCppChatModel(with_llamacpp(tiny_settings, n_ctx=16384), tiny_gguf)
    tokens = []
    start = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        for ev in m.stream(user("go on"), GenerationOptions(max_tokens=16000, temperature=0.0, deadline_s=0.3)):
            tokens.append(ev)
    assert 0 < len(tokens) < 16000
    assert time.monotonic() - start < 3
    # the context is free and consistent afterwards
    _, done = collect(m.stream(user("go on"), greedy(5)))
    assert done.usage.completion_tokens > 0 and done.usage.cached_prompt_tokens > 0
    m.close()


def test_cancellation_stops_generation_at_the_next_token(model):
    cancel = threading.Event()
    got = []
    with pytest.raises(CancelledError):
        for ev in model.stream(user("talk"), GenerationOptions(max_tokens=1900, temperature=0.0, cancel=cancel)):
            got.append(ev)
            if len(got) == 3:
                cancel.set()
    assert 3 <= len(got) < 1900
    _, done = collect(model.stream(user("talk"), greedy(3)))
    assert done.usage.completion_tokens > 0


# -- real shapes (slow: writes a 0.5B-parameter model) ----------------------------------------------


@pytest.mark.slow
def test_shaped_model_has_the_real_shapes_and_runs_without_nan(tmp_path):
    import numpy as np
    from gguf import GGUFReader
    from llama_cpp import Llama

    from assistant.llm.gguf_synth import SHAPES, write_shaped_model

    s = SHAPES["qwen2.5-0.5b"]
    path = write_shaped_model(tmp_path / "q05.gguf", s)
    reader = GGUFReader(path)
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}  # ggml order: (cols, rows)
    assert shapes["token_embd.weight"] == (896, 151936) and shapes["output.weight"] == (896, 151936)
    assert shapes["blk.0.attn_q.weight"] == (896, 896) and shapes["blk.0.attn_k.weight"] == (896, 128)
    assert shapes["blk.23.ffn_up.weight"] == (896, 4864) and shapes["blk.23.ffn_down.weight"] == (4864, 896)
    assert "blk.24.attn_q.weight" not in shapes
    llm = Llama(str(path), n_ctx=256, n_threads=1, logits_all=True, verbose=False)
    assert llm.n_vocab() == 151936 and llm.metadata["qwen2.attention.head_count_kv"] == "2"
    tokens = llm.tokenize("<|im_start|>user\n温室 humidity?<|im_end|>".encode(), add_bos=False, special=True)
    assert tokens[0] == 151644  # Qwen's own id for <|im_start|>
    llm.eval(tokens)
    assert np.isfinite(llm.scores[: len(tokens)]).all()
    llm.close()


@pytest.mark.slow
def test_llm_bench_reports_reuse_and_ratio(tmp_path):
    from gguf import GGMLQuantizationType, GGUFReader

    from evals.bench_llm import run_llm_bench

    result = run_llm_bench("qwen2.5-0.5b", decode_tokens=8, repeats=1, cache_dir=tmp_path, threads=1,
                           progress=lambda _: None)
    assert set(result) >= {"shape", "quant", "prefill_tps", "decode_tps", "ttft_first_s", "ttft_followup_s",
                           "followup_prefill_tokens", "bare_decode_tps", "decode_ratio", "peak_rss_mb"}
    assert result["prompt_tokens"] > 1300
    assert result["followup_prefill_tokens"] < 60  # only the new question, not the shared prefix
    assert result["ttft_followup_s"] < result["ttft_first_s"]
    assert result["decode_ratio"] > 0.5 and result["peak_rss_mb"] > 300
    [model] = tmp_path.glob("*q4_k_m.gguf")
    kinds = {t.tensor_type for t in GGUFReader(model).tensors}
    assert GGMLQuantizationType.Q4_K in kinds and not list(tmp_path.glob("*f16.gguf"))
