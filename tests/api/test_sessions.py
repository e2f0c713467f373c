"""Sessions: create, read, step, seek, delete; caps, expiry, eviction and busy answers."""

from __future__ import annotations

import threading
import time

import pytest

from app.engine.host import QUIET_S


def test_create_returns_201_and_the_state_before_the_first_line(api):
    response = api.post("/api/sessions", json={"lesson": "autograd", "config": {"N": 8}})

    assert response.status_code == 201
    state = response.json()
    assert len(state["id"]) == 32 and int(state["id"], 16) >= 0
    assert state["lesson"] == "autograd"
    assert state["config"]["N"] == 8 and state["config"]["D_in"] == 1000
    assert state["cursor"] == 0 and state["done"] is False
    assert state["iteration"] == -1 and state["phase"] == "setup"
    assert state["event"]["kind"] == "line" and state["line"] == state["event"]["line"]
    assert state["losses"] == [] and state["error"] is None


def test_create_without_config_uses_the_defaults(api):
    response = api.post("/api/sessions", json={"lesson": "numpy"})

    assert response.status_code == 201
    assert response.json()["config"]["N"] == 64


def test_create_unknown_lesson_is_404(api):
    response = api.post("/api/sessions", json={"lesson": "nope", "config": {}})

    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"N": 0}, ["N", "1", "65536"]),
        ({"N": "8"}, ["N", "integer"]),
        ({"N": 8.0}, ["N", "integer"]),
        ({"N": None}, ["N"]),
        ({"learning_rate": 2}, ["learning_rate", "1"]),
        ({"iterations": 10001}, ["iterations", "10000"]),
        ({"seed": 2**32}, ["seed", "4294967295"]),
        ({"device": "cuda:7"}, ["device", "cpu"]),
        ({"momentum": 0.5}, ["momentum", "autograd"]),
        ({"zero_grad": "yes"}, ["zero_grad", "true or false"]),
        ({"bogus": 1}, ["bogus"]),
        ({"N": 65536, "D_in": 65536}, ["budget"]),
    ],
)
def test_invalid_config_is_422_naming_the_field_and_limit(api, config, words):
    response = api.post("/api/sessions", json={"lesson": "autograd", "config": config})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for word in words:
        assert word in detail


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"config": {}}, ["lesson", "required"]),
        ({"lesson": 3}, ["lesson"]),
        ({"lesson": "nn", "config": [1]}, ["config", "JSON object"]),
        ({"lesson": "nn", "extra": 1}, ["extra", "not a field"]),
    ],
)
def test_invalid_create_body_is_422_with_one_sentence(api, body, words):
    response = api.post("/api/sessions", json=body)

    assert response.status_code == 422
    for word in words:
        assert word in response.json()["detail"]


def test_read_session_returns_the_same_state(api):
    created = api.create()

    assert api.state(created["id"]) == created


def test_unknown_session_is_404_on_every_route(api):
    missing = "0" * 32
    responses = [
        api.get(f"/api/sessions/{missing}"),
        api.post(f"/api/sessions/{missing}/step", json={"by": "event"}),
        api.post(f"/api/sessions/{missing}/seek", json={"cursor": 0}),
        api.delete(f"/api/sessions/{missing}"),
        api.get(f"/api/sessions/{missing}/graph"),
        api.get(f"/api/sessions/{missing}/graph.svg"),
        api.get(f"/api/sessions/{missing}/graph.dot"),
        api.get(f"/api/sessions/{missing}/graph.dot?style=torchviz"),
        api.get(f"/api/sessions/{missing}/tensors/w1"),
    ]

    for response in responses:
        assert response.status_code == 404
        assert missing in response.json()["detail"]


def test_step_kinds_move_the_cursor(api):
    session_id = api.create()["id"]

    first = api.step(session_id, "event")
    line = api.step(session_id, "line", 2)
    iteration = api.step(session_id, "iteration")
    phase = api.step(session_id, "phase")

    assert first["cursor"] == 1
    assert line["cursor"] >= 3
    assert iteration["iteration"] == 0 and iteration["cursor"] > line["cursor"]
    assert phase["phase"] != iteration["phase"]


