"""/api/v1/chat (one JSON answer), /api/v1/chat/stream (server-sent events), conversations and
the approval endpoint that continues a conversation or decides a work order."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, AsyncIterator

from fastapi import Path as PathParam, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from assistant.api.app import api_router, get_services
from assistant.api.auth import CurrentPrincipal, ForbiddenError
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.schemas import (WORK_ORDER_ID, ApprovalData, ChatData, ChatRequest, ConversationData,
                                          DecisionIn)
from assistant.api.routes.turns import (CONVERSATION_PATTERN, api_event, chat_data, collect_answer, display_name,
                                        start_turn, thread_for, turn_events)
from assistant.api.routes.events import sse_response
from assistant.api.sse import DONE, HEARTBEAT_S, PING, SSE_HEADERS, SSE_MEDIA_TYPE, sse_event
from assistant.errors import NotFoundError, error_kind, http_status, user_message
from assistant.scope_check import check_scope
from assistant.types import Decision

log = logging.getLogger("onsite.api")
router = api_router(tags=["chat"])
TURN_ERRORS = error_responses(400, 401, 403, 404, 422, 429, 502, 503, 504)


def _scope(body: ChatRequest, request: Request) -> dict[str, Any] | None:
    """The body's scope with zone / asset / crop checked against the site (422 unknown_name)."""
    return check_scope(body.scope.model_dump(exclude_none=True), get_services(request).site) if body.scope else None


@router.post("/chat", response_model=Envelope[ChatData], responses=TURN_ERRORS,
             summary="Ask the assistant; the whole answer at once")
async def chat(body: ChatRequest, request: Request, principal: CurrentPrincipal) -> Any:
    """The answer with numbered sources (title path, page, snippet), the tool calls and checks, its
    status (answered / abstained / partial, or pending_approval while a proposed action waits) and the conversation id for a follow-up."""
    events, cancel = await start_turn(get_services(request).turns, body.question, principal=principal,
                                      conversation_id=body.conversation_id, scope=_scope(body, request), photos=body.photos)
    answer = await collect_answer(request, events, cancel)
    return ok(chat_data(answer))


async def sse_stream(events, cancel) -> AsyncIterator[bytes]:
    try:
        async for event in turn_events(events, cancel, heartbeat_s=HEARTBEAT_S):
            if event is None:
                yield PING
                continue
            yield sse_event(api_event(event))
    except Exception as exc:  # noqa: BLE001 - the status line is gone: the error travels as an event
        log.exception("streamed turn failed")
        yield sse_event({"type": "error", "message": user_message(exc), "code": http_status(exc),
                         "error": error_kind(exc)})
    yield DONE


@router.post("/chat/stream", response_class=StreamingResponse,
             responses={200: sse_response(
                 "Server-sent events: `data: {json}` lines separated by a blank line, then `data: [DONE]`; "
                 "`: ping` comments are keep-alives. Clients ignore event types they do not know.", "ChatEvent"),
                 **TURN_ERRORS},
             summary="Ask the assistant; the answer streams as server-sent events")
async def chat_stream(body: ChatRequest, request: Request, principal: CurrentPrincipal) -> StreamingResponse:
    """Chunked ``text/event-stream``: ``data: {"type": "token" | "tool" | "sources" | "check" |
    "done" | "error", ...}`` then ``data: [DONE]``. A refused question (busy, invalid) is an ordinary
    JSON error with its HTTP status before any event."""
    events, cancel = await start_turn(get_services(request).turns, body.question, principal=principal,
                                      conversation_id=body.conversation_id, scope=_scope(body, request), photos=body.photos)
    return StreamingResponse(sse_stream(events, cancel), media_type=SSE_MEDIA_TYPE,
                             headers=SSE_HEADERS)


ConversationId = PathParam(pattern=CONVERSATION_PATTERN, description="A conversation id from an answer.")


@router.get("/conversations/{conversation_id}", response_model=Envelope[ConversationData],
            responses=error_responses(401, 422), summary="A conversation's messages and pending actions")
def conversation(principal: CurrentPrincipal, request: Request, conversation_id: str = ConversationId) -> Any:
    service = get_services(request).turns
    thread = thread_for(principal, conversation_id)
    return ok({"conversation_id": conversation_id, "messages": service.history(thread),
               "pending": service.pending(thread)})


@router.post("/approvals/{approval_id}", response_model=Envelope[ApprovalData],
             responses=error_responses(400, 401, 403, 404, 409, 422, 429, 502, 503, 504),
             summary="Decide: a work order (admin) or the action a conversation waits for")
async def approve(body: DecisionIn, request: Request, principal: CurrentPrincipal,
                  approval_id: str = PathParam(pattern=CONVERSATION_PATTERN,
                                               description="A work order id (WO-…) or a conversation id.")) -> Any:
    """``WO-…``: approve (pending → open) or reject a work order; needs the admin role. A
    conversation id: confirm or decline the action the assistant proposed in your conversation
    (e.g. a work order to be written as pending); the turn then finishes and its answer is returned."""
    services = get_services(request)
    by = display_name(principal)
    if re.match(WORK_ORDER_ID, approval_id):
        if not principal.has_role("admin"):
            raise ForbiddenError("Deciding work orders needs the admin role.")
        order = await run_in_threadpool(services.work_orders.decide_work_order, approval_id, body.approve, by, body.reason)
        return ok({"kind": "work_order", "work_order": order})
    thread = thread_for(principal, approval_id)
    if not await run_in_threadpool(services.turns.pending, thread):
        raise NotFoundError(f"Nothing in conversation {approval_id} is waiting for a decision.")
    events = await run_in_threadpool(services.turns.resume, thread, Decision(body.approve, by, body.reason), principal.id)
    answer = await collect_answer(request, events, threading.Event())
    return ok({"kind": "conversation", "answer": chat_data(answer)})


__all__ = ["router"]
