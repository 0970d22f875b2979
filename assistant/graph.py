"""The turn's steps (``assistant/nodes.py``) as a LangGraph state graph over a SQLite
checkpointer — the only module that imports LangGraph.

``AgentGraph`` is what the turn service uses: ``stream`` runs a new turn or resumes a paused one
and yields ``(event type, data)`` pairs; ``state`` reads a conversation's last checkpoint (its
values and the actions waiting for a person). One thread per conversation. Checkpoints may only
load the types LangGraph itself writes (strict msgpack: no arbitrary classes); the checkpointer is
given that serializer explicitly, so no environment variable or import order decides it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

from assistant import nodes
from assistant.nodes import AgentDeps, TurnState
from assistant.private import private_file
from assistant.routing import plan_schema

STEPS = ("contextualize", "route", "act", "retrieve", "answer", "verify", "fallback", "propose", "finish")


def _emit(kind: str, **data: Any) -> None:
    from langgraph.config import get_stream_writer

    get_stream_writer()({"type": kind, **data})


def _timed(name: str, step: Callable[[TurnState], dict]) -> Callable[[TurnState], dict]:
    def node(state: TurnState) -> dict:
        start = time.perf_counter()
        update = step(state)
        timings = dict(state.get("timings") or {})
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 4)
        return {**update, "timings": timings}
    return node


def build_graph(deps: AgentDeps, checkpointer: Any):
    """The compiled graph of one turn; steps get ``deps`` with LangGraph's emit and interrupt."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    deps = replace(deps, emit=_emit, interrupt=interrupt)
    # Built once: llama.cpp grammars are cached per schema class.
    decision_schema = plan_schema(deps.registry, deps.settings.agent.max_tool_calls)
    bound = {name: partial(getattr(nodes, name), deps=deps) for name in STEPS}
    bound["route"] = partial(nodes.route, deps=deps, decision_schema=decision_schema)
    g = StateGraph(TurnState)
    for name in STEPS:
        g.add_node(name, _timed(name, bound[name]))
    g.add_edge(START, "contextualize")
    for a, b in zip(STEPS[:5], STEPS[1:6]):  # contextualize → route → act → retrieve → answer → verify
        g.add_edge(a, b)
    g.add_conditional_edges("verify", nodes.after_verify, ["answer", "fallback", "propose"])
    g.add_edge("fallback", "propose")
    g.add_edge("propose", "finish")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer)


class AgentGraph:
    """The agent over its conversations database (``path``), or in memory when ``path`` is None."""

    def __init__(self, deps: AgentDeps, path: Path | None, *, recursion_limit: int):
        self.deps = deps
        self.recursion_limit = recursion_limit
        self._conn: sqlite3.Connection | None = None
        self.checkpointer = self._checkpointer(path)
        self.graph = build_graph(deps, self.checkpointer)

    def _checkpointer(self, path: Path | None) -> Any:
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

        strict = JsonPlusSerializer(allowed_msgpack_modules=None)  # None: only LangGraph's own safe types
        if path is None:
            from langgraph.checkpoint.memory import InMemorySaver

            return InMemorySaver(serde=strict)
        from langgraph.checkpoint.sqlite import SqliteSaver

        private_file(path)  # conversations are private: 0600 before SQLite opens it (and its -wal / -shm)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        return SqliteSaver(self._conn, serde=strict)

    def _config(self, thread_id: str) -> dict:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": self.recursion_limit}

    def stream(self, thread_id: str, turn: TurnState | None = None,
               decision: dict | None = None) -> Iterator[tuple[str, dict]]:
        """Run ``turn`` (or resume the paused one with ``decision``); yields the steps' events and,
        when the turn pauses for a person, ``("approval", {"thread_id", "pending"})``."""
        from langgraph.types import Command

        payload: Any = turn if turn is not None else Command(resume=decision or {})
        for mode, chunk in self.graph.stream(payload, self._config(thread_id), stream_mode=["custom", "updates"]):
            if mode == "custom":
                chunk = dict(chunk)
                yield chunk.pop("type"), chunk
            elif "__interrupt__" in chunk:
                yield "approval", {"thread_id": thread_id, "pending": [i.value for i in chunk["__interrupt__"]]}

    def state(self, thread_id: str) -> tuple[dict, list[dict]]:
        """The conversation's last checkpoint (one read): its values and the actions waiting."""
        snapshot = self.graph.get_state(self._config(thread_id))
        pending = [i.value for i in getattr(snapshot, "interrupts", ()) or ()]
        return dict(snapshot.values or {}), pending

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
