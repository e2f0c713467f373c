"""A lesson that raises, and a device that is not there: answers, not server failures."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
TIMEOUT = 120


def test_the_inplace_lessons_runtime_error_is_its_outcome_and_the_server_stays_healthy(
    live_server,
):
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        created = client.post("/api/sessions", json={"lesson": "inplace", "config": SMALL})
        base = f"/api/sessions/{created.json()['id']}"
        ended = client.post(f"{base}/step", json={"by": "end"})
        graph = client.get(f"{base}/graph")
        svg = client.get(f"{base}/graph.svg")
        back = client.post(f"{base}/seek", json={"cursor": 10})
        again = client.post(f"{base}/step", json={"by": "end"})
        health = client.get("/healthz")
        other = client.post("/api/sessions", json={"lesson": "autograd", "config": SMALL})
        other_end = client.post(f"/api/sessions/{other.json()['id']}/step", json={"by": "end"})

    assert created.status_code == 201
    assert ended.status_code == 200
    state = ended.json()
    assert state["done"] is True and state["event"]["kind"] == "end"
    assert state["error"]["type"] == "RuntimeError"
    assert "modified by an inplace operation" in state["error"]["message"]
    assert len(state["losses"]) == SMALL["iterations"]  # part 1 trained before the error
    assert graph.status_code == 200 and svg.status_code == 200
    assert back.status_code == 200 and back.json()["error"] is None
    assert again.json() == state  # replay reaches the same error
    assert health.status_code == 200
    assert other_end.status_code == 200 and other_end.json()["error"] is None


def test_a_cuda_device_that_is_not_there_is_a_422_naming_the_device(live_server):
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        devices = [d["id"] for d in client.get("/api/devices").json()]
        cuda = [d for d in devices if d.startswith("cuda")]
        missing = ["cuda", "cuda:0"] if not cuda else [f"cuda:{len(cuda)}"]
        answers = {
            device: client.post(
                "/api/sessions",
                json={"lesson": "tensors", "config": {**SMALL, "device": device}},
            )
            for device in missing
        }
        health = client.get("/healthz")

    for device, answer in answers.items():
        assert answer.status_code == 422, (device, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith("device must be one of the devices usable here")
        assert repr(device).replace("'", '"') in detail  # names what was asked for
        assert "cpu" in detail  # and what there is
    assert health.status_code == 200
