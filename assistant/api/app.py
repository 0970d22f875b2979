"""The FastAPI application behind ``onsite serve``: envelope and error handling, limits, metrics,
health probes and authentication. Feature routers are added by ``app.include_router(...)``;
build them with ``api_router()`` so they share the prefix, the rate limit and the error schemas.

Middleware, outermost first: security headers → CORS (only ``api.cors_origins``; none by default)
→ metrics → catch-all 500 → body limit → FastAPI's exception handlers → routes.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from assistant.api.auth import (
    AuthError,
    Authenticator,
    CurrentPrincipal,
    ForbiddenError,
    Principal,
    resolve,
)
from assistant.api.envelope import (
    CatchAllMiddleware,
    Envelope,
    error_response,
    error_responses,
    install_error_handlers,
    ok,
    use_envelope_in_openapi,
)
from assistant.api.docs import install_docs
from assistant.api.headers import SecurityHeadersMiddleware
from assistant.api.metrics import CONTENT_TYPE, METRICS, ApiMetrics, MetricsMiddleware
from assistant.api.query_params import reject_unknown_query
from assistant.api.ratelimit import BodyLimitMiddleware, TokenBucketLimiter, rate_limit
from assistant.api.wechat import WeChatClient
from assistant.errors import OnsiteError
from assistant.redact import redact_paths
from assistant.services import Services
from assistant.settings import Settings

log = logging.getLogger("onsite.api")

API_PREFIX = "/api/v1"
Readiness = Callable[[], dict[str, Any]]


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter under /api/v1 with the per-client rate limit and the error responses every
    endpoint can give (422, 429, 500) in the OpenAPI document: 422 also because query parameters an
    operation does not declare are refused (unknown_query_parameter).
    Add others per route with ``responses=error_responses(401, 403)``."""
    kwargs.setdefault("prefix", API_PREFIX)
    dependencies = [Depends(rate_limit), Depends(reject_unknown_query), *kwargs.pop("dependencies", [])]
    responses = {**error_responses(422, 429, 500), **kwargs.pop("responses", {})}
    return APIRouter(dependencies=dependencies, responses=responses, **kwargs)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


class ServiceUnavailableError(OnsiteError):
    """The assistant service is not there yet (503)."""

    http_status = 503
    error_kind = "starting"
    retry_after_s = 5.0


def get_services(request: Request) -> Services:
    """The services given to ``create_app`` (503 until there are some)."""
    service = getattr(request.app.state, "services", None)
    if service is None:
        raise ServiceUnavailableError("The assistant is starting; try again shortly.")
    return service


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


# --- auth routes --------------------------------------------------------------------------------


class WeChatLoginRequest(BaseModel):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-+/=.]+$",
                      description="The code from wx.login (valid 5 minutes, usable once).")


