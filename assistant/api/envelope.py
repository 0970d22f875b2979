"""The JSON envelope every API answer travels in, and the handlers that turn every error into one.

``{"code": 0, "msg": "ok", "data": {...}}`` on success. On failure ``code`` is the HTTP status
(never 0), ``msg`` is a sentence for a person and ``data`` is ``{"error": "<kind>", ...}`` with a
stable machine-readable kind (``unauthorized``, ``model_busy``, ``wechat_invalid_code``, ``photo_refused``
with ``photo`` / ``filename`` ...). The
real HTTP status is set as well: the mini-program's ``wx.request`` calls ``success`` for any status
and reads the body, other clients read the status. 429 and 503 carry ``Retry-After`` when known.
"""

from __future__ import annotations

import http
import logging
import math
import re
import uuid
from typing import Any, Callable, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import USER_ERRORS, error_kind, http_status, kind_of

log = logging.getLogger("onsite.api")

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Success: ``code`` 0 and the payload in ``data``."""

    code: int = Field(0, description="0 on success; the HTTP status on failure.")
    msg: str = Field("ok", description="'ok', or what went wrong in plain words.")
    data: T | None = Field(None, description="The payload.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad value is, e.g. ['body', 'code'].")
    msg: str
    type: str


class ErrorData(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Machine-readable kind, e.g. 'unauthorized', 'model_busy', 'validation_failed'.")
    retry_after_s: int | None = Field(None, description="Seconds to wait before retrying (429 / 503).")
    errors: list[FieldError] | None = Field(None, description="The bad fields of a 422.")
    request_id: str | None = Field(None, description="Quote this to the operator: it is in the server log (500).")


class ErrorEnvelope(BaseModel):
    """Failure: ``code`` equals the HTTP status."""

    code: int = Field(description="The HTTP status (never 0).")
    msg: str = Field(description="What went wrong, for a person.")
    data: ErrorData


def ok(data: Any = None, msg: str = "ok") -> dict[str, Any]:
    """The success envelope. Return it from an endpoint declared with
    ``response_model=Envelope[YourModel]``; ``data`` may be a pydantic model, a dict or None."""
    return {"code": 0, "msg": msg, "data": data}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` as delay-seconds (RFC 9110: a non-negative integer), at least 1."""
    return str(max(1, math.ceil(seconds)))


ErrorFormat = Callable[[int, str, dict[str, Any]], Any]
"""(status, msg, data) → the JSON body, for paths that must not use the envelope."""


def envelope_error_body(status: int, msg: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"code": status, "msg": msg, "data": data}


def openai_error_body(status: int, msg: str, data: dict[str, Any]) -> dict[str, Any]:
    """The error shape OpenAI clients expect: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": msg, "type": data.get("error", "error"), "param": None, "code": data.get("error")}}


def set_error_format(app: FastAPI, path_prefix: str, formatter: ErrorFormat) -> None:
    """Errors of requests under ``path_prefix`` (e.g. ``/v1`` for the OpenAI-compatible API) get
    ``formatter``'s body instead of the envelope; status and headers stay the same."""
    formats = getattr(app.state, "error_formats", None)
    if formats is None:
        formats = app.state.error_formats = []
    formats.append((path_prefix.rstrip("/"), formatter))
    formats.sort(key=lambda item: -len(item[0]))  # longest prefix wins


def _formatter_for(scope: Scope | None) -> ErrorFormat:
    if scope is not None:
        app, path = scope.get("app"), scope.get("path", "")
        for prefix, formatter in getattr(getattr(app, "state", None), "error_formats", None) or ():
            if path == prefix or path.startswith(prefix + "/"):
                return formatter
    return envelope_error_body


