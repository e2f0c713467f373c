"""GET /api/lessons and /api/lessons/{lesson}."""

from __future__ import annotations

from app.lessons.registry import LESSONS


def test_list_lessons_in_tutorial_order_with_defaults(api):
    response = api.get("/api/lessons")

    assert response.status_code == 200
    lessons = response.json()
    assert [lesson["id"] for lesson in lessons] == list(LESSONS)
    for lesson in lessons:
        assert lesson["title"] and lesson["summary"]
        assert lesson["defaults"] == LESSONS[lesson["id"]].defaults
        assert "source" not in lesson


def test_read_lesson_has_source_and_notes_by_line(api):
    response = api.get("/api/lessons/nn")

    assert response.status_code == 200
    lesson = response.json()
    assert lesson["id"] == "nn"
    assert lesson["source"] == LESSONS["nn"].source
    assert lesson["defaults"]["learning_rate"] == 1e-4
    lines = lesson["source"].splitlines()
    assert lesson["notes"]
    for line, note in lesson["notes"].items():
        assert 1 <= int(line) <= len(lines)
        assert note["en"] and note["zh"]


def test_unknown_lesson_is_404_naming_the_lessons(api):
    response = api.get("/api/lessons/backprop")

    assert response.status_code == 404
    assert "backprop" in response.json()["detail"]
    assert "autograd" in response.json()["detail"]


def test_config_check_answers_200_either_way(api) -> None:  # type: ignore[no-untyped-def]
    bad = api.post("/api/lessons/autograd/config", json={"N": 0})
    assert bad.status_code == 200
    assert bad.json() == {
        "valid": False,
        "config": None,
        "field": "N",
        "detail": bad.json()["detail"],
        "errors": [{"field": "N", "detail": bad.json()["detail"]}],
    }
    assert "N must be an integer" in bad.json()["detail"]
    # Every invalid field at once, the first one's sentence as `detail`.
    several = api.post(
        "/api/lessons/autograd/config", json={"N": 0, "seed": -1, "learning_rate": "x"}
    ).json()
    assert [e["field"] for e in several["errors"]] == ["N", "learning_rate", "seed"]
    assert several["detail"] == several["errors"][0]["detail"]
    good = api.post("/api/lessons/nn/config", json={"learning_rate": 0.01})
    assert good.status_code == 200 and good.json()["valid"] is True
    assert good.json()["config"]["learning_rate"] == 0.01 and good.json()["config"]["N"] == 64
    assert good.json()["errors"] == []
    assert api.post("/api/lessons/nope/config", json={}).status_code == 404
    assert api.post("/api/lessons/nn/config", json=[1]).status_code == 422


def test_an_invalid_config_lists_every_field_it_refuses(api) -> None:  # type: ignore[no-untyped-def]
    refused = api.post(
        "/api/sessions", json={"lesson": "nn", "config": {"H": 0, "momentum": 0.5, "seed": 1.5}}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert [e["field"] for e in body["errors"]] == ["momentum", "H", "seed"]
    assert body["detail"] == body["errors"][0]["detail"]
    assert all(e["detail"] for e in body["errors"])


def test_lesson_detail_has_node_notes(api) -> None:  # type: ignore[no-untyped-def]
    notes = api.get("/api/lessons/autograd").json()["node_notes"]
    assert set(notes) == {
        "torch::autograd::AccumulateGrad",
        "MmBackward0",
        "ClampBackward1",
        "PowBackward0",
        "SubBackward0",
        "SumBackward0",
    }
    assert all(note["en"] and note["zh"] for note in notes.values())
