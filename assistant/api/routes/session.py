"""/api/v1/auth/session: signing in to the chat page with an API key.

    POST   /api/v1/auth/session  {"key": "..."} → who signed in, and a cookie holding one of our
           signed tokens (HttpOnly, SameSite=Strict, Path=/, Secure when the request is https);
           a wrong key → 401 envelope and no cookie.
    DELETE /api/v1/auth/session  → the cookie is cleared (signing out).

The cookie is read by the chat page only (``ui.login``): the REST API keeps taking credentials in
headers, so a browser tricked into calling the API never sends an identity with it. A page session
lasts a shift at most (``SESSION_MAX_S``, shorter when ``api.token_ttl_s`` is). The HTML sign-in
form (``/ui-login``) uses ``sign_in`` and the cookie helpers below, so both ways behave alike.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from pydantic import BaseModel, Field

from assistant.api.app import api_router
from assistant.api.auth import AuthError, ForbiddenError, IssuedToken, Principal
from assistant.api.envelope import Envelope, error_responses, ok
from assistant.api.ratelimit import client_ip

log = logging.getLogger("onsite.api.session")

SESSION_COOKIE = "onsite_session"
SESSION_MAX_S = 12 * 3600  # one shift; the person signs in again after it
MAX_KEY_CHARS = 512


class SessionIn(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS, description="One of the server's API keys.")


class SessionData(BaseModel):
    principal: Principal
    expires_in: int = Field(description="Seconds until the session ends.")
    expires_at: int = Field(description="End of the session, unix seconds.")


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
    principal = authenticator.keys.lookup(key.strip()) if key and len(key) <= MAX_KEY_CHARS else None
    if principal is None:
        log.warning("page sign-in refused from %s: wrong key", client_ip(request))
        raise AuthError("That key is not valid.")
    ttl = min(SESSION_MAX_S, int(authenticator.signer.ttl_s))
    issued = authenticator.signer.issue(principal, ttl_s=ttl)
    log.info("page sign-in of %s (%s) from %s", principal.id, principal.role, client_ip(request))
    return principal, issued


def set_session_cookie(response: Response, request: Request, issued: IssuedToken) -> None:
    response.set_cookie(SESSION_COOKIE, issued.token, max_age=issued.expires_in, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


router = api_router(tags=["auth"])


@router.post("/auth/session", response_model=Envelope[SessionData], responses=error_responses(401, 403, 422),
             summary="Sign in to the chat page with an API key (sets the session cookie)")
def create_session(body: SessionIn, request: Request, response: Response) -> Any:
    principal, issued = sign_in(request, body.key)
    set_session_cookie(response, request, issued)
    response.headers["Cache-Control"] = "no-store"
    return ok(SessionData(principal=principal, expires_in=issued.expires_in, expires_at=issued.expires_at))


@router.delete("/auth/session", response_model=Envelope[dict[str, Any]], summary="Sign out of the chat page")
def delete_session(request: Request, response: Response) -> Any:
    clear_session_cookie(response, request)
    return ok({"signed_out": True})


__all__ = ["SESSION_COOKIE", "clear_session_cookie", "router", "set_session_cookie", "sign_in"]
