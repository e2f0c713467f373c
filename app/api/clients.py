"""Who a request comes from, for fair sharing (DESIGN §5.1, "Sessions per client").

A client is its network address and, for a browser, a token: a random value in an
HttpOnly, SameSite=Lax cookie that the server sets on the pages it serves. Scripts that
call the API without the cookie are their address alone. Records store keys derived from
these (`Client.address`, `Client.browser`), never the token itself.

The address is the peer of the connection, unless that peer is one of the operator's
reverse proxies (`AGX_TRUSTED_PROXIES`): then it is the nearest address in
X-Forwarded-For that is not itself a trusted proxy, and X-Forwarded-Proto gives the
scheme. Uvicorn's own proxy-header handling is off where this app is started (Makefile,
Dockerfile, deploy/cluster.py), so that this setting is the only one that decides.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from fastapi import Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.places import Place, StepPlaces

__all__ = [
    "COOKIE",
    "Client",
    "ClientCaps",
    "client_address",
    "client_of",
    "parse_networks",
]

COOKIE = "agx_client"
_TOKEN = re.compile(r"[0-9a-f]{32}")
_STEP_PATH = re.compile(r"^/api/sessions/[^/]+/(?:step|seek)$")
_YEAR_S = 365 * 24 * 3600
_STATE_KEY = "agx_client"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Client:
    """The keys a request counts under: `address` always, `browser` when it sent a token."""

    address: str
    browser: str | None
    # A token made for this request (it sent none); set as the cookie on a page answer.
    new_token: str | None = None


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443" (RFC 7239 style)
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:1234"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: `peer`, or when `peer` is a trusted proxy, the nearest hop of
    X-Forwarded-For (its comma-separated values, in order) that is not one."""
    address = peer
    if not _trusted(peer, trusted):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:  # not an address: keep the last hop that vouched for it
            break
        address = str(ip)
        if not _trusted(address, trusted):
            break
    return address


def address_key(address: str) -> str:
    """What an address counts under: the IPv4 address, an IPv6 address's /64 network
    (one subscriber usually holds a whole /64), or the text of anything else."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"ip:{ip if ip is not None else address[:64]}"


def browser_key(token: str) -> str:
    """What a browser token counts under: a digest, so records never hold the token."""
    return "browser:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def _token(headers: Headers) -> str | None:
    for value in headers.getlist("cookie"):
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(value)
        except Exception:  # a malformed Cookie header names no token
            continue
        if COOKIE in cookies and _TOKEN.fullmatch(cookies[COOKIE].value):
            return cookies[COOKIE].value
    return None


def client_of(request: Request) -> Client:
    """The client of `request`, as `ClientCaps` found it (computed here without it)."""
    found = request.scope.get("state", {}).get(_STATE_KEY)
    if isinstance(found, Client):
        return found
    peer = request.client.host if request.client else "unknown"
    token = _token(request.headers)
    return Client(address_key(peer), browser_key(token) if token else None)


class ClientCaps:
    """Find each request's client; give browsers their token; cap concurrent steps.

    - The client (see the module docstring) is put in the request's state for the routes,
      and a trusted proxy's forwarded address and scheme replace the peer's in the scope
      (so the access log and URLs show the real client).
    - A page answer (text/html) to a request without a valid token sets a new one:
      HttpOnly, SameSite=Lax, Secure over https, for a year.
    - Steps and seeks (POST /api/sessions/{id}/step|seek) running at once are capped per
      browser and per address, across every worker process that shares `places` (see
      app.api.places): one more answers 429 naming the cap.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[str] = (),
        steps_per_browser: int,
        steps_per_address: int,
        places: StepPlaces,
    ) -> None:
        self.app = app
        self.trusted = parse_networks(trusted_proxies)
        self.caps = {"browser": steps_per_browser, "address": steps_per_address}
        self.places = places

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        peer = scope["client"][0] if scope.get("client") else "unknown"
        if self.trusted and _trusted(peer, self.trusted):
            address = client_address(peer, headers.getlist("x-forwarded-for"), self.trusted)
            scope["client"] = (address, 0)
            proto = headers.get("x-forwarded-proto", "").rpartition(",")[2].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        else:
            address = peer
        token = _token(headers)
        new_token = None if token else secrets.token_hex(16)
        client = Client(address_key(address), browser_key(token) if token else None, new_token)
        scope.setdefault("state", {})[_STATE_KEY] = client

        send = self._cookie_sender(scope, send, new_token) if new_token else send
        if scope["method"] != "POST" or not _STEP_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        taken: list[Place] = []
        try:
            for cap, key in (("browser", client.browser), ("address", client.address)):
                if key is None:
                    continue
                place = self.places.take(key, self.caps[cap])
                if place is None:
                    await self._refuse(cap, scope, receive, send)
                    return
                taken.append(place)
            await self.app(scope, receive, send)
        finally:
            for place in taken:
                self.places.give_back(place)

    async def _refuse(self, cap: str, scope: Scope, receive: Receive, send: Send) -> None:
        who = "this browser" if cap == "browser" else "your network address"
        detail = (
            f"{who} already has {self.caps[cap]} steps running at once ({cap} step cap); "
            "wait for one to finish, then send this one again"
        )
        response = JSONResponse({"detail": detail}, status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        response.headers["Retry-After"] = "1"
        await response(scope, receive, send)

    @staticmethod
    def _cookie_sender(scope: Scope, send: Send, token: str) -> Send:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{COOKIE}={token}; Path=/; Max-Age={_YEAR_S}; HttpOnly; SameSite=Lax{secure}"
        ).encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    message = {**message, "headers": [*headers, (b"set-cookie", cookie)]}
            await send(message)

        return send_with_cookie
