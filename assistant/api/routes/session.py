"""Sign-in sessions: the chat page's cookie, renewal, sign-out and what admins can end.

    POST   /api/v1/auth/session  {"key": "..."} → who signed in, and a cookie holding one of our
           signed tokens (HttpOnly, SameSite=Strict, Path=/, Secure when the request is https);
           a wrong key → 401 envelope and no cookie.
    DELETE /api/v1/auth/session  → signing out: the session of the cookie (and of a bearer token)
           is ended on the server, and the cookie cleared. The answer is the same whatever was sent.
    POST   /api/v1/auth/refresh  (Bearer <our token>) → a new token for the same, still valid
           session (sliding renewal up to the session's absolute end; then sign in again).
    GET    /api/v1/auth/sessions[?principal=&include_ended=]  (admin) → sessions
    DELETE /api/v1/auth/sessions/{id}  (admin) → end one session
    POST   /api/v1/auth/revoke {"principal": "key:alice"}  (admin) → end every session of a person

The cookie is read by the chat page only (``ui.login``, which renews it while the page is used):
the REST API keeps taking credentials in headers, so a browser tricked into calling the API never
sends an identity with it. A session lasts a shift at most (``api.session_max_s``); each token
``api.token_ttl_s``. The HTML sign-in form (``/ui-login``) uses ``sign_in`` and the cookie helpers
below, so both ways behave alike. Admin actions are logged (logger ``onsite.api.session``) and kept
in the session store with who did them and why.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from assistant.api.app import LoginData, api_router
from assistant.api.auth import (
    TOKEN_PREFIX,
    AdminPrincipal,
    AuthError,
    ForbiddenError,
    IssuedToken,
    Principal,
    request_credential,
)
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.ratelimit import client_ip
from assistant.errors import NotFoundError

log = logging.getLogger("onsite.api.session")

SESSION_COOKIE = "onsite_session"
SESSION_MAX_S = 12 * 3600  # one shift: the default of api.session_max_s
MAX_KEY_CHARS = 512


class SessionIn(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS, description="One of the server's API keys.")


class SessionData(BaseModel):
    principal: Principal
    expires_in: int = Field(description="Seconds until the cookie's token expires (the page renews it while used).")
    expires_at: int = Field(description="Expiry of the cookie's token, unix seconds.")
    session_expires_at: int | None = Field(None, description="Absolute end of the session, unix seconds.")


class SessionInfo(BaseModel):
    id: str
    principal: str
    role: str
    name: str
    via: str
    from_key: bool = Field(description="Made by signing in with an API key (ends when the key is removed).")
    created: float
    renewed: float
    expires: float = Field(description="Absolute end, unix seconds.")
    revoked_at: float | None = None
    reason: str | None = None
    revoked_by: str | None = None
    active: bool


class RevokeIn(BaseModel):
    principal: str = Field(min_length=1, max_length=200, description="Whose sessions end: 'key:<name>' or 'wx:<openid>'.")
    reason: str = Field("revoked by an admin", max_length=300, description="Why; kept with the sessions and logged.")


def keys_configured(request: Request) -> bool:
    """Whether the page asks for a sign-in: some API key is configured."""
    authenticator = getattr(request.app.state, "authenticator", None)
    return authenticator is not None and len(authenticator.keys) > 0


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site (``Origin`` of another
    host, or ``Sec-Fetch-Site: cross-site``); requests that say nothing (curl, tests) pass."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host") or request.url.netloc
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower()


def sign_in(request: Request, key: str) -> tuple[Principal, IssuedToken]:
    """Check ``key`` against the configured API keys (tokens are not accepted: a session cannot
    extend itself) and issue the session's token; AuthError otherwise."""
    if not same_origin(request):
        raise ForbiddenError("Sign in from the server's own page.")
    if not keys_configured(request):
        raise AuthError("No API keys are configured on this server; the chat page needs no sign-in.")
    authenticator = request.app.state.authenticator
    signed_in = authenticator.sign_in_with_key(key.strip()) if key and len(key) <= MAX_KEY_CHARS else None
    if signed_in is None:
        log.warning("page sign-in refused from %s: wrong key", client_ip(request))
        raise AuthError("That key is not valid.")
    principal, issued = signed_in
    log.info("page sign-in of %s (%s) from %s", principal.id, principal.role, client_ip(request))
    return principal, issued