def test_step_past_the_end_returns_the_final_state(api):
    session_id = api.create()["id"]

    final = api.step(session_id, "end")
    again = api.step(session_id, "event", 1000)

    assert final["done"] is True and final["phase"] == "done"
    assert final["event"]["kind"] == "end" and final["line"] is None
    assert len(final["losses"]) == 3
    assert again == final


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"by": "word"}, ["by", "event, line, phase, iteration, end"]),
        ({"by": "event", "count": 0}, ["count", "between 1 and 1000000"]),
        ({"by": "event", "count": 1_000_001}, ["count", "between 1 and 1000000"]),
        ({"by": "event", "count": 1.5}, ["count", "integer"]),
        ({"by": "event", "count": 2.0}, ["count", "integer"]),
        ({"by": "event", "count": "2"}, ["count", "integer"]),
        ({"by": "event", "count": True}, ["count", "integer"]),
        ({"by": "event", "count": None}, ["count", "integer"]),
        ({"count": 1}, ["by", "required"]),
        ({"by": "event", "step": 1}, ["step", "not a field"]),
        ([], ["JSON object"]),
    ],
)
def test_invalid_step_body_is_422_naming_the_field(api, body, words):
    session_id = api.create()["id"]

    response = api.post(f"/api/sessions/{session_id}/step", json=body)

    assert response.status_code == 422
    for word in words:
        assert word in response.json()["detail"]