class LoginData(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'.")
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    expires_at: int = Field(description="Expiry, unix seconds.")
    principal: Principal
    session_expires_at: int | None = Field(None, description="Absolute end of the session, unix seconds: renew "
                                           "with POST /api/v1/auth/refresh until then, then sign in again.")


auth_router = api_router(tags=["auth"])


@auth_router.post(
    "/auth/wechat/login",
    response_model=Envelope[LoginData],
    responses=error_responses(401, 403, 502, 503),
    summary="Exchange a wx.login code for our bearer token",
)
def wechat_login(body: WeChatLoginRequest, request: Request) -> Any:
    state = request.app.state
    identity = state.wechat.code2session(body.code)
    settings: Settings = state.settings
    role = "admin" if identity.openid in settings.api.wechat_admin_openids else settings.api.wechat_default_role
    principal = Principal(id=f"wx:{identity.openid}", role=role, name="WeChat user", via="wechat")
    issued = state.authenticator.issue(principal)
    log.info("WeChat sign-in of %s as %s", principal.id, principal.role)
    return ok(LoginData(token=issued.token, expires_in=issued.expires_in, expires_at=issued.expires_at,
                        principal=principal, session_expires_at=issued.session_expires_at))


@auth_router.get("/auth/me", response_model=Envelope[Principal], responses=error_responses(401),
                 summary="Who the credentials belong to")
def me(principal: CurrentPrincipal) -> Any:
    return ok(principal)


# --- probes -------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str = "ok"


probe_router = APIRouter(tags=["probes"])


@probe_router.get("/healthz", response_model=Envelope[Health], summary="Liveness: the process answers")
def healthz() -> Any:
    return ok(Health())


@probe_router.get(
    "/readyz",
    response_model=Envelope[dict[str, Any]],
    responses={503: {"model": Envelope[dict[str, Any]], "description": "Not ready; data says why"}},
    summary="Readiness: can it answer questions now",
)
async def readyz(request: Request) -> Any:
    readiness: Readiness | None = request.app.state.readiness
    if readiness is None:
        return ok({"ready": True})
    try:
        report = dict(await run_in_threadpool(readiness))
    except Exception as exc:
        log.warning("readiness check failed: %s", exc, exc_info=exc)
        return error_response(503, "Readiness check failed.", error="not_ready", retry_after_s=5, ready=False)
    ready = bool(report.get("ready", True))
    report["ready"] = ready
    if not _is_admin(request):  # the probe needs no sign-in: file names only, no folders
        report = redact_paths(report)
    if ready:
        return ok(jsonable_encoder(report))
    return JSONResponse({"code": 503, "msg": str(report.get("reason") or "Not ready."), "data": jsonable_encoder(report)},
                        status_code=503, headers={"Retry-After": "5"})


class MetricsOffError(OnsiteError):
    http_status = 404
    error_kind = "not_found"


def _is_admin(request: Request) -> bool:
    principal = resolve(request).principal
    return principal is not None and principal.has_role("admin")


def _metrics_guard(request: Request) -> None:
    """``api.metrics``: 'off' → 404, 'key' (default) → admins only, 'open' → anyone."""
    mode = request.app.state.settings.api.metrics
    if mode == "off":
        raise MetricsOffError("Metrics are off on this server (api.metrics).")
    if mode == "key":
        auth = resolve(request)
        if auth.principal is None:
            raise auth.error or AuthError("Sign in first.")
        if not auth.principal.has_role("admin"):
            raise ForbiddenError("Metrics need the admin role.")


@probe_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}, "description": "Prometheus text format 0.0.4"},
               **error_responses(401, 403, 404)},
    summary="Metrics in the Prometheus text format (api.metrics: admins only by default)",
    dependencies=[Depends(_metrics_guard)],
)
def metrics(request: Request) -> Response:
    return Response(get_metrics(request).render(), media_type=CONTENT_TYPE)


# --- the app ------------------------------------------------------------------------------------


def create_app(
    settings: Settings | None = None,
    *,
    readiness: Readiness | None = None,
    services: Services | None = None,
    metrics: ApiMetrics | None = None,
    wechat: WeChatClient | None = None,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """The API app. ``readiness()`` returns ``{"ready": bool, ...}`` (503 when not ready); ``services``
    is what ``get_services`` hands to endpoints. Everything else defaults from ``settings``."""
    settings = settings or Settings()
    api = settings.api
    metrics = metrics or METRICS
    middleware = [
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(CatchAllMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=int(api.max_upload_mb * 1024 * 1024)),
    ]
    # Always installed, also with no origins: Gradio then leaves CORS to it (gradio's own
    # middleware reflects any Origin, with credentials, when the page is reached by a LAN address).
    middleware.insert(0, Middleware(
        CORSMiddleware, allow_origins=api.cors_origins, allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        expose_headers=["Retry-After"] if api.cors_origins else (),
    ))
    middleware.insert(0, Middleware(SecurityHeadersMiddleware))
    app = FastAPI(
        title="onsite API",
        version="1",
        description="Offline assistant for plants and greenhouses. Every JSON answer is an envelope "
        "`{code, msg, data}`: code 0 on success, otherwise the HTTP status, which is also set.",
        middleware=middleware,
        docs_url=None,  # /docs and /redoc come from assistant.api.docs, with their assets served locally
        redoc_url=None,
        openapi_url="/openapi.json" if api.docs else None,
    )
    app.state.settings = settings
    app.state.readiness = readiness
    app.state.services = services
    app.state.metrics = metrics
    app.state.wechat = wechat or WeChatClient.from_settings(api)
    app.state.authenticator = authenticator or Authenticator.from_settings(settings)
    app.state.rate_limiter = (
        TokenBucketLimiter(api.rate_limit_per_minute, api.rate_limit_burst) if api.rate_limit_per_minute > 0 else None
    )
    install_error_handlers(app)
    use_envelope_in_openapi(app)
    if api.docs:
        install_docs(app, "/openapi.json")
    app.include_router(probe_router)
    app.include_router(auth_router)
    return app


__all__ = ["API_PREFIX", "CurrentPrincipal", "api_router", "create_app", "get_services", "get_settings"]
