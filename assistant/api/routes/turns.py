"""Running one assistant turn for an HTTP request (shared by /api/v1/chat* and /v1/chat/completions).

``start_turn`` validates and admits the question (``TurnService.ask``; a full queue raises
``ModelBusyError`` → 429 + Retry-After before any byte of the response is sent). ``turn_events``
then runs the turn's blocking event iterator in a thread of its own and hands the events to the
event loop; when the consumer stops early (the client went away) it sets the turn's cancel event,
the thread stops at the next event and closes the iterator, which frees the admission slot.

Conversations are per principal: the public conversation id a client sees is stored as
``<owner>:<id>`` where ``<owner>`` is derived from the principal, so one client cannot read or
continue another's conversation by guessing its id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from pathlib import PurePath
from typing import Any, AsyncIterator, Iterator

from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request

from assistant.api.auth import Principal
from assistant.api.metrics import ApiMetrics, count_abstention, observe_tokens_per_s
from assistant.errors import OnsiteError
from assistant.services import TurnService
from assistant.turns import CancelEvent
from assistant.types import PUBLIC_CONVERSATION_ID_PATTERN, Event, owned_thread_id

log = logging.getLogger("onsite.api")

CONVERSATION_PATTERN = PUBLIC_CONVERSATION_ID_PATTERN
SNIPPET_CHARS = 300
_END = object()


_KINDS = {429: "model_busy", 499: "cancelled", 502: "model_failed", 503: "model_unavailable", 504: "deadline_exceeded"}


class TurnError(OnsiteError):
    """A turn that failed after admission (model error, deadline ...), with the turn's status."""

    def __init__(self, data: dict[str, Any]):
        super().__init__(str(data.get("message") or "the turn failed"))
        self.http_status = int(data.get("http_status") or 500)
        self.error_kind = _KINDS.get(self.http_status, "turn_failed")
        if data.get("retry_after_s") is not None:
            self.retry_after_s = float(data["retry_after_s"])


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


# --- conversation ids ---------------------------------------------------------------------------


def thread_for(principal: Principal, conversation_id: str | None) -> str:
    return owned_thread_id(principal.id, conversation_id or uuid.uuid4().hex)


def public_id(thread_id: str) -> str:
    return thread_id.split(":", 1)[1] if ":" in thread_id else thread_id


def display_name(principal: Principal) -> str:
    """Who did it, for work orders and decisions: 'name (id)', or the id when it says the name."""
    return f"{principal.name} ({principal.id})" if principal.name and principal.name not in principal.id else principal.id


# --- running ------------------------------------------------------------------------------------


async def start_turn(turns: TurnService, question: str, *, principal: Principal, conversation_id: str | None,
                     scope: dict | None = None, photos: list[str] | None = None,
                     max_tokens: int | None = None) -> tuple[Iterator[Event], threading.Event]:
    """Validate and admit; returns the turn's events (not started yet) and its cancel event."""
    cancel = CancelEvent()
    thread_id = thread_for(principal, conversation_id)
    events = await run_in_threadpool(lambda: turns.ask(
        question, thread_id=thread_id, scope=scope or None, photos=tuple(photos or ()), user=principal.id,
        cancel=cancel, max_tokens=max_tokens))
    return events, cancel


