"""Ledgers, scalars, frames and gradcheck (DESIGN.md §5.1), checked against torch itself."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pytest
import torch

from app.engine.gradcheck import GradcheckError
from app.engine.session import Session
from app.lessons.plain import run_plain
from app.lessons.registry import LESSONS
from tests.engine.hooked import run_plain_hooked

SMALL = {"N": 4, "D_in": 5, "H": 3, "D_out": 2, "iterations": 2}
BACKWARD_LESSONS = [lid for lid in LESSONS if lid not in ("numpy", "tensors", "static_graph")]


def _session(lesson_id: str, **config: object) -> Session:
    return Session(id="t", lesson=LESSONS[lesson_id], config={**SMALL, **config})


def _walk(session: Session) -> list[dict]:
    """Every state of an event-by-event walk to the end."""
    states = []
    while not session.done:
        session.step(by="event")
        states.append(session.state())
    return states


@pytest.mark.parametrize("lesson_id", BACKWARD_LESSONS)
def test_every_node_event_carries_a_ledger_that_adds_up(lesson_id: str) -> None:
    session = _session(lesson_id)
    try:
        nodes = 0
        while not session.done:
            session.step(by="event")
            event = session.state()["event"]
            if event["kind"] != "node":
                continue
            nodes += 1
            ledger = event["ledger"]
            assert ledger["node_id"] == event["node_id"] and ledger["name"] == event["name"]
            assert ledger["rule"]["en"] and ledger["rule"]["zh"]
            for grad in ledger["grad_inputs"] + ledger["grad_outputs"]:
                if grad is not None and grad["preview"]:
                    block = np.array(grad["preview"], dtype=float)
                    assert block.shape[0] <= 4 and block.shape[1] <= 4
                    assert grad["norm"] >= np.abs(block).max() - 1e-6
            example = ledger["example"]
            if example is not None:
                # The worked-out number is the one the engine computed.
                last = float(example["text"].rsplit("=", 1)[1])
                assert last == pytest.approx(example["value"], rel=1e-5, abs=1e-6)
                if ledger["accumulate"] is None:
                    sent = ledger["grad_inputs"][example["input"]]
                    # previews are matrices: a vector is one row, a scalar 1 × 1
                    row, col = ([0, 0, *example["index"]])[-2:]
                    assert sent["preview"][row][col] == pytest.approx(example["value"])
                    if np.any(np.array(sent["preview"], dtype=float) != 0):
                        assert example["value"] != 0  # an element that shows something
            if ledger["accumulate"] is not None:
                before, after = ledger["accumulate"]["before"], ledger["accumulate"]["after"]
                incoming = np.array(ledger["grad_outputs"][0]["preview"])
                old = 0 if before is None else np.array(before["preview"])
                assert np.allclose(np.array(after["preview"]), old + incoming, rtol=1e-5)
                # after is the leaf's .grad, as the tensor detail reads it independently
                leaf = re.match(r"([\w.]+)\.grad", ledger["rule"]["en"]).group(1)
                detail = session.tensor(f"{leaf}.grad")
                mine = np.array(after["preview"])
                theirs = np.atleast_2d(np.array(detail["preview"], dtype=float))
                theirs = theirs[: mine.shape[0], : mine.shape[1]]
                assert np.allclose(mine, theirs, rtol=1e-6)
        assert nodes > 0
    finally:
        session.close()


def _block(g: object) -> object:
    """The top-left 4×4 block of a gradient, as a ledger's preview (a vector: one row)."""
    if not isinstance(g, torch.Tensor):
        return None
    t = g.detach()
    while t.dim() > 2:
        t = t[0]
    t = t.reshape(1, 1) if t.dim() == 0 else t if t.dim() == 2 else t.unsqueeze(0)
    return t[:4, :4].double().tolist()


def _plain_hooked(lesson_id: str, config: dict) -> list[tuple[str, list, list]]:
    """Every node of every backward call of a plain run: (name, blocks of grad_inputs,
    blocks of grad_outputs), in the order the engine ran them."""
    seen: list[tuple[str, list, list]] = []
    run_plain_hooked(
        lesson_id,
        config,
        lambda node, gi, go: seen.append(
            (node.name(), [_block(g) for g in gi], [_block(g) for g in go])
        ),
    )
    return seen


