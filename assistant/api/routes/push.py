"""/api/v1/push: the push outbox for admins — what was sent, what waits, what failed and why
(``GET /push/outbox``, filters state and channel) and a failed message requeued after its cause
was fixed (``POST /push/outbox/{id}/retry``). Plus the push metrics on /metrics:
``onsite_pushes_total{channel,outcome}`` (from the dispatcher this process runs) and
``onsite_push_outbox_pending`` (from the outbox, whoever runs the dispatcher).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal
from assistant.api.envelope import Envelope, error_responses, ok

router = api_router(tags=["push"], responses=error_responses(401, 403))
RowId = PathParam(ge=1, le=10**12, description="An outbox row id (a number).")
_open_lock = threading.Lock()


class PushMessageOut(BaseModel):
    key: str = Field(description="Idempotency key, e.g. alert:42:opened:17.")
    kind: str
    target: str
    severity: str
    title: str
    body: str
    created_ms: int
    lang: str
    link: str
    fields: dict[str, Any]


class OutboxRowOut(BaseModel):
    id: int
    key: str
    channel: str = Field(description="e.g. webhook:ops-relay, wechat.")
    recipient: str = Field(description="The webhook's name, a WeChat openid …")
    kind: str
    severity: str
    message: PushMessageOut
    state: Literal["pending", "sent", "failed"]
    attempts: int
    created_ms: int
    next_try_ms: int = Field(description="When a pending row is tried next (ms since the epoch).")
    last_try_ms: int | None
    sent_ms: int | None
    last_error: str | None = Field(description="The last failure, e.g. http_503, timeout, http_404.")
    detail: dict[str, Any] | None
    delivery_id: str = Field(description="Sent as X-Onsite-Delivery; the same on every attempt.")


class OutboxPageOut(BaseModel):
    rows: list[OutboxRowOut]
    total: int
    next_offset: int | None


def outbox(app: FastAPI):
    """The app's handle on the outbox (its own SQLite connection, opened on first use)."""
    handle = getattr(app.state, "push_outbox", None)
    if handle is None:
        from tools.push.outbox import Outbox

        with _open_lock:
            handle = getattr(app.state, "push_outbox", None)
            if handle is None:
                handle = app.state.push_outbox = Outbox(app.state.services.settings.push_db)
    return handle


@router.get("/push/outbox", response_model=Envelope[OutboxPageOut], responses=error_responses(422),
            summary="The push outbox, newest first (admin)")
async def list_outbox(
    request: Request,
    principal: AdminPrincipal,
    state: Literal["pending", "sent", "failed"] | None = Query(None),
    channel: str | None = Query(None, min_length=1, max_length=100, description="e.g. webhook:ops-relay."),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Any:
    get_services(request)
    box = outbox(request.app)
    return ok(await run_in_threadpool(box.list, state, channel, limit, offset))


@router.post("/push/outbox/{row_id}/retry", response_model=Envelope[OutboxRowOut],
             responses=error_responses(404, 409, 422), summary="Requeue a failed push (admin)")
async def retry(request: Request, principal: AdminPrincipal, row_id: int = RowId) -> Any:
    get_services(request)
    box = outbox(request.app)
    return ok((await run_in_threadpool(box.retry_failed, row_id)).to_dict())


def install(app: FastAPI) -> None:
    """The push metrics: the pending gauge now, the outcome counter once a dispatcher is attached."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        return
    metrics.registry.counter("onsite_pushes_total", "Push attempts by channel and outcome (sent, failed for good, "
                             "retry: a transient failure, tried again later).", ("channel", "outcome"))
    gauge = metrics.registry.gauge("onsite_push_outbox_pending", "Push messages waiting in the outbox (not yet "
                                   "sent, not failed).")
    gauge.set_function(lambda: _pending(app))


def attach_dispatcher(app: FastAPI, dispatcher: Any) -> None:
    """Count the outcomes of ``dispatcher`` (run by this process) in ``onsite_pushes_total``."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        return
    counter = metrics.registry.counter("onsite_pushes_total", "Push attempts by channel and outcome.",
                                       ("channel", "outcome"))
    for name in dispatcher.channels:
        for outcome in ("sent", "failed", "retry"):
            counter.inc(0, channel=name, outcome=outcome)  # every series present from the start
    dispatcher.observers.append(lambda channel, outcome: counter.inc(channel=channel, outcome=outcome))
    app.state.push_dispatcher = dispatcher


def _pending(app: FastAPI) -> float:
    path = getattr(getattr(getattr(app.state, "services", None), "settings", None), "push_db", None)
    if path is None or not path.exists():
        return 0.0
    return float(outbox(app).pending_count())
