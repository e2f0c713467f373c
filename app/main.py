"""The FastAPI application: `create_app()` wires settings and routers together."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI

from app.api import api_routers
from app.settings import Settings, get_settings

__all__ = ["app", "create_app"]

DESCRIPTION = """\
Step through the two-layer-net programs of the PyTorch introduction like a debugger:
the autograd graph growing op by op, gradients flowing node by node in the order the
engine runs them, `.grad` accumulating, version counters bumping, optimizer state.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` replaces the environment's (tests pass their own)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Autograd Explorer",
        description=DESCRIPTION,
        version=version("autograd-explorer"),
    )
    app.state.settings = settings
    # Routes take settings through Depends(get_settings): this makes them see these ones.
    app.dependency_overrides[get_settings] = lambda: settings
    for router in api_routers:
        app.include_router(router)
    return app


app = create_app()
