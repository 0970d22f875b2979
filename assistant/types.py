"""The agent's shared vocabulary: the scope of a question, the numbered sources an answer cites,
the checks that ran, the final Answer, and the events a turn streams to the CLI, API and UI.

Everything here is plain data that serialises to JSON (and to LangGraph's strict msgpack as
dicts), so the same objects go into the checkpointer, the audit log and the HTTP responses.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["answered", "abstained", "partial"]
EventType = Literal["status", "tool", "token", "sources", "check", "approval", "done", "error"]


# A conversation id as stored: the one pattern the turn service checks ids against.
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)
# A conversation id as a signed-in client sees it: stored as ``owned_thread_id(owner, id)``
# (a 14-character owner prefix), which then always matches CONVERSATION_ID_PATTERN.
PUBLIC_CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"


def owned_thread_id(owner_id: str, conversation_id: str) -> str:
    """The conversation id a signed-in person's turns are stored under: scoped to them, so
    nobody reaches another person's conversation by knowing (or guessing) its id."""
    return f"p{hashlib.sha256(owner_id.encode('utf-8')).hexdigest()[:12]}:{conversation_id}"


@dataclass
class Decision:
    """A person's decision on an action waiting for approval."""

    approved: bool
    by: str
    reason: str = ""


@dataclass
class Scope:
    """Where a question is about. Empty fields mean "the whole site"."""

    site: str | None = None
    zone: str | None = None
    asset: str | None = None
    crop: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Scope":
        data = data or {}
        return cls(**{k: (str(v) if v not in (None, "") else None) for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass
class Source:
    """One numbered thing an answer may cite: a passage of a document or a tool result."""

    n: int
    kind: Literal["document", "tool"]
    title: str  # title path of the passage, or the tool call
    text: str  # the passage text, or the tool's summary
    source: str | None = None  # file the passage came from
    page: int | None = None
    chunk_id: str | None = None
    doc_id: str | None = None
    tool: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the tool's result data, or evidence scores
    flags: list[str] = field(default_factory=list)  # e.g. instruction_like

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Source":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Check:
    name: str  # citations / numbers / safety / answerability / fallback …
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What a turn produced. ``text`` carries markers ``[n]`` that point at ``sources[n-1]``."""

    text: str
    status: Status
    mode: Literal["llm", "extractive"]
    lang: str
    sources: list[dict[str, Any]] = field(default_factory=list)  # Source dicts, numbered from 1
    cited: list[int] = field(default_factory=list)  # the source numbers the text actually cites
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # actions waiting for a person
    thread_id: str = ""
    searched: str = ""  # the query the knowledge base was searched with
    mode_reason: str | None = None  # why the answer is extractive, when it is
    answerability: dict[str, Any] = field(default_factory=dict)  # score, reason, signals of the evidence
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    """One streamed step of a turn.

    status: a stage started (``data.stage``); tool: a tool call started or finished;
    token: a piece of the answer (``data.text``); sources: the numbered sources; check: a
    verification result (``data.retry`` true means the streamed draft is being replaced);
    approval: the turn is paused until a person decides (``data.pending``); done: the final
    Answer; error: the turn failed (``data.message``, ``data.http_status``)."""

    type: EventType
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}