@pytest.mark.parametrize("lesson_id", [*BACKWARD_LESSONS, "numpy"])
def test_ledgers_match_gradients_from_hooks_in_a_plain_run(lesson_id: str) -> None:
    """Every node event's ledger against hooks on a plain run of the same file: the same
    nodes in the same order, and the same values sent and received."""
    config = {**SMALL, "iterations": 3}
    session = Session(id="t", lesson=LESSONS[lesson_id], config=config)
    try:
        ledgers = [s["event"]["ledger"] for s in _walk(session) if s["event"]["kind"] == "node"]
    finally:
        session.close()
    plain = _plain_hooked(lesson_id, config)
    assert [name for name, _, _ in plain] == [ledger["name"] for ledger in ledgers]
    for (name, sent, arrived), ledger in zip(plain, ledgers, strict=True):
        for expected, grad in zip(sent, ledger["grad_inputs"], strict=True):
            assert (expected is None) == (grad is None), name
            if expected is not None:
                assert grad["preview"] == expected, name  # bit for bit (float32 → float64)
        for expected, grad in zip(arrived, ledger["grad_outputs"], strict=True):
            if expected is not None:
                assert grad["preview"] == expected, name


def test_rules_use_the_lessons_names() -> None:
    session = _session("autograd", iterations=1)
    try:
        rules = {
            s["event"]["node_id"]: s["event"]["ledger"]["rule"]["en"]
            for s in _walk(session)
            if s["event"]["kind"] == "node"
        }
    finally:
        session.close()
    text = " | ".join(rules.values())
    assert "grad_w2 = x.mm(w1).clamp(min=0)ᵀ · grad_y_pred" in text
    assert "grad[x.mm(w1)] = grad[x.mm(w1).clamp(min=0)] · (x.mm(w1) ≥ 0)" in text
    assert "grad_w1 = xᵀ · grad[x.mm(w1)]" in text
    assert "w1.grad = grad_w1" in text


def test_a_custom_functions_rule_is_its_backward_source() -> None:
    session = _session("custom_function", iterations=1)
    try:
        ledger = next(
            s["event"]["ledger"]
            for s in _walk(session)
            if s["event"]["kind"] == "node" and s["event"]["name"] == "MyReLUBackward"
        )
    finally:
        session.close()
    first, last = ledger["source_lines"]
    source = LESSONS["custom_function"].source.splitlines()
    assert source[first - 1].strip().startswith("def backward")
    assert "grad_input[input < 0] = 0" in ledger["rule"]["en"]
    assert last >= first + 3


def test_shared_layer_accumulates_each_use() -> None:
    # seed 1 draws a depth of at least 2 in one of the first iterations
    for seed in range(6):
        session = _session("dynamic_net", seed=seed, iterations=3)
        try:
            found = [
                s["event"]["ledger"]
                for s in _walk(session)
                if s["event"]["kind"] == "node" and s["event"]["ledger"].get("contributions")
            ]
        finally:
            session.close()
        if found:
            break
    assert found, "no depth above 1 in 6 seeds"
    ledger = found[0]
    parts = ledger["contributions"]
    total = sum(np.array(p["preview"]) for p in parts)
    assert np.allclose(total, np.array(ledger["grad_outputs"][0]["preview"]), rtol=1e-5)
    assert f"sum of {len(parts)} uses" in ledger["rule"]["en"]


@pytest.mark.parametrize("lesson_id", ["autograd", "dynamic_net", "inplace"])
def test_a_cursor_shows_the_same_ledgers_however_it_was_reached(lesson_id: str) -> None:
    walked = _session(lesson_id, iterations=3)
    try:
        states = _walk(walked)
        graphs_at = {}
        cursors = [s["cursor"] for s in states if s["event"]["kind"] == "node"][::3]
        cursors += [s["cursor"] for s in states if s["phase"] == "update"][:3]
    finally:
        walked.close()
    by_cursor = {s["cursor"]: s for s in states}
    jumped = _session(lesson_id, iterations=3)
    try:
        for cursor in sorted(cursors, reverse=True):
            jumped.seek(cursor=cursor)
            assert jumped.state()["event"] == by_cursor[cursor]["event"]
            graphs_at[cursor] = jumped.graph()
        stepped = _session(lesson_id, iterations=3)
        try:
            for cursor in sorted(cursors):
                stepped.step(by="event", count=cursor - stepped.cursor)
                assert stepped.graph() == graphs_at[cursor]
        finally:
            stepped.close()
    finally:
        jumped.close()


