"""Edited code through the REST API (DESIGN.md §5.1, "Edited code")."""

from __future__ import annotations

from typing import Any

import pytest

from app.lessons.plain import run_plain
from app.lessons.registry import MAX_SOURCE_BYTES, edited, get_lesson
from tests.api.conftest import SMALL, Api

AUTOGRAD = get_lesson("autograd").source
NO_ZERO_GRAD = AUTOGRAD.replace(
    "    if zero_grad:\n        w1.grad.zero_()\n        w2.grad.zero_()\n", ""
)
PRINTS = AUTOGRAD.replace(
    "    losses.append(loss.item())\n",
    "    losses.append(loss.item())\n    print('t =', t, 'loss =', round(loss.item(), 3))\n",
)


@pytest.fixture
def api(make_api) -> Api:
    return make_api(allow_code=True)


def _create(api: Api, source: str, **config: Any):
    body = {"lesson": "autograd", "config": {**SMALL, **config}, "source": source}
    return api.post("/api/sessions", json=body)


def _to_end(api: Api, session_id: str) -> dict[str, Any]:
    state = api.step(session_id, by="end")
    while state["interrupted"]:
        state = api.step(session_id, by="end")
    return state


def test_an_edit_runs_in_its_own_confined_host_with_the_numbers_of_a_plain_run(api):
    created = _create(api, PRINTS)
    assert created.status_code == 201, created.text
    state = created.json()
    assert state["edited"] is True and state["cursor"] == 0 and state["output"] == ""

    end = _to_end(api, state["id"])
    plain = run_plain(edited(get_lesson("autograd"), PRINTS), {**SMALL})
    assert end["done"] and end["error"] is None
    assert end["losses"] == plain["losses"]
    assert end["output"] == "".join(
        f"t = {t} loss = {round(loss, 3)}\n" for t, loss in enumerate(plain["losses"])
    )
    # A fresh host (the first one ended) replays the edit from the record, not the lesson.
    api.store.hosts.kill(state["id"])
    again = api.seek(state["id"], cursor=end["cursor"] - 1)
    assert again["edited"] is True and again["losses"] == end["losses"]


def test_the_source_and_what_changed_can_be_read_back(api):
    state = _create(api, "import math\n" + NO_ZERO_GRAD).json()
    source = api.get(f"/api/sessions/{state['id']}/source")
    assert source.status_code == 200
    body = source.json()
    assert body["source"] == "import math\n" + NO_ZERO_GRAD and body["edited"] is True
    assert body["changed"] == [1]  # only the new line; the deleted ones are just gone
    lesson = get_lesson("autograd")
    kept = {str(line + 1) for line in lesson.notes if line < lesson.loop_line + 16}
    assert kept <= set(body["notes"])

    plain = api.create()
    assert api.get(f"/api/sessions/{plain['id']}/source").json() == {
        "source": AUTOGRAD,
        "edited": False,
        "changed": [],
        "notes": {str(line): note for line, note in lesson.notes.items()},
    }
    assert plain["edited"] is False and plain["output"] is None


def test_a_syntax_error_answers_422_with_its_line_and_column(api):
    response = _create(api, "import torch\nfor t in range(iterations)\n    pass\n")
    assert response.status_code == 422
    body = response.json()
    assert (body["line"], body["column"]) == (2, 27)
    assert body["detail"].startswith("line 2: expected ':'")


def test_a_source_over_32_kib_answers_422(api):
    response = _create(api, "#" * MAX_SOURCE_BYTES + "\n")
    assert response.status_code == 422
    assert f"the most it may be is {MAX_SOURCE_BYTES}" in response.json()["detail"]


def test_edited_code_runs_on_the_cpu_only(api, monkeypatch):
    # A server with a GPU (as the config check sees it): lessons may use it, edits may not.
    devices = [{"id": "cpu", "name": "cpu"}, {"id": "cuda:0", "name": "a GPU"}]
    monkeypatch.setattr("app.api.deps.available_devices", lambda: devices)
    response = _create(api, AUTOGRAD, device="cuda")
    assert response.status_code == 422
    assert "CPU only" in response.json()["detail"]


def test_a_server_that_does_not_allow_edited_code_answers_403_naming_the_setting(make_api):
    api = make_api(allow_code=False)
    response = _create(api, AUTOGRAD)
    assert response.status_code == 403
    assert "AGX_ALLOW_CODE" in response.json()["detail"]
    assert api.create()["edited"] is False  # lessons still run


def test_by_default_edited_code_is_for_a_server_on_loopback_only(make_api):
    api = make_api()  # the test client's server is "testserver", not a loopback address
    assert _create(api, AUTOGRAD).status_code == 403


def test_steps_that_need_the_loop_or_the_tags_answer_409_saying_why(api):
    state = _create(api, "import torch\nx = torch.ones(2, requires_grad=True)\n").json()
    for by, why in (("iteration", "no training loop"), ("phase", "tags no phases")):
        response = api.post(f"/api/sessions/{state['id']}/step", json={"by": by, "count": 1})
        assert response.status_code == 409 and why in response.json()["detail"]
    assert _to_end(api, state["id"])["done"]


def test_an_operation_that_never_returns_ends_its_host_with_a_clear_422(make_api):
    api = make_api(allow_code=True, step_time_s=1.0)
    source = "import time\nx = 1\ntime.sleep(3600)\ny = 2\n"
    state = _create(api, source).json()
    before = api.step(state["id"], by="line", count=2)  # the cursor the record keeps
    response = api.post(f"/api/sessions/{state['id']}/step", json={"by": "end", "count": 1})
    assert response.status_code == 422
    assert "ran for over 6 s without reaching its next line" in response.json()["detail"]
    after = api.state(state["id"])  # a new host, back where the step began
    assert (after["cursor"], after["line"], after["done"]) == (before["cursor"], 2, False)
    assert api.create()["cursor"] == 0  # and the server is fine
