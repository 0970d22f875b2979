"""The Gradio chat page for the plant floor, mounted on the API's FastAPI app at ``/ui``.

    from ui import mount
    mount(app, services, settings)   # http://HOST:PORT/ui/  ("/" redirects there)

Importing this package does not import Gradio; ``mount`` does. The page only calls the
narrow services (``assistant.services``: turns, sensors, inspection, work orders, knowledge).

Sign-in (``ui.login``): when API keys are configured the page needs a session from the sign-in
page ``/ui-login`` (an API key in, an HttpOnly cookie out); roles are checked in the handlers
(admins decide work orders and manage documents). Without keys the page is open, and ``onsite
serve`` only listens on loopback then.

Safety: no flagging (plain Blocks; nothing is written on the visitor's behalf), no files served
but Gradio's own upload cache (``allowed_paths`` empty), the data home — models, index,
databases, uploads, keys — blocked, uploads bounded by the API's body limit, event handlers not
exposed as an API, answer text escaped (HTML shows as text, images in answers are not loaded),
no analytics, no share links.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PATH = "/ui"


def blocked_paths(settings: Any) -> list[str]:
    """Folders the page must never serve: the whole data home (models, index versions, SQLite
    databases, uploads, token key), and the model and index folders wherever they are."""
    out: list[str] = []
    for p in (getattr(settings, "home", None), getattr(settings, "models_dir", None), getattr(settings, "index_dir", None)):
        if p is not None:
            resolved = str(Path(p).resolve())
            if resolved not in out:
                out.append(resolved)
    return out


def queue_settings(settings: Any) -> dict[str, Any]:
    depth = int(getattr(getattr(settings, "llm", None), "queue_depth", 8) or 8)
    return {"default_concurrency_limit": 2, "max_size": max(8, depth * 4), "api_open": False}


def mount(app: Any, services: Any, settings: Any = None, path: str = PATH) -> str:
    """Build the page for ``services`` (``assistant.services.Services``) and mount it on ``app`` at ``path``; returns the page's URL path."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from fastapi.responses import RedirectResponse

    from ui import login
    from ui.app import CSS, HEAD, build_blocks

    settings = settings or services.settings
    auth = login.PageAuth(getattr(app.state, "authenticator", None))
    blocks = build_blocks(services, settings, auth)
    blocks.queue(**queue_settings(settings))
    max_mb = float(getattr(getattr(settings, "api", None), "max_upload_mb", 20.0) or 20.0)
    gr.mount_gradio_app(
        app, blocks, path=path,
        allowed_paths=[],
        blocked_paths=blocked_paths(settings),
        max_file_size=int(max_mb * 1024 * 1024),
        footer_links=[],
        run_history=False,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        theme=gr.themes.Default(text_size="lg", spacing_size="lg", radius_size="md"),
        css=CSS,
        head=HEAD,
        auth_dependency=auth.dependency if auth.required else None,
    )
    # Gradio checks that files named in a request were uploaded through the page (and are not in
    # blocked_paths) only once ``has_launched`` is set, which launch() does and mount_gradio_app()
    # does not (gradio 6.31): without this a crafted request could have the server copy any file
    # it can read into the upload cache. The handlers check the upload folder themselves as well.
    blocks.has_launched = True
    login.install(app, auth, path)
    if auth.required:
        login.gate(app, auth, path)
    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        @app.get("/", include_in_schema=False)
        def _to_page() -> RedirectResponse:
            return RedirectResponse(url=f"{path}/")
    return f"{path}/"
