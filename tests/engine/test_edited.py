"""A learner's edit of a lesson (DESIGN.md §5.1, "Edited code"): what the registry makes
of it, and that the explorer steps it without changing what it computes."""

from __future__ import annotations

import pytest
import torch

from app.engine.session import Session, StepUnavailable
from app.lessons.plain import run_plain
from app.lessons.registry import LESSONS, MAX_SOURCE_BYTES, EditError, edited, get_lesson

SMALL = {"N": 8, "D_in": 12, "H": 6, "D_out": 3, "iterations": 4}


def _replace(lesson_id: str, old: str, new: str) -> str:
    source = get_lesson(lesson_id).source
    assert source.count(old) == 1, old
    return source.replace(old, new)


# The edits learners ask for first (issue 15): each runs, and matches a plain run of it.
EDITS = {
    "no zero_grad": (
        "autograd",
        _replace(
            "autograd",
            "    if zero_grad:\n        w1.grad.zero_()\n        w2.grad.zero_()\n",
            "",
        ),
    ),
    "in-place relu_": (
        "autograd",
        _replace("autograd", "x.mm(w1).clamp(min=0).mm(w2)", "x.mm(w1).relu_().mm(w2)"),
    ),
    "a third layer": (
        "nn",
        _replace(
            "nn",
            "    torch.nn.Linear(H, D_out),\n",
            "    torch.nn.Linear(H, H),\n    torch.nn.ReLU(),\n    torch.nn.Linear(H, D_out),\n",
        ),
    ),
    "Adam instead of SGD": (
        "nn",
        _replace(
            "nn",
            "        for param in model.parameters():\n"
            "            param -= learning_rate * param.grad\n",
            "        pass\n    adam.step()\n",
        ).replace(
            "loss_fn = torch.nn.MSELoss",
            "adam = torch.optim.Adam(model.parameters(), lr=1e-3)\nloss_fn = torch.nn.MSELoss",
        ),
    ),
}


def _plain_numbers(namespace: dict) -> dict[str, torch.Tensor]:
    return {
        name: value.detach().clone()
        for name, value in namespace.items()
        if isinstance(value, torch.Tensor)
    }


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edit_steps_to_the_end_with_the_numbers_of_a_plain_run(name):
    lesson_id, source = EDITS[name]
    lesson = edited(get_lesson(lesson_id), source)
    config = {**SMALL, "learning_rate": 1e-3}
    plain = run_plain(lesson, config)
    assert "__error__" not in plain

    session = Session(id="s", lesson=lesson, config=config)
    try:
        # A mix of kinds: events, lines, phases, iterations, then the end.
        for by in ("event", "line", "phase", "iteration", "end"):
            session.step(by=by)
        state = session.state()
        assert state["done"] and state["error"] is None and state["edited"] is True
        assert state["losses"] == plain["losses"]  # bit for bit
        scope = session._run.scope
        for tensor, value in _plain_numbers(plain).items():
            assert torch.equal(scope[tensor].detach(), value), tensor
    finally:
        session.close()


def test_an_in_place_relu_on_a_saved_tensor_fails_as_it_does_plainly():
    # relu_ on the output of mm, which clamp's backward... here mm saves its inputs:
    # making x.mm(w1) in place is fine, but changing `h` after it is saved is not.
    source = _replace(
        "autograd",
        "    y_pred = x.mm(w1).clamp(min=0).mm(w2)\n",
        "    h = x.mm(w1).relu()\n    y_pred = h.mm(w2)\n    h.add_(1)\n",
    )
    lesson = edited(get_lesson("autograd"), source)
    plain = run_plain(lesson, SMALL)
    session = Session(id="s", lesson=lesson, config=SMALL)
    try:
        session.step(by="end")
        error = session.state()["error"]
        assert error is not None and error["type"] == type(plain["__error__"]).__name__
        assert error["message"] == str(plain["__error__"])
    finally:
        session.close()


def test_the_edit_keeps_the_notes_of_the_lines_it_leaves_alone():
    lesson = get_lesson("autograd")
    source = "import math  # a line more at the top\n" + EDITS["in-place relu_"][1]
    edit = edited(lesson, source)
    changed_line = source.splitlines().index("    y_pred = x.mm(w1).relu_().mm(w2)") + 1
    assert edit.changed == (1, changed_line)
    old_line = lesson.source.splitlines().index("    y_pred = x.mm(w1).clamp(min=0).mm(w2)") + 1
    # Every note moves down one line with its line, but the changed line's note is gone.
    expected = {line + 1: note for line, note in lesson.notes.items() if line != old_line}
    assert edit.notes == expected
    assert edit.loop_line == lesson.loop_line + 1 and edit.has_loop and edit.has_phases


def test_a_syntax_error_names_its_line_and_column():
    with pytest.raises(EditError) as caught:
        edited(get_lesson("autograd"), "import torch\nx = (1,\n")
    assert (caught.value.line, caught.value.column) == (2, 5)
    assert "line 2" in str(caught.value)


def test_a_source_over_the_cap_is_refused_before_it_is_parsed():
    source = "#" * (MAX_SOURCE_BYTES - 1) + "\n"
    assert edited(get_lesson("autograd"), source).source == source  # at the cap: fine
    with pytest.raises(EditError, match=f"the most it may be is {MAX_SOURCE_BYTES}"):
        edited(get_lesson("autograd"), source + "x")


