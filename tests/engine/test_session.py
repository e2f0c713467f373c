"""The explorer observes and never alters: every lesson, compared with a plain run."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
import pytest
import torch
import torchviz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.graph import GraphFreedError
from app.engine.session import Session
from app.engine.snapshot import tensor_summary
from app.engine.tracer import STEP_KINDS
from app.lessons.plain import compile_lesson, lesson_globals, run_plain
from app.lessons.registry import LESSONS, get_lesson
from tests.engine.hooked import run_plain_hooked

SMALL = {"N": 8, "D_in": 20, "H": 10, "D_out": 3, "iterations": 4}
EVENT_KINDS = {"line", "op", "node", "end"}


def _config(lesson_id: str, **overrides: object) -> dict[str, object]:
    lesson = get_lesson(lesson_id)
    config = dict(lesson.defaults)
    config.update({k: v for k, v in {**SMALL, **overrides}.items() if k in lesson.fields})
    return config


def _session(lesson_id: str, **overrides: object) -> Session:
    return Session(id="test", lesson=get_lesson(lesson_id), config=_config(lesson_id, **overrides))


def _arrays(scope: dict[str, object]) -> dict[str, object]:
    """Tensors, arrays and module parameters (with their grads) of a finished program."""
    found: dict[str, object] = {}
    for name, value in scope.items():
        if isinstance(value, torch.Tensor | np.ndarray):
            found[name] = value
        elif isinstance(value, torch.nn.Module):
            for pname, param in value.named_parameters():
                found[f"{name}.{pname}"] = param
    return found


def summaries(arrays: dict[str, object]) -> dict[str, object]:
    """What the variables panel shows of each array: values' stats, version, grad."""
    return {name: tensor_summary(value) for name, value in arrays.items()}  # type: ignore[arg-type]


