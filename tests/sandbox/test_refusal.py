"""Edited code runs only where every sandbox layer is in force (DESIGN.md §5.1, §7):
otherwise 403 naming the layer, and /healthz says why."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.sandbox import LAYERS
from tests.api.conftest import SMALL
from tests.sandbox.conftest import Escapes

SOURCE = "import torch\nx = torch.ones(2)\n"


def _create(escapes: Escapes) -> Any:
    body = {"lesson": "autograd", "config": SMALL, "source": SOURCE}
    return escapes.api.post("/api/sessions", json=body)


def _refused(escapes: Escapes, monkeypatch: pytest.MonkeyPatch, report: dict[str, Any]) -> str:
    """Make the zygote's self-test say ``report``; check edited code is refused and
    lessons still run; return the 403's detail."""
    monkeypatch.setattr(escapes.api.store.hosts, "sandbox", lambda: report)
    response = _create(escapes)
    assert response.status_code == 403, response.text
    detail: str = response.json()["detail"]

    health = escapes.api.get("/healthz")
    assert health.status_code == 200  # the server is fit; edited code is off
    edited_code = health.json()["edited_code"]
    assert edited_code["allowed"] is False and edited_code["reason"] == detail
    assert edited_code["layers"] == report["layers"]
    assert edited_code["torch"] == report["torch"]
    assert edited_code["in_force"] is False

    lesson = escapes.api.create()
    assert lesson["edited"] is False
    assert escapes.api.delete(f"/api/sessions/{lesson['id']}").status_code == 204
    return detail


@pytest.mark.parametrize("layer", LAYERS)
def test_edited_code_is_refused_when_a_layer_is_not_in_force(attempt: Escapes, layer: str) -> None:
    real = attempt.api.store.hosts.sandbox()
    assert real["in_force"] is True and all(why is None for why in real["layers"].values())
    why = f"it could not be applied here (a test says so about {layer})"
    report = {**real, "in_force": False, "layers": {**real["layers"], layer: why}}
    with pytest.MonkeyPatch.context() as monkeypatch:
        detail = _refused(attempt, monkeypatch, report)
    assert detail == (
        f"edited code needs every sandbox layer, and {layer} is not in force here: {why}"
    )
    created = _create(attempt)  # the layer back: edited code runs again
    assert created.status_code == 201, created.text
    attempt.sessions.append(created.json()["id"])


def test_edited_code_is_refused_when_torch_cannot_compute_confined(attempt: Escapes) -> None:
    real = attempt.api.store.hosts.sandbox()
    why = "the confined child computed other numbers (a test says so)"
    report = {**real, "in_force": False, "torch": why}
    with pytest.MonkeyPatch.context() as monkeypatch:
        detail = _refused(attempt, monkeypatch, report)
    assert detail == f"edited code needs torch to compute inside the sandbox, and here: {why}"
