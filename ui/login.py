"""Who is using the page: the sign-in page, the session cookie, roles in the page's handlers.

When the server has API keys (``ONSITE_API_KEYS``, ``api.api_keys``, ``api.keys_file``) the page
asks for one: ``/ui-login`` is a plain HTML form (no script, no outside assets; Chinese or English
after the browser's ``Accept-Language``) that posts the key back to ``/ui-login``; the key is checked
as ``POST /api/v1/auth/session`` checks it and the page's session is an HttpOnly, SameSite=Strict
cookie holding one of our signed tokens, whose session is kept on the server; ``PageGate`` renews
the cookie when it is past half its life (up to the session's end). ``/ui-logout`` ends the
session on the server and clears the cookie.

Every request under the page's path needs that session (or an ``Authorization: Bearer`` token or
key): without one the page itself redirects to the sign-in page and everything else under it
answers 401 (``PageGate``, in front of Gradio's own ``auth_dependency`` check). The handlers check
roles themselves with the event's ``gr.Request`` (``PageAuth.access``): operators ask, check photos,
read sensors and confirm what the assistant proposed in their conversation; deciding work orders
and the documents tab need an admin. A decision is recorded under the signed-in person's name.

Without API keys the page is open (one box on a loopback address; ``onsite serve`` refuses other
addresses) and approvals take a typed name.
"""

from __future__ import annotations

import html
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request  # module level: FastAPI reads the routes' annotations from here

from ui.i18n import pick_lang, t

log = logging.getLogger(__name__)

LOGIN_PATH = "/ui-login"
LOGOUT_PATH = "/ui-logout"


def _get(mapping: Any, name: str) -> str | None:
    """A header or cookie from a Starlette mapping, a dict or Gradio's ``Obj`` (any case)."""
    if mapping is None:
        return None
    try:
        value = mapping.get(name)
    except Exception:  # noqa: BLE001
        value = None
    if value is None:
        try:
            value = next((v for k, v in dict(mapping).items() if str(k).lower() == name), None)
        except Exception:  # noqa: BLE001
            value = None
    return value if isinstance(value, str) else None


def display_name(principal: Any) -> str:
    """How a decision is signed: as the API signs it ('name (id)')."""
    from assistant.api.routes.turns import display_name as api_display_name

    return api_display_name(principal)


@dataclass(frozen=True)
class Access:
    """The answer of ``PageAuth.access``: allowed or not (``reason``: a text key), and who (None
    when the page is open)."""

    allowed: bool
    principal: Any = None
    reason: str = ""

    @property
    def by(self) -> str | None:
        return display_name(self.principal) if self.principal is not None else None


class PageAuth:
    """Sign-in for the page. ``authenticator``: the API's (``app.state.authenticator``); without
    one, or without API keys, the page is open (``required`` False)."""

    def __init__(self, authenticator: Any = None):
        self.authenticator = authenticator
        self.required = authenticator is not None and len(authenticator.keys) > 0

    def principal(self, request: Any) -> Any:
        """The signed-in principal of a Starlette / FastAPI request or a ``gr.Request``, or None: the
        session cookie (our token), else an ``Authorization: Bearer`` token or API key."""
        if request is None or self.authenticator is None:
            return None
        from assistant.api.routes.session import SESSION_COOKIE
        from assistant.errors import OnsiteError

        try:
            cookies, headers = getattr(request, "cookies", None), getattr(request, "headers", None)
        except Exception:  # noqa: BLE001 - a gr.Request made without a request has neither
            return None
        token = _get(cookies, SESSION_COOKIE)
        scheme, _, bearer = (_get(headers, "authorization") or "").partition(" ")
        candidates = [(token, self.authenticator.verify_token)]  # the cookie: our token, with a live session
        if scheme.lower() == "bearer" and bearer.strip():
            candidates.append((bearer.strip(), self.authenticator.authenticate))
        for credential, verify in candidates:
            if credential:
                try:
                    return verify(credential)
                except OnsiteError:
                    continue
        return None

    def renewal(self, request: Any) -> Any:
        """A renewed token for the request's session cookie when it is past half its life (an
        ``IssuedToken``), else None: the page keeps its session while it is used."""
        from assistant.api.routes.session import SESSION_COOKIE

        token = _get(getattr(request, "cookies", None), SESSION_COOKIE) if self.authenticator is not None else None
        return self.authenticator.renew_if_due(token) if token else None

    def dependency(self, request: Any) -> str | None:
        """For ``gr.mount_gradio_app(auth_dependency=...)``: the principal's id (Gradio's
        ``gr.Request.username``), or None (Gradio answers 401)."""
        principal = self.principal(request)
        return principal.id if principal is not None else None

    def access(self, request: Any, role: str = "operator") -> Access:
        """May the person behind this event's request do something that needs ``role``?"""
        if not self.required:
            return Access(True)
        principal = self.principal(request)
        if principal is None:
            return Access(False, None, "auth.signed_out")
        if not principal.has_role(role):
            log.warning("%s (%s) tried an %s action on the page", principal.id, principal.role, role)
            return Access(False, principal, "auth.admin_only")
        return Access(True, principal)

    def allows(self, request: Any, role: str = "operator") -> bool:
        """Whether the person behind the request has ``role``, for deciding what the page shows:
        unlike ``access`` (a real action) a no is not logged."""
        if not self.required:
            return True
        principal = self.principal(request)
        return principal is not None and principal.has_role(role)

    def account_markdown(self, request: Any, lang: str) -> str:
        principal = self.principal(request) if self.required else None
        if principal is None:
            return ""
        from ui.chat import escape_md

        name = (principal.name or principal.id).replace("*", "").replace("_", " ").replace("`", "")
        return t(lang, "auth.as", name=escape_md(name), role=t(lang, f"role.{principal.role}"))