def _assert_same_values(a: object, b: object, name: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert np.array_equal(a, b), name
        return
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    assert torch.equal(a, b), name
    assert a._version == b._version, f"{name}: version {a._version} != {b._version}"
    if a.is_leaf and a.grad is not None:
        assert b.grad is not None, f"{name}.grad missing"
        assert torch.equal(a.grad, b.grad), f"{name}.grad"


def _finish(session: Session, by: str, count: int) -> None:
    previous = session.cursor
    while not session.done:
        session.step(by=by, count=count)
        assert session.cursor > previous
        previous = session.cursor


@pytest.mark.parametrize("lesson_id", list(LESSONS))
@pytest.mark.parametrize(
    ("by", "count", "overrides"),
    [
        ("end", 1, {}),
        ("event", 1, {"seed": 3}),
        ("line", 5, {"zero_grad": False}),
        ("phase", 2, {"learning_rate": 1e-3, "seed": 1}),
    ],
)
def test_explorer_computes_what_the_plain_program_computes(
    lesson_id: str, by: str, count: int, overrides: dict[str, object]
) -> None:
    session = _session(lesson_id, **overrides)
    try:
        _finish(session, by, count)
        plain = run_plain(lesson_id, _config(lesson_id, **overrides))
        run = session._run
        assert run.scope["losses"] == plain["losses"]  # bit for bit, as Python floats
        assert len(plain["losses"]) == _config(lesson_id, **overrides)["iterations"]
        explored, expected = _arrays(run.scope), _arrays(plain)
        assert explored.keys() == expected.keys()
        for name in expected:
            _assert_same_values(explored[name], expected[name], name)
        plain_error = plain.get("__error__")
        state = session.state()
        if plain_error is None:
            assert state["error"] is None
        else:
            line = next(
                n
                for n, text in enumerate(session.lesson.source.splitlines(), 1)
                if "b.sum().backward()" in text
            )
            assert state["error"] == {
                "type": type(plain_error).__name__,
                "message": str(plain_error),
                "line": line,  # the line that raised it
            }
        assert state["done"] and state["phase"] == "done" and state["event"]["kind"] == "end"
    finally:
        session.close()


def test_zero_grad_false_accumulates_exactly_like_torch() -> None:
    config = _config("autograd", zero_grad=False, iterations=3)
    plain = run_plain("autograd", config)
    session = _session("autograd", zero_grad=False, iterations=3)
    session.step(by="end")
    w1 = session._run.scope["w1"]
    assert torch.equal(w1.grad, plain["w1"].grad)
    zeroed = run_plain("autograd", _config("autograd", iterations=3))
    assert not torch.equal(zeroed["w1"].grad, plain["w1"].grad)
    session.close()


def _plain_backward_order(lesson_id: str) -> list[str]:
    """Node names in the order hooks fire during the first backward of a plain run."""
    order: list[str] = []
    run_plain_hooked(
        lesson_id, _config(lesson_id), lambda node, gi, go: order.append(node.name()), calls=1
    )
    return order


@pytest.mark.parametrize("lesson_id", ["autograd", "custom_function", "nn", "dynamic_net"])
def test_node_events_follow_the_engine_order(lesson_id: str) -> None:
    session = _session(lesson_id)
    names: list[str] = []
    try:
        while not session.done:
            session.step(by="event")
            event = session.state()["event"]
            if event["kind"] == "node":
                names.append(event["name"])
            elif names and event["kind"] == "line" and session.state()["phase"] != "backward":
                break
        assert names == _plain_backward_order(lesson_id)
        assert names[-1] == "torch::autograd::AccumulateGrad"
    finally:
        session.close()


def test_backward_nodes_report_their_gradients_and_leave_grad_as_torch_makes_it() -> None:
    stepped = _session("autograd")
    try:
        while stepped.state()["phase"] != "backward" or stepped.state()["event"]["kind"] != "node":
            stepped.step(by="event")
        first = stepped.state()["event"]["node_id"]
        while True:  # to the last node event: backward's last node has run, not returned
            state, graph = stepped.state(), stepped.graph()
            stepped.step(by="event")
            if stepped.state()["event"]["kind"] != "node":
                break
        nodes = {n["id"]: n for n in graph["nodes"]}
        after, after_graph = stepped.state(), stepped.graph()
        # Once backward has returned, its ledgers stay on its nodes (DESIGN.md §5.1)...
        ledgers = {n["id"]: n["ledger"] for n in graph["nodes"] if n.get("ledger")}
        assert len(ledgers) == 8
        assert {n["id"]: n["ledger"] for n in after_graph["nodes"] if n.get("ledger")} == ledgers
        # ...until the next forward op makes a node.
        while stepped.state()["event"]["kind"] != "op" or stepped.state()["phase"] != "forward":
            stepped.step(by="event")
        assert not any(n.get("ledger") for n in stepped.graph()["nodes"])

        # The root node received d loss / d loss = 1.
        assert nodes[first]["grad_outputs"] == [
            {"shape": [], "norm": 1.0, "preview": [[1.0]], "to": None}
        ]
        # What each AccumulateGrad received is the leaf's new .grad.
        accumulated = [n for n in nodes.values() if n["id"].startswith("acc:")]
        assert len(accumulated) == 2
        grad_norms = sorted(state["variables"][w]["grad"]["stats"]["norm"] for w in ("w1", "w2"))
        received = sorted(n["grad_outputs"][0]["norm"] for n in accumulated)
        assert received == pytest.approx(grad_norms, rel=1e-5)

        # Stepping node by node leaves .grad as a plain backward does (AccumulateGrad
        # steals the incoming buffer, version 0): equal to a replay, which runs it plainly.
        replayed = _session("autograd")
        try:
            replayed.seek(cursor=after["cursor"])
            assert replayed.state()["variables"] == after["variables"]
            assert replayed.graph() == after_graph
            replayed.seek(cursor=state["cursor"])  # inside backward: hooked, same summaries
            assert replayed.graph() == graph
        finally:
            replayed.close()
    finally:
        stepped.close()


def test_inplace_lesson_ends_with_pytorchs_error() -> None:
    session = _session("inplace")
    session.step(by="end")
    error = session.state()["error"]
    assert error["type"] == "RuntimeError"
    assert "modified by an inplace operation" in error["message"]
    session.close()


@pytest.mark.parametrize("lesson_id", ["autograd", "custom_function", "dynamic_net", "optim"])
def test_seek_replays_identical_states(lesson_id: str) -> None:
    session = _session(lesson_id)
    try:
        session.step(by="iteration", count=2)
        session.step(by="phase", count=3)
        session.step(by="event", count=3)
        here = session.cursor
        state, graph = session.state(), session.graph()
        session.step(by="end")
        session.seek(cursor=here)
        assert session.state() == state
        assert session.graph() == graph
        session.seek(cursor=0)
        assert session.cursor == 0
        session.seek(cursor=here)
        assert session.state() == state
        session.seek(cursor=10**9)
        assert session.done
    finally:
        session.close()


def test_iteration_step_stops_at_the_loop_body() -> None:
    session = _session("autograd")
    lesson = get_lesson("autograd")
    assert session.state()["iteration"] == -1
    for t in range(3):
        session.step(by="iteration")
        state = session.state()
        assert state["line"] == lesson.loop_body_line
        assert state["iteration"] == t
        assert len(state["losses"]) == t
    session.close()


def test_phase_steps_follow_the_tags() -> None:
    session = _session("autograd")
    lesson = get_lesson("autograd")
    phases = []
    while len(phases) < 6:
        session.step(by="phase")
        state = session.state()
        assert lesson.phases[state["line"]] == state["phase"]
        phases.append(state["phase"])
    assert phases == ["forward", "loss", "backward", "update", "zero_grad", "forward"]
    session.close()


_DOT_NODE = re.compile(r'(\d+) \[label=(?:"([^"]*)"|([^\s\]]+))(?: fillcolor=(\w+))?\]')
_DOT_EDGE = re.compile(r"(\d+) -> (\d+)( \[dir=none\])?")


def _torchviz_structure(session: Session) -> tuple[list[str], int, int]:
    """Function names, leaf count and graph edges (no root or saved edges) of make_dot."""
    scope = session._run.scope
    roots = [v for v in scope.values() if isinstance(v, torch.Tensor) and v.grad_fn is not None]
    body = "".join(torchviz.make_dot(tuple(roots)).body)
    colours = {m[0]: m[3] for m in _DOT_NODE.findall(body)}
    functions = sorted(m[2] or m[1] for m in _DOT_NODE.findall(body) if not m[3])
    leaves = sum(c == "lightblue" for c in colours.values())
    edges = [
        (a, b)
        for a, b, plain in _DOT_EDGE.findall(body)
        if not plain and colours.get(b) != "darkolivegreen1"
    ]
    return functions, leaves, len(edges)


@pytest.mark.parametrize("lesson_id", ["autograd", "custom_function", "nn", "dynamic_net"])
def test_graph_matches_torchviz_before_backward(lesson_id: str) -> None:
    session = _session(lesson_id)
    try:
        session.step(by="iteration", count=2)
        while session.state()["phase"] != "backward":
            session.step(by="line")
        graph = session.graph()
        functions = sorted(
            n["name"].removeprefix("torch::autograd::")
            for n in graph["nodes"]
            if n["kind"] == "function"
        )
        torchviz_functions, torchviz_leaves, torchviz_edges = _torchviz_structure(session)
        assert functions == torchviz_functions
        assert sum(n["kind"] == "leaf" for n in graph["nodes"]) == torchviz_leaves
        to_outputs = sum(e["target"].startswith("out:") for e in graph["edges"])
        assert len(graph["edges"]) - to_outputs == torchviz_edges
        ids = [n["id"] for n in graph["nodes"]]
        assert len(ids) == len(set(ids))
        assert {e["source"] for e in graph["edges"]} | {e["target"] for e in graph["edges"]} <= set(
            ids
        )
    finally:
        session.close()


def test_node_ids_are_stable_and_replayable() -> None:
    first, second = _session("autograd"), _session("autograd")
    try:
        first.step(by="phase", count=3)
        ids = {n["id"]: n["name"] for n in first.graph()["nodes"]}
        first.step(by="event", count=2)
        later = {n["id"]: n["name"] for n in first.graph()["nodes"]}
        assert all(later[i] == name for i, name in ids.items() if i in later)
        second.step(by="phase", count=3)
        assert {n["id"]: n["name"] for n in second.graph()["nodes"]} == ids
    finally:
        first.close()
        second.close()


def test_saved_tensor_versions_and_staleness() -> None:
    session = _session("autograd")
    try:
        while session.state()["phase"] != "update":
            session.step(by="line")
        session.step(by="line", count=3)  # both in-place updates have run
        graph = session.graph()
        saved = [s for n in graph["nodes"] for s in n["saved"]]
        assert saved, "MmBackward0 saves its inputs"
        changed = [s for s in saved if s["version_now"] > s["version_saved"]]
        assert changed, "the in-place update bumps w2's version"
        # Backward already ran (and freed) these nodes: a change now harms nothing, so
        # they are freed, not stale (DESIGN.md §5.1).
        assert all(s["freed"] and not s["stale"] for s in saved)
        assert all(n["executed"] for n in graph["nodes"] if n["kind"] == "function")
    finally:
        session.close()


def test_a_saved_tensor_changed_before_backward_is_stale() -> None:
    session = _session("inplace")
    try:
        while (
            "b.sum().backward()"
            not in session.lesson.source.splitlines()[(session.state()["line"] or 1) - 1]
        ):
            session.step(by="line")
        graph = session.graph()
        stale = [(n["name"], s) for n in graph["nodes"] for s in n["saved"] if s["stale"]]
        assert [name for name, _ in stale] == ["SigmoidBackward0"]
        ((_, entry),) = stale
        assert (entry["version_saved"], entry["version_now"], entry["freed"]) == (0, 1, False)
        assert entry["of"] == "b"
    finally:
        session.close()


def test_dynamic_net_counts_gradients_of_the_shared_layer() -> None:
    import random

    session = _session("dynamic_net")
    rng = random.Random(0)
    try:
        for _ in range(4):
            depth = rng.randint(0, 3)
            session.step(by="iteration")
            while session.state()["phase"] != "backward":
                session.step(by="line")
            graph = session.graph()
            leaf = next(n for n in graph["nodes"] if n["name"] == "model.middle_linear.weight")
            feeds = [e["target"] for e in graph["edges"] if e["source"] == leaf["id"]]
            if depth == 0:
                assert feeds == []  # unused this pass: no AccumulateGrad in the graph
                continue
            (acc_id,) = feeds
            acc = next(n for n in graph["nodes"] if n["id"] == acc_id)
            assert acc["grad_count"] == depth
    finally:
        session.close()


def test_torchviz_export_and_freed_graph() -> None:
    session = _session("autograd")
    try:
        while session.state()["phase"] != "backward":
            session.step(by="line")
        assert "MmBackward0" in session.torchviz_dot()
        session.step(by="line")
        with pytest.raises(GraphFreedError):
            session.torchviz_dot()
    finally:
        session.close()


def test_tensor_detail_and_unknown_names() -> None:
    session = _session("autograd")
    try:
        session.step(by="phase", count=4)
        detail = session.tensor("w1")
        assert len(detail["preview"]) == 8 and len(detail["preview"][0]) == 8
        assert sum(detail["histogram"]["counts"]) == 20 * 10
        assert len(detail["histogram"]["edges"]) == 33
        assert session.tensor("w1.grad")["shape"] == [20, 10]
        loss = session.tensor("loss")  # a 0-dimensional tensor: its preview is the number
        assert loss["shape"] == [] and loss["preview"] == session.state()["losses"][-1]
        assert sum(loss["histogram"]["counts"]) == 1
        for name in ("nope", "__builtins__", "w1.grad.grad", "../w1"):
            with pytest.raises(KeyError):
                session.tensor(name)
    finally:
        session.close()


def test_close_ends_the_worker_thread() -> None:
    import threading

    before = threading.active_count()
    sessions = [_session("autograd") for _ in range(3)]
    for s in sessions:
        s.step(by="phase", count=3)  # parked inside the program
        assert s._run.parked
    for s in sessions:
        s.close()
        assert not s._run.parked
    assert threading.active_count() <= before + 3  # pooled workers may stay, idle


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lesson_id=st.sampled_from(list(LESSONS)),
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(
        st.tuples(
            st.sampled_from((*STEP_KINDS[:-1], "seek", "checkpoint")),
            st.integers(1, 40),
        ),
        max_size=12,
    ),
)
def test_random_step_sequences(lesson_id: str, seed: int, steps: list[tuple[str, int]]) -> None:
    """No crash, no step backwards, kinds from the contract, and at every cursor reached
    the state and graph a walk event by event shows there (replays, checkpoints and kept
    views too)."""
    walk = _session(lesson_id, seed=seed, iterations=2)
    seen = []
    try:
        while not walk.done:
            seen.append((walk.state(), walk.graph()))
            walk.step(by="event")
        seen.append((walk.state(), walk.graph()))
    finally:
        walk.close()
    session = _session(lesson_id, seed=seed, iterations=2)
    try:
        for by, count in steps:
            before = session.cursor
            if by == "seek":
                session.seek(cursor=count)
                assert session.cursor == count or session.done
            elif by == "checkpoint":  # built aside, as the store does while idle
                before = session.cursor
                run = session.new_run()
                run.advance("event", count)
                session.add_checkpoint(run)
                assert session.cursor == before
            else:
                session.step(by=by, count=count)
                assert session.cursor >= before
                assert session.cursor > before or session.done
            state = session.state()
            assert state["event"]["kind"] in EVENT_KINDS
            assert state["phase"] in {
                "setup",
                "forward",
                "loss",
                "backward",
                "update",
                "zero_grad",
                "done",
            }
            assert session.graph()["kind"] in {"autograd", "static", "none"}
            assert (state, session.graph()) == seen[session.cursor], f"cursor {session.cursor}"
    finally:
        session.close()


