"""/api/v1/alerts: the watch's alerts — list (filters, paging), one alert, acknowledge (operator),
close (admin), and a live stream of their changes as server-sent events for the mini-program.

The stream (``GET /api/v1/alerts/stream``) is framed like the chat stream (``assistant.api.sse``,
read with ``wx.request({enableChunked: true})``), plus an ``id: <seq>`` line per event: a client
that reconnects sends it back as ``Last-Event-ID`` (or ``?after=``) and gets every change after
it, none twice. Without either it starts at the newest change (only what happens next). The
server polls the alert store (a few SQLite reads a second per client: alerts are rare, and the
watch may be another process, so there is nothing in memory to wait on) and sends ``: ping``
comments while nothing changes; it stops when the client goes away.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Literal

from fastapi import Body, FastAPI, Header, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.app import api_router, get_services
from assistant.api.auth import AdminPrincipal, CurrentPrincipal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.routes.events import document_events
from assistant.api.routes.turns import display_name
from assistant.api.sse import HEARTBEAT_S, PING, SSE_HEADERS, SSE_MEDIA_TYPE, sse_event

router = api_router(tags=["alerts"], responses=error_responses(401))
Severity = Literal["info", "warning", "alarm", "critical"]
AlertId = PathParam(ge=1, le=10**12, description="An alert id (a number).")
LATEST_MS = 4_102_444_800_000  # 2100-01-01: later 'since' values mean nothing (and SQLite ints end at 2^63)
POLL_S = 0.25  # how often a stream looks for changes: an alert reaches the client well within 2 s
BATCH = 100


class AlertOut(BaseModel):
    id: int
    target: str = Field(description="The asset or zone the alert is about.")
    cause: str = Field(description="What is wrong, e.g. sensor_flatline:TT-101, limit_high:TT-101, anomaly:P-101.")
    state: Literal["open", "acknowledged", "closed"]
    severity: Severity = Field(description="The worst seen while active.")
    title: str
    explanation: dict[str, Any] = Field(description="Readings, limit, sources behind it (free JSON).")
    first_seen: int = Field(description="ms since the Unix epoch, UTC.")
    last_seen: int
    count: int = Field(description="Findings folded into this alert.")
    escalations: int
    suppressed: int = Field(description="Findings within the quiet period after the close.")
    acked_by: str | None = None
    acked_at: int | None = None
    closed_by: str | None = None
    closed_at: int | None = None
    close_note: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list, description="History (in GET /alerts/{id}).")


class AlertPageOut(BaseModel):
    alerts: list[AlertOut]
    total: int = Field(description="Alerts matching the filters, all pages.")
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")


class AlertChangeOut(BaseModel):
    seq: int = Field(description="The event id: send it back as Last-Event-ID (or ?after=) to resume.")
    alert_id: int
    ts: int
    actor: str
    action: str = Field(description="opened, escalated, acknowledged, closed.")
    detail: dict[str, Any] | None = None
    alert: AlertOut = Field(description="The alert as it is now.")


class AlertCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000, description="What was done (optional).")


@router.get("/alerts", response_model=Envelope[AlertPageOut], responses=error_responses(422),
            summary="Alerts, last seen first, with filters and paging")
async def list_alerts(
    request: Request,
    principal: CurrentPrincipal,
    state: Literal["open", "acknowledged", "closed", "active"] | None = Query(
        None, description="active = open or acknowledged."),
    severity: Severity | None = Query(None),
    min_severity: Severity | None = Query(None, description="This severity or worse."),
    target: str | None = Query(None, min_length=1, max_length=64, description="An asset or zone id."),
    since: int | None = Query(None, ge=0, le=LATEST_MS, description="Last seen at or after (ms since the epoch)."),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Any:
    service = get_services(request).alerts
    return ok(await run_in_threadpool(service.list_alerts, state, severity, min_severity, target, since, limit, offset))


@router.get("/alerts/stream", response_class=StreamingResponse,
            responses={200: {"description": "Server-sent events: `id: <seq>` and `data: {AlertChange json}` per "
                             "change, separated by blank lines; `: ping` comments are keep-alives. Never ends by "
                             "itself: reconnect with Last-Event-ID to resume.",
                             "content": {SSE_MEDIA_TYPE: {"schema": {
                                 "type": "object", "required": ["data"],
                                 "properties": {"id": {"type": "string", "pattern": r"^\d+$"},
                                                "data": {"type": "string", "contentMediaType": "application/json",
                                                         "contentSchema": {"$ref": "#/components/schemas/AlertChange"}}}}}}},
                       **error_responses(422)},
            summary="Changes of alerts as server-sent events (resumable)")
async def stream_alerts(
    request: Request,
    principal: CurrentPrincipal,
    after: int | None = Query(None, ge=0, le=10**15, description="Resume after this change (its seq)."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", pattern=r"^\d{1,15}$",
                                       description="Sent by a reconnecting client; wins over ?after=."),
) -> StreamingResponse:
    service = get_services(request).alerts
    cursor = int(last_event_id) if last_event_id is not None else after
    if cursor is None:
        cursor = await run_in_threadpool(service.alert_cursor)
    return StreamingResponse(alert_events(request, service, cursor), media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)


async def alert_events(request: Request, service: Any, cursor: int) -> AsyncIterator[bytes]:
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        changes = await run_in_threadpool(service.alert_changes, cursor, BATCH)
        for change in changes:
            cursor = change["seq"]
            yield f"id: {cursor}\n".encode() + sse_event(change)
        if changes:
            quiet_since = time.monotonic()
            if len(changes) == BATCH:
                continue  # more are waiting
        elif time.monotonic() - quiet_since >= HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield PING
        await asyncio.sleep(POLL_S)


@router.get("/alerts/{alert_id}", response_model=Envelope[AlertOut], responses=error_responses(404, 422),
            summary="One alert with its history")
async def get_alert(request: Request, principal: CurrentPrincipal, alert_id: int = AlertId) -> Any:
    return ok(await run_in_threadpool(get_services(request).alerts.get_alert, alert_id))


@router.post("/alerts/{alert_id}/ack", response_model=Envelope[AlertOut], responses=error_responses(404, 409, 422),
             summary="Acknowledge an open alert (you have seen it)")
async def acknowledge(request: Request, principal: CurrentPrincipal, alert_id: int = AlertId) -> Any:
    service = get_services(request).alerts
    return ok(await run_in_threadpool(service.acknowledge_alert, alert_id, display_name(principal)))


@router.post("/alerts/{alert_id}/close", response_model=Envelope[AlertOut],
             responses=error_responses(403, 404, 409, 422), summary="Close an alert (admin), with an optional note")
async def close(request: Request, principal: AdminPrincipal, alert_id: int = AlertId,
                body: AlertCloseIn | None = Body(None)) -> Any:
    service = get_services(request).alerts
    note = body.note if body else ""
    return ok(await run_in_threadpool(service.close_alert, alert_id, display_name(principal), note))


def install(app: FastAPI) -> None:
    """Document the stream's event, and count alerts not yet closed by severity for /metrics."""
    document_events(app, {"AlertChange": AlertChangeOut})
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        return
    gauge = metrics.registry.gauge("onsite_alerts_open", "Alerts not yet closed (open or acknowledged), by severity.",
                                   ("severity",))
    for severity in Severity.__args__:
        gauge.set_function(lambda s=severity: _active(app, s), severity=severity)


def _active(app: FastAPI, severity: str) -> float:
    alerts = getattr(getattr(app.state, "services", None), "alerts", None)
    return float(alerts.alert_counts().get(severity, 0)) if alerts is not None else 0.0
