"""GET /api/sessions/{id}/tensors/{name}."""

from __future__ import annotations


def test_tensor_detail_has_summary_preview_and_histogram(api):
    session_id = api.create()["id"]
    state = api.step(session_id, "iteration")

    response = api.get(f"/api/sessions/{session_id}/tensors/w1")

    assert response.status_code == 200
    detail = response.json()
    summary = state["variables"]["w1"]
    assert {k: detail[k] for k in summary} == summary
    assert len(detail["preview"]) == 8 and len(detail["preview"][0]) == 8
    assert len(detail["histogram"]["counts"]) == 32
    assert len(detail["histogram"]["edges"]) == 33
    assert sum(detail["histogram"]["counts"]) == 16 * 8


def test_gradient_and_module_parameter_names(api):
    session_id = api.create("nn")["id"]
    api.step(session_id, "iteration", 2)

    weight = api.get(f"/api/sessions/{session_id}/tensors/model.0.weight")
    grad = api.get(f"/api/sessions/{session_id}/tensors/model.0.weight.grad")

    assert weight.status_code == 200 and weight.json()["shape"] == [8, 16]
    assert grad.status_code == 200 and grad.json()["shape"] == [8, 16]


def test_unknown_tensor_is_404(api):
    session_id = api.create()["id"]

    response = api.get(f"/api/sessions/{session_id}/tensors/w9")

    assert response.status_code == 404
    assert "w9" in response.json()["detail"]
