"""The turn service: questions and approvals, for every face (chat page, REST API, /v1, CLI).

``Turns.ask`` validates a question and admits it now — errors raise before any event — and
returns the turn's events (status, tool calls, tokens, sources, checks, an approval request,
then ``done`` with the Answer, or ``error``); ``resume`` continues a turn paused for approval.
Every turn and decision is written to the audit log; observers see every finished turn.

Admission is bounded: at most ``llm.queue_depth`` turns run or wait at once, shared by every
face; one more is refused at once with ``ModelBusyError`` (HTTP 429 with Retry-After).

A turn whose caller went away (its ``cancel`` event set, or its events closed early) stops at its
next model call, token or prompt batch — it does not fall back to the extract — and gives its slot
back; then it is audited with status ``cancelled``, when the cancel was seen and how many seconds
the slot took to free.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from assistant.audit import AuditLog
from assistant.errors import USER_ERRORS, OnsiteError, ValidationError, http_status, user_message
from assistant.graph import AgentGraph
from assistant.llm.base import CancelledError, ModelBusyError
from assistant.nodes import answer_of, new_turn
from assistant.types import CONVERSATION_ID, Answer, Decision, Event, Scope

log = logging.getLogger(__name__)


class CancelEvent(threading.Event):
    """A turn's cancel event that remembers when it was first set (epoch seconds) and runs hooks
    then: the turn gives its slot back at once, not when its running step ends (a retrieval step
    of a loaded server takes seconds and cannot be interrupted). A plain ``threading.Event`` works
    too: then the slot is free when the turn sees the cancel, and that time counts as the cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.set_at: float | None = None
        self._hooks: list[Callable[[], None]] = []
        self._hook_lock = threading.Lock()

    def on_set(self, fn: Callable[[], None]) -> None:
        with self._hook_lock:
            if self.set_at is None:
                self._hooks.append(fn)
                return
        fn()

    def set(self) -> None:
        with self._hook_lock:
            first = self.set_at is None
            if first:
                self.set_at = time.time()
            hooks, self._hooks = self._hooks, []
        super().set()
        for fn in hooks:
            try:
                fn()
            except Exception:  # noqa: BLE001 - whoever cancels must not fail because of a hook
                log.exception("cancel hook failed")


class _Outcome:
    """How a turn ended, for its slot and its audit row: finished, or cancelled (when seen, when
    its slot was free). Set from the turn's thread and from whoever cancels it."""

    __slots__ = ("thread_id", "user", "kind", "question", "scope", "cancel", "seen_at", "finished", "released_at",
                 "lock")

    def __init__(self, thread_id: str, user: str, kind: str, question: str = "", scope: dict | None = None,
                 cancel: threading.Event | None = None):
        self.thread_id, self.user, self.kind = thread_id, user, kind
        self.question, self.scope, self.cancel = question, scope or {}, cancel
        self.seen_at: float | None = None  # epoch seconds the cancel was seen; None = not cancelled
        self.finished = False
        self.released_at: float | None = None
        self.lock = threading.Lock()

    def cancelled(self) -> bool:
        """Mark it cancelled unless it finished first; True when it is cancelled."""
        with self.lock:
            if self.seen_at is None and not self.finished:
                self.seen_at = time.time()
            return self.seen_at is not None

    def finish(self) -> bool:
        """Mark it finished unless it was cancelled first; True when it is finished."""
        with self.lock:
            self.finished = self.seen_at is None
            return self.finished


class QuestionTooLongError(ValidationError):
    http_status = 422
    error_kind = "question_too_long"


