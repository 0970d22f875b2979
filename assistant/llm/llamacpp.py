"""ChatModel over a GGUF file in-process (llama-cpp-python).

One ``Llama`` context serves one request at a time, behind an ``InferenceQueue``. The prompt is
rendered with the chat template stored in the GGUF, inside Jinja2's immutable sandbox (a model
file is code: CVE-2024-34359). Prompts should start with their fixed part (system prompt, tool
descriptions) byte-identical on every call: the tokens already in the context that match the new
prompt's prefix are kept, only the rest is computed, and ``Usage.cached_prompt_tokens`` says how
many were kept.

The generation loop is ``Llama.generate(..., reset=False)`` after our own prefix match and chunked
prefill (so a deadline or cancellation is noticed between prompt batches as well as between
tokens); per token it does a dict lookup, an incremental UTF-8 decode and one queue put.

A prompt batch takes seconds on a small CPU (512 tokens of a 1.5B model ≈ 3.7 s on 2 cores), so
"between batches" is not soon enough for a client that went away: llama.cpp's abort callback,
which ggml's CPU backend calls between the nodes of the compute graph, stops a batch within
milliseconds. The callback is C's ``strlen`` over a per-job flag byte — no Python, so no GIL to
take hundreds of times per token while the server's other threads run; the job's stop hook
(``JobContext.on_stop``, run when the caller abandons it) sets the byte.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ValidationError

from assistant.llm.base import (
    CancelledError, ChatMessage, DeadlineExceededError, GenerationOptions, InvalidDecisionError,
    ModelError, StreamEvent, T, Timings, Usage,
)
from assistant.llm.queue import InferenceQueue, JobContext
from assistant.llm.settings import LLMSettings

log = logging.getLogger(__name__)

# Used only when a GGUF carries no chat template (the model is then most likely not a chat model).
FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}
_INT_ENUM_LIMIT = 1000  # bounded integer ranges up to this size become an enum in the grammar


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, but a blocked attribute raises instead of rendering as empty."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"chat template accessed {type(obj).__name__}.{attribute}, which is not allowed")


class ChatTemplate:
    """A GGUF chat template compiled in the sandbox, with Transformers' usual globals."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = ""):
        env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False, **kw: json.dumps(
            x, indent=indent, ensure_ascii=ensure_ascii, **kw
        )
        env.globals["raise_exception"] = _raise_template_error
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.source = source
        self._vars = {"bos_token": bos_token, "eos_token": eos_token}
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ModelError(f"the model's chat template does not compile: {exc}") from exc

    def render(self, messages: list[ChatMessage], add_generation_prompt: bool = True) -> str:
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        try:
            return self._template.render(messages=msgs, add_generation_prompt=add_generation_prompt, **self._vars)
        except SecurityError as exc:
            raise ModelError(f"the model's chat template was stopped by the sandbox: {exc}") from exc
        except Exception as exc:  # TemplateError, TypeError, ... from an arbitrary template
            raise ModelError(f"the model's chat template failed: {exc}") from exc


def _raise_template_error(message: str) -> None:
    raise TemplateError(message)


_REPEAT_LIMIT = 64  # larger maxLength / maxItems are left to validation


def grammar_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema as llama-cpp-python's grammar converter should see it. Its converter
    ignores minimum/maximum, so small bounded integer ranges become an ``enum``; it unrolls
    maxLength / maxItems into repetitions, which for long strings exceeds its rule limits, so
    large bounds are dropped here (pydantic still enforces them on the parsed decision)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) for k, v in node.items()}
        if node.get("type") == "integer":
            lo = node.get("minimum", node.get("exclusiveMinimum", -math.inf) + 1)
            hi = node.get("maximum", node.get("exclusiveMaximum", math.inf) - 1)
            if math.isfinite(lo) and math.isfinite(hi) and 0 <= hi - lo < _INT_ENUM_LIMIT:
                return {"enum": list(range(math.ceil(lo), math.floor(hi) + 1))}
        if node.get("maxLength", 0) > _REPEAT_LIMIT:
            node.pop("maxLength")
        if node.get("maxItems", 0) > _REPEAT_LIMIT:
            node.pop("maxItems")
        return node

    return walk(schema)


