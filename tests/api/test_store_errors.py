"""A session store that cannot be reached answers 503, and the server stays up."""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.api.conftest import Api


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_is_a_503_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(store_url=f"redis://127.0.0.1:{_closed_port()}/0")
    response = api.post("/api/sessions", json={"lesson": "autograd"})
    assert response.status_code == 503
    assert "Redis" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"
    health = api.get("/healthz")
    assert health.status_code == 200  # Redis out of reach is reported, not held against it
    assert health.json()["store"]["kind"] == "redis" and health.json()["store"]["error"]