def error_response(
    status: int,
    msg: str,
    *,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    retry_after_s: float | None = None,
    scope: Scope | None = None,
    **extra: Any,
) -> Response:
    """An error envelope with the real HTTP status (and ``Retry-After`` when given). With the
    request's ``scope``, a format set by ``set_error_format`` for its path is used instead."""
    headers = dict(headers or {})
    data: dict[str, Any] = {"error": error or kind_of(_phrase(status))}
    if retry_after_s is not None:
        headers["Retry-After"] = retry_after_header(retry_after_s)
        data["retry_after_s"] = int(headers["Retry-After"])
    data.update({k: v for k, v in extra.items() if v is not None})
    body = _formatter_for(scope)(status, msg, jsonable_encoder(data))
    return JSONResponse(body, status_code=status, headers=headers or None)


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials (WWW-Authenticate: Bearer)",
    403: "Signed in, but the role does not allow this",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid request (data.errors lists the fields)",
    429: "Too many requests; see Retry-After",
    500: "Internal error (data.request_id is in the server log)",
    502: "An upstream service answered badly",
    503: "Not ready or an upstream service is unavailable; see Retry-After",
    504: "Deadline exceeded",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for error statuses, all with the ``ErrorEnvelope`` schema."""
    return {s: {"model": ErrorEnvelope, "description": _DESCRIPTIONS.get(s, _phrase(s))} for s in statuses}


# --- exception handlers -------------------------------------------------------------------------


async def onsite_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, USER_ERRORS)
    status = http_status(exc)
    kind = error_kind(exc)
    if status == 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    elif status > 500:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, exc, type(exc).__name__)
    else:
        log.info("%s %s: %s (%s)", request.method, request.url.path, exc, type(exc).__name__)
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    retry = getattr(exc, "retry_after_s", None)
    extra = dict(getattr(exc, "error_data", None) or {})
    return error_response(status, exc.user_message, error=kind, headers=headers, retry_after_s=retry,
                          scope=request.scope, **extra)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status < 200 or status in (204, 205, 304):  # no body allowed
        return Response(status_code=status, headers=headers)
    detail = exc.detail
    msg = detail if isinstance(detail, str) and detail else _phrase(status)
    extra: dict[str, Any] = {} if isinstance(detail, str) or detail is None else {"detail": detail}
    retry = None
    if "Retry-After" in headers:
        try:
            retry = float(headers.pop("Retry-After"))
        except ValueError:
            pass
    return error_response(status, msg, headers=headers, retry_after_s=retry, scope=request.scope, **extra)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is left out on purpose: it may be large or secret (a login code, a key).
    return [
        {"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    first = errors[0] if errors else None
    where = ".".join(str(p) for p in first["loc"]) if first else ""
    msg = f"Invalid request: {where}: {first['msg']}" if first else "Invalid request"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more)"
    return error_response(422, msg, error="validation_failed", errors=errors, scope=request.scope)


def internal_error(request_id: str | None = None, scope: Scope | None = None) -> Response:
    return error_response(
        500,
        "Internal error; the operator can find it in the server log" + (f" (request {request_id})." if request_id else "."),
        error="internal_error",
        request_id=request_id,
        scope=scope,
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Last resort (Starlette's ServerErrorMiddleware); normally CatchAllMiddleware answers first."""
    request_id = uuid.uuid4().hex[:12]
    log.error("unexpected error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return internal_error(request_id, request.scope)


def use_envelope_in_openapi(app: FastAPI) -> None:
    """FastAPI documents its own ``{"detail": [...]}`` body for the 422s it adds to operations that
    take input; ours is the error envelope, so the document is rewritten to say so."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorEnvelope" not in components:
            extra = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(extra.pop("$defs", {}))
            components["ErrorEnvelope"] = extra
        envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response and "HTTPValidationError" in str(response):
                    response["description"] = _DESCRIPTIONS[422]
                    response["content"] = {"application/json": {"schema": envelope_ref}}
        for name in ("HTTPValidationError", "ValidationError"):
            if name in components and f"#/components/schemas/{name}" not in str(schema):
                del components[name]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    for error_class in USER_ERRORS:
        app.add_exception_handler(error_class, onsite_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)


class CatchAllMiddleware:
    """Turns an exception nothing else handled into a 500 envelope: logged with its traceback and a
    request id, no traceback to the client, the server keeps running. If the response had already
    started (a stream), the exception is re-raised and the server closes the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except StarletteHTTPException:
            raise  # Starlette's own signals (e.g. its body limit) are answered further out
        except Exception as exc:
            if started:
                raise
            request_id = uuid.uuid4().hex[:12]
            log.error(
                "unexpected error in %s %s (request %s)", scope.get("method"), scope.get("path"), request_id,
                exc_info=exc,
            )
            await internal_error(request_id, scope)(scope, receive, send)