OPEN = PageAuth(None)


# --- the sign-in page ---------------------------------------------------------------------------

_STYLE = """
body { margin: 0; font: 18px/1.5 system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif;
       background: #f3f4f6; color: #111827; }
main { max-width: 26rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 12px;
       box-shadow: 0 2px 12px rgba(0,0,0,.08); }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
label { display: block; margin: 1.2rem 0 .4rem; font-weight: 600; }
input[type=password] { box-sizing: border-box; width: 100%; min-height: 52px; padding: 0 .8rem; font-size: 1.1rem;
       border: 1px solid #9ca3af; border-radius: 8px; }
button { margin-top: 1.2rem; width: 100%; min-height: 56px; font-size: 1.15rem; border: 0; border-radius: 8px;
       background: #ea580c; color: #fff; cursor: pointer; }
.note { padding: .6rem .8rem; border-radius: 8px; margin: 1rem 0 0; }
.error { background: #fee2e2; color: #991b1b; }
.info { background: #e0f2fe; color: #075985; }
.hint { color: #4b5563; font-size: .95rem; margin-top: 1.5rem; }
.switch { text-align: right; margin: 0 0 .5rem; font-size: 1rem; }
.switch a { color: #9a3412; padding: .4rem .6rem; display: inline-block; }
"""


def safe_next(value: str | None, page: str) -> str:
    """Where to go after signing in: a path of the page only (never another site)."""
    default = page.rstrip("/") + "/"
    if not value or not value.startswith(default) or "//" in value or "\\" in value or any(c < " " for c in value):
        return default
    return value


