"""The ChatModel protocol every language-model backend implements, its result types, and the
shipped fake for tests.

A backend does two things: stream an answer (tokens as they come, then one final event with
usage and timings), or take a decision constrained to a JSON schema and return it parsed and
validated (one retry on invalid output, then ``InvalidDecisionError``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from assistant.errors import OnsiteError

Role = Literal["system", "user", "assistant"]
T = TypeVar("T", bound=BaseModel)


class ModelError(OnsiteError):
    """The model failed to load or to generate."""

    http_status = 503


class ModelBusyError(ModelError):
    """The inference queue is full: try again shortly (HTTP 429 with Retry-After)."""

    http_status = 429

    def __init__(self, message: str, retry_after_s: float = 5.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceededError(ModelError):
    """The request's deadline passed while waiting or generating."""

    http_status = 504


class CancelledError(ModelError):
    """The caller went away; generation stopped."""

    http_status = 499


class InvalidDecisionError(ModelError):
    """The model's constrained output did not validate, twice."""

    http_status = 502


@dataclass
class ChatMessage:
    role: Role
    content: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens whose KV cache was reused, not recomputed

    @property
    def prefill_tokens(self) -> int:
        """Prompt tokens actually computed on this call."""
        return self.prompt_tokens - self.cached_prompt_tokens


@dataclass
class Timings:
    queue_s: float = 0.0  # waiting for the model
    ttft_s: float = 0.0  # from start of generation to the first token
    prefill_s: float = 0.0
    decode_s: float = 0.0
    total_s: float = 0.0

    def rates(self, usage: Usage) -> dict[str, float]:
        return {
            "prefill_tps": usage.prefill_tokens / self.prefill_s if self.prefill_s else 0.0,
            "decode_tps": usage.completion_tokens / self.decode_s if self.decode_s else 0.0,
        }


@dataclass
class StreamEvent:
    """``token``: ``text`` is the next piece. ``done``: the last event, with usage, timings and
    the finish reason ("stop", "length", "stop_sequence")."""

    kind: Literal["token", "done"]
    text: str = ""
    usage: Usage | None = None
    timings: Timings | None = None
    finish_reason: str | None = None


@dataclass
class GenerationOptions:
    max_tokens: int = 512
    temperature: float = 0.2
    stop: list[str] = field(default_factory=list)
    deadline_s: float | None = None  # seconds from the call; None = the backend's default
    cancel: threading.Event | None = None  # set it when the client goes away


@runtime_checkable
class ChatModel(Protocol):
    name: str
    mode: Literal["llm", "extractive"]

    def stream(self, messages: list[ChatMessage], options: GenerationOptions | None = None) -> Iterator[StreamEvent]:
        """Tokens as they are generated, then one ``done`` event."""

    def decide(self, messages: list[ChatMessage], schema: type[T], options: GenerationOptions | None = None) -> T:
        """A decision constrained to ``schema``'s JSON schema, parsed and validated."""


def collect(events: Iterator[StreamEvent]) -> tuple[str, StreamEvent]:
    """Join a stream into (text, done event)."""
    parts: list[str] = []
    done = StreamEvent("done")
    for ev in events:
        if ev.kind == "token":
            parts.append(ev.text)
        else:
            done = ev
    return "".join(parts), done


class FakeChatModel:
    """Scripted replies, for tests of code that uses a ChatModel. ``replies`` are consumed in
    order: a string is streamed word by word; a dict / BaseModel / JSON string answers ``decide``
    (one that does not validate raises InvalidDecisionError, without a retry); an exception
    instance is raised. Every call's messages are recorded in ``calls``. It ignores cancellation
    and deadlines."""

    mode: Literal["llm", "extractive"] = "llm"

    def __init__(self, replies: list[object], name: str = "fake-chat"):
        self.name = name
        self._replies = list(replies)
        self.calls: list[list[ChatMessage]] = []

    def add_replies(self, *replies: object) -> None:
        """Script more replies, after the ones still waiting."""
        self._replies.extend(replies)

    def _next(self, messages: list[ChatMessage]) -> object:
        self.calls.append(list(messages))
        if not self._replies:
            raise ModelError("FakeChatModel has no scripted reply left")
        reply = self._replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def stream(self, messages, options=None):
        reply = self._next(messages)
        text = reply if isinstance(reply, str) else str(reply)
        start = time.perf_counter()
        words = text.split(" ")
        for i, w in enumerate(words):
            yield StreamEvent("token", w if i == 0 else " " + w)
        usage = Usage(prompt_tokens=sum(len(m.content.split()) for m in messages), completion_tokens=len(words))
        yield StreamEvent("done", usage=usage, timings=Timings(total_s=time.perf_counter() - start), finish_reason="stop")

    def decide(self, messages, schema, options=None):
        reply = self._next(messages)
        if isinstance(reply, BaseModel):
            reply = reply.model_dump()
        try:
            if isinstance(reply, str):
                return schema.model_validate_json(reply)
            return schema.model_validate(reply)
        except ValidationError as exc:  # as a real backend reports output that does not validate
            raise InvalidDecisionError(f"the scripted {schema.__name__} decision is invalid: {exc}") from exc