def test_invalid_json_is_422(api):
    session_id = api.create()["id"]

    response = api.post(
        f"/api/sessions/{session_id}/step",
        content=b'{"by": ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize("cursor", [-1, 1.0, "3", None])
def test_invalid_seek_body_is_422(api, cursor):
    session_id = api.create()["id"]

    response = api.post(f"/api/sessions/{session_id}/seek", json={"cursor": cursor})

    assert response.status_code == 422
    assert "cursor" in response.json()["detail"]


def test_seek_back_and_forth_gives_identical_states(api):
    session_id = api.create("nn")["id"]
    api.step(session_id, "iteration", 2)
    middle = api.step(session_id, "event", 7)
    later = api.step(session_id, "phase", 3)

    back = api.seek(session_id, middle["cursor"])
    forth = api.seek(session_id, later["cursor"])
    start = api.seek(session_id, 0)

    assert back == middle
    assert forth == later
    assert start["cursor"] == 0 and start["variables"] == {}


def test_seeks_back_after_a_run_to_the_end_go_on_from_checkpoints(api):
    session_id = api.create("dynamic_net", iterations=300)["id"]
    walked = api.create("dynamic_net", iterations=300)["id"]
    end = api.step(session_id, "end")["cursor"]
    # The host builds them only once no request has come for QUIET_S: ask less often.
    deadline = time.monotonic() + 60
    while len(api.store.ping(session_id)["checkpoints"]) < api.settings.checkpoints:
        assert time.monotonic() < deadline, api.store.ping(session_id)
        time.sleep(10 * QUIET_S)

    for cursor in sorted({end - 1, end // 2, end // 3, end - 100}, reverse=True):
        back = api.seek(session_id, cursor)
        assert back == {**api.seek(walked, cursor), "id": session_id}
    assert api.store.ping(session_id)["replays"] == 0
    assert api.step(session_id, "end") == {**api.step(walked, "end"), "id": session_id}


def test_seek_past_the_end_gives_the_final_state(api):
    session_id = api.create()["id"]

    state = api.seek(session_id, 10**12)

    assert state["done"] is True
    assert state == api.step(session_id, "end")


def test_delete_is_204_then_the_session_is_gone(api):
    session_id = api.create()["id"]

    deleted = api.delete(f"/api/sessions/{session_id}")
    again = api.delete(f"/api/sessions/{session_id}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert again.status_code == 404
    assert api.get(f"/api/sessions/{session_id}").status_code == 404


def test_session_cap_is_429_until_one_is_deleted(make_api):
    api = make_api(max_sessions=2)
    first = api.create()["id"]
    api.create()

    refused = api.post("/api/sessions", json={"lesson": "autograd", "config": {}})
    api.delete(f"/api/sessions/{first}")
    accepted = api.post("/api/sessions", json={"lesson": "autograd", "config": {}})

    assert refused.status_code == 429
    assert "2 sessions" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert accepted.status_code == 201


def test_idle_sessions_expire(make_api):
    api = make_api(session_ttl_s=0.3, max_sessions=1)
    session_id = api.create()["id"]
    api.step(session_id)

    time.sleep(0.5)

    assert api.get(f"/api/sessions/{session_id}").status_code == 404
    assert api.post("/api/sessions", json={"lesson": "autograd"}).status_code == 201


def test_evicted_sessions_come_back_by_replay_with_the_same_numbers(make_api):
    api = make_api(max_live_sessions=1)
    first = api.create("optim")["id"]
    before = api.step(first, "iteration", 2)
    graph = api.get(f"/api/sessions/{first}/graph").json()
    second = api.create("optim")["id"]
    api.step(second, "line", 5)  # evicts the first session's live run

    assert api.state(first) == before
    assert api.get(f"/api/sessions/{first}/graph").json() == graph


def test_a_new_app_on_the_same_data_answers_for_the_old_sessions(make_api):
    old = make_api()
    session_id = old.create("custom_module")["id"]
    before = old.step(session_id, "line", 40)

    new = make_api()

    assert new.state(session_id) == before
    moved = new.step(session_id, "event", 5)
    assert moved["cursor"] == before["cursor"] + 5
    # Like two replicas on one store: the old app follows the record, not its live run.
    assert old.state(session_id) == moved


#: A run long enough to be stopped on its way (seconds on this machine).
LONG = {"N": 64, "D_in": 256, "H": 256, "D_out": 8, "iterations": 10000}


def test_a_step_stops_at_its_time_limit_and_says_what_is_left(make_api):
    api = make_api(step_time_s=0.2)
    session_id = api.create("optim", **LONG)["id"]
    started = time.monotonic()
    state = api.step(session_id, "event", 10**6)

    assert time.monotonic() - started < 1.0
    assert state["interrupted"]["reason"] == "time"
    assert state["interrupted"]["remaining"] == 10**6 - state["cursor"]
    assert api.state(session_id)["interrupted"] is None  # a read interrupts nothing
    ended = api.step(session_id, "end")
    assert ended["interrupted"] == {
        "reason": "time",
        "remaining": None,
        "detail": "the step ran for its time limit",
    }


def test_cancel_is_202_and_stops_the_step_in_flight(make_api):
    api = make_api()
    session_id = api.create("optim", **LONG)["id"]
    answers: list = []
    stepping = threading.Thread(target=lambda: answers.append(api.step(session_id, "end")))
    stepping.start()
    time.sleep(0.5)
    cancelled = api.post(f"/api/sessions/{session_id}/cancel")
    stepping.join(5)

    assert cancelled.status_code == 202
    assert answers[0]["interrupted"]["reason"] == "cancelled"
    assert api.post(f"/api/sessions/{session_id}/cancel").status_code == 202  # idle: also
    assert api.post("/api/sessions/nope/cancel").status_code == 404


def test_a_busy_session_answers_409_beyond_its_queue_never_503(make_api):
    api = make_api(session_queue=1)
    session_id = api.create("optim", **LONG)["id"]
    stepping = threading.Thread(target=lambda: api.step(session_id, "end"))
    stepping.start()
    time.sleep(0.3)
    waiting = threading.Thread(target=lambda: api.state(session_id))
    waiting.start()
    time.sleep(0.2)
    try:
        busy = api.get(f"/api/sessions/{session_id}")
        assert busy.status_code == 409
        assert "busy" in busy.json()["detail"] and "cancel" in busy.json()["detail"]
    finally:
        api.post(f"/api/sessions/{session_id}/cancel")
        stepping.join(10)
        waiting.join(10)


def test_a_session_that_used_its_cpu_time_answers_429_naming_it(make_api):
    api = make_api(session_cpu_s=0.3)
    session_id = api.create("optim", **LONG)["id"]
    assert api.step(session_id, "end")["interrupted"]["reason"] == "time"

    refused = api.post(f"/api/sessions/{session_id}/step", json={"by": "event"})
    assert refused.status_code == 429
    assert "CPU time" in refused.json()["detail"]
    assert api.seek(session_id, 2)["cursor"] == 2  # replays are free


def test_requests_on_one_session_are_serialised(make_api):
    api = make_api()
    session_id = api.create()["id"]
    statuses: list[int] = []

    def stepper() -> None:
        for _ in range(5):
            response = api.post(f"/api/sessions/{session_id}/step", json={"by": "event"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=stepper) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 30
    assert api.state(session_id)["cursor"] == 30
