"""Request safety and response headers, as pure ASGI middleware.

`install_middleware` stacks them, outermost first: security headers (so that every
answer carries them, refusals included), trusted hosts, the client of each request and
its step cap (app.api.clients), CORS when configured, and the body checks (size cap,
JSON only) nearest the routes.
"""

from __future__ import annotations

from fastapi import FastAPI, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.clients import ClientCaps
from app.api.places import StepPlaces
from app.settings import Settings

__all__ = [
    "SECURITY_HEADERS",
    "BodyLimit",
    "Cors",
    "SecurityHeaders",
    "TrustedHosts",
    "install_middleware",
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the middleware stack the settings call for."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            Cors,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type"],
        )
    app.add_middleware(
        ClientCaps,
        trusted_proxies=settings.trusted_proxies,
        steps_per_browser=settings.max_steps_per_browser,
        steps_per_address=settings.max_steps_per_address,
        places=StepPlaces(settings.hosts_folder() / "steps"),
    )
    app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)


class Cors(CORSMiddleware):
    """Starlette's CORS, with refused preflights answered like every other error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != status.HTTP_400_BAD_REQUEST:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        asked = {
            "origin": f"the origin {request_headers['origin']!r} (allowed origins are set by "
            "AGX_CORS_ORIGINS)",
            "method": f"the method {request_headers['access-control-request-method']!r} "
            f"(allowed: {', '.join(sorted(self.allow_methods))})",
            "headers": f"the headers {request_headers.get('access-control-request-headers')!r} "
            "(allowed: Content-Type)",
            "private-network": "private network access",
        }
        detail = "this cross-origin request is refused for " + " and ".join(
            asked.get(part, part) for part in refused
        )
        headers = {k: v for k, v in response.headers.items() if k.startswith("access-control-")}
        return JSONResponse({"detail": detail}, status_code=response.status_code, headers=headers)


class SecurityHeaders:
    """Add the security headers to every response that has not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [item for item in _RAW_HEADERS if item[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse bodies over `max_bytes` (413, chunked ones too) and non-JSON bodies (415).

    NOTE: the body is read here, up to the cap, and handed on whole: a chunked body that
    grows past the cap is refused before any route sees a byte of it. Bodies of this API
    are small (the cap defaults to 64 KiB), so holding one in memory costs nothing.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None and not length.strip().isdigit():
            await _refuse(
                scope, receive, send, status.HTTP_400_BAD_REQUEST, "Content-Length is not a number"
            )
            return
        if length is not None and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if (chunked or int(length or 0) > 0) and scope["method"] in _BODY_METHODS:
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if not (media_type == "application/json" or media_type.endswith("+json")):
                shown = media_type or "no Content-Type"
                await _refuse(
                    scope,
                    receive,
                    send,
                    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    f"send the request body as JSON with Content-Type: application/json "
                    f"(got {shown[:64]})",
                )
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than the limit of {self.max_bytes} bytes"
        await _refuse(scope, receive, send, status.HTTP_413_CONTENT_TOO_LARGE, detail)


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host header check, answering a refused host in JSON like every error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def send_json(message: Message) -> None:
            # Hold a 400's start until its body shows whether it is the host refusal.
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] == 400:
                held = message
                return
            if held is not None:
                start, held = held, None
                if message.get("body") == b"Invalid host header":
                    detail = (
                        "the Host header names a host this server does not answer for; "
                        "the operator lists them in AGX_ALLOWED_HOSTS"
                    )
                    await _refuse(scope, _nothing, send, status.HTTP_400_BAD_REQUEST, detail)
                    return
                await send(start)
            await send(message)

        await super().__call__(scope, receive, send_json)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _refuse(scope: Scope, receive: Receive, send: Send, code: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=code)(scope, receive, send)
