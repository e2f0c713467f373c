"""GET /healthz: whether the server is up, and what it can use."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from app.engine.devices import Device, available_devices
from app.engine.render import RenderError, dot_version
from app.settings import Settings, get_settings

__all__ = ["router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    graphviz: str | None
    """`dot -V` as printed, e.g. "dot - graphviz version 2.43.0 (0)"; null without Graphviz."""
    devices: list[Device]


@router.get(
    "/healthz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health}},
)
def healthz(response: Response, settings: Annotated[Settings, Depends(get_settings)]) -> Health:
    """Report Graphviz's version and the devices lessons can run on (503 without Graphviz)."""
    try:
        graphviz = _dot_version(settings.dot_timeout_s)
    except RenderError:
        # Without dot no graph can be drawn: tell the orchestrator this replica is unfit.
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", graphviz=None, devices=available_devices())
    return Health(status="ok", graphviz=graphviz, devices=available_devices())


@cache
def _dot_version(timeout_s: float) -> str:
    # functools.cache keeps successes only (a raise is not cached), so a missing or hung
    # dot is asked again at the next check rather than remembered as broken.
    return dot_version(timeout_s=timeout_s)
