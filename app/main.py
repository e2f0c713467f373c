"""The FastAPI application: `create_app()` wires settings, middleware and routers together."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI

from app.api import api_routers
from app.api.deps import lifespan
from app.api.errors import install_error_handlers
from app.api.middleware import install_middleware
from app.api.pages import mount_static
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
        lifespan=lifespan,
        docs_url=None,  # app.api.docs serves /docs and /redoc under their own CSP
        redoc_url=None,
    )
    app.state.settings = settings
    # Routes take settings through Depends(get_settings): this makes them see these ones.
    app.dependency_overrides[get_settings] = lambda: settings
    install_middleware(app, settings)
    install_error_handlers(app)
    for router in api_routers:
        app.include_router(router)
    mount_static(app)
    return app


app = create_app()
