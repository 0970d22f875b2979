"""Request and response models of the /api/v1 feature routes (what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.api.routes.turns import CONVERSATION_PATTERN
from assistant.settings import QUESTION_CHARS_CEILING

UPLOAD_ID = r"^[0-9a-f]{32}$"
SITE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
WORK_ORDER_ID = r"^WO-[0-9A-F]{10}$"


# --- chat -----------------------------------------------------------------------------------------


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(None, max_length=64, pattern=SITE_ID)
    zone: str | None = Field(None, max_length=64, pattern=SITE_ID, description="A zone id of the site profile.")
    asset: str | None = Field(None, max_length=64, pattern=SITE_ID, description="An asset id of the site profile.")
    crop: str | None = Field(None, max_length=64, pattern=SITE_ID)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=QUESTION_CHARS_CEILING, pattern=r"\S",
                          description="The question, Chinese or English; longer than the server's "
                          "agent.max_question_chars (default 2000) is refused with 422 question_too_long.")
    conversation_id: str | None = Field(
        None, pattern=CONVERSATION_PATTERN,
        description="Continue this conversation (from an earlier answer); omit to start a new one.")
    scope: ScopeIn | None = Field(None, description="Where the question is about; empty = the whole site.")
    photos: list[Annotated[str, Field(pattern=UPLOAD_ID)]] = Field(default_factory=list, max_length=4,
                              description="Upload ids of photos (POST /api/v1/uploads) to inspect with the question.")


class SourceOut(BaseModel):
    n: int = Field(description="The number the answer's [n] markers refer to.")
    kind: Literal["document", "tool"]
    title: str
    title_path: list[str] = Field(description="e.g. ['第三章', '第二十一条'] or ['Pump', 'Maintenance'].")
    file: str | None = Field(None, description="Document file name.")
    page: int | None = None
    snippet: str = Field(description="The passage (or the tool's summary), shortened.")
    chunk_id: str | None = None
    tool: str | None = None
    flags: list[str] = Field(default_factory=list, description="e.g. instruction_like: quoted as data only.")
    added_by: str | None = Field(None, description="Who added the document: 'key:<name>' or 'file system'.")
    added_at: str | None = None


class ToolCallOut(BaseModel):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    ok: bool
    summary: str | None = None
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    approval: dict[str, Any] | None = None


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class ChatData(BaseModel):
    conversation_id: str
    answer: str = Field(description="The answer with [n] citation markers.")
    status: Literal["answered", "abstained", "partial", "pending_approval", "error"] = Field(
        description="pending_approval: an action the answer proposed (e.g. a work order) waits for "
        "POST /api/v1/approvals/{conversation_id}; 'pending' lists it.")
    mode: Literal["llm", "extractive"] = Field(description="extractive: no language model; the answer is a labelled extract.")
    mode_reason: str | None = None
    lang: str | None = None
    sources: list[SourceOut]
    cited: list[int] = Field(description="Source numbers the answer actually cites.")
    tool_calls: list[ToolCallOut]
    checks: list[CheckOut]
    pending: list[dict[str, Any]] = Field(
        description="Actions waiting for a decision: POST /api/v1/approvals/{conversation_id}.")
    searched: str = ""
    timings: dict[str, float] = Field(default_factory=dict)


class ConversationData(BaseModel):
    conversation_id: str
    messages: list[dict[str, Any]]
    pending: list[dict[str, Any]]


# --- photos and inspections ---------------------------------------------------------------------------


class UploadData(BaseModel):
    image_id: str
    width: int | None = None
    height: int | None = None
    bytes: int | None = None


class Defect(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    box: list[int] = Field(description="[x0, y0, x1, y1] in image pixels.")
    score: float
    class_: str = Field(alias="class", serialization_alias="class")


class InspectionData(BaseModel):
    model_config = ConfigDict(extra="allow")

    image_id: str = Field(description="The stored photo.")
    annotated_image_id: str = Field(description="A copy with the defects drawn: GET /api/v1/uploads/{id}.")
    product: str
    verdict: Literal["good", "defective"]
    score: float
    threshold: float
    defects: list[Defect]
    image_size: list[int] = Field(description="[width, height]")
    backend: str
    summary: str


# --- sensors ------------------------------------------------------------------------------------------


class SensorItem(BaseModel):
    id: str
    name: str
    zone: str
    asset: str | None = None
    metric: str
    unit: str
    status: str | None = Field(None, description="normal, warning, alarm, trip, emergency, stopped, bad_quality, "
                               "no_limits or no_data.")
    value: float | None = None
    ts: str | None = None
    stale: bool | None = None


class SensorLatestData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    zone: str
    asset: str | None = None
    metric: str
    unit: str
    status: str
    value: float | None = None
    ts: str | None = None
    as_of: str | None = None
    summary: str


class SeriesPoint(BaseModel):
    ts: str = Field(description="Start of the bucket.")
    count: int
    min: float
    mean: float
    max: float
    last: float


class SeriesData(BaseModel):
    id: str
    name: str
    unit: str
    metric: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    bucket_s: int
    points: list[SeriesPoint]
    limits_now: dict[str, Any] | None = None

    model_config = ConfigDict(populate_by_name=True)


# --- work orders and approvals -------------------------------------------------------------------------


class WorkOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str = Field(min_length=1, max_length=64, pattern=SITE_ID, description="Asset id, e.g. P-101.")
    problem: str = Field(min_length=5, max_length=2000)
    priority: Literal["low", "medium", "high", "urgent"] = "medium"
    evidence: list[str] = Field(default_factory=list, max_length=10)


class WorkOrderOut(BaseModel):
    id: str
    asset: str
    problem: str
    priority: str
    evidence: list[str]
    status: Literal["pending", "open", "rejected", "closed"]
    requested_by: str
    created_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    decision_reason: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str = Field(min_length=1, max_length=300, description="Why; kept with the order and in the audit log.")


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=300)


class ApprovalData(BaseModel):
    kind: Literal["work_order", "conversation"]
    work_order: WorkOrderOut | None = None
    answer: ChatData | None = Field(None, description="The conversation's turn, continued after the decision.")


# --- knowledge -------------------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    name: str
    bytes: int
    replaced: bool | None = None
    modified: str | None = None
    added_by: str | None = Field(None, description="Who added it: 'key:<name>', 'wx:<openid>' or 'file system'.")
    added_at: str | None = None


class JobFailure(BaseModel):
    source: str
    reason: str


class JobOut(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    stage: str = Field(description="scan, parse, embed, index, publish, done.")
    done: int = Field(description="Items done in this stage (files while parsing).")
    total: int
    failures: list[JobFailure]
    version: str | None = None
    error: str | None = None
    created: float
    started: float | None = None
    finished: float | None = None
    sources: list[str] = Field(default_factory=list)
    documents: int | None = None
    chunks: int | None = None
    parsed: int | None = None
    reused: int | None = None
    removed: int | None = None
    embedder_changed: str | None = Field(
        None, description="'old → new' when the embedding model changed: every document was re-embedded.")


class RollbackData(BaseModel):
    live: str
    previous: str | None = None