def test_saved_tensors_are_named_and_freed_not_stale_after_a_safe_update() -> None:
    session = _session("autograd", iterations=2)
    try:
        session.step(by="iteration", count=1)
        while session.state()["phase"] != "zero_grad":
            session.step(by="line")
        graph = session.graph()
        saved = [s for n in graph["nodes"] for s in n["saved"]]
        assert saved and all(s["freed"] and not s["stale"] for s in saved)
        assert {s["of"] for s in saved} >= {"x", "w2"}
    finally:
        session.close()


def test_scalars_and_frames() -> None:
    numpy_end = _walk(_session("numpy"))[-1]
    plain = run_plain("numpy", SMALL)
    assert numpy_end["scalars"]["max_abs_diff"] == plain["max_abs_diff"]
    assert "N" not in numpy_end["scalars"] and numpy_end["scalars"]["t"] == 1
    inplace_end = _walk(_session("inplace"))[-1]
    assert inplace_end["scalars"]["version_before"] == 0
    assert inplace_end["scalars"]["version_after"] == 1
    depths = [
        frame["scalars"]["depth"]
        for state in _walk(_session("dynamic_net", iterations=3))
        for frame in state["frames"]
        if frame["function"] == "DynamicNet.forward" and "depth" in frame["scalars"]
    ]
    assert depths and set(depths) <= {0, 1, 2, 3}
    custom = _session("custom_function", iterations=1)
    try:
        while not any(f["function"] == "MyReLU.forward" for f in custom.state()["frames"]):
            custom.step(by="event")
        frame = custom.state()["frames"][-1]
        assert frame["variables"]["input"]["shape"] == [4, 3]
    finally:
        custom.close()


def _to_backward_end(session: Session) -> None:
    """To the first update line of iteration 1 (its backward has run, no weight changed)."""
    session.step(by="iteration", count=2)
    while session.state()["phase"] != "update":
        assert not session.done, "the lesson has no update phase"
        session.step(by="line")


