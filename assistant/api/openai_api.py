"""The OpenAI-compatible face: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The assistant appears as one model, ``onsite``. The question is the last user message; earlier
messages are not replayed (the assistant keeps its own conversation state): pass
``conversation_id`` (e.g. ``extra_body={"conversation_id": ...}`` in the ``openai`` SDK) to continue
a conversation, and ``scope`` to narrow it. Client system prompts and sampling parameters are
ignored: the assistant's own prompt, grounding checks and answer budget apply. Answers carry
their numbered sources in an extra ``sources`` field (and the conversation id, status and checks
in ``onsite``); a streamed answer sends them in its last chunk.

When streaming, a draft that fails its grounding checks cannot be taken back from an OpenAI
client, so the replacement is sent after a visible note; the final text is also in the last
chunk's ``onsite.answer``. Errors use OpenAI's ``{"error": {...}}`` shape with the real status
(429 + Retry-After when the queue is full).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.app import get_services
from assistant.api.auth import CurrentPrincipal
from assistant.api.envelope import openai_error_body, set_error_format
from assistant.api.query_params import reject_unknown_query
from assistant.api.ratelimit import rate_limit
from assistant.api.routes.events import OpenAIError, sse_response
from assistant.api.routes.schemas import ScopeIn
from assistant.api.routes.turns import (CONVERSATION_PATTERN, chat_data, collect_answer,
                                        start_turn, turn_events)
from assistant.api.sse import DONE, HEARTBEAT_S, PING, SSE_HEADERS, SSE_MEDIA_TYPE, sse_event
from assistant.errors import OnsiteError, ValidationError, http_status, user_message
from assistant.scope_check import check_scope
from assistant.settings import QUESTION_CHARS_CEILING

MODEL_ID = "onsite"
CREATED = 1_735_689_600  # 2025-01-01, a fixed "created" for the one model


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": OpenAIError, "description": "Error (OpenAI shape)"} for s in statuses}


class ModelNotFoundError(OnsiteError):
    http_status = 404
    error_kind = "model_not_found"


# strict: JSON types as documented — "stream": "yes" or "temperature": false is refused, not coerced.
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(max_length=40)
    text: str | None = Field(None, max_length=QUESTION_CHARS_CEILING)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = Field(None)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type in ("text", "input_text"))
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``: only ``include_usage`` means anything here."""

    model_config = ConfigDict(extra="allow", strict=True)

    include_usage: bool = Field(False, description="Send a last chunk with the token usage.")


_ASK = [{"role": "user", "content": "What is the maximum discharge pressure of pump P-101?"}]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"examples": [
        {"model": MODEL_ID, "messages": _ASK},
        {"model": MODEL_ID, "messages": _ASK, "stream": True, "stream_options": {"include_usage": True}},
    ]})

    model: str = Field(max_length=100, description=f"'{MODEL_ID}'.")
    messages: list[Message] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: StreamOptions | None = Field(None, description="With stream=true: {\"include_usage\": true}.")
    max_tokens: int | None = Field(None, ge=1, description="Caps the answer's length (at most the server's limit).")
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, description="Ignored: the assistant's setting applies.")
    n: int | None = Field(None, ge=1, le=1)
    user: str | None = Field(None, max_length=256)
    conversation_id: str | None = Field(None, pattern=CONVERSATION_PATTERN, description="onsite: continue a conversation.")
    scope: ScopeIn | None = Field(None, description="onsite: where the question is about.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    sources: list[dict[str, Any]] = Field(description="onsite: the numbered sources the [n] markers refer to.")
    onsite: dict[str, Any] = Field(description="onsite: conversation_id, status, mode, checks, pending, cited.")


router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(rate_limit), Depends(reject_unknown_query)],
                   responses=_errors(401, 422, 429, 500))


@router.get("/models", response_model=ModelList, summary="The assistant, as model 'onsite'")
def models(principal: CurrentPrincipal) -> Any:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "onsite"}]}


