"""Fixtures of the engine's tests that start real session hosts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.engine.hosts import Hosts
from app.engine.records import SQLiteRecords
from app.engine.store import HostLimits, SessionStore
from app.settings import Settings

CAPS = {"hosts": 16, "bytes": 1 << 40, "cuda_hosts": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One zygote for the module: its hosts' folder (each test's sessions are its own)."""
    return tmp_path_factory.mktemp("hosts")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_store(tmp_path, host_dir, clock):
    stores = []

    def make(caps=CAPS, max_sessions=8, ttl_s=100.0, **limits) -> SessionStore:
        hosts = Hosts(host_dir, caps=caps, answer_timeout_s=60.0)
        store = SessionStore(
            SQLiteRecords(tmp_path / "sessions.db"),
            hosts,
            limits=replace(HostLimits.of(Settings()), **limits),
            max_sessions=max_sessions,
            ttl_s=ttl_s,
            clock=clock,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