def test_without_the_loop_or_the_tags_the_steps_that_need_them_are_refused():
    source = (
        "import torch\n"
        "x = torch.ones(3, requires_grad=True)\n"
        "y = (x * x).sum()\n"
        "y.backward()\n"
        "print('grad', x.grad.tolist())\n"
    )
    lesson = edited(get_lesson("autograd"), source)
    assert not lesson.has_loop and not lesson.has_phases
    assert list(lesson.notes) == [1]  # `import torch` is the lesson's line, with its note
    session = Session(id="s", lesson=lesson, config=SMALL)
    try:
        with pytest.raises(StepUnavailable, match="no training loop"):
            session.step(by="iteration")
        with pytest.raises(StepUnavailable, match="tags no phases"):
            session.step(by="phase")
        session.step(by="line")
        session.step(by="end")
        state = session.state()
        assert state["done"] and state["error"] is None
        assert state["output"] == "grad [2.0, 2.0, 2.0]\n"
    finally:
        session.close()


def test_what_an_edit_prints_is_kept_bounded_and_follows_the_cursor():
    source = _replace(
        "autograd",
        "    losses.append(loss.item())\n",
        "    losses.append(loss.item())\n    print(t, 'x' * 5000)\n",
    )
    config = {**SMALL, "iterations": 8}
    session = Session(id="s", lesson=edited(get_lesson("autograd"), source), config=config)
    try:
        session.step(by="iteration", count=3)
        early, cursor = session.state()["output"], session.cursor
        assert early == "".join(f"{t} {'x' * 4000}\n" for t in range(2))  # values cut at 4000
        session.step(by="end")
        late = session.state()["output"]
        assert late.startswith("[") and late.endswith("7 " + "x" * 4000 + "\n")
        assert len(late) < 16_384 + 64  # the head was dropped
        session.close()
        session = Session(id="s", lesson=edited(get_lesson("autograd"), source), config=config)
        session.seek(cursor=cursor)  # a fresh run prints the same again
        assert session.state()["output"] == early
    finally:
        session.close()


def test_a_lesson_is_not_edited_and_prints_nothing():
    session = Session(id="s", lesson=get_lesson("autograd"), config=SMALL)
    try:
        session.step(by="end")
        state = session.state()
        assert state["edited"] is False and state["output"] is None
    finally:
        session.close()


def test_an_edit_that_runs_too_many_events_ends_with_an_error_it_cannot_catch():
    source = (
        "n = 0\nwhile True:\n    try:\n        n += 1\n    except BaseException:\n        pass\n"
    )
    lesson = edited(get_lesson("autograd"), source)
    session = Session(id="s", lesson=lesson, config=SMALL, max_events=500)
    try:
        session.step(by="end")
        state = session.state()
        assert state["done"] and state["error"]["type"] == "EventLimit"
        assert "AGX_CODE_MAX_EVENTS" in state["error"]["message"]
        assert 500 <= state["cursor"] <= 510
    finally:
        session.close()


def test_an_exception_with_a_huge_message_is_cut_short():
    source = "raise ValueError('x' * 10_000_000)\n"
    session = Session(id="s", lesson=edited(get_lesson("autograd"), source), config=SMALL)
    try:
        session.step(by="end")
        error = session.state()["error"]
        assert error["type"] == "ValueError" and len(error["message"]) == 4000
    finally:
        session.close()


@pytest.mark.parametrize(
    "statement",
    ["import os", "from subprocess import run", "import importlib", "from . import x", "open('f')"],
)
def test_an_edit_imports_only_the_allowed_modules_and_opens_no_file(statement):
    source = f"import math\nimport torch.nn\n{statement}\n"
    session = Session(id="s", lesson=edited(get_lesson("autograd"), source), config=SMALL)
    try:
        session.step(by="end")
        error = session.state()["error"]
        assert error["line"] == 3
        assert error["type"] == ("NameError" if "open" in statement else "ImportError")
    finally:
        session.close()


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_every_lesson_edited_runs_as_its_plain_run_does(lesson_id):
    # A line more at the top (every later line moves) and a print at the end: the edit
    # keeps the lesson's notes on their lines, and computes what a plain run of it does.
    lesson = get_lesson(lesson_id)
    source = "# my version\n" + lesson.source + "\nprint('last loss', losses[-1:])\n"
    edit = edited(lesson, source)
    assert edit.notes == {line + 1: note for line, note in lesson.notes.items()}
    config = {**SMALL, "iterations": 3}
    config = {name: value for name, value in config.items() if name in lesson.fields}
    plain = run_plain(edit, config)

    session = Session(id="s", lesson=edit, config=config)
    try:
        session.step(by="end")
        state = session.state()
        assert state["done"] and state["losses"] == plain["losses"]
        failed = plain.get("__error__")
        assert (state["error"] or {}).get("type") == (type(failed).__name__ if failed else None)
        if failed is None:
            assert state["output"] == f"last loss {plain['losses'][-1:]}\n"
        for tensor, value in _plain_numbers(plain).items():
            assert torch.equal(session._run.scope[tensor].detach(), value), tensor
    finally:
        session.close()