@router.get("/models/{model_id}", response_model=ModelCard, responses=_errors(404), summary="One model")
def model(model_id: str, principal: CurrentPrincipal) -> Any:
    if model_id != MODEL_ID:
        raise ModelNotFoundError(f"The model '{model_id}' does not exist; this server has '{MODEL_ID}'.")
    return {"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "onsite"}


def _question(body: ChatCompletionRequest, request: Request) -> str:
    if body.model != MODEL_ID:
        raise ModelNotFoundError(f"The model '{body.model}' does not exist; this server has '{MODEL_ID}'.")
    asked = body.max_completion_tokens or body.max_tokens
    limit = get_services(request).turns.max_answer_tokens
    if asked is not None and asked > limit:
        raise ValidationError(f"max_tokens is too large: {asked}. This server allows at most {limit}.")
    users = [m for m in body.messages if m.role == "user"]
    question = users[-1].text().strip() if users else ""
    if not question:
        raise ValidationError("The messages have no user message with text.")
    return question


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _extras(answer: dict[str, Any]) -> tuple[list[dict], dict[str, Any]]:
    data = chat_data(answer)
    onsite = {k: data[k] for k in ("conversation_id", "status", "mode", "mode_reason", "checks", "pending", "cited")}
    return data["sources"], onsite


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"application/json": {}, **sse_response("", "ChatCompletionStreamEvent")["content"]},
                              "description": "A chat.completion, or with stream=true chat.completion.chunk events "
                              "then `data: [DONE]`"},
                        **_errors(400, 404, 422, 502, 503, 504)},
             summary="Ask the assistant (OpenAI chat completions)")
async def chat_completions(body: ChatCompletionRequest, request: Request, principal: CurrentPrincipal) -> Any:
    question = _question(body, request)
    scope = check_scope(body.scope.model_dump(exclude_none=True), get_services(request).site) if body.scope else None
    events, cancel = await start_turn(get_services(request).turns, question, principal=principal,
                                      conversation_id=body.conversation_id, scope=scope,
                                      max_tokens=body.max_completion_tokens or body.max_tokens)
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_chunks(events, cancel, completion_id, created, question, include_usage),
                                 media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)
    answer = await collect_answer(request, events, cancel)
    sources, onsite = _extras(answer)
    text = answer.get("text", "")
    prompt, completion = _estimate_tokens(question), _estimate_tokens(text)
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            "sources": sources, "onsite": onsite}


async def _chunks(events, cancel, completion_id: str, created: int, question: str, include_usage: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return sse_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                          "model": MODEL_ID, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                          "logprobs": None}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    streamed: list[str] = []
    try:
        async for event in turn_events(events, cancel, heartbeat_s=HEARTBEAT_S):
            if event is None:
                yield PING
            elif event.type == "token":
                streamed.append(event.data.get("text", ""))
                yield chunk({"content": event.data.get("text", "")})
            elif event.type == "check" and event.data.get("retry") and streamed:
                note = f"\n\n[{event.data.get('name')} check failed: {event.data.get('detail', '')}; corrected answer follows]\n\n"
                streamed.append(note)
                yield chunk({"content": note})
            elif event.type == "error":
                data = event.data
                yield sse_event(openai_error_body(int(data.get("http_status") or 500), data.get("message") or "failed",
                                                  {"error": "turn_failed"}))
                break
            elif event.type == "done":
                sources, onsite = _extras(event.data)
                onsite["answer"] = event.data.get("text", "")
                prompt, completion = _estimate_tokens(question), _estimate_tokens("".join(streamed))
                usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                yield chunk({}, "stop", sources=sources, onsite=onsite)
                if include_usage:
                    yield sse_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                     "model": MODEL_ID, "choices": [], "usage": usage})
    except Exception as exc:  # noqa: BLE001 - the status is sent; the error travels in the stream
        yield sse_event(openai_error_body(http_status(exc), user_message(exc), {"error": "internal_error"}))
    yield DONE


def document_openai_errors(app: FastAPI) -> None:
    """The envelope rewrite of the OpenAPI document gives every 422 the envelope schema; under
    /v1 errors have OpenAI's shape, so those are put right."""
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        schema = previous()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response:
                    response["description"] = "Invalid request (OpenAI error shape)"
                    response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
        if "OpenAIError" not in components:
            extra = OpenAIError.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(extra.pop("$defs", {}))
            components["OpenAIError"] = extra
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_openai(app: FastAPI) -> None:
    """Add the /v1 routes, their error shape and its documentation."""
    app.include_router(router)
    set_error_format(app, "/v1", openai_error_body)
    document_openai_errors(app)
