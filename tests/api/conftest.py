"""Fixtures of the API tests: apps on a temporary data folder, driven with small configs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.engine.store import SessionStore
from app.main import create_app
from app.settings import Settings

#: Sizes that keep every lesson fast.
SMALL: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}


class Api:
    """A started app (lifespan run) and the calls tests repeat."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: FastAPI = create_app(settings)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    @property
    def store(self) -> SessionStore:
        store: SessionStore = self.app.state.store
        return store

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.delete(url, **kwargs)

    def create(self, lesson: str = "autograd", **config: Any) -> dict[str, Any]:
        """Create a session of `lesson` with SMALL sizes updated by `config`; return its State."""
        body = {"lesson": lesson, "config": {**SMALL, **config}}
        response = self.client.post("/api/sessions", json=body)
        assert response.status_code == 201, response.text
        state: dict[str, Any] = response.json()
        return state

    def step(self, session_id: str, by: str = "event", count: int = 1) -> dict[str, Any]:
        response = self.client.post(
            f"/api/sessions/{session_id}/step", json={"by": by, "count": count}
        )
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def seek(self, session_id: str, cursor: int) -> dict[str, Any]:
        response = self.client.post(f"/api/sessions/{session_id}/seek", json={"cursor": cursor})
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def state(self, session_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/sessions/{session_id}")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Give `make(**settings) -> Api`; every app of a test shares `tmp_path / "var"`."""
    apis: list[Api] = []

    def make(**overrides: Any) -> Api:
        api = Api(Settings(**{"data_dir": tmp_path / "var", **overrides}))
        api.client.__enter__()
        apis.append(api)
        return api

    yield make
    for api in apis:
        api.client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