def test_custom_backward_lines_are_stepped_and_nodes_keep_the_callers_line() -> None:
    lesson = get_lesson("custom_function")
    lines = lesson.source.splitlines()
    backward_call = next(
        i for i, text in enumerate(lines, 1) if "loss.backward()" in text and "#" not in text
    )
    session = _session("custom_function")
    events = []
    try:
        while session.state()["line"] != backward_call:
            session.step(by="line")
        while True:
            session.step(by="event")
            state = session.state()
            leaving = (
                state["line"] != backward_call and lesson.phases.get(state["line"]) != "backward"
            )
            if state["event"]["kind"] == "line" and leaving:
                break
            events.append((state["event"]["kind"], state["event"]["line"], state["phase"]))
    finally:
        session.close()
    custom_lines = {line for kind, line, _ in events if kind == "line"}
    assert custom_lines, "the custom backward's own lines are line events"
    assert all("ctx" in lines[n - 1] or "grad" in lines[n - 1] for n in custom_lines)
    nodes = [(line, phase) for kind, line, phase in events if kind == "node"]
    assert nodes[-1][0] == backward_call  # after MyReLU.backward returned
    assert all(phase == "backward" for _, _, phase in events)


def test_step_back_is_served_from_recent_states_and_details_replay() -> None:
    session = _session("custom_module", iterations=3)
    fresh = _session("custom_module", iterations=3)
    try:
        seen = []
        for _ in range(40):
            session.step(by="event")
            seen.append((session.state(), session.graph()))
        detail = session.tensor("model.linear1.weight")
        run = session._run
        for back in range(1, 6):
            session.seek(cursor=session.cursor - 1)
            assert session._run is run, "no replay for a recently shown cursor"
            assert session.state() == seen[-1 - back][0]
            assert session.graph() == seen[-1 - back][1]
        session.step(by="event", count=2)
        assert session._run is run and session.state() == seen[-4][0]
        # A step of another kind, or a tensor detail, needs the program there: replay.
        session.step(by="line")
        fresh.seek(cursor=seen[-4][0]["cursor"])
        fresh.step(by="line")
        assert session.state() == fresh.state()
        session.seek(cursor=40)
        assert session.tensor("model.linear1.weight") == detail
    finally:
        session.close()
        fresh.close()


