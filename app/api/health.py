"""GET /healthz: whether the server is up, and what it can use."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from app.api.code import edited_code_refusal, sandbox_report
from app.engine.devices import Device, available_devices
from app.engine.render import RenderError, dot_version
from app.settings import Settings, get_settings

__all__ = ["router"]

router = APIRouter(tags=["health"])


class EditedCode(BaseModel):
    """Whether sessions may run a learner's edit of a lesson here, and the sandbox's
    self-test (run once when the session hosts' zygote starts)."""

    allowed: bool
    reason: str | None
    """Why edited code does not run here (the setting, or a layer not in force); null if it does."""
    in_force: bool
    """Every layer of the sandbox proven, and torch computes inside it."""
    layers: dict[str, str | None]
    """Per layer (descriptors, rlimits, landlock, seccomp): null when proven, else why not."""
    torch: str | None
    """Null when torch computed the same numbers confined as before; else what went wrong."""
    landlock_abi: int | None
    """The kernel's Landlock ABI version (6 or more is needed); null without Landlock."""
    confine_ms: float | None
    """Milliseconds the self-test's child took to apply every layer."""
    ms: float | None
    """Milliseconds the whole self-test took (fork, confine, every attempt)."""


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    graphviz: str | None
    """`dot -V` as printed, e.g. "dot - graphviz version 2.43.0 (0)"; null without Graphviz."""
    devices: list[Device]
    store: dict[str, str | None] | None = None
    """The session records: `kind` (sqlite, redis), `set_aside` (where a database that
    could not be opened was moved at start, else null), `error` (why they cannot be read)."""
    edited_code: EditedCode


@router.get(
    "/healthz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health}},
)
def healthz(
    request: Request, response: Response, settings: Annotated[Settings, Depends(get_settings)]
) -> Health:
    """Report Graphviz's version, the devices lessons can run on and the session store
    (503 without Graphviz, or when the store cannot be read)."""
    store = _store(request)
    try:
        graphviz: str | None = _dot_version(settings.dot_timeout_s)
    except RenderError:
        graphviz = None
    # Without dot no graph can be drawn, without its database no session found: tell the
    # orchestrator this replica is unfit. Redis out of reach is reported, not held against
    # the replica (restarting it would not bring Redis back).
    fit = graphviz is not None and ("error" not in store or store["kind"] == "redis")
    if not fit:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    refusal = edited_code_refusal(request)
    return Health(
        status="ok" if fit else "unavailable",
        graphviz=graphviz,
        devices=available_devices(),
        store=store,
        edited_code=EditedCode(**sandbox_report(request), allowed=refusal is None, reason=refusal),
    )


def _store(request: Request) -> dict[str, str | None]:
    store = getattr(request.app.state, "store", None)
    return {"kind": None, "set_aside": None} if store is None else dict(store.check_records())


@cache
def _dot_version(timeout_s: float) -> str:
    # functools.cache keeps successes only (a raise is not cached), so a missing or hung
    # dot is asked again at the next check rather than remembered as broken.
    return dot_version(timeout_s=timeout_s)
