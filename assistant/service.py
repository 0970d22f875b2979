"""The one facade the CLI, the REST API and the chat page call.

``Service.ask`` runs one turn of the agent and yields ``Event``s as they happen (status, tool
calls, tokens, sources, checks, an approval request, then ``done`` with the Answer);
``Service.resume`` continues a turn paused for approval. Every turn and every approval is
written to the audit log. Conversations persist in LangGraph's SQLite checkpointer, one thread
per conversation.

Admission is bounded: at most ``llm.queue_depth`` turns run or wait at once, shared by every
face; one more is refused at once with ``ModelBusyError`` (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

# Checkpoints may only load the types LangGraph itself writes (no arbitrary classes).
os.environ.setdefault("LANGGRAPH_STRICT_MSGPACK", "true")

from assistant.audit import AuditLog  # noqa: E402
from assistant.errors import OnsiteError, ValidationError  # noqa: E402
from assistant.llm import LoadedModel, load_chat_model  # noqa: E402
from assistant.llm.base import ModelBusyError  # noqa: E402
from assistant.llm.extractive import ExtractiveModel  # noqa: E402
from assistant.operations import Operations  # noqa: E402
from assistant.routing import ToolCall  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.types import Answer, Event, Scope  # noqa: E402
from knowledge.embedding import Embedder, make_embedder  # noqa: E402
from knowledge.retrieval import Retriever  # noqa: E402
from tools.base import ToolRegistry, ToolResult, call  # noqa: E402
from tools.site import SiteProfile, load_site_profile  # noqa: E402

log = logging.getLogger(__name__)
THREAD_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_QUESTION_CHARS = 2000


@dataclass
class Decision:
    approved: bool
    by: str
    reason: str = ""


class Service(Operations):
    def __init__(self, settings: Settings, *, loaded: LoadedModel | None = None, embedder: Embedder | None = None,
                 retriever: Retriever | None = None, site: SiteProfile | None = None, clock=None):
        from langgraph.checkpoint.sqlite import SqliteSaver

        from assistant.graph import AgentDeps, build_graph
        from tools.inspection.tool import InspectImage, ProductStore
        from tools.inspection.uploads import UploadStore
        from tools.sensors.store import SensorStore
        from tools.sensors.tools import sensor_tools
        from tools.workorders.store import WorkOrderStore
        from tools.workorders.tools import CreateWorkOrder, ListWorkOrders

        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder or make_embedder(settings.embedding, settings.home)
        self.loaded = loaded or load_chat_model(settings, self.embedder)
        self.retriever = retriever or Retriever(settings, embedder=self.embedder)
        self.site = site or load_site_profile(settings.site_profile)
        self.sensors = SensorStore(settings.sensors_db)
        self.work_orders = WorkOrderStore(settings.workorders_db)
        self.uploads = UploadStore(settings.uploads_dir)
        self.products = ProductStore(settings.home / "inspection")
        self.known_assets = {a.id for a in self.site.assets}
        self.registry = ToolRegistry([
            *sensor_tools(self.site, self.sensors, **({"clock": clock} if clock else {})),
            ListWorkOrders(self.work_orders),
            CreateWorkOrder(self.work_orders, self.known_assets),
            InspectImage(self.uploads, self.products),
        ])
        self.audit = AuditLog(settings.audit_db)
        self._conversations = sqlite3.connect(settings.conversations_db, check_same_thread=False)
        self._checkpointer = SqliteSaver(self._conversations)
        extractive = self.loaded.model if isinstance(self.loaded.model, ExtractiveModel) else \
            ExtractiveModel(self.embedder, reason="fallback")
        self.deps = AgentDeps(
            settings=settings, model=self.loaded.model, extractive=extractive, retriever=self.retriever,
            registry=self.registry, site=self.site, assess=self._assess,
            run_side_effect=self._run_side_effect, products=self.products.names, mode_reason=self.loaded.reason,
        )
        self.graph = build_graph(self.deps, self._checkpointer)
        self._slots = threading.BoundedSemaphore(settings.llm.queue_depth)
        self._in_flight = 0
        self._count_lock = threading.Lock()
        # Called with (answer dict, streamed token count) after every turn, whichever face asked
        # (the server counts abstentions and generation speed for /metrics with it).
        self.observers: list[Callable[[dict, int], None]] = []
        self._term_weights: tuple[str | None, Any] = (None, None)

    # ---- turns -------------------------------------------------------------------------------
    def ask(self, question: str, *, thread_id: str | None = None, scope: dict | Scope | None = None,
            photos: list[str] | tuple[str, ...] = (), user: str = "local", filters: dict | None = None,
            cancel: threading.Event | None = None, max_tokens: int | None = None) -> Iterator[Event]:
        """Start a turn. Validation and admission happen now (errors raise before any event);
        the returned iterator runs the turn."""
        from assistant.graph import new_turn

        question = (question or "").strip()
        if not question:
            raise ValidationError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValidationError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        if max_tokens is not None and not 1 <= max_tokens <= self.settings.llm.max_tokens:
            raise ValidationError(f"max_tokens must be between 1 and {self.settings.llm.max_tokens}")
        thread_id = self._thread(thread_id)
        for p in photos:
            self.uploads.path(p)  # unknown or malformed upload id → a clear error now
        scope_d = (scope if isinstance(scope, Scope) else Scope.from_dict(scope)).to_dict()
        self._admit()
        try:
            if self.pending(thread_id):  # a new question supersedes an undecided proposal
                decline = Decision(False, user, "superseded by a new question")
                for _ in self._run(None, thread_id, user, "resume", decision=decline):
                    pass
            turn = new_turn(question, thread_id=thread_id, scope=scope_d, photos=list(photos), user=user,
                            deadline_s=self.settings.agent.deadline_s, filters=filters, max_tokens=max_tokens)
        except BaseException:
            self._release()
            raise
        return self._released(self._run(turn, thread_id, user, "ask", cancel=cancel))

    def resume(self, thread_id: str, decision: Decision, user: str = "local") -> Iterator[Event]:
        """Continue a turn paused for approval with the person's decision."""
        thread_id = self._thread(thread_id)
        if not self.pending(thread_id):
            raise ValidationError(f"conversation {thread_id} has nothing waiting for approval")
        self._admit()
        return self._released(self._run(None, thread_id, user, "resume", decision=decision))

    def answer(self, question: str, **kw: Any) -> Answer:
        """Run a turn to the end and return its Answer (for callers that do not stream)."""
        return _final(self.ask(question, **kw))

    def _run(self, turn: dict | None, thread_id: str, user: str, kind: str, *, decision: Decision | None = None,
             cancel: threading.Event | None = None) -> Iterator[Event]:
        from langgraph.types import Command

        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": self.settings.agent.recursion_limit}
        payload: Any = turn if turn is not None else Command(resume=decision.__dict__ if decision else {})
        if cancel is not None:
            self.deps.cancels[thread_id] = cancel
        tokens = 0
        try:
            for mode, chunk in self.graph.stream(payload, config, stream_mode=["custom", "updates"]):
                if mode == "custom":
                    tokens += chunk["type"] == "token"
                    yield Event(chunk.pop("type"), chunk)
                elif "__interrupt__" in chunk:
                    yield Event("approval", {"thread_id": thread_id, "pending": [i.value for i in chunk["__interrupt__"]]})
        except OnsiteError as exc:
            data = {"message": exc.user_message, "http_status": exc.http_status}
            if isinstance(exc, ModelBusyError):
                data["retry_after_s"] = exc.retry_after_s
            log.warning("turn failed in %s: %s", thread_id, exc.user_message)
            yield Event("error", data)
            return
        finally:
            self.deps.cancels.pop(thread_id, None)
        answer, state = self._answer(thread_id)
        self.audit.record(thread_id=thread_id, user=user, kind=kind, question=state.get("question", ""),
                          scope=state.get("scope") or {}, tool_results=answer.tool_results,
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

    def _released(self, events: Iterator[Event]) -> Iterator[Event]:
        return _Turn(events, self._release)

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

    @property
    def turns_in_flight(self) -> int:
        """Turns admitted and not finished (running or waiting for the model)."""
        return self._in_flight

    # ---- conversation state ------------------------------------------------------------------------
    def _thread(self, thread_id: str | None) -> str:
        if thread_id is None:
            return uuid.uuid4().hex
        if not THREAD_ID.match(thread_id):
            raise ValidationError("a conversation id is 1-64 letters, digits, '_', '-', '.' or ':'")
        return thread_id

    def _snapshot(self, thread_id: str) -> Any:
        """The conversation's last checkpoint (one SQLite read)."""
        return self.graph.get_state({"configurable": {"thread_id": thread_id}})

    def _state(self, thread_id: str) -> dict:
        return dict(self._snapshot(thread_id).values or {})

    def pending(self, thread_id: str) -> list[dict]:
        """Actions of this conversation waiting for a person's decision."""
        return _interrupts(self._snapshot(thread_id))

    def history(self, thread_id: str) -> list[dict]:
        return list(self._state(self._thread(thread_id)).get("messages") or [])

    def _answer(self, thread_id: str) -> tuple[Answer, dict]:
        """The Answer of the turn that just ran, and its state, from one checkpoint read."""
        snapshot = self._snapshot(thread_id)
        st = dict(snapshot.values or {})
        pending = _interrupts(snapshot)
        text = st.get("answer") or ((f"{st['label']}\n" if st.get("label") else "") + st.get("draft", ""))
        from assistant.grounding import cited

        return Answer(
            text=text, status=st.get("status") or "answered", mode=st.get("mode") or self.loaded.mode,
            lang=st.get("lang", "en"), sources=st.get("sources") or [], cited=cited(st.get("draft", "")),
            tool_results=st.get("tool_results") or [], checks=st.get("checks") or [], pending=pending,
            thread_id=thread_id, searched=(st.get("plan") or {}).get("search", ""),
            mode_reason=st.get("mode_reason"), answerability=st.get("answerability") or {},
            timings=st.get("timings") or {},
        ), st

    def _assess(self, question: str, evidence: list) -> Any:
        """Answerability of the evidence, with question words weighed by their rarity in the
        live index (the weights are read once per index version)."""
        from assistant.answerability import assess, index_term_weights

        version = self.retriever.index.version()
        if self._term_weights[0] != version.name:
            self._term_weights = (version.name, index_term_weights(version))
        return assess(question, evidence, self.embedder, term_weights=self._term_weights[1])

    # ---- side effects, only after a person approved ---------------------------------------------
    def _run_side_effect(self, tool_call: ToolCall, approved_by: str) -> ToolResult:
        from tools.workorders.tools import CreateWorkOrder

        if tool_call.tool != "create_work_order":
            return ToolResult(tool_call.tool, tool_call.args, False, summary="not allowed",
                              error=f"{tool_call.tool} has no approval path")
        tool = CreateWorkOrder(self.work_orders, self.known_assets, requested_by=f"{approved_by} (via assistant)")
        return call(tool, tool_call.args)

    def close(self) -> None:
        self.audit.close()
        self.sensors.close()
        self.work_orders.close()
        self._conversations.close()


def owned_thread_id(owner_id: str, conversation_id: str) -> str:
    """The conversation id a signed-in person's turns are stored under: scoped to them, so
    nobody reaches another person's conversation by knowing (or guessing) its id."""
    return f"p{hashlib.sha256(owner_id.encode('utf-8')).hexdigest()[:12]}:{conversation_id}"


def _interrupts(snapshot: Any) -> list[dict]:
    return [i.value for i in getattr(snapshot, "interrupts", ()) or ()]


class _Turn:
    """The events of one admitted turn; gives its admission slot back exactly once — at the
    end, on close(), or when dropped unstarted (a client that disconnects before reading)."""

    def __init__(self, events: Iterator[Event], release):
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


def _final(events: Iterator[Event]) -> Answer:
    answer: Answer | None = None
    for ev in events:
        if ev.type == "done":
            answer = Answer(**ev.data)
        elif ev.type == "error":
            raise OnsiteError(ev.data.get("message", "the turn failed"))
    if answer is None:
        raise OnsiteError("the turn ended without an answer")
    return answer
