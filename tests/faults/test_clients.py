"""Clients that misbehave: one that hangs up during a long run, two that share a session."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4}
TIMEOUT = 120


def _get_when_free(client: httpx.Client, path: str, within_s: float = 120) -> httpx.Response:
    """GET `path`, waiting out 503 (the session is busy) as its Retry-After says."""
    deadline = time.monotonic() + within_s
    while True:
        response = client.get(path)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))


def test_a_client_that_hangs_up_during_a_run_to_the_end_leaves_the_session_consistent(
    live_server,
):
    server = live_server()
    body = {"lesson": "custom_module", "config": {"iterations": 3000}}  # seed sizes
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        session_id = client.post("/api/sessions", json=body).json()["id"]
        base = f"/api/sessions/{session_id}"
        client.post(f"{base}/step", json={"by": "event", "count": 3})
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes
            client.post(f"{base}/step", json={"by": "end"}, timeout=0.5)

        # Meanwhile the server serves everyone else.
        health = client.get("/healthz")
        other_state = client.post("/api/sessions", json={"lesson": "nn", "config": SMALL}).json()
        other = client.post(f"/api/sessions/{other_state['id']}/step", json={"by": "line"})

        after = _get_when_free(client, base)
        state = after.json()
        stepped = client.post(f"{base}/step", json={"by": "event"})
        rewound = client.post(f"{base}/seek", json={"cursor": 1})
        forward = client.post(f"{base}/step", json={"by": "event"})

    assert health.status_code == 200
    assert other.status_code == 200
    assert after.status_code == 200, after.text
    assert state["cursor"] >= 3
    if state["done"]:  # the run finished after the client left: the state is the end
        assert state["event"]["kind"] == "end" and state["phase"] == "done"
        assert len(state["losses"]) == 3000
        assert stepped.json()["cursor"] == state["cursor"]
    else:  # or it stopped before: any further step continues from there
        assert stepped.json()["cursor"] == state["cursor"] + 1
    assert stepped.status_code == 200
    assert rewound.status_code == 200 and rewound.json()["cursor"] == 1
    assert forward.status_code == 200 and forward.json()["cursor"] == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_two_clients_stepping_one_session_at_once_are_serialised(live_server, workers):
    # A long queue timeout: a step waiting for the other client's is never refused. With
    # two worker processes, each request opens its own connection, so the kernel spreads
    # them over both: the session is then serialised between processes too.
    server = live_server({"WEB_CONCURRENCY": str(workers)})
    body = {"lesson": "autograd", "config": {**SMALL, "iterations": 20}}  # 653 events
    rounds, counts = 60, (1, 2)
    session_id = httpx.post(f"{server.url}/api/sessions", json=body, timeout=TIMEOUT).json()["id"]
    base = f"{server.url}/api/sessions/{session_id}"
    start = threading.Barrier(len(counts))
    answers: dict[int, list[httpx.Response]] = {count: [] for count in counts}

    def stepper(count: int) -> None:
        start.wait()
        for _ in range(rounds):
            step = {"by": "event", "count": count}
            answers[count].append(httpx.post(f"{base}/step", json=step, timeout=TIMEOUT))

    threads = [threading.Thread(target=stepper, args=(count,)) for count in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses = [r.status_code for rs in answers.values() for r in rs]
    assert statuses == [200] * (rounds * len(counts)), [
        r.text for rs in answers.values() for r in rs if r.status_code != 200
    ][:3]
    final = httpx.get(base, timeout=TIMEOUT).json()
    # The same steps, one after the other in the order the server ran them, on a session
    # of its own (the same step sizes: how a run is paused shows in .grad's version).
    moves = sorted((r.json()["cursor"], count) for count, rs in answers.items() for r in rs)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        reference_id = client.post("/api/sessions", json=body).json()["id"]
        for _, count in moves:
            step = {"by": "event", "count": count}
            reference = client.post(f"/api/sessions/{reference_id}/step", json=step).json()

    # Serialised: each answer's cursor is the previous answer's (either client's) plus
    # its own count, so no step was lost, doubled or interleaved.
    cursor = 0
    for after, count in moves:
        assert after == cursor + count, moves
        cursor = after
    assert final["cursor"] == rounds * sum(counts)
    assert {**final, "id": None} == {**reference, "id": None}  # no corruption
