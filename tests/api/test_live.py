"""Against a real uvicorn: a restart loses no session, and chunked bodies are capped."""

from __future__ import annotations

import json

import httpx
import pytest

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}

pytestmark = pytest.mark.slow


def test_a_restarted_server_answers_for_its_sessions_at_the_same_cursor(live_server):
    first = live_server()
    with httpx.Client(base_url=first.url, timeout=30) as client:
        created = client.post("/api/sessions", json={"lesson": "optim", "config": SMALL})
        session_id = created.json()["id"]
        client.post(f"/api/sessions/{session_id}/step", json={"by": "iteration", "count": 2})
        before = client.post(
            f"/api/sessions/{session_id}/step", json={"by": "event", "count": 9}
        ).json()
        graph = client.get(f"/api/sessions/{session_id}/graph").json()
    first.stop()

    second = live_server()
    with httpx.Client(base_url=second.url, timeout=30) as client:
        after = client.get(f"/api/sessions/{session_id}")
        graph_after = client.get(f"/api/sessions/{session_id}/graph").json()
        moved = client.post(f"/api/sessions/{session_id}/step", json={"by": "end"})

    assert created.status_code == 201
    assert after.status_code == 200
    assert after.json() == before
    assert graph_after == graph
    assert moved.status_code == 200 and moved.json()["done"] is True


def test_a_chunked_body_over_the_cap_is_413_on_a_real_server(live_server):
    server = live_server({"AGX_MAX_BODY_BYTES": "2048"})
    body = json.dumps({"lesson": "autograd", "config": {"pad": "x" * 10_000}}).encode()

    def chunks():
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = httpx.post(
        f"{server.url}/api/sessions",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]
