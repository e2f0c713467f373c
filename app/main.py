"""The FastAPI application: `create_app()` wires settings, middleware and routers together."""

from __future__ import annotations

import hashlib
import logging
import re
from importlib.metadata import version

from fastapi import FastAPI

from app.api import api_routers
from app.api.deps import lifespan
from app.api.errors import install_error_handlers
from app.api.middleware import install_middleware
from app.api.pages import mount_static
from app.settings import Settings, get_settings

__all__ = ["SessionIdFilter", "app", "create_app", "short_hash"]

DESCRIPTION = """\
Step through the two-layer-net programs of the PyTorch introduction like a debugger:
the autograd graph growing op by op, gradients flowing node by node in the order the
engine runs them, `.grad` accumulating, version counters bumping, optimizer state.
"""


_SESSION_PATH = re.compile(r"(/api/sessions/)([^/?#\s]+)")


def short_hash(session_id: str) -> str:
    """What logs show for a session id: 8 hex digits of its SHA-256, never the id itself
    (the id is all it takes to drive a session)."""
    return "~" + hashlib.sha256(session_id.encode()).hexdigest()[:8]


class SessionIdFilter(logging.Filter):
    """Rewrite each session id in an access log line's arguments to its short hash."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SESSION_PATH.sub(lambda m: m.group(1) + short_hash(m.group(2)), arg)
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


def _hash_session_ids_in_access_logs() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, SessionIdFilter) for f in logger.filters):
        logger.addFilter(SessionIdFilter())


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` replaces the environment's (tests pass their own)."""
    settings = settings or get_settings()
    _hash_session_ids_in_access_logs()
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
