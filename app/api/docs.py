"""GET /docs: the interactive API documentation, under its own CSP (/redoc leads there).

Swagger UI is vendored, at a pinned version, in static/vendor/swagger-ui/ (its README says
where from): the page loads nothing from another origin. FastAPI starts Swagger UI with an
inline script, which the app-wide CSP forbids; this page gets a CSP that allows exactly
that script, by its hash (no 'unsafe-inline' for scripts), and the style attributes
Swagger UI sets. The security middleware leaves a CSP a route has set.

NOTE: ReDoc is not served: its bundle draws its logo from its maker's CDN, which this CSP
refuses (a console error on every visit). /redoc redirects to /docs for old links.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SWAGGER_UI_VERSION = "5.35.0"
_SWAGGER = "/static/vendor/swagger-ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _csp(html: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html.decode())
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".rstrip(),
            # Swagger UI styles elements through style attributes.
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def _page(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _csp(bytes(page.body))
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    title = f"{request.app.title} – Swagger UI"
    return _page(
        get_swagger_ui_html(
            openapi_url=str(request.app.openapi_url),
            title=title,
            swagger_js_url=f"{_SWAGGER}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{_SWAGGER}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{_SWAGGER}/favicon-32x32.png",
        )
    )


@router.get("/redoc")
async def redoc() -> RedirectResponse:
    return RedirectResponse("/docs", status_code=308)
