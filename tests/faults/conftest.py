"""Fixtures of the fault tests: the uvicorn process behind a LiveServer, to kill it."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import pytest

from tests.conftest import LiveServer


def _process_of(server: LiveServer) -> psutil.Process:
    for child in psutil.Process().children():
        try:
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "uvicorn" in command and str(server.port) in command:
            return child
    raise LookupError(f"no child process serves port {server.port}")


@pytest.fixture
def process_of() -> Callable[[LiveServer], psutil.Process]:
    """Give `process_of(server)`: the uvicorn process serving `server`, a child of this one."""
    return _process_of
