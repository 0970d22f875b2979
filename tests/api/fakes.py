"""A fake language model for API, load and schema tests: it answers any number of questions
(unlike the scripted FakeChatModel) by quoting the first prose sentence of its sources with the marker,
so answers pass the grounding checks; ``token_delay_s`` makes generation take time."""

from __future__ import annotations

import re
import threading
import time
from typing import Literal

from assistant.llm.base import StreamEvent, Timings, Usage

_SOURCE = re.compile(r"^\[(\d+)\] «[^»]*»[^\n]*\n<<<\n(.*?)\n>>>", re.S | re.M)


def quote(prompt: str) -> str:
    """The first prose sentence (not a table row) of the first source that has one, with its marker."""
    for m in _SOURCE.finditer(prompt):
        for line in m.group(2).splitlines():
            if line.lstrip().startswith("|"):
                continue
            for sentence in re.split(r"(?<=[.!?。！？])\s+", line.strip()):
                if len(sentence.split()) >= 5 or len(sentence) >= 12 and not sentence.isascii():
                    return f"{sentence.strip()} [{m.group(1)}]"
    return NOTHING


NOTHING = "The sources do not say."


class EchoModel:
    mode: Literal["llm", "extractive"] = "llm"

    def __init__(self, token_delay_s: float = 0.0, name: str = "echo"):
        self.name = name
        self.token_delay_s = token_delay_s
        self.answers = 0
        self._lock = threading.Lock()

    def decide(self, messages, schema, options=None):
        if "question" in schema.model_fields:
            return schema.model_validate({"question": messages[-1].content[-600:].strip() or "question"})
        if "answerable" in schema.model_fields:  # the judge: sources with a quotable sentence answer
            return schema.model_validate({"answerable": quote(messages[-1].content) != NOTHING})
        return schema.model_validate({"calls": [], "search": ""})

    def stream(self, messages, options=None):
        with self._lock:
            self.answers += 1
        start = time.perf_counter()
        text = quote(messages[-1].content)
        words = text.split(" ")
        for i, w in enumerate(words):
            if options is not None and options.cancel is not None and options.cancel.is_set():
                break
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            yield StreamEvent("token", w if i == 0 else " " + w)
        yield StreamEvent("done", usage=Usage(completion_tokens=len(words)),
                          timings=Timings(total_s=time.perf_counter() - start), finish_reason="stop")


class PrefillModel(EchoModel):
    """EchoModel on a real InferenceQueue, slow the way llama.cpp on a small CPU is: every call first
    'prefills' for ``prefill_s``, blocked as native code is — only the job's stop hook (what the
    llama.cpp abort callback is wired to) ends it early — then streams, checking between tokens.
    ``aborted`` counts the prefills stopped early."""

    def __init__(self, prefill_s: float = 5.0, token_delay_s: float = 0.05, depth: int = 8, name: str = "prefill",
                 honour_stop: bool = True):
        from assistant.llm.queue import InferenceQueue

        super().__init__(token_delay_s, name=name)
        self.prefill_s = prefill_s
        self.queue = InferenceQueue(depth, name="fake-llm")
        self.aborted = 0
        self.calls = 0
        self.honour_stop = honour_stop  # False: a step nothing interrupts (a retrieval under load)

    def _prefill(self, ctx) -> None:
        stop = threading.Event()
        if self.honour_stop:
            ctx.on_stop(stop.set)
        with self._lock:
            self.calls += 1
        if stop.wait(self.prefill_s):
            with self._lock:
                self.aborted += 1
            ctx.check()

    @staticmethod
    def _limits(options) -> dict:
        return {"deadline_s": getattr(options, "deadline_s", None), "cancel": getattr(options, "cancel", None)}

    def decide(self, messages, schema, options=None):
        def job(ctx):
            self._prefill(ctx)
            return EchoModel.decide(self, messages, schema)
        return self.queue.run(job, **self._limits(options))

    def stream(self, messages, options=None):
        def job(ctx):
            self._prefill(ctx)
            for ev in EchoModel.stream(self, messages, options):
                ctx.check()
                ctx.emit(ev)
        return iter(self.queue.submit(job, **self._limits(options)))

    def close(self) -> None:
        self.queue.close()
