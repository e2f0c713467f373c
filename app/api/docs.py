"""GET /docs and /redoc: the interactive API documentation, under its own CSP.

NOTE: FastAPI's documentation pages load Swagger UI and ReDoc from a CDN and start
Swagger UI with an inline script, both of which the app-wide CSP forbids. These two
pages get a CSP that allows exactly that: the CDN, and the inline script by its hash
(no 'unsafe-inline' for scripts). The security middleware leaves a CSP a route has set.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _csp(html: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html.decode())
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {_CDN} {hashes}".rstrip(),
            # Swagger UI and ReDoc style elements through style attributes.
            f"style-src 'self' {_CDN} https://fonts.googleapis.com 'unsafe-inline'",
            "font-src 'self' https://fonts.gstatic.com",
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
            "worker-src 'self' blob:",  # ReDoc's search runs in a worker made from a blob
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
    return _page(get_swagger_ui_html(openapi_url=str(request.app.openapi_url), title=title))


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    title = f"{request.app.title} – ReDoc"
    return _page(get_redoc_html(openapi_url=str(request.app.openapi_url), title=title))