@pytest.mark.parametrize(
    ("lesson_id", "tensor", "target"),
    [
        ("numpy", "w1", 1e-6),
        ("numpy", "w2", 1e-6),
        ("tensors", "w1", 1e-3),
        ("autograd", "w2", 1e-3),
        ("custom_function", "w1", 1e-3),
        ("nn", "model.0.weight", 1e-3),
        ("optim", "model.2.bias", 1e-3),
        ("custom_module", "model.linear1.weight", 1e-3),
        ("dynamic_net", "model.middle_linear.weight", 1e-3),
        ("inplace", "w1", 1e-3),
    ],
)
def test_gradcheck_agrees_and_leaves_the_session_as_it_was(
    lesson_id: str, tensor: str, target: float
) -> None:
    session = Session(id="t", lesson=LESSONS[lesson_id], config={"iterations": 3})
    try:
        _to_backward_end(session)
        before = session.state()
        detail = session.tensor(tensor)
        shape = before["variables"][tensor]["shape"]
        checked = 0
        for index in ([0] * len(shape), [n - 1 for n in shape], [n // 2 for n in shape]):
            result = session.gradcheck(tensor, index)
            assert result["iteration"] == 1
            if not result["negligible"] and not result["kink"]:
                assert result["rel_error"] <= target, result
                checked += 1
        assert checked
        assert session.state() == before
        assert session.tensor(tensor) == detail
    finally:
        session.close()


def test_gradcheck_refuses_what_it_cannot_check() -> None:
    session = _session("autograd", iterations=3)
    try:
        session.step(by="iteration")  # the loop's start: no gradient yet
        with pytest.raises(GradcheckError) as early:
            session.gradcheck("w1", [0, 0])
        assert early.value.status == 409
        _to_backward_end(session)
        with pytest.raises(KeyError):
            session.gradcheck("nope", [0])
        for index in ([0], [5, 0], [-1, 0]):
            with pytest.raises(GradcheckError) as bad:
                session.gradcheck("w1", index)
            assert bad.value.status == 422
        with pytest.raises(GradcheckError) as computed:
            session.gradcheck("y_pred", [0, 0])
        assert computed.value.status == 422
        session.step(by="line")
        session.step(by="line")  # w1 -= …: the weights changed
        with pytest.raises(GradcheckError) as late:
            session.gradcheck("w2", [0, 0])
        assert late.value.status == 409
    finally:
        session.close()
    static = _session("static_graph")
    try:
        static.step(by="iteration", count=2)
        static.step(by="line", count=2)  # the captured graph ran iteration 1
        with pytest.raises(GradcheckError) as refused:
            static.gradcheck("w1", [0, 0])
        assert refused.value.status == 422
    finally:
        static.close()


def test_gradcheck_takes_this_iterations_share_when_grads_accumulate() -> None:
    session = Session(
        id="t", lesson=LESSONS["autograd"], config={**SMALL, "iterations": 3, "zero_grad": False}
    )
    try:
        _to_backward_end(session)
        result = session.gradcheck("w1", [0, 0])
        assert result["grad"] != pytest.approx(result["analytic"])
        assert result["rel_error"] <= 1e-3 or result["kink"] or result["negligible"]
    finally:
        session.close()


def test_a_backward_run_without_hooks_is_replayed_when_its_ledgers_are_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Backward calls no pause was expected to show run without hooks; guess wrong on
    purpose (any call a step passes over), and what the cursor shows must not change."""
    from app.engine.tracer import Run

    def always(self: Run, nodes: int) -> bool:
        goal = self._goal
        if goal is None or self.capture_all:
            return False
        return goal.by == "event" and goal.limit > self.cursor + nodes

    walked = _session("custom_module", iterations=3)
    try:
        states = _walk(walked)
        after_backward = [
            s["cursor"]
            for p, s in pairwise(states)
            if p["event"]["kind"] == "node" and s["event"]["kind"] != "node"
        ]
        expected = {}
        for cursor in after_backward:
            walked.seek(cursor=cursor)
            expected[cursor] = (walked.state(), walked.graph())
    finally:
        walked.close()
    monkeypatch.setattr(Run, "ledgers_unseen", always)
    jumped = _session("custom_module", iterations=3)
    try:
        for cursor in after_backward:
            jumped.seek(cursor=cursor)
            assert jumped._run.missing_since is not None or jumped.replays
            assert (jumped.state(), jumped.graph()) == expected[cursor]
            assert any(n.get("ledger") for n in jumped.graph()["nodes"])
        assert jumped.replays >= 1
    finally:
        jumped.close()


def test_graph_nodes_name_the_variables_they_make_hold_and_accumulate_into() -> None:
    session = _session("autograd", iterations=1)
    try:
        while session.state()["phase"] != "backward":
            session.step(by="line")
        nodes = session.graph()["nodes"]
    finally:
        session.close()
    by_name: dict[str, list[list[str]]] = {}
    for node in nodes:
        by_name.setdefault(node["name"], []).append(node["tensors"])
    assert sorted(by_name["torch::autograd::AccumulateGrad"]) == [["w1"], ["w2"]]
    assert sorted(by_name["MmBackward0"]) == [["x"], ["y_pred", "w2"]]  # saved x; made y_pred
    assert by_name["SumBackward0"] == [["loss"]]


def test_any_element_of_a_ledgers_gradient_can_be_looked_up() -> None:
    session = _session("autograd", iterations=2)
    try:
        session.step(by="iteration", count=2)  # iteration 1: .grad was zeroed before
        while session.state()["phase"] != "update":
            session.step(by="line")
        before, graph = session.state(), session.graph()
        mm = next(n for n in graph["nodes"] if n["name"] == "MmBackward0" and "w2" in n["tensors"])
        sent = mm["ledger"]["grad_inputs"][1]  # grad_w2, sent to w2's AccumulateGrad
        last = [n - 1 for n in sent["shape"]]
        corner = session.grad_element(mm["id"], "inputs", 1, last)
        assert corner["value"] == pytest.approx(session.tensor("w2.grad")["preview"][-1][-1])
        shown = session.grad_element(mm["id"], "inputs", 1, [0, 1])
        assert shown["value"] == pytest.approx(sent["preview"][0][1])
        arrived = session.grad_element(mm["id"], "outputs", 0, [2, 1])
        assert arrived["value"] == pytest.approx(mm["ledger"]["grad_outputs"][0]["preview"][2][1])
        assert session.state() == before and session.graph() == graph
        with pytest.raises(ValueError):
            session.grad_element(mm["id"], "inputs", 1, [99, 0])
        with pytest.raises(ValueError):
            session.grad_element(mm["id"], "inputs", 5, [0, 0])
        with pytest.raises(KeyError):
            session.grad_element("n999", "inputs", 0, [0, 0])
    finally:
        session.close()