class Turns:
    """Runs the agent's turns. ``check_photo(image_id)`` raises for an unknown upload id."""

    def __init__(self, agent: AgentGraph, audit: AuditLog, *, max_question_chars: int, max_answer_tokens: int,
                 deadline_s: float, queue_depth: int, default_mode: str,
                 check_photo: Callable[[str], Any] = lambda image_id: None):
        self.agent = agent
        self.audit = audit
        self.max_question_chars = max_question_chars
        self.max_answer_tokens = max_answer_tokens
        self.deadline_s = deadline_s
        self.queue_depth = queue_depth
        self.default_mode = default_mode
        self.check_photo = check_photo
        self._slots = threading.BoundedSemaphore(queue_depth)
        self._in_flight = 0
        self._count_lock = threading.Lock()
        # Called with (answer dict, streamed token count) after every turn, whichever face asked
        # (the server counts abstentions and generation speed for /metrics with it).
        self.observers: list[Callable[[dict, int], None]] = []

    # ---- turns ---------------------------------------------------------------------------------
    def ask(self, question: str, *, thread_id: str | None = None, scope: dict | Scope | None = None,
            photos: list[str] | tuple[str, ...] = (), user: str = "local", filters: dict | None = None,
            cancel: threading.Event | None = None, max_tokens: int | None = None) -> Iterator[Event]:
        question = (question or "").strip()
        if not question:
            raise ValidationError("the question is empty")
        if len(question) > self.max_question_chars:
            raise QuestionTooLongError(f"the question is longer than {self.max_question_chars} characters; "
                                       "shorten it")
        if max_tokens is not None and not 1 <= max_tokens <= self.max_answer_tokens:
            raise ValidationError(f"max_tokens must be between 1 and {self.max_answer_tokens}")
        thread_id = self.conversation_id(thread_id)
        for p in photos:
            self.check_photo(p)  # unknown or malformed upload id → a clear error now
        scope_d = (scope if isinstance(scope, Scope) else Scope.from_dict(scope)).to_dict()
        self._admit()
        try:
            if self.pending(thread_id):  # a new question supersedes an undecided proposal
                decline = Decision(False, user, "superseded by a new question")
                for _ in self._run(thread_id, user, "resume", decision=decline):
                    pass
            turn = new_turn(question, thread_id=thread_id, scope=scope_d, photos=list(photos), user=user,
                            deadline_s=self.deadline_s, filters=filters,
                            max_tokens=max_tokens or self.max_answer_tokens)
        except BaseException:
            self._release()
            raise
        cancel = cancel if cancel is not None else CancelEvent()  # closing the events early stops the model too
        outcome = _Outcome(thread_id, user, "ask", question, scope_d, cancel)
        if isinstance(cancel, CancelEvent):
            cancel.on_set(lambda: self._abandon(outcome))
        return _Turn(self._run(thread_id, user, "ask", turn=turn, cancel=cancel, outcome=outcome),
                     lambda: self._end(outcome))

    def resume(self, thread_id: str, decision: Decision, user: str = "local") -> Iterator[Event]:
        thread_id = self.conversation_id(thread_id)
        if not self.pending(thread_id):
            raise ValidationError(f"conversation {thread_id} has nothing waiting for approval")
        self._admit()
        outcome = _Outcome(thread_id, user, "resume")
        return _Turn(self._run(thread_id, user, "resume", decision=decision, outcome=outcome),
                     lambda: self._end(outcome))

    def answer(self, question: str, **kw: Any) -> Answer:
        answer: Answer | None = None
        for ev in self.ask(question, **kw):
            if ev.type == "done":
                answer = Answer(**ev.data)
            elif ev.type == "error":
                raise OnsiteError(ev.data.get("message", "the turn failed"))
        if answer is None:
            raise OnsiteError("the turn ended without an answer")
        return answer

    def _run(self, thread_id: str, user: str, kind: str, *, turn: dict | None = None,
             decision: Decision | None = None, cancel: threading.Event | None = None,
             outcome: _Outcome | None = None) -> Iterator[Event]:
        outcome = outcome or _Outcome(thread_id, user, kind)
        if outcome.seen_at is not None:  # cancelled before it started
            return
        if cancel is not None:
            self.agent.deps.cancels[thread_id] = cancel
        tokens = 0
        # A local, not the for statement's hidden iterator: that one is dropped (and the graph's
        # stream closed, which waits for the running step) before an except clause runs.
        steps = self.agent.stream(thread_id, turn, decision.__dict__ if decision else None)
        try:
            for event_type, data in steps:
                tokens += event_type == "token"
                yield Event(event_type, data)
        except GeneratorExit:  # the caller closed the turn before its end: it went away
            outcome.cancelled()
            if cancel is not None:
                cancel.set()  # first: the running step's model call stops, then the stream closes
            steps.close()
            raise
        except CancelledError as exc:
            outcome.cancelled()
            log.info("turn %s cancelled: %s", thread_id, exc)
            yield Event("error", {"message": user_message(exc), "http_status": http_status(exc)})
            return
        except USER_ERRORS as exc:
            outcome.finish()  # failed, not cancelled: a cancel set after this is no news
            data = {"message": user_message(exc), "http_status": http_status(exc)}
            if isinstance(exc, ModelBusyError):
                data["retry_after_s"] = exc.retry_after_s
            log.warning("turn failed in %s: %s", thread_id, data["message"])
            yield Event("error", data)
            return
        finally:
            if self.agent.deps.cancels.get(thread_id) is cancel:  # not a newer turn's of this conversation
                self.agent.deps.cancels.pop(thread_id, None)
        if not outcome.finish():  # abandoned while its last step ran: audited as cancelled
            return
        values, pending = self.agent.state(thread_id)
        answer = answer_of(values, pending, thread_id, self.default_mode)
        self.audit.record(thread_id=thread_id, user=user, kind=kind, question=values.get("question", ""),
                          scope=values.get("scope") or {}, tool_results=answer.tool_results,
                          evidence_ids=[s["chunk_id"] for s in answer.sources if s.get("chunk_id")],
                          answer=answer.text, checks=answer.checks, status=answer.status, mode=answer.mode,
                          timings=answer.timings)
        done = answer.to_dict()
        for observe in self.observers:
            try:
                observe(done, tokens)
            except Exception:  # noqa: BLE001 - a broken observer must not break the turn
                log.exception("turn observer failed")
        yield Event("done", done)

    # ---- admission -----------------------------------------------------------------------------
    def _admit(self) -> None:
        if not self._slots.acquire(blocking=False):
            raise ModelBusyError("the assistant is busy with other questions; try again in a few seconds",
                                 retry_after_s=5.0)
        with self._count_lock:
            self._in_flight += 1

    def _release(self) -> None:
        with self._count_lock:
            self._in_flight -= 1
        self._slots.release()

    def _free(self, outcome: _Outcome) -> None:
        """Give the turn's slot back, once."""
        with outcome.lock:
            if outcome.released_at is not None:
                return
            outcome.released_at = time.time()
        self._release()

    def _abandon(self, outcome: _Outcome) -> None:
        """The cancel hook (the caller's thread, e.g. the event loop: no I/O here). The slot is
        free now; the turn's running step ends on its own (its model call at once) and the
        turn is audited then."""
        if outcome.cancelled():
            self._free(outcome)

    def _end(self, outcome: _Outcome) -> None:
        """The turn's events are done: give the slot back if it still holds it; audit a cancel."""
        self._free(outcome)
        if outcome.seen_at is None:
            return
        released_at = outcome.released_at or time.time()
        cancelled_at = getattr(outcome.cancel, "set_at", None) or outcome.seen_at
        try:
            values = self.agent.state(outcome.thread_id)[0]
            if values.get("question") and (outcome.kind == "resume" or not outcome.question):
                outcome.question = values["question"]
            self.audit.record_cancelled(
                thread_id=outcome.thread_id, user=outcome.user, kind=outcome.kind, question=outcome.question,
                scope=outcome.scope or values.get("scope") or {}, cancelled_at=cancelled_at,
                seen_s=max(0.0, outcome.seen_at - cancelled_at), release_s=max(0.0, released_at - cancelled_at),
                timings=values.get("timings") or {})
        except Exception:  # noqa: BLE001 - the slot is free already; a failed audit write is logged
            log.exception("could not audit the cancelled turn %s", outcome.thread_id)

    @property
    def turns_in_flight(self) -> int:
        """Turns admitted and not finished (running or waiting for the model)."""
        return self._in_flight

    # ---- conversations -------------------------------------------------------------------------
    @staticmethod
    def conversation_id(thread_id: str | None) -> str:
        """A new id, or ``thread_id`` when it is a valid one."""
        if thread_id is None:
            return uuid.uuid4().hex
        if not CONVERSATION_ID.match(thread_id):
            raise ValidationError("a conversation id is 1-64 letters, digits, '_', '-', '.' or ':'")
        return thread_id

    def pending(self, thread_id: str) -> list[dict]:
        """Actions of this conversation waiting for a person's decision."""
        return self.agent.state(thread_id)[1]

    def history(self, thread_id: str) -> list[dict]:
        return list(self.agent.state(self.conversation_id(thread_id))[0].get("messages") or [])

    def close(self) -> None:
        self.agent.close()
        self.audit.close()


class _Turn:
    """The events of one admitted turn; gives its admission slot back exactly once — at the
    end, on close(), or when dropped unstarted (a client that disconnects before reading)."""

    def __init__(self, events: Iterator[Event], release: Callable[[], None]):
        self._events, self._release = events, release

    def __iter__(self) -> "_Turn":
        return self

    def __next__(self) -> Event:
        try:
            return next(self._events)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            getattr(self._events, "close", lambda: None)()
            release()

    def __del__(self) -> None:
        self.close()
