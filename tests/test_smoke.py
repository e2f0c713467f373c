"""The real server starts, and /healthz says what it can use."""

from __future__ import annotations

import httpx
import pytest


def test_server_starts_and_reports_health(live_server, tmp_path):
    server = live_server({"AGX_DATA_DIR": str(tmp_path / "data")})

    response = httpx.get(f"{server.url}/healthz", timeout=10)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "graphviz" in body["graphviz"].lower()
    assert body["devices"][0]["id"] == "cpu"
    assert body["devices"][0]["name"]


def test_server_shuts_down_gracefully(live_server):
    server = live_server()

    server.stop()

    assert "Finished server process" in server.log()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)