@pytest.mark.parametrize("lesson_id", ["custom_module", "dynamic_net", "inplace"])
def test_step_back_after_a_jump_replays_once_and_shows_what_a_fresh_run_shows(
    lesson_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.engine import session as module

    monkeypatch.setattr(module, "REPLAY_FLOOR_S", 60.0)  # keep the whole window here
    session = _session(lesson_id, iterations=6)
    fresh = _session(lesson_id, iterations=6)
    name = "x"
    try:
        session.step(by="end")
        end = session.cursor
        assert session.tensor(name) is not None  # the inspector shows x: its details are kept
        target = min(end - 1, 150)
        session.seek(cursor=target)
        run = session._run
        for cursor in range(target - 1, target - 1 - module.REPLAY_WINDOW, -1):
            session.seek(cursor=cursor)  # "Step back"
            assert session._run is run, f"cursor {cursor} replayed again"
            fresh.seek(cursor=cursor)
            assert session.state() == fresh.state()
            assert session.graph() == fresh.graph()
            assert session.tensor(name) == fresh.tensor(name)
        session.step(by="event")  # "Step" from a kept view: no replay either
        assert session._run is run
        fresh.step(by="event")
        assert session.state() == fresh.state()
    finally:
        session.close()
        fresh.close()


def test_moves_across_a_tracer_leave_its_process_state_as_they_found_it() -> None:
    """static_graph pauses inside make_fx (its trace runs the lesson's lines), where
    torch.fx patches torch.nn.Module and sets module-level state. A run paused there is
    never kept while another moves, so seeks back and forth across the trace, in any
    order, end as the plain program does and leave that state as it was.

    Before: one order in three raised "CURRENT_PATCHER is None in finally block" in
    make_fx, and left torch.nn.Module.__call__ patched for good."""
    module_call = torch.nn.Module.__call__
    plain = run_plain("static_graph", _config("static_graph", iterations=2))
    rng = np.random.default_rng(0)
    paused_inside = 0
    for _ in range(6):
        session = _session("static_graph", iterations=2)
        try:
            for cursor in rng.integers(12, 60, size=8):
                session.seek(cursor=int(cursor))
                paused_inside += session._run.tracing
                assert all(run.keepable for run in session.kept)
            session.step(by="end")
            assert session.state()["error"] is None
            assert session._run.scope["losses"] == plain["losses"]
        finally:
            session.close()
        assert torch.fx._symbolic_trace.CURRENT_PATCHER is None
        assert torch.nn.Module.__call__ is module_call
    assert paused_inside >= 6  # the seeks did stop inside the trace


def test_a_checkpoint_being_built_is_settled_out_of_a_tracer() -> None:
    """What a session host does with a checkpoint it builds in pieces (settle): a piece
    that ends inside make_fx goes on to the first event after the trace."""
    from app.engine.checkpoints import settle

    session = _session("static_graph", iterations=2)
    run = session.new_run()
    try:
        run.advance("event", 20)
        assert run.tracing and not run.keepable and run.line in (25, 26, 30, 31, 35)
        settle(run)
        assert run.keepable and not run.tracing
        assert run.line == 37 and run.phase == "forward"  # the loop: the trace is done
        assert session.add_checkpoint(run)
    finally:
        session.close()


@pytest.mark.parametrize("lesson_id", sorted(LESSONS))
def test_what_a_cursor_shows_does_not_depend_on_how_the_run_got_there(lesson_id: str) -> None:
    """Shown at every event, or reached by jumps (batched backward, no graph built on the
    way): the same states and graphs, node ids included."""
    walked = _session(lesson_id, iterations=2)
    jumped = _session(lesson_id, iterations=2)
    try:
        seen = []
        while not walked.done:
            seen.append((walked.state(), walked.graph()))
            walked.step(by="event")
        seen.append((walked.state(), walked.graph()))
        rng = np.random.default_rng(0)
        for cursor in rng.permutation(len(seen))[:25]:
            jumped.seek(cursor=int(cursor))
            state, graph = seen[cursor]
            assert jumped.state() == state, f"state at cursor {cursor}"
            assert jumped.graph() == graph, f"graph at cursor {cursor}"
    finally:
        walked.close()
        jumped.close()


def _built(session: Session, cursor: int) -> None:
    run = session.new_run()
    run.advance("event", cursor)
    assert session.add_checkpoint(run)


def test_checkpoints_are_placed_where_seeks_walk_longest(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine import checkpoints
    from app.engine import session as module

    session = _session("custom_module", iterations=40)
    try:
        assert session.checkpoint_target() is None  # the program's pace is not known yet
        session.step(by="end")
        end = session.cursor
        assert session.pace > 0
        monkeypatch.setattr(checkpoints, "CHECKPOINT_GAP_S", session.pace * end / 3)
        targets = []
        while (target := session.checkpoint_target()) is not None:
            targets.append(target)
            _built(session, target)
        # First just before the end ("Step back"), then halving the longest stretch.
        assert targets[0] == end - module.REPLAY_WINDOW
        assert targets[1] == targets[0] // 2
        assert len(targets) == len(session.checkpoints) <= module.CHECKPOINTS
        stretches = np.diff([0, *session.checkpoints, end])
        assert max(stretches) <= end / 3 + 1
    finally:
        session.close()


def test_seeks_go_on_from_the_nearest_checkpoint_and_show_what_a_fresh_run_shows() -> None:
    session = _session("dynamic_net", iterations=12)
    fresh = _session("dynamic_net", iterations=12)
    try:
        session.step(by="end")
        end = session.cursor
        finished = session._run
        for cursor in (end // 4, end // 2, end - 100):
            _built(session, cursor)
        assert session.checkpoints == [end // 4, end // 2, end - 100]
        for cursor in (end // 2 + 7, end - 3, end // 4 + 1, end - 150, 10, end // 2):
            session.seek(cursor=cursor)
            fresh.seek(cursor=cursor)
            assert session.cursor == cursor
            assert session.state() == fresh.state(), f"cursor {cursor}"
            assert session.graph() == fresh.graph(), f"cursor {cursor}"
        assert session.replays == 1  # only the seek to cursor 10, before every checkpoint
        # The program left at the end by the first move back is kept: "Run to end" again
        # goes on with it instead of running the rest once more.
        assert end in session.checkpoints
        session.step(by="end")
        assert session._run is finished and session.cursor == end
        fresh.step(by="end")
        assert session.state() == fresh.state()
    finally:
        session.close()
        fresh.close()


@pytest.mark.parametrize(
    ("lesson_id", "chunk"),
    [("custom_module", 100_000), ("dynamic_net", 70), ("numpy", 1000), ("static_graph", 90)],
)
def test_step_back_after_a_run_to_the_end_needs_no_replay_through_the_last_iteration(
    lesson_id: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page runs to the end in long event steps (`chunk` events each)."""
    from app.engine import session as module

    monkeypatch.setattr(module, "REPLAY_FLOOR_S", 60.0)  # time enough to keep them all
    session = _session(lesson_id, iterations=6)
    fresh = _session(lesson_id, iterations=6)
    try:
        while not session.done:
            session.step(by="event", count=chunk)
        run, end = session._run, session.cursor
        fresh.step(by="iteration", count=6)  # the start of the last iteration
        start = fresh.cursor
        for cursor in range(end - 1, start - 1, -1):  # "Step back", again and again
            session.seek(cursor=cursor)
            assert session._run is run, f"cursor {cursor} replayed"
            fresh.seek(cursor=cursor)
            assert session.state() == fresh.state()
            assert session.graph() == fresh.graph()
        assert session.replays == 0
    finally:
        session.close()
        fresh.close()


def test_a_run_to_the_end_keeps_views_only_within_its_share_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.engine import session as module

    monkeypatch.setattr(module, "REPLAY_FLOOR_S", 0.0)
    monkeypatch.setattr(module, "REPLAY_SHARE", 0.0)  # no time to spare: nothing kept
    session = _session("custom_module", iterations=6)
    try:
        session.step(by="event", count=100_000)
        session.seek(cursor=session.cursor - 1)
        assert session.replays == 1
    finally:
        session.close()


def test_on_cpu_backward_pauses_in_the_programs_own_thread() -> None:
    session = _session("custom_function")
    try:
        while session._run.event.kind != "node":  # no views kept on the way
            session.step(by="event")
        assert session._run.parked and not session._run.parked_elsewhere
        session.seek(cursor=session.cursor - 1)
        assert session.checkpoints == [session.cursor + 1]  # kept: it holds no other thread
    finally:
        session.close()


def test_checkpoints_beyond_the_cap_go_and_closing_ends_their_threads() -> None:
    import threading

    before = threading.active_count()
    session = Session(
        id="test", lesson=get_lesson("autograd"), config=_config("autograd"), checkpoints=2
    )
    try:
        session.step(by="end")
        end = session.cursor
        _built(session, end // 2)
        _built(session, 10)
        _built(session, end // 2 + 5)  # the walks end // 2 saved, it saves 5 events short
        assert session.checkpoints == [10, end // 2 + 5]
        early = session.new_run()
        early.advance("event", 5)  # saves 5 events short of what 10 saves
        assert not session.add_checkpoint(early) and not early.parked
        assert session.checkpoints == [10, end // 2 + 5]
        assert not session.add_checkpoint(session.new_run())  # a run not started: no use
    finally:
        session.close()
    assert session.checkpoints == []
    assert threading.active_count() <= before + 3  # pooled workers may stay, idle

    none = Session(
        id="test", lesson=get_lesson("autograd"), config=_config("autograd"), checkpoints=0
    )
    try:
        none.step(by="end")
        left = none._run
        none.seek(cursor=5)
        assert none.checkpoints == [] and not left.parked  # closed, not kept
    finally:
        none.close()


def test_a_replay_keeps_only_what_fits_its_share_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine import session as module

    monkeypatch.setattr(module, "REPLAY_FLOOR_S", 0.0)
    monkeypatch.setattr(module, "REPLAY_SHARE", 0.0)  # no time to spare: only the timed keep
    session = _session("custom_module", iterations=6)
    try:
        session.step(by="event", count=200)
        session.seek(cursor=150)
        run = session._run
        session.seek(cursor=150 - module.REPLAY_WINDOW)  # the one kept, timed
        assert session._run is run
        session.seek(cursor=149)
        assert session._run is not run  # not kept: replayed
        assert session.cursor == 149
    finally:
        session.close()


def test_static_graph_is_captured_once_and_lights_up_op_by_op() -> None:
    session = _session("static_graph")
    try:
        session.step(by="iteration")
        first = session.graph()
        assert first["kind"] == "static" and first["focus"] is None
        calls = [n["id"] for n in first["nodes"] if n["kind"] == "function"]
        names = {n["id"]: n["name"] for n in first["nodes"]}
        for k, node_id in enumerate(calls):
            session.step(by="event")
            state, graph = session.state(), session.graph()
            assert state["event"]["kind"] == "op"
            assert state["event"]["node_id"] == graph["focus"] == node_id
            assert state["event"]["name"] == names[node_id]
            executed = [n["id"] for n in graph["nodes"] if n["executed"]]
            assert executed == calls[: k + 1]  # the op of this event has run
        session.step(by="iteration", count=2)
        later = session.graph()
        strip = [(n["id"], n["name"], n["kind"]) for n in later["nodes"]]
        assert strip == [(n["id"], n["name"], n["kind"]) for n in first["nodes"]]
        assert later["edges"] == first["edges"]
    finally:
        session.close()


def test_sessions_stepping_in_turn_keep_their_own_random_streams() -> None:
    """torch's generators are global: interleaved setups must not mix streams."""
    first, second = _session("autograd", seed=0), _session("nn", seed=1)
    try:
        while not (first.done and second.done):
            first.step(by="event")
            second.step(by="event", count=3)
        assert (
            first._run.scope["losses"]
            == run_plain("autograd", _config("autograd", seed=0))["losses"]
        )
        assert second._run.scope["losses"] == run_plain("nn", _config("nn", seed=1))["losses"]
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_lessons_draw_random_numbers_in_setup_only(lesson_id: str) -> None:
    """The invariant behind Run._own_rng: no draw once the training loop has begun."""
    import sys

    lesson = get_lesson(lesson_id)
    at_loop: list[torch.Tensor] = []

    def trace(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code.co_filename != str(lesson.path):
            return None
        if event == "line" and frame.f_lineno == lesson.loop_body_line and not at_loop:
            at_loop.append(torch.get_rng_state())
        return trace

    sys.settrace(trace)
    try:
        run_plain(lesson_id, _config(lesson_id))
    finally:
        sys.settrace(None)
    assert at_loop and torch.equal(at_loop[0], torch.get_rng_state())


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_every_line_shows_what_the_plain_program_has_there(lesson_id: str) -> None:
    """At every module-level line of every iteration, stepping event by event (pausing in
    every op and backward hook, ledgers captured), the tensors in scope have the values
    and versions a plain run of the file has at that line (traced by lines only)."""
    lesson = get_lesson(lesson_id)
    config = _config(lesson_id, iterations=2)
    plain_at: dict[tuple[int, int], dict[str, object]] = {}
    namespace = lesson_globals(lesson, config)
    code = compile_lesson(lesson)

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not code:
            return None
        if event == "line":
            key = (frame.f_lineno, namespace.get("t", -1))
            if key not in plain_at:
                plain_at[key] = summaries(_arrays(namespace))
        return trace

    sys.settrace(trace)
    try:
        exec(code, namespace)
    except Exception:  # the inplace lesson ends with its error
        pass
    finally:
        sys.settrace(None)

    session = Session(id="t", lesson=lesson, config=config)
    compared = 0
    try:
        seen: set[tuple[int, int]] = set()
        while not session.done:
            session.step(by="event")
            state = session.state()
            if state["event"]["kind"] != "line" or state["frames"]:
                continue
            key = (state["line"], session._run.scope.get("t", -1))
            if key in seen:
                continue
            seen.add(key)
            assert summaries(_arrays(session._run.scope)) == plain_at[key], key
            compared += 1
    finally:
        session.close()
    assert compared >= 2 * 5
