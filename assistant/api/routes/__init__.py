"""The feature routes of the API, added to the app of ``assistant.api.app.create_app``.

    chat.py         POST /api/v1/chat, /api/v1/chat/stream (SSE), GET /api/v1/conversations/{id},
                    POST /api/v1/approvals/{id}
    inspections.py  POST /api/v1/uploads, GET /api/v1/uploads/{id}, POST /api/v1/inspections,
                    GET /api/v1/inspections/products
    products.py     POST/GET /api/v1/products, GET/DELETE /api/v1/products/{name}, GET …/jobs/{id}
                    (teach the inspector from good photos; in the request or in the background)
    sensors.py      GET /api/v1/sensors, /api/v1/sensors/{id}/latest, /api/v1/sensors/{id}/series
    workorders.py   GET/POST /api/v1/work-orders, GET /api/v1/work-orders/{id}, POST …/{id}/close
    alerts.py       GET /api/v1/alerts, /alerts/{id}, /alerts/stream (SSE), POST …/{id}/ack, …/{id}/close
    push.py         GET /api/v1/push/outbox, POST /api/v1/push/outbox/{id}/retry (admin)
    subscriptions.py  POST/GET /api/v1/push/subscriptions, PUT /api/v1/push/preferences (WeChat subscribe messages)
    advice.py       GET /api/v1/advice (daily crop advice per zone), POST /api/v1/advice/{zone}/regenerate (admin)
    knowledge.py    /api/v1/knowledge/documents, /jobs, /jobs/{id}, /status, /rollback (admin)
    session.py      POST/DELETE /api/v1/auth/session (page sign-in cookie, sign-out), POST /auth/refresh,
                    GET /auth/sessions, DELETE /auth/sessions/{id}, POST /auth/revoke (admin)
    turns.py        running a turn for a request; the API's shapes of answers and events

The OpenAI-compatible routes are in ``assistant.api.openai_api``; probes and auth in ``app.py``.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response


def install_routes(app: FastAPI) -> None:
    """Add every feature router and the OpenAI-compatible API to ``app``."""
    from assistant.api.openai_api import install_openai
    from assistant.api.routes import advice, alerts, chat, inspections, knowledge, products, push, sensors, session
    from assistant.api.routes import subscriptions, workorders
    from assistant.api.routes.events import document_events

    for module in (chat, inspections, products, sensors, workorders, alerts, advice, push, knowledge, session,
                   subscriptions):
        app.include_router(module.router)
    alerts.install(app)
    push.install(app)
    install_openai(app)
    document_events(app)
    document_bad_bodies(app)
    app.add_exception_handler(405, method_not_allowed)


def document_bad_bodies(app: FastAPI) -> None:
    """A body that is not JSON at all is refused with 400 (before validation) by every operation
    that takes one: say so in the document (envelope, or OpenAI's shape under /v1)."""
    previous = app.openapi

    def openapi() -> dict:
        schema = previous()
        for path, operations in schema.get("paths", {}).items():
            name = "OpenAIError" if path.startswith("/v1/") else "ErrorEnvelope"
            for operation in operations.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", {
                        "description": "Bad request (e.g. a body that cannot be parsed)",
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with ``Allow`` listing every documented method of the path (Starlette names only those
    of the first route it tried, and GET and POST of one path are separate routes here)."""
    from assistant.api.envelope import http_error_handler

    headers = dict(getattr(exc, "headers", None) or {})
    allowed = sorted({m for pattern, methods in _path_methods(request.app) if pattern.match(request.url.path)
                      for m in methods})
    if allowed:
        headers["Allow"] = ", ".join(allowed)
    return await http_error_handler(request, StarletteHTTPException(405, getattr(exc, "detail", None), headers))


def _path_methods(app: FastAPI) -> list[tuple[re.Pattern, set[str]]]:
    cached = getattr(app.state, "path_methods", None)
    if cached is None:
        cached = []
        for path, operations in app.openapi().get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            cached.append((pattern, {m.upper() for m in operations if m in _METHODS}))
        app.state.path_methods = cached
    return cached


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
