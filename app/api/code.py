"""Whether this server runs edited code (DESIGN.md §5.1): its setting, and its sandbox."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import Request

from app.engine.sandbox import LAYERS
from app.settings import Settings

__all__ = ["edited_code_refusal", "sandbox_report"]


def edited_code_refusal(request: Request) -> str | None:
    """Why a session asked for by ``request`` may not run edited code (None: it may).

    ``AGX_ALLOW_CODE`` decides; unset, edited code is for a server that ``request``
    reached on a loopback address with no trusted proxy in front (a learner's own
    machine). Either way every sandbox layer must be in force (`sandbox_report`).
    """
    settings: Settings = request.app.state.settings
    if settings.allow_code is False:
        return "edited code is off on this server (AGX_ALLOW_CODE)"
    if settings.allow_code is None and not _on_loopback(request, settings):
        return (
            "edited code is off on this server: unless AGX_ALLOW_CODE says otherwise, it "
            "runs only on a server reached on a loopback address with no proxy in front"
        )
    report = sandbox_report(request)
    for layer in LAYERS:
        why = report["layers"].get(layer)
        if why is not None:
            return f"edited code needs every sandbox layer, and {layer} is not in force here: {why}"
    if report.get("torch") is not None:
        return f"edited code needs torch to compute inside the sandbox, and here: {report['torch']}"
    return None


def sandbox_report(request: Request) -> dict[str, Any]:
    """The sandbox's self-test, as the session hosts' zygote ran it at its start
    (`app.engine.sandbox.self_test`; asked once per worker process, then kept)."""
    store = getattr(request.app.state, "store", None)
    try:
        if store is None:
            raise RuntimeError("the session store is not open")
        report: dict[str, Any] = store.hosts.sandbox()
    except (OSError, RuntimeError) as exc:
        why = f"the session hosts could not be asked for the sandbox's self-test ({exc})"
        return {
            "in_force": False,
            "layers": dict.fromkeys(LAYERS, why),
            "torch": why,
            "landlock_abi": None,
            "confine_ms": None,
            "ms": None,
        }
    return report


def _on_loopback(request: Request, settings: Settings) -> bool:
    server = request.scope.get("server")
    if settings.trusted_proxies or not server:
        return False
    try:
        address = ipaddress.ip_address(str(server[0]))
    except ValueError:  # a name ("testserver"), or a Unix socket's path
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
