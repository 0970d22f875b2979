"""/docs (Swagger UI) and /redoc (ReDoc) that work offline.

FastAPI's own pages load their scripts, styles and fonts from a CDN, so on a plant network with no
internet they stay blank. The same pages are built here with FastAPI's ``get_swagger_ui_html`` /
``get_redoc_html`` but point at files served by this app: the Swagger UI bundle, its stylesheet and
the ReDoc standalone script that the ``fastapi-offline`` package ships (MIT; Swagger UI is
Apache-2.0, ReDoc MIT). Nothing else is fetched: no Google fonts, no online validator badge, and
the Redocly logo ReDoc hard-codes from its CDN is taken out of the script as it is served.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS_PATH = "/docs-assets"
DOCS_PATH, REDOC_PATH, OAUTH2_REDIRECT_PATH = "/docs", "/redoc", "/docs/oauth2-redirect"


def assets_dir() -> Path:
    """The folder of swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return Path(str(files("fastapi_offline") / "static"))


REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_script() -> bytes:
    """ReDoc's script with its CDN logo replaced by an empty data: URL (the <img> then fails and
    ReDoc hides it itself), so opening /redoc requests nothing from elsewhere."""
    return (assets_dir() / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"data:,")


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Add /docs, /redoc and their assets under ``ASSETS_PATH`` to ``app``."""

    @app.get(f"{ASSETS_PATH}/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:  # before the mount, so it wins over the file
        return Response(redoc_script(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")

    def url(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=url(request, openapi_url), title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=url(request, OAUTH2_REDIRECT_PATH),
            swagger_js_url=url(request, f"{ASSETS_PATH}/swagger-ui-bundle.js"),
            swagger_css_url=url(request, f"{ASSETS_PATH}/swagger-ui.css"),
            swagger_favicon_url=url(request, f"{ASSETS_PATH}/favicon.png"),
            # validatorUrl None: no badge image fetched from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=url(request, openapi_url), title=f"{app.title} - ReDoc",
            redoc_js_url=url(request, f"{ASSETS_PATH}/redoc.standalone.js"),
            redoc_favicon_url=url(request, f"{ASSETS_PATH}/favicon.png"), with_google_fonts=False,
        )