def set_session_cookie(response: Response, request: Request, issued: IssuedToken) -> None:
    response.set_cookie(SESSION_COOKIE, issued.token, max_age=issued.expires_in, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def sign_out(request: Request) -> None:
    """End the sessions of the request's cookie and of its bearer token, if they are ours (an API
    key presented directly has no session: it ends when it is removed from the configuration)."""
    authenticator = request.app.state.authenticator
    for credential in (request.cookies.get(SESSION_COOKIE), request_credential(request)):
        if credential and credential.startswith(TOKEN_PREFIX + ".") and len(credential) <= 4096:
            authenticator.sign_out(credential)


router = api_router(tags=["auth"])


@router.post("/auth/session", response_model=Envelope[SessionData], responses=error_responses(401, 403, 422),
             summary="Sign in to the chat page with an API key (sets the session cookie)")
def create_session(body: SessionIn, request: Request, response: Response) -> Any:
    principal, issued = sign_in(request, body.key)
    set_session_cookie(response, request, issued)
    response.headers["Cache-Control"] = "no-store"
    return ok(SessionData(principal=principal, expires_in=issued.expires_in, expires_at=issued.expires_at,
                          session_expires_at=issued.session_expires_at))


@router.delete("/auth/session", response_model=Envelope[dict[str, Any]], summary="Sign out: end the session")
def delete_session(request: Request, response: Response) -> Any:
    sign_out(request)
    clear_session_cookie(response, request)
    response.headers["Cache-Control"] = "no-store"
    return ok({"signed_out": True})


@router.post("/auth/refresh", response_model=Envelope[LoginData], responses=error_responses(401, 403),
             summary="Renew our bearer token: a new token for the same, still valid session")
def refresh(request: Request, response: Response) -> Any:
    credential = request_credential(request)
    if not credential:
        raise AuthError("Sign in first (Authorization: Bearer <token>).")
    if not credential.startswith(TOKEN_PREFIX + "."):
        raise ForbiddenError("Only our tokens are renewed; an API key does not expire.")
    principal, issued = request.app.state.authenticator.refresh(credential)
    response.headers["Cache-Control"] = "no-store"
    return ok(LoginData(token=issued.token, expires_in=issued.expires_in, expires_at=issued.expires_at,
                          principal=principal, session_expires_at=issued.session_expires_at or issued.expires_at))


@router.get("/auth/sessions", response_model=Envelope[list[SessionInfo]], responses=error_responses(401, 403, 422),
            summary="Sign-in sessions (admin)")
def list_sessions(request: Request, admin: AdminPrincipal,
                  principal: str | None = Query(None, max_length=200, description="Only this person's."),
                  include_ended: bool = Query(False, description="Also ended ones (kept 30 days)."),
                  limit: int = Query(200, ge=1, le=1000)) -> Any:
    store = request.app.state.authenticator.sessions
    now = store.clock()
    return ok([SessionInfo(**r.to_dict(now)) for r in store.list(principal=principal, include_ended=include_ended,
                                                                  limit=limit)])


@router.delete("/auth/sessions/{session_id}", response_model=Envelope[dict[str, Any]],
               responses=error_responses(401, 403, 404), summary="End one sign-in session (admin)")
def revoke_session(session_id: str, request: Request, admin: AdminPrincipal) -> Any:
    if len(session_id) > 64 or not request.app.state.authenticator.sessions.revoke(
            session_id, reason="revoked by an admin", by=admin.id):
        raise NotFoundError("No live session with that id.")
    log.warning("AUDIT session %s revoked by %s from %s", session_id, admin.id, client_ip(request))
    return ok({"revoked": session_id})


@router.post("/auth/revoke", response_model=Envelope[dict[str, Any]], responses=error_responses(401, 403, 422),
             summary="End every sign-in session of a person (admin)")
def revoke_principal(body: RevokeIn, request: Request, admin: AdminPrincipal) -> Any:
    ended = request.app.state.authenticator.sessions.revoke_principal(body.principal, reason=body.reason, by=admin.id)
    log.warning("AUDIT sessions of %s revoked by %s from %s (%d live ended): %s", body.principal, admin.id,
                client_ip(request), ended, body.reason)
    return ok({"principal": body.principal, "sessions_ended": ended})


__all__ = ["SESSION_COOKIE", "clear_session_cookie", "router", "set_session_cookie", "sign_in", "sign_out"]
