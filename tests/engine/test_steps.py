"""What a step stops on: every stop shows something (issue "explain every step", item 6)."""

from __future__ import annotations

import ast

from app.engine.session import Session
from app.lessons.registry import LESSONS

SMALL = {"N": 4, "D_in": 5, "H": 3, "D_out": 2, "iterations": 2}


def _events(lesson_id: str) -> list[dict]:
    session = Session(id="t", lesson=LESSONS[lesson_id], config=SMALL)
    try:
        events = [session.state()["event"]]
        while not session.done:
            session.step(by="event")
            events.append(session.state()["event"])
        return events
    finally:
        session.close()


def test_no_step_stops_on_the_docstring() -> None:
    for lesson_id, lesson in LESSONS.items():
        docstring = ast.parse(lesson.source).body[0]
        quiet = range(docstring.lineno, (docstring.end_lineno or 0) + 1)
        session = Session(id="t", lesson=lesson, config=SMALL)
        try:
            first = session.state()["line"]
            session.step(by="line")
            second = session.state()["line"]
        finally:
            session.close()
        assert first not in quiet and second not in quiet, lesson_id
        assert lesson.source.splitlines()[first - 1].startswith("import"), lesson_id


def test_a_with_line_is_a_step_once() -> None:
    lines = [e["line"] for e in _events("autograd") if e["kind"] == "line"]
    source = LESSONS["autograd"].source.splitlines()
    with_line = next(i for i, text in enumerate(source, 1) if "with torch.no_grad()" in text)
    assert lines.count(with_line) == SMALL["iterations"]
    after = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == with_line]
    assert all(source[n - 1].strip().startswith("w1 -=") for n in after)


def test_a_custom_functions_apply_is_an_op_event_with_its_node() -> None:
    session = Session(id="t", lesson=LESSONS["custom_function"], config=SMALL)
    try:
        while not session.done:
            session.step(by="event")
            event = session.state()["event"]
            if event["kind"] == "op" and event["name"] == "torch.autograd.Function.apply":
                break
        graph = session.graph()
        node = next(n for n in graph["nodes"] if n["id"] == event["node_id"])
        assert graph["focus"] == node["id"]
        assert node["name"] == "MyReLUBackward" and node["shape"] == [4, 3]
        assert node["label"] == "relu(x.mm(w1))" and node["line"] == event["line"]
        # the op after it (.mm(w2)) comes next, on the same line
        session.step(by="event")
        following = session.state()["event"]
        assert following["kind"] == "op" and following["line"] == event["line"]
    finally:
        session.close()


def test_an_op_reports_only_a_node_it_made() -> None:
    """inplace: clamp_ inside MyReLU_.forward runs with recording off and makes no node;
    it must not report the node of the op before it."""
    events = _events("inplace")
    clamps = [e for e in events if e["kind"] == "op" and e["name"] == "Tensor.clamp_"]
    assert clamps and all(e["node_id"] is None for e in clamps)
    apply = "torch.autograd.Function.apply"
    applies = [e for e in events if e["kind"] == "op" and e["name"] == apply]
    assert len(applies) == SMALL["iterations"] and all(e["node_id"] for e in applies)
    made = [e["node_id"] for e in events if e["kind"] == "op" and e["node_id"]]
    assert len(made) == len(set(made)), "a node is made by one op only"


def test_the_in_place_error_points_at_the_change() -> None:
    """inplace's end: only SigmoidBackward0's saved b is stale, and its changed_at is the
    cursor of b.mul_(2), where b's version goes from 0 to 1."""
    session = Session(id="t", lesson=LESSONS["inplace"], config=SMALL)
    try:
        session.step(by="end")
        assert "modified by an inplace operation" in session.state()["error"]["message"]
        stale = [
            (node["name"], saved)
            for node in session.graph()["nodes"]
            for saved in node["saved"]
            if saved["stale"]
        ]
        assert [name for name, _ in stale] == ["SigmoidBackward0"]
        ((_, saved),) = stale
        assert (saved["of"], saved["version_saved"], saved["version_now"]) == ("b", 0, 1)
        session.seek(cursor=saved["changed_at"] - 1)
        assert session.state()["variables"]["b"]["version"] == 0
        session.step(by="event")
        state = session.state()
        assert state["event"]["name"] == "Tensor.mul_"
        assert state["variables"]["b"]["version"] == 1
    finally:
        session.close()


def test_a_class_statement_is_one_step() -> None:
    """custom_function: Step over line on `class MyReLU` goes to the next statement of the
    module; the methods' lines are stepped when they run, never while being defined."""
    lesson = LESSONS["custom_function"]
    source = lesson.source.splitlines()
    class_line = next(i for i, text in enumerate(source, 1) if text.startswith("class MyReLU"))
    session = Session(id="t", lesson=lesson, config=SMALL)
    try:
        while session.state()["line"] != class_line:
            session.step(by="line")
        session.step(by="line")
        after = session.state()
        assert source[after["line"] - 1].startswith("torch.manual_seed"), after["line"]
        assert after["frames"] == []
    finally:
        session.close()
    lines = {e["line"] for e in _events("custom_function") if e["kind"] == "line"}
    definitions = {i for i, text in enumerate(source, 1) if text.strip().startswith(("def ", "@"))}
    assert not lines & definitions
    forward = next(i for i, text in enumerate(source, 1) if "return input.clamp(min=0)" in text)
    assert forward in lines  # forward's body is stepped when apply runs it