def login_html(lang: str, next_path: str, *, error: str = "", info: str = "", nonce: str = "") -> str:
    """The sign-in page in ``lang``, with a link to the same page in the other language; the form
    posts back with the language, so an error comes back in the language the person reads."""
    e = html.escape
    other = "en" if lang == "zh" else "zh"
    switch = f"{LOGIN_PATH}?lang={other}&next={quote(next_path)}"
    notes = "".join(f'<p class="note {cls}" role="{role}">{e(text)}</p>'
                    for cls, role, text in (("error", "alert", error), ("info", "status", info)) if text)
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>{e(t(lang, "login.title"))}</title>
<style nonce="{e(nonce)}">{_STYLE}</style></head>
<body><main>
<p class="switch"><a id="onsite-login-lang" href="{e(switch)}" lang="{'en' if other == 'en' else 'zh-CN'}">{e(t(lang, "login.switch"))}</a></p>
<h1>{e(t(lang, "login.heading"))}</h1>
<p>{e(t(lang, "login.intro"))}</p>{notes}
<form method="post" action="{LOGIN_PATH}?lang={lang}">
<input type="hidden" name="next" value="{e(next_path)}">
<label for="onsite-key">{e(t(lang, "login.key"))}</label>
<input id="onsite-key" name="key" type="password" autocomplete="current-password" required maxlength="512" autofocus>
<button type="submit" id="onsite-sign-in">{e(t(lang, "login.submit"))}</button>
</form>
<p class="hint">{e(t(lang, "login.hint"))}</p>
</main></body></html>
"""


def _page_response(request: Any, next_path: str, status: int = 200, *, error: str = "", info: str = ""):
    from fastapi.responses import HTMLResponse

    lang = pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"))
    nonce = secrets.token_urlsafe(16)
    body = login_html(lang, next_path, error=t(lang, error) if error else "", info=t(lang, info) if info else "",
                      nonce=nonce)
    return HTMLResponse(body, status_code=status, headers={
        "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
                                   "frame-ancestors 'none'; base-uri 'none'",
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin"})  # not no-referrer: the browser would send "Origin: null"


def install(app: Any, auth: PageAuth, page: str) -> None:
    """Add the sign-in and sign-out pages (and the session API when the app lacks it) to ``app``."""
    from fastapi.responses import RedirectResponse

    from assistant.api.auth import ForbiddenError
    from assistant.api.ratelimit import RateLimitedError, rate_limit
    from assistant.api.routes import session
    from assistant.errors import OnsiteError

    if not any(getattr(r, "path", None) == "/api/v1/auth/session" for r in app.router.routes):
        app.include_router(session.router)
    home = page.rstrip("/") + "/"

    def to(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    @app.get(LOGIN_PATH, include_in_schema=False)
    def login_page(request: Request):
        next_path = safe_next(request.query_params.get("next"), page)
        if not auth.required or auth.principal(request) is not None:
            return to(next_path)
        return _page_response(request, next_path, info="login.signed_out" if "signed_out" in request.query_params else "")

    @app.post(LOGIN_PATH, include_in_schema=False)
    async def login_submit(request: Request):
        if not auth.required:
            return to(home)
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        next_path = safe_next(str(form.get("next") or ""), page)
        try:
            rate_limit(request)
            _, issued = session.sign_in(request, str(form.get("key") or ""))
        except RateLimitedError:
            return _page_response(request, next_path, 429, error="login.busy")
        except ForbiddenError:
            return _page_response(request, next_path, 403, error="login.cross_site")
        except OnsiteError:
            return _page_response(request, next_path, 401, error="login.bad_key")
        response = to(next_path)
        session.set_session_cookie(response, request, issued)
        return response

    def logout(request: Request):
        if not session.same_origin(request):
            return to(home)  # a link or form on another site does not sign anyone out
        response = to(f"{LOGIN_PATH}?signed_out=1&next={quote(home)}" if auth.required else home)
        if auth.authenticator is not None:
            session.sign_out(request)  # ends the session on the server, not only in this browser
        session.clear_session_cookie(response, request)
        return response

    app.add_api_route(LOGOUT_PATH, logout, methods=["GET", "POST"], include_in_schema=False)


def _route_path(scope: Any) -> str:
    """The path below the mount point (Starlette keeps the full path and extends root_path)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class PageGate:
    """ASGI wrapper of the mounted page: without a session the page redirects to the sign-in page
    and every other request under it gets 401, before Gradio sees it."""

    def __init__(self, app: Any, auth: PageAuth, page: str):
        self.app, self.auth, self.page = app, auth, page.rstrip("/") + "/"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.auth.required:
            await self.app(scope, receive, send)
            return
        from starlette.requests import HTTPConnection
        from starlette.responses import JSONResponse, RedirectResponse

        connection = HTTPConnection(scope)
        if self.auth.principal(connection) is not None:
            renewed = self.auth.renewal(connection) if scope["type"] == "http" else None
            await self.app(scope, receive, send if renewed is None else _with_cookie(send, connection, renewed))
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope.get("method") in ("GET", "HEAD") and _route_path(scope) in ("", "/"):
            response: Any = RedirectResponse(f"{LOGIN_PATH}?next={quote(self.page)}", status_code=303,
                                             headers={"Cache-Control": "no-store"})
        else:
            response = JSONResponse({"code": 401, "msg": "Sign in first.", "data": {"error": "unauthorized"}},
                                    status_code=401, headers={"Cache-Control": "no-store"})
        await response(scope, receive, send)


def _with_cookie(send: Any, connection: Any, issued: Any) -> Any:
    """``send`` that adds the renewed session cookie to the response's headers."""
    from starlette.responses import Response

    from assistant.api.routes.session import set_session_cookie

    carrier = Response()
    set_session_cookie(carrier, connection, issued)
    cookies = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *cookies]}
        await send(message)

    return wrapped


def gate(app: Any, auth: PageAuth, page: str) -> None:
    """Put ``PageGate`` in front of the app mounted at ``page`` on ``app``."""
    from starlette.routing import Mount

    for route in app.router.routes:
        if isinstance(route, Mount) and route.path == page.rstrip("/"):
            route.app = PageGate(route.app, auth, page)
            return
    raise RuntimeError(f"nothing is mounted at {page}")
