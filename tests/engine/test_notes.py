"""Notes for everything that steps: every stoppable line and every graph node has a note,
in English and Chinese, and what the notes say is what the engine shows (DESIGN.md §5.1).

Each lesson runs once through the engine, event by event, on tiny dimensions; the
tests read the line events, the graphs and the states of those runs.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from app.engine.session import Session
from app.lessons.node_notes import NODE_NOTES
from app.lessons.plain import run_plain
from app.lessons.registry import LESSONS, Lesson

SMALL = {"N": 4, "D_in": 5, "H": 3, "D_out": 2, "iterations": 2}
# random.Random(0) draws depths 3, 3, 0 and random.Random(1) draws 1, 0, 2: all of 0..3.
DYNAMIC_ITERATIONS = 3
DYNAMIC_SEEDS = (0, 1)

_CJK = re.compile(r"[\u4e00-\u9fff]")
# Node names as notes write them: MmBackward0, MyReLU_Backward, AccumulateGrad, aten::mm.
_NODE_NAME = re.compile(r"\b[A-Za-z_]\w*Backward\d*\b|\bAccumulateGrad\b|\baten::\w+", re.ASCII)


@dataclass
class Snapshot:
    """What the engine showed at one `line` event (before that line runs)."""

    line: int
    versions: dict[str, int]
    saved: dict[str, list[list[dict[str, Any]]]]  # node name -> saved lists, one per node


@dataclass
class Trace:
    """One or more runs of a lesson, event by event."""

    configs: list[dict[str, Any]]
    runs: list[list[Snapshot]] = field(default_factory=list)
    lines: set[int] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    ends: list[dict[str, Any]] = field(default_factory=list)  # final state of each run


def _configs(lesson_id: str) -> list[dict[str, Any]]:
    if lesson_id == "dynamic_net":
        return [{**SMALL, "iterations": DYNAMIC_ITERATIONS, "seed": seed} for seed in DYNAMIC_SEEDS]
    return [dict(SMALL)]


@functools.cache
def trace(lesson_id: str) -> Trace:
    lesson = LESSONS[lesson_id]
    found = Trace(configs=_configs(lesson_id))
    for config in found.configs:
        session = Session(id=f"notes-{lesson_id}", lesson=lesson, config=config)
        snapshots: list[Snapshot] = []
        try:
            while not session.done:
                session.step(by="event", count=1)
                graph = session.graph()
                found.nodes.update(n["name"] for n in graph["nodes"] if n["kind"] == "function")
                event = session._run.event
                if event.kind != "line" or event.line is None:
                    continue
                found.lines.add(event.line)
                state = session.state()
                saved: dict[str, list[list[dict[str, Any]]]] = {}
                for node in graph["nodes"]:
                    if node["kind"] == "function":
                        saved.setdefault(node["name"], []).append(node["saved"])
                versions = {name: v["version"] for name, v in state["variables"].items()}
                snapshots.append(Snapshot(event.line, versions, saved))
            found.ends.append(session.state())
        finally:
            session.close()
        found.runs.append(snapshots)
    return found


def _line_of(lesson: Lesson, anchor: str) -> int:
    hits = [n for n, text in enumerate(lesson.source.splitlines(), start=1) if anchor in text]
    assert len(hits) == 1, anchor
    return hits[0]


def _note(lesson: Lesson, anchor: str) -> dict[str, str]:
    return lesson.notes[_line_of(lesson, anchor)]


def _number(text: str, pattern: str) -> list[int]:
    match = re.search(pattern, text)
    assert match, f"the note no longer says {pattern!r}: {text}"
    return [int(group) for group in match.groups()]


@functools.cache
def _function_of(lesson_id: str, line: int) -> int | None:
    """The first line of the innermost function whose body holds `line`; None at module level."""
    found = None
    for node in ast.walk(ast.parse(LESSONS[lesson_id].source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        inside = node.lineno < line <= (node.end_lineno or 0)
        if inside and (found is None or node.lineno > found):
            found = node.lineno
    return found


def _around(lesson_id: str, anchor: str, occurrence: int = 0) -> tuple[Snapshot, Snapshot]:
    """The snapshots before and after the anchor line's `occurrence`-th run.

    "After" is the next line event in the anchor's own function (or at module level),
    so the lines of a function the anchor line calls are skipped.
    """
    line = _line_of(LESSONS[lesson_id], anchor)
    scope = _function_of(lesson_id, line)
    snapshots = trace(lesson_id).runs[0]
    at = [i for i, snap in enumerate(snapshots) if snap.line == line][occurrence]
    after = next(
        snap for snap in snapshots[at + 1 :] if _function_of(lesson_id, snap.line) == scope
    )
    return snapshots[at], after


# (a) every stoppable line has a note


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_every_line_that_can_stop_has_a_note(lesson_id: str) -> None:
    lesson = LESSONS[lesson_id]
    stoppable = trace(lesson_id).lines
    lines = lesson.source.splitlines()
    assert stoppable
    missing = []
    for line in sorted(stoppable):
        note = lesson.notes.get(line)
        if note is None:
            missing.append(f"{line}: {lines[line - 1].strip()}")
            continue
        assert note["en"].strip(), line
        assert _CJK.search(note["zh"]), line
    assert not missing, f"{lesson_id}: lines without a note:\n" + "\n".join(missing)
    # And no note sits on a line the explorer never stops on, but for the definitions in
    # a class body (stepping over `class` is one step; the page shows them on the line).
    for line in set(lesson.notes) - stoppable:
        assert lines[line - 1].lstrip().startswith(("def ", "@")), (line, lines[line - 1])


def test_the_dynamic_net_runs_visit_every_depth() -> None:
    lesson = LESSONS["dynamic_net"]
    draw = _line_of(lesson, "depth = self.rng.randint(0, 3)")
    middle = _line_of(lesson, "h_relu = self.middle_linear(h_relu).clamp(min=0)")
    output = _line_of(lesson, "y_pred = self.output_linear(h_relu)")
    depths = set()
    for snapshots in trace("dynamic_net").runs:
        lines = [snap.line for snap in snapshots]
        for start in (i for i, line in enumerate(lines) if line == draw):
            end = lines.index(output, start)
            depths.add(lines[start:end].count(middle))
    assert depths == {0, 1, 2, 3}
    assert "0, 1, 2 or 3" in _note(lesson, "depth = self.rng.randint(0, 3)")["en"]


# (b) every node in the graphs has a node note, and no other node has


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_node_notes_cover_exactly_the_nodes_of_the_lessons_graphs(lesson_id: str) -> None:
    lesson = LESSONS[lesson_id]
    nodes = trace(lesson_id).nodes
    assert set(lesson.node_notes) == nodes, (
        f"missing {sorted(nodes - set(lesson.node_notes))}, "
        f"never created {sorted(set(lesson.node_notes) - nodes)}"
    )
    for name, note in lesson.node_notes.items():
        assert set(note) == {"en", "zh"}, name
        assert note["en"].strip() and _CJK.search(note["zh"]), name
        assert (note["en"], note["zh"]) == NODE_NOTES[name]


def test_the_lessons_that_record_graphs_have_node_notes() -> None:
    # The static per-lesson tuples are not empty where a graph exists.
    assert LESSONS["tensors"].node_notes == {}
    assert all(LESSONS[lid].node_notes for lid in LESSONS if lid != "tensors")
    assert {f"aten::{op}" for op in ("mm", "where", "ge")} <= set(
        LESSONS["static_graph"].node_notes
    )


# (c) notes only name nodes the lesson creates


def _named_nodes(text: str) -> set[str]:
    return set(_NODE_NAME.findall(text))


def _unknown(names: set[str], nodes: set[str]) -> set[str]:
    known = nodes | {name.rsplit("::", 1)[-1] for name in nodes if "AccumulateGrad" in name}
    return names - known


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_notes_name_only_nodes_the_lessons_graphs_contain(lesson_id: str) -> None:
    lesson = LESSONS[lesson_id]
    nodes = trace(lesson_id).nodes
    for line, note in lesson.notes.items():
        for language in ("en", "zh"):
            unknown = _unknown(_named_nodes(note[language]), nodes)
            assert not unknown, f"line {line} ({language}) names {sorted(unknown)}"
    for name, note in lesson.node_notes.items():
        for language in ("en", "zh"):
            unknown = _unknown(_named_nodes(note[language]), nodes)
            assert not unknown, f"node note {name} ({language}) names {sorted(unknown)}"


def test_the_node_name_pattern_finds_the_names_notes_use() -> None:
    text = "x.mm(w1) 创建MmBackward0；MyReLU_Backward, AccumulateGrad, aten::mm, ClampMinBackward0"
    assert _named_nodes(text) == {
        "MmBackward0",
        "MyReLU_Backward",
        "AccumulateGrad",
        "aten::mm",
        "ClampMinBackward0",
    }
    assert _unknown({"ClampMinBackward0"}, trace("autograd").nodes) == {"ClampMinBackward0"}


# (d) numbers the notes state are the numbers the engine shows


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_the_loop_header_stops_iterations_plus_one_times(lesson_id: str) -> None:
    lesson = LESSONS[lesson_id]
    assert "iterations + 1" in lesson.notes[lesson.loop_line]["en"]
    for config, snapshots in zip(trace(lesson_id).configs, trace(lesson_id).runs, strict=True):
        stops = sum(snap.line == lesson.loop_line for snap in snapshots)
        assert stops == config["iterations"] + 1


def test_inplace_versions_are_the_ones_the_notes_state() -> None:
    lesson = LESSONS["inplace"]

    before, after = _around("inplace", "h = x.mm(w1)")
    assert _number(_note(lesson, "h = x.mm(w1)")["en"], r"version (\d+)\.") == [after.versions["h"]]

    before, after = _around("inplace", "input.clamp_(min=0)")
    stated = _number(_note(lesson, "input.clamp_(min=0)")["en"], r"goes from (\d+) to (\d+)")
    assert stated == [before.versions["input"], after.versions["input"]] == [0, 1]

    _, after = _around("inplace", "h_relu = MyReLU_.apply(h)")
    stated = _number(_note(lesson, "h_relu = MyReLU_.apply(h)")["en"], r"h's version is now (\d+)")
    assert stated == [after.versions["h"]] == [2]
    assert after.versions["h_relu"] == after.versions["h"]

    _, after = _around("inplace", "b = a.sigmoid()")
    stated = _number(_note(lesson, "b = a.sigmoid()")["en"], r"at this moment, (\d+)")
    assert stated == [after.versions["b"]]
    before, _ = _around("inplace", "version_before = b._version")
    stated = _number(_note(lesson, "version_before = b._version")["en"], r"counter: (\d+)")
    assert stated == [before.versions["b"]]

    _, after = _around("inplace", "b.mul_(2)")
    stated = _number(_note(lesson, "b.mul_(2)")["en"], r"b's version becomes (\d+)")
    assert stated == [after.versions["b"]] == [1]


def test_inplace_saved_tensors_are_the_ones_the_notes_state() -> None:
    lesson = LESSONS["inplace"]
    n_in = SMALL["N"], SMALL["D_in"]
    # h = x.mm(w1): MmBackward0 saved x only ("self"), not w1 ("mat2") and not h.
    assert "saves x only" in _note(lesson, "h = x.mm(w1)")["en"]
    _, after = _around("inplace", "h = x.mm(w1)")
    [mm_saved] = after.saved["MmBackward0"]
    assert [(s["name"], tuple(s["shape"])) for s in mm_saved] == [("self", n_in)]

    # MyReLU_Backward saved the output at version 2 (clamp_ and mark_dirty each add one).
    _, after = _around("inplace", "h_relu = MyReLU_.apply(h)")
    stated = _number(_note(lesson, "ctx.save_for_backward(input)")["en"], r"records version (\d+)")
    assert "at version 2" in NODE_NOTES["MyReLU_Backward"][0]
    [[saved]] = after.saved["MyReLU_Backward"]
    assert stated == [saved["version_saved"]] == [after.versions["h"]] == [2]

    # y_pred = h_relu.mm(w2): this MmBackward0 saved both factors.
    _, after = _around("inplace", "y_pred = h_relu.mm(w2)")
    both = [s for s in after.saved["MmBackward0"] if len(s) == 2]
    assert [sorted(e["name"] for e in s) for s in both] == [["mat2", "self"]]

    # SigmoidBackward0 saved b at version 0; backward finds version 1 and refuses.
    _, after = _around("inplace", "b = a.sigmoid()")
    [[result]] = after.saved["SigmoidBackward0"]
    assert result["version_saved"] == 0
    found, saved_at = _number(
        _note(lesson, "b.sum().backward()")["en"],
        r"finds version (\d+) where it saved version (\d+)",
    )
    error = trace("inplace").ends[0]["error"]
    assert error["type"] == "RuntimeError"
    assert f"is at version {found}; expected version {saved_at}" in error["message"]


@pytest.mark.parametrize("lesson_id", ["autograd", "custom_function", "inplace"])
def test_the_in_place_update_adds_one_to_the_weights_version(lesson_id: str) -> None:
    lesson = LESSONS[lesson_id]
    assert "goes up by one" in _note(lesson, "w1 -= learning_rate * w1.grad")["en"]
    for occurrence in range(SMALL["iterations"]):
        before, after = _around(lesson_id, "w1 -= learning_rate * w1.grad", occurrence)
        assert after.versions["w1"] - before.versions["w1"] == 1


def test_the_sgd_step_adds_one_to_each_parameters_version() -> None:
    lesson = LESSONS["custom_module"]
    assert "version goes up by one" in _note(lesson, "optimizer.step()")["en"]
    before, after = _around("custom_module", "optimizer.step()")
    params = [name for name in before.versions if name.startswith("model.")]
    assert len(params) == 4
    assert all(after.versions[p] - before.versions[p] == 1 for p in params)


def test_autograd_saves_what_the_forward_note_says() -> None:
    lesson = LESSONS["autograd"]
    note = _note(lesson, "y_pred = x.mm(w1).clamp(min=0).mm(w2)")["en"]
    assert "ClampBackward1" in note and "saves x only" in note
    _, after = _around("autograd", "y_pred = x.mm(w1).clamp(min=0).mm(w2)")
    shapes = sorted(sorted(tuple(e["shape"]) for e in s) for s in after.saved["MmBackward0"])
    n, d_in, h, d_out = SMALL["N"], SMALL["D_in"], SMALL["H"], SMALL["D_out"]
    assert shapes == sorted([[(n, d_in)], sorted([(n, h), (h, d_out)])])
    assert [[e["name"] for e in s] for s in after.saved["ClampBackward1"]] == [["self"]]


@pytest.mark.parametrize("config", [SMALL, {}, {"seed": 3, "iterations": 3}])
def test_the_numpy_check_differs_by_float64_rounding_only(config: dict[str, Any]) -> None:
    note = _note(LESSONS["numpy"], "max_abs_diff = max(")["en"]
    assert "below 10⁻¹² of the largest gradient" in note
    scope: dict[str, Any] = run_plain("numpy", config)
    largest = max(
        float(np.abs(scope["w1_t"].grad.numpy()).max()),
        float(np.abs(scope["w2_t"].grad.numpy()).max()),
    )
    assert 0 <= scope["max_abs_diff"] < 1e-12 * largest
