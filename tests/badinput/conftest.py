"""Fixtures of the bad-input suite: one real uvicorn per module, with restricted hosts
and origins, and a session to aim bad requests at."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer

ALLOWED_HOSTS = "127.0.0.1,localhost"
GOOD_ORIGIN = "http://good.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server that answers for 127.0.0.1 and localhost, and CORS for GOOD_ORIGIN."""
    folder = tmp_path_factory.mktemp("badinput")
    env = {
        "AGX_DATA_DIR": str(folder / "var"),
        "AGX_ALLOWED_HOSTS": ALLOWED_HOSTS,
        "AGX_CORS_ORIGINS": GOOD_ORIGIN,
    }
    live = LiveServer(env=env, log_path=folder / "server.log")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def session_id(client: httpx.Client) -> str:
    """A small autograd session, a few steps in (x, y, w1 and w2 exist)."""
    body = {"lesson": "autograd", "config": {"N": 8, "D_in": 16, "H": 8, "D_out": 4}}
    created = client.post("/api/sessions", json=body)
    assert created.status_code == 201, created.text
    state_id = str(created.json()["id"])
    client.post(f"/api/sessions/{state_id}/step", json={"by": "event", "count": 12})
    return state_id