def _stop_split(pending: str, stops: list[str]) -> tuple[str, str, bool]:
    """(text safe to emit, text held back, stop hit). Held back: the longest tail of ``pending``
    that could still become a stop sequence."""
    cut = -1
    for s in stops:
        i = pending.find(s)
        if i != -1 and (cut == -1 or i < cut):
            cut = i
    if cut != -1:
        return pending[:cut], "", True
    keep = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(pending)), keep, -1):
            if pending.endswith(s[:k]):
                keep = k
                break
    return pending[: len(pending) - keep], pending[len(pending) - keep:], False


def _abort_callback() -> Any:
    """``bool (*)(void *data)`` that is true once the byte at ``data`` is set: libc's ``strlen``
    (its result is 0 or 1 here). Where libc cannot be opened, a Python callback does the same."""
    import llama_cpp

    try:
        return ctypes.cast(ctypes.CDLL(None).strlen, llama_cpp.ggml_abort_callback)
    except (OSError, AttributeError, TypeError):  # e.g. Windows: no process-wide libc handle
        return llama_cpp.ggml_abort_callback(lambda data: bool(ctypes.string_at(data, 1) != b"\0"))


class LlamaCppChatModel:
    """A GGUF model in this process. ``ignore_eog`` (benchmarks only) keeps generating past
    end-of-generation tokens so that a random-weight model produces a fixed number of tokens."""

    mode = "llm"

    def __init__(self, settings: LLMSettings, model_path: Path | str, *, queue: InferenceQueue | None = None,
                 ignore_eog: bool = False):
        import llama_cpp
        import psutil

        self.settings = settings
        self.model_path = Path(model_path)
        self.name = self.model_path.stem
        self.threads = settings.llamacpp.threads or psutil.cpu_count(logical=False) or os.cpu_count() or 1
        self._ignore_eog = ignore_eog
        self._tok_info: dict[int, tuple[bytes, bool]] = {}  # token → (piece, is end-of-generation)
        self._grammars: dict[type, Any] = {}
        self._llm = self._load()
        self.n_ctx = self._llm.n_ctx()
        self._n_batch = self._llm.n_batch
        meta = self._llm.metadata
        bos, eos = self._llm.token_bos(), self._llm.token_eos()
        self._bos_text = self._token_text(bos)
        self._add_bos = bos >= 0 and bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        source = meta.get("tokenizer.chat_template")
        if not source:
            log.warning("%s has no chat template; using ChatML", self.model_path.name)
            source = FALLBACK_TEMPLATE
        try:
            self.template = ChatTemplate(source, bos_token=self._bos_text, eos_token=self._token_text(eos))
            # Fail at load, not at the first question, if the template cannot render.
            self.template.render([ChatMessage("system", "s"), ChatMessage("user", "u")])
        except ModelError:
            self._llm.close()
            raise
        self._abort_fn = _abort_callback()
        self._abort_flag: Any = None  # the running job's flag byte; referenced while llama.cpp may read it
        self._owns_queue = queue is None
        self._queue = queue or InferenceQueue(settings.queue_depth, name="llamacpp")
        self.last_done: StreamEvent | None = None  # usage / timings of the latest call (observability)

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> Any:
        if not self.model_path.is_file():
            raise ModelError(f"model file not found: {self.model_path}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
        s = self.settings.llamacpp
        try:
            return Llama(
                model_path=str(self.model_path), n_ctx=s.n_ctx, n_batch=s.n_batch, n_ubatch=min(s.n_batch, 512),
                n_threads=self.threads, n_threads_batch=self.threads, n_gpu_layers=0, verbose=False,
            )
        except Exception as exc:
            raise ModelError(f"could not load {self.model_path.name}: {exc}") from exc

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _info(self, token: int) -> tuple[bytes, bool]:
        import llama_cpp

        info = (self._llm.detokenize([token]), bool(llama_cpp.llama_vocab_is_eog(self._vocab, token)))
        self._tok_info[token] = info
        return info

    @property
    def _vocab(self) -> Any:
        import llama_cpp

        return llama_cpp.llama_model_get_vocab(self._llm.model)

    def close(self) -> None:
        """Free the context once the jobs ahead are done (on the worker: never under a running job)."""
        try:
            self._queue.run(lambda ctx: self._llm.close())
        except ModelError:  # queue shut down or full
            self._llm.close()
        if self._owns_queue:
            self._queue.close()

    # -- prompt -----------------------------------------------------------------------------------

    def render_prompt(self, messages: list[ChatMessage]) -> str:
        """The exact text the model sees (chat template applied, generation prompt added)."""
        return self.template.render(messages)

    def tokenize(self, text: str) -> list[int]:
        add_bos = self._add_bos and not text.startswith(self._bos_text)
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the context's tokens that equal the prompt's prefix (at least one prompt token is
        always recomputed: its logits start the generation). Returns how many were kept."""
        import llama_cpp

        llm = self._llm
        m = min(llm.n_tokens, len(tokens) - 1)
        if m <= 0:
            keep = 0
        else:
            diff = np.flatnonzero(llm.input_ids[:m] != np.asarray(tokens[:m], dtype=llm.input_ids.dtype))
            keep = int(diff[0]) if diff.size else m
        mem = llama_cpp.llama_get_memory(llm.ctx)
        if not llama_cpp.llama_memory_seq_rm(mem, 0, keep, -1):  # e.g. recurrent models
            llama_cpp.llama_memory_clear(mem, True)
            keep = 0
        llm.n_tokens = keep
        return keep

    # -- generation (runs on the queue's worker thread) ---------------------------------------------

    def _generate(self, ctx: JobContext, tokens: list[int], max_tokens: int, temperature: float,
                  stop: list[str], grammar: Any, emit: Any) -> tuple[str, StreamEvent]:
        llm = self._llm
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx:
            raise ModelError(f"the prompt is {n_prompt} tokens; the context holds {self.n_ctx}")
        max_tokens = min(max_tokens, self.n_ctx - n_prompt)
        t_start = time.perf_counter()
        self._arm_abort(ctx)
        cached = self._reuse_prefix(tokens)
        parts: list[str] = []
        try:
            rest, nb = tokens[cached:], self._n_batch
            while len(rest) > nb:  # prefill in batches, looking at deadline / cancel in between
                ctx.check()
                llm.eval(rest[:nb])
                rest = rest[nb:]
            ctx.check()
            gen = llm.generate(rest, reset=False, temp=temperature, grammar=grammar, **_SAMPLING)

            tok_info, info, ignore_eog = self._tok_info, self._info, self._ignore_eog
            decode = codecs.getincrementaldecoder("utf-8")("replace").decode
            out = parts.append if emit is None else (lambda t: emit(StreamEvent("token", t)))
            abandoned, cancel = ctx.abandoned.is_set, ctx.cancel.is_set if ctx.cancel else (lambda: False)
            deadline, now = ctx.deadline or math.inf, time.monotonic
            n, finish, pending, t_first = 0, "length", "", None
            for tok in gen:
                n += 1
                if t_first is None:
                    t_first = time.perf_counter()
                piece, eog = tok_info.get(tok) or info(tok)
                if eog and not ignore_eog:
                    finish = "stop"
                    break
                text = decode(piece)
                if text:
                    if stop:
                        text, pending, hit = _stop_split(pending + text, stop)
                        if text:
                            out(text)
                        if hit:
                            finish = "stop_sequence"
                            break
                    else:
                        out(text)
                if n >= max_tokens:
                    break
                if abandoned() or cancel() or now() >= deadline:
                    ctx.check()
            t_end = time.perf_counter()
            if finish != "stop_sequence":
                tail = pending + decode(b"", True)
                text, _, hit = _stop_split(tail, stop) if stop else (tail, "", False)
                if text:
                    out(text)
                finish = "stop_sequence" if hit else finish
        except (CancelledError, DeadlineExceededError):
            raise
        except Exception as exc:
            if ctx.stopped:  # llama_decode aborted by the callback: llama.cpp dropped that batch's cells
                ctx.check()
            llm.n_tokens = 0  # the context's content is uncertain: recompute everything next time
            raise ModelError(f"generation failed: {exc}") from exc

        t_first = t_first or t_end
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=n, cached_prompt_tokens=cached)
        timings = Timings(queue_s=ctx.queue_s, ttft_s=t_first - t_start, prefill_s=t_first - t_start,
                          decode_s=t_end - t_first, total_s=ctx.queue_s + (t_end - t_start))
        done = StreamEvent("done", usage=usage, timings=timings, finish_reason=finish)
        self.last_done = done
        if emit is not None:
            emit(done)
        return "".join(parts), done

    def _arm_abort(self, ctx: JobContext) -> None:
        """A fresh flag byte for this job: a late stop hook of an earlier job sets its own byte."""
        import llama_cpp

        flag = ctypes.create_string_buffer(2)
        self._abort_flag = flag
        llama_cpp.llama_set_abort_callback(self._llm.ctx, self._abort_fn, ctypes.cast(flag, ctypes.c_void_p))

        def stop() -> None:
            flag[0] = b"x"

        ctx.on_stop(stop)

    # -- ChatModel --------------------------------------------------------------------------------

    def _options(self, options: GenerationOptions | None) -> GenerationOptions:
        if options is None:
            return GenerationOptions(max_tokens=self.settings.max_tokens, temperature=self.settings.temperature)
        return options

    def stream(self, messages: list[ChatMessage], options: GenerationOptions | None = None) -> Iterator[StreamEvent]:
        """Submits at once (ModelBusyError is raised here, before any event) and returns the events."""
        o = self._options(options)
        tokens = self.tokenize(self.render_prompt(messages))
        handle = self._queue.submit(
            lambda ctx: self._generate(ctx, tokens, o.max_tokens, o.temperature, list(o.stop), None, ctx.emit),
            deadline_s=o.deadline_s or self.settings.deadline_s, cancel=o.cancel,
        )
        return iter(handle)

    def _grammar(self, schema: type[BaseModel]) -> Any:
        if schema not in self._grammars:
            from llama_cpp import LlamaGrammar

            spec = json.dumps(grammar_schema(schema.model_json_schema()))
            self._grammars[schema] = LlamaGrammar.from_json_schema(spec, verbose=False)
        return self._grammars[schema]

    def decide(self, messages: list[ChatMessage], schema: type[T], options: GenerationOptions | None = None) -> T:
        """Greedy decoding constrained by the schema's grammar; one retry stating the error."""
        o = self._options(options)
        deadline = time.monotonic() + (o.deadline_s or self.settings.deadline_s)
        grammar = self._grammar(schema)
        msgs, error = list(messages), ""
        for _ in range(2):
            tokens = self.tokenize(self.render_prompt(msgs))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError("deadline exceeded before the decision was valid")
            text, _done = self._queue.run(
                lambda ctx: self._generate(ctx, tokens, o.max_tokens, 0.0, [], grammar, None),
                deadline_s=remaining, cancel=o.cancel,
            )
            try:
                return schema.model_validate(json.loads(text, strict=False))
            except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
                error = str(exc).replace("\n", " ")[:300]
            msgs = [*messages, ChatMessage("assistant", text),
                    ChatMessage("user", f"That reply was not valid ({error}). Reply with one JSON object that "
                                        "matches the schema, nothing else.")]
        raise InvalidDecisionError(f"the model's decision was invalid twice: {error}")

