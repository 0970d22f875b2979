"""Security headers on every answer: a Content-Security-Policy, no framing, no MIME sniffing and
no referrer leaving the site.

Three policies by path. The API's JSON (and everything unknown) may load nothing at all. The
chat page (Gradio, under ``/ui``) is a single-page app that needs its own inline scripts and styles,
``data:``/``blob:`` images and its own server for fetch / SSE; it may load nothing from elsewhere.
The documentation pages (/docs, /redoc) run Swagger UI / ReDoc from this server's own
/docs-assets (assistant.api.docs): inline start-up script and styles, nothing from elsewhere. Files the page serves (uploads, page images under ``…/file=``) get the API's policy: an
uploaded SVG or HTML opened directly runs nothing. A header a route set itself (the sign-in page's
nonce policy) is kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# 'unsafe-inline' scripts / styles: Gradio inlines its config and theme; 'unsafe-eval': the line
# plot (Vega) compiles its expressions. Nothing is loaded from another origin and nothing frames it.
PAGE_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")
# ReDoc starts a web worker from a blob: URL; Swagger UI and ReDoc draw their icons as data: images.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
            "frame-ancestors 'none'; base-uri 'none'")
COMMON = {"x-frame-options": "DENY", "x-content-type-options": "nosniff"}
# Pages send "same-origin": with no-referrer the browser sends "Origin: null" on the page's own
# POSTs (sign-out form, Gradio's queue), which the same-origin check would refuse.
PAGE_REFERRER, API_REFERRER = "same-origin", "no-referrer"
PAGE_PREFIXES = ("/ui",)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


def policy_for(path: str) -> tuple[str, str]:
    """(Content-Security-Policy, Referrer-Policy) for a request path."""
    if "/file=" in path:  # a file Gradio serves (an upload, a page image): data, never a document that runs
        return API_CSP, API_REFERRER
    if path == "/" or any(path == p or path.startswith(p + "/") or path.startswith(p + "-") for p in PAGE_PREFIXES):
        return PAGE_CSP, PAGE_REFERRER
    if path in DOCS_PATHS:
        return DOCS_CSP, PAGE_REFERRER
    return API_CSP, API_REFERRER


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response that lacks them (pure ASGI: streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp, referrer = policy_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (("content-security-policy", csp), ("referrer-policy", referrer), *COMMON.items()):
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