async def turn_events(events: Iterator[Event], cancel: threading.Event,
                      heartbeat_s: float | None = None) -> AsyncIterator[Event | None]:
    """The turn's events as they happen; ``None`` after ``heartbeat_s`` of silence."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down): nobody is listening
            cancel.set()

    def pump() -> None:
        try:
            for event in events:
                put(event)
                if cancel.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who decides
            put(_Failed(exc))
        finally:
            try:
                getattr(events, "close", lambda: None)()
            finally:
                put(_END)

    threading.Thread(target=pump, name="onsite-turn", daemon=True).start()
    try:
        while True:
            try:
                item = await (asyncio.wait_for(queue.get(), heartbeat_s) if heartbeat_s else queue.get())
            except asyncio.TimeoutError:
                yield None
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        cancel.set()  # a no-op after the end; stops the turn when the consumer left early


async def watch_disconnect(request: Request, cancel: threading.Event, every_s: float = 0.2) -> bool:
    """Set ``cancel`` when the client disconnects (for responses that are not streamed); True then."""
    while not cancel.is_set():
        if await request.is_disconnected():
            log.info("client left %s before the answer; cancelling the turn", request.url.path)
            cancel.set()
            return True
        await asyncio.sleep(every_s)
    return False


async def collect_answer(request: Request, events: Iterator[Event], cancel: threading.Event) -> dict[str, Any]:
    """Run a turn to its end and return the Answer dict (``TurnError`` if it failed)."""
    watcher = asyncio.create_task(watch_disconnect(request, cancel))
    answer: dict[str, Any] | None = None
    try:
        async for event in turn_events(events, cancel):
            if event is None:
                continue
            if event.type == "done":
                answer = event.data
            elif event.type == "error":
                raise TurnError(event.data)
    finally:
        watcher.cancel()
    if answer is None:
        gone = watcher.done() and not watcher.cancelled() and watcher.result()
        raise TurnError({"message": "the client went away; the turn was stopped", "http_status": 499} if gone
                        else {"message": "the turn ended without an answer", "http_status": 500})
    return answer


def record_turn(answer: dict[str, Any], tokens: int, metrics: ApiMetrics | None) -> None:
    """Generation speed and abstentions for /metrics."""
    if answer.get("status") == "abstained":
        count_abstention("insufficient_evidence", metrics=metrics)
    seconds = float((answer.get("timings") or {}).get("answer") or 0.0)
    if answer.get("mode") == "llm" and tokens > 1 and seconds > 0:
        observe_tokens_per_s(tokens / seconds, "decode", metrics=metrics)


# --- shapes -------------------------------------------------------------------------------------


def api_source(s: dict[str, Any]) -> dict[str, Any]:
    """A numbered source as clients see it: no server paths, a snippet rather than the whole text."""
    text = s.get("text") or ""
    title = s.get("title") or ""
    return {
        "n": s.get("n"), "kind": s.get("kind"), "title": title,
        "title_path": [p.strip() for p in title.split(" > ")] if s.get("kind") == "document" else [title],
        "file": PurePath(s["source"]).name if s.get("source") else None, "page": s.get("page"),
        "snippet": text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…",
        "chunk_id": s.get("chunk_id"), "tool": s.get("tool"), "flags": list(s.get("flags") or []),
        "added_by": (s.get("data") or {}).get("added_by"), "added_at": (s.get("data") or {}).get("added_at"),
    }


def api_tool_call(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: r.get(k) for k in ("tool", "args", "ok", "summary", "error", "data")}
    out["ok"] = bool(out["ok"])
    out["args"] = out["args"] or {}
    out["data"] = out["data"] or {}
    if r.get("approval") is not None:
        out["approval"] = r["approval"]
    return out


def api_status(answer: dict[str, Any]) -> str | None:
    """'pending_approval' while a proposed action waits for a person: the turn has answered, but a
    client that reads only the status must not take it as finished."""
    return "pending_approval" if answer.get("pending") else answer.get("status")


def chat_data(answer: dict[str, Any]) -> dict[str, Any]:
    """The Answer dict of a turn → the API's chat payload."""
    return {
        "conversation_id": public_id(answer.get("thread_id") or ""),
        "answer": answer.get("text", ""),
        "status": api_status(answer),
        "mode": answer.get("mode"),
        "mode_reason": answer.get("mode_reason"),
        "lang": answer.get("lang"),
        "sources": [api_source(s) for s in answer.get("sources") or []],
        "cited": list(answer.get("cited") or []),
        "tool_calls": [api_tool_call(r) for r in answer.get("tool_results") or []],
        "checks": [{"name": c.get("name"), "ok": bool(c.get("ok")), "detail": c.get("detail") or ""}
                   for c in answer.get("checks") or []],
        "pending": list(answer.get("pending") or []),
        "searched": answer.get("searched") or "",
        "timings": {k: float(v) for k, v in (answer.get("timings") or {}).items()},
    }


def api_event(event: Event) -> dict[str, Any]:
    """A turn event as one SSE payload."""
    d = event.data
    if event.type == "done":
        return {"type": "done", **chat_data(d)}
    if event.type == "sources":
        return {"type": "sources", "sources": [api_source(s) for s in d.get("sources") or []]}
    if event.type == "tool":
        return {"type": "tool", **{k: d.get(k) for k in ("phase", "tool", "args", "ok", "summary", "error")
                                   if k in d}}
    if event.type == "approval":
        return {"type": "approval", "conversation_id": public_id(d.get("thread_id") or ""),
                "pending": d.get("pending") or []}
    if event.type == "error":
        status = int(d.get("http_status") or 500)
        out = {"type": "error", "message": d.get("message") or "the turn failed", "code": status}
        if d.get("retry_after_s") is not None:
            out["retry_after_s"] = d["retry_after_s"]
        return out
    return {"type": event.type, **d}
