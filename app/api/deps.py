"""What routes depend on: the session store (opened for the app's lifetime) and limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from app.engine.devices import available_devices
from app.engine.hosts import Hosts
from app.engine.records import open_records
from app.engine.store import HostLimits, SessionStore
from app.lessons.config import Limits
from app.settings import Settings

__all__ = ["LimitsDep", "SettingsDep", "StoreDep", "lifespan", "open_store"]

_log = logging.getLogger(__name__)


# NOTE: async dependencies run on the event loop; plain `def` ones would each cost a
# thread-pool round trip per request, which shows on a step's latency.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.store
    return store


def _limits(request: Request) -> Limits:
    # A plain def (runs in a worker thread): the first call probes the CUDA devices.
    settings: Settings = request.app.state.settings
    return Limits(
        max_dim=settings.max_dim,
        max_iterations=settings.max_iterations,
        max_session_bytes=settings.max_session_bytes,
        max_work=settings.max_work,
        devices=frozenset(device["id"] for device in available_devices()),
    )


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[SessionStore, Depends(_store)]
LimitsDep = Annotated[Limits, Depends(_limits)]


def open_store(settings: Settings) -> SessionStore:
    """Open the session store the settings describe."""
    records = open_records(
        settings.store_url, data_dir=settings.data_dir, ttl_s=settings.session_ttl_s
    )
    caps = {
        "hosts": settings.max_live_sessions,
        "bytes": settings.live_bytes(),
        "cuda_hosts": settings.max_cuda_hosts,
    }
    # A request waits for the steps queued before it (each at most step_time_s).
    wait_s = settings.step_time_s * (settings.session_queue + 1) + 30.0
    hosts = Hosts(settings.hosts_folder(), caps=caps, answer_timeout_s=wait_s)
    return SessionStore(
        records,
        hosts,
        limits=HostLimits.of(settings),
        max_sessions=settings.max_sessions,
        ttl_s=settings.session_ttl_s,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store at startup, expire idle sessions while serving, close at shutdown."""
    settings: Settings = app.state.settings
    store = await run_in_threadpool(open_store, settings)
    # Ready when the zygote is: the first session then starts in milliseconds.
    await run_in_threadpool(store.warm)
    app.state.store = store
    sweeper = asyncio.create_task(_sweep_every(store, min(settings.session_ttl_s / 4, 60.0)))
    try:
        yield
    finally:
        sweeper.cancel()
        await run_in_threadpool(store.close)


async def _sweep_every(store: SessionStore, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        try:
            await run_in_threadpool(store.sweep)
        except Exception:  # a store briefly unreachable must not end the sweeping
            _log.exception("expiring idle sessions failed; trying again in %g s", period_s)
