"""What the streamed routes send, as models, and their place in the OpenAPI document.

A server-sent event is documented the OpenAPI 3.2 way: the schema of the event object whose
``data`` is either ``[DONE]`` or JSON (``contentMediaType`` / ``contentSchema``) — a ``ChatEvent``
for /api/v1/chat/stream, a ``ChatCompletionChunk`` (or an OpenAI error) for /v1/chat/completions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from assistant.api.routes.schemas import ChatData, SourceOut
from assistant.api.sse import SSE_MEDIA_TYPE


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class StatusEvent(_Event):
    type: Literal["status"]
    stage: str = Field(description="route, retrieve, contextualize …")


class TokenEvent(_Event):
    type: Literal["token"]
    text: str = Field(description="The next piece of the answer.")


class ToolEvent(_Event):
    type: Literal["tool"]
    phase: Literal["started", "finished"]
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    ok: bool | None = None
    summary: str | None = None
    error: str | None = None


class SourcesEvent(_Event):
    type: Literal["sources"]
    sources: list[SourceOut]


class CheckEvent(_Event):
    type: Literal["check"]
    name: str
    ok: bool
    detail: str = ""
    retry: bool = Field(False, description="true: the text streamed so far is replaced by what follows.")


class ApprovalEvent(_Event):
    type: Literal["approval"]
    conversation_id: str
    pending: list[dict[str, Any]]


class DoneEvent(ChatData):
    type: Literal["done"]


class ErrorEvent(_Event):
    type: Literal["error"]
    message: str
    code: int = Field(description="The HTTP status the error would have had.")
    retry_after_s: float | None = None


ChatEvent = Annotated[Union[StatusEvent, TokenEvent, ToolEvent, SourcesEvent, CheckEvent, ApprovalEvent, DoneEvent,
                            ErrorEvent], Field(discriminator="type")]


class ChunkChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    delta: dict[str, Any]
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: dict[str, int] | None = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


def sse_response(description: str, event_ref: str) -> dict[str, Any]:
    """An OpenAPI response object for a stream of ``data:`` events of the named component."""
    data = {"oneOf": [{"const": "[DONE]"},
                      {"type": "string", "pattern": r"^\{", "contentMediaType": "application/json",
                       "contentSchema": {"$ref": f"#/components/schemas/{event_ref}"}}]}
    return {"description": description,
            "content": {SSE_MEDIA_TYPE: {"schema": {"type": "object", "required": ["data"],
                                                    "properties": {"data": data, "event": {"type": "string"}}}}}}


def document_events(app: FastAPI, extra: dict[str, Any] | None = None) -> None:
    """Add the event schemas (and ``extra`` name → type) to the document's components."""
    types: dict[str, Any] = {"ChatEvent": ChatEvent, "ChatCompletionStreamEvent": Union[ChatCompletionChunk, OpenAIError],
                             **(extra or {})}
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        schema = previous()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, type_ in types.items():
            if name not in components:
                generated = TypeAdapter(type_).json_schema(ref_template="#/components/schemas/{model}")
                for key, value in generated.pop("$defs", {}).items():
                    components.setdefault(key, value)
                components[name] = generated
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
