"""GET /healthz reports Graphviz and the devices, and fails loudly without Graphviz."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import health
from app.main import create_app


@pytest.fixture
def client():
    health._dot_version.cache_clear()
    yield TestClient(create_app())
    health._dot_version.cache_clear()


def test_health_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["graphviz"].startswith("dot - graphviz version")
    assert body["devices"][0]["id"] == "cpu"


def test_health_unavailable_without_graphviz(client, monkeypatch):
    monkeypatch.setenv("PATH", "")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["graphviz"] is None
