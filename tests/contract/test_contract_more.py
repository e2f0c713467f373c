"""A second, independent set of conformance checks of DESIGN.md §3–§6.

Written from the contract text alone, as a complement to tests/contract/test_contract.py
(whose checks are not repeated here). The server runs as the default deployment does,
with two worker processes (WEB_CONCURRENCY=2), and the API client opens a fresh
connection for every request, so consecutive requests of one session land on either
process. Expected values come from plain torch / NumPy runs: either rebuilt from the
documented seeding rules, or the lesson file's own text (GET /api/lessons/{id} "source")
executed with no explorer, observed only through backward-node hooks that return None.
"""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from tests.conftest import LiveServer
from tests.contract import test_contract as contract
from tests.contract.test_contract import (
    BASE,
    BUTTONS,
    DIFFERS,
    LESSONS,
    assert_stats_match,
    check_graph,
    check_state,
    check_summary,
    plain_module,
)

SMALL: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 2}
PHASES = {"setup", "forward", "loss", "backward", "update", "zero_grad", "done"}
EVENT_KINDS = {"line", "op", "node", "end"}
NODE_KINDS = {"function", "leaf", "saved", "output"}
OP_NAME = re.compile(r"(aten::|torch\.|Tensor\.)[A-Za-z_][\w.]*")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default deployment: one server with two worker processes."""
    folder = tmp_path_factory.mktemp("contract_more")
    live = LiveServer(
        env={"AGX_DATA_DIR": str(folder / "var"), "WEB_CONCURRENCY": "2"},
        log_path=folder / "server.log",
    )
    live.start()
    deadline = time.monotonic() + 30
    while len(live.process.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(live.process.children()) >= 2, "the server did not start two worker processes"
    for _ in range(20):  # both workers answer before the tests start
        assert httpx.get(f"{live.url}/healthz", timeout=10).status_code == 200
    yield live
    live.stop()


class Api(contract.Api):
    """The first suite's client, by default opening a new connection for every request
    (no keep-alive), so that a session's requests reach either worker process."""

    def __init__(self, url: str, *, fresh: bool = True) -> None:
        super().__init__(url, fresh=fresh)

    def forget(self) -> None:
        self.forget_sessions()

    def close(self) -> None:
        self.http.close()

    def create(self, lesson: str = "autograd", **config: Any) -> dict[str, Any]:
        return super().create(lesson, **{**SMALL, **config})

    def get(self, sid: str) -> dict[str, Any]:
        response = self.http.get(f"/api/sessions/{sid}")
        assert response.status_code == 200, response.text
        return response.json()

    def lesson(self, lesson: str) -> dict[str, Any]:
        response = self.http.get(f"/api/lessons/{lesson}")
        assert response.status_code == 200, response.text
        return response.json()

    def trace(self, lesson: str, limit: int = 5000, **config: Any) -> list[dict[str, Any]]:
        """Every state of a run, stepped one event at a time."""
        state = self.create(lesson, **config)
        states = [state]
        while not state["done"]:
            state = self.step(state["id"], "event")
            states.append(state)
            assert len(states) < limit, f"{lesson}: the run never ended"
        return states


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _forget_sessions(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "api" in request.fixturenames:
        request.getfixturevalue("api").forget()


@pytest.fixture(scope="module")
def traces(server: LiveServer) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """`traces(lesson)`: the cached event-by-event run of a lesson with the SMALL config."""
    cache: dict[str, list[dict[str, Any]]] = {}
    client = Api(server.url)

    def get(lesson: str) -> list[dict[str, Any]]:
        if lesson not in cache:
            cache[lesson] = client.trace(lesson)
            client.forget()
        return cache[lesson]

    yield get
    client.close()


def strip_id(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "id"}


def source_lines(api: Api, lesson: str) -> list[str]:
    return api.lesson(lesson)["source"].splitlines()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- plain runs


def run_lesson_plainly(
    source: str,
    config: dict[str, Any],
    *,
    saved_at_first_backward: list[Any] | None = None,
    snapshots: tuple[int, list[dict[str, Any]]] | None = None,
) -> tuple[list[str], list[float], dict[str, Any]]:
    """Run a lesson file's text with no explorer; return its backward nodes, its losses and
    its global scope at the end.

    `snapshots=(line, found)` appends to `found` the facts of the tensors/arrays in scope
    each time the module-level `line` is about to run (read with a line tracer).

    The node names are `Node.name()` in the order the autograd engine finished running
    them, recorded by node post-hooks that return None (attached to the graph just before
    each `Tensor.backward` / `torch.autograd.grad` call; nothing else is changed).
    """
    order: list[str] = []
    hooked: dict[Any, Any] = {}

    def attach(root: Any) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            if node is None or node in hooked:
                continue
            hooked[node] = node

            def record(grad_inputs: Any, grad_outputs: Any, node: Any = node) -> None:
                order.append(node.name())

            node.register_hook(record)
            stack.extend(child for child, _ in node.next_functions)

    plain_backward = torch.Tensor.backward
    plain_grad = torch.autograd.grad

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.grad_fn is not None:
            if saved_at_first_backward is not None and not saved_at_first_backward:
                saved_at_first_backward.extend(saved_by_node(self.grad_fn))
            attach(self.grad_fn)
        return plain_backward(self, *args, **kwargs)

    def grad(outputs: Any, *args: Any, **kwargs: Any) -> Any:
        for out in outputs if isinstance(outputs, list | tuple) else [outputs]:
            if isinstance(out, torch.Tensor) and out.grad_fn is not None:
                attach(out.grad_fn)
        return plain_grad(outputs, *args, **kwargs)

    losses: list[float] = []
    scope = {**config, "losses": losses, "__name__": "lesson"}

    def on_line(frame: Any, event: str, arg: Any) -> Any:
        if snapshots is not None and event == "line" and frame.f_lineno == snapshots[0]:
            snapshots[1].append(scope_facts(frame.f_globals))
        return on_line

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        return on_line if code.co_filename == "lesson.py" and code.co_name == "<module>" else None

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    torch.autograd.grad = grad  # type: ignore[assignment]
    previous_trace = sys.gettrace()
    if snapshots is not None:
        sys.settrace(on_call)
    try:
        exec(compile(source, "lesson.py", "exec"), scope)
    except RuntimeError:
        pass  # the inplace lesson ends with PyTorch's own error
    finally:
        sys.settrace(previous_trace)
        torch.Tensor.backward = plain_backward  # type: ignore[method-assign]
        torch.autograd.grad = plain_grad
    return order, losses, scope


def tensor_facts(value: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """What a TensorSummary of `value` must say, read now (values copied)."""
    if isinstance(value, np.ndarray):
        return {
            "numpy": True,
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "values": value.astype(np.float64),
        }
    grad = value.grad if value.is_leaf else None  # non-leaves keep no .grad
    return {
        "numpy": False,
        "shape": list(value.shape),
        "dtype": str(value.dtype).removeprefix("torch."),
        "device": str(value.device),
        "requires_grad": value.requires_grad,
        "is_leaf": value.is_leaf,
        "version": value._version,
        "grad_fn": None if value.grad_fn is None else value.grad_fn.name().split("::")[-1],
        "values": value.detach().double().cpu().numpy().copy(),
        "grad": None
        if grad is None
        else {
            "shape": list(grad.shape),
            "version": grad._version,
            "values": grad.double().cpu().numpy().copy(),
        },
    }


def scope_facts(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tensors/arrays of a program's global scope, module parameters as
    "model.<param name>"."""
    facts = {
        name: tensor_facts(value)
        for name, value in scope.items()
        if isinstance(value, torch.Tensor | np.ndarray) and not name.startswith("__")
    }
    model = scope.get("model")
    if isinstance(model, torch.nn.Module):
        facts.update({f"model.{n}": tensor_facts(p) for n, p in model.named_parameters()})
    return facts


def assert_variables_match(
    variables: dict[str, Any], expected: dict[str, dict[str, Any]], where: Any
) -> None:
    assert set(variables) == set(expected), (
        where,
        sorted(set(variables) - set(expected)),
        sorted(set(expected) - set(variables)),
    )
    for name, facts in expected.items():
        summary = variables[name]
        here = (where, name)
        check_summary(summary, name)
        assert summary["shape"] == facts["shape"], here
        assert facts["dtype"] in summary["dtype"], (here, summary["dtype"])
        assert_stats_match(summary["stats"], facts["values"], str(here))
        if facts["numpy"]:
            assert summary["device"] == "cpu" and summary["requires_grad"] is False, here
            assert summary["version"] == 0 and summary["grad"] is None, here
            continue
        assert summary["device"] == facts["device"], here
        assert summary["requires_grad"] is facts["requires_grad"], here
        assert summary["is_leaf"] is facts["is_leaf"], here
        assert summary["version"] == facts["version"], (here, summary["version"])
        if facts["grad_fn"] is None:
            assert summary["grad_fn"] is None, here
        else:
            assert facts["grad_fn"] in (summary["grad_fn"] or ""), (here, summary["grad_fn"])
        if facts["grad"] is None:
            assert summary["grad"] is None, here
            continue
        grad = summary["grad"]
        assert grad is not None, here
        assert grad["shape"] == facts["grad"]["shape"], here
        assert grad["version"] == facts["grad"]["version"], (here, grad["version"])
        assert grad["requires_grad"] is False, here
        assert_stats_match(grad["stats"], facts["grad"]["values"], f"{here}.grad")


def saved_by_node(root: Any) -> list[tuple[str, tuple[tuple[int, ...], ...]]]:
    """(name, shapes of the tensors it saved for backward) of every function node of a
    graph but AccumulateGrad, read from `_saved_*` (built-in nodes) or `saved_tensors`
    (custom Functions)."""
    found = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(child for child, _ in node.next_functions)
        if node.name().endswith("AccumulateGrad"):
            continue
        tensors = []
        for attr in dir(node):
            if attr.startswith("_saved_"):
                value = getattr(node, attr)
                if isinstance(value, torch.Tensor):
                    tensors.append(value)
        if not tensors and hasattr(node, "saved_tensors"):
            tensors = [t for t in node.saved_tensors if isinstance(t, torch.Tensor)]
        found.append((node.name(), tuple(sorted(tuple(t.shape) for t in tensors))))
    return found


def plain_autograd_checkpoints(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The autograd program from the contract's seeding; facts at each iteration start,
    right after each backward, and at the end."""
    torch.manual_seed(cfg["seed"])
    x = torch.randn(cfg["N"], cfg["D_in"])
    y = torch.randn(cfg["N"], cfg["D_out"])
    w1 = torch.randn(cfg["D_in"], cfg["H"], requires_grad=True)
    w2 = torch.randn(cfg["H"], cfg["D_out"], requires_grad=True)
    points: list[dict[str, Any]] = []

    def snap(where: str, t: int) -> None:
        point: dict[str, Any] = {"where": where, "t": t}
        for name, w in (("w1", w1), ("w2", w2)):
            point[name] = (w._version, w.detach().clone().numpy())
            point[f"{name}.grad"] = (
                None if w.grad is None else (w.grad._version, w.grad.clone().numpy())
            )
        points.append(point)

    for t in range(cfg["iterations"]):
        snap("start", t)
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        loss.backward()
        snap("after_backward", t)
        with torch.no_grad():
            w1 -= cfg["learning_rate"] * w1.grad
            w2 -= cfg["learning_rate"] * w2.grad
            if cfg["zero_grad"]:
                w1.grad.zero_()
                w2.grad.zero_()
    snap("end", cfg["iterations"])
    return points


# =========================================================================== §4 every lesson


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_state_of_a_run_is_well_formed(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """cursor counts events; kinds, phases and lines come from the documented sets; `end`
    comes once, last, with done true, phase "done" and no line to run next."""
    trace = traces(lesson)
    source = source_lines(api, lesson)
    last = len(trace) - 1
    previous_iteration = -1
    for index, state in enumerate(trace):
        check_state(state, lesson)
        where = (lesson, index, state["event"])
        assert state["cursor"] == index, where
        assert state["done"] is (index == last), where
        assert state["phase"] in PHASES, where
        assert (state["phase"] == "done") is (index == last), where
        assert state["config"] == trace[0]["config"], where
        if index > 0:
            assert state["event"]["kind"] in EVENT_KINDS, where
        assert (state["event"]["kind"] == "end") is (index == last), where
        if index == last:
            assert state["line"] is None, where
        else:
            assert isinstance(state["line"], int) and 1 <= state["line"] <= len(source), where
        if state["event"]["kind"] == "line":
            text = source[state["event"]["line"] - 1].strip()
            assert text and not text.startswith("#"), (where, text)
        # the loop counter of the iteration in progress: -1, then 0, 1, ... in order
        assert state["iteration"] in (previous_iteration, previous_iteration + 1), where
        assert -1 <= state["iteration"] < SMALL["iterations"], where
        previous_iteration = state["iteration"]
        assert len(state["losses"]) <= SMALL["iterations"], where
        if index > 0:
            assert state["losses"][: len(trace[index - 1]["losses"])] == trace[index - 1]["losses"]
        if lesson != "inplace":
            assert state["error"] is None, where
    assert len(trace[-1]["losses"]) == SMALL["iterations"]


@pytest.mark.parametrize("lesson", LESSONS)
def test_op_and_node_event_names(
    traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """op events are named like aten::mm, torch.mm or Tensor.mm; node events carry a
    node name and the id of that node; line and end events name no op or node."""
    for state in traces(lesson):
        event = state["event"]
        if event["kind"] == "op":
            assert isinstance(event["name"], str), event
            assert OP_NAME.fullmatch(event["name"]), event
        elif event["kind"] == "node":
            assert isinstance(event["name"], str) and event["name"], event
            assert isinstance(event["node_id"], str) and event["node_id"], event
        elif event["kind"] in ("line", "end"):
            assert event["node_id"] is None, event
            if event["kind"] == "end":
                assert event["name"] is None, event


@pytest.mark.parametrize("lesson", LESSONS)
def test_backward_nodes_come_in_the_engine_order(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """node events name `Node.name()` and come in the order the engine ran the nodes:
    the same sequence node hooks record on a plain run of the lesson file."""
    trace = traces(lesson)
    detail = api.lesson(lesson)
    reported = [s["event"]["name"] for s in trace if s["event"]["kind"] == "node"]
    expected, losses, _ = run_lesson_plainly(detail["source"], trace[0]["config"])
    assert reported == expected, (lesson, reported, expected)
    np.testing.assert_allclose(trace[-1]["losses"], losses, rtol=1e-6, err_msg=lesson)


@pytest.mark.parametrize("lesson", LESSONS)
def test_step_kinds_land_where_documented(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """`line`, `phase` and `iteration` steps, from the start to the end of every lesson;
    an iteration starts at the first line of the training loop's body."""
    trace = traces(lesson)
    body_line = next(s["line"] for s in trace if s["iteration"] == 0)
    source = source_lines(api, lesson)
    header = next(
        i for i, text in enumerate(source) if re.match(r"for \w+ in range\(iterations\):", text)
    )
    first_body = next(
        j
        for j in range(header + 1, len(source))
        if source[j].strip() and not source[j].strip().startswith("#")
    )
    assert body_line == first_body + 1, (lesson, body_line, first_body + 1)

    def next_line(cursor: int) -> dict[str, Any]:
        return next(
            (s for s in trace[cursor + 1 :] if s["event"]["kind"] in ("line", "end")), trace[-1]
        )

    def next_phase(cursor: int) -> dict[str, Any]:
        phase = trace[cursor]["phase"]
        return next(
            (
                s
                for s in trace[cursor + 1 :]
                if (s["event"]["kind"] == "line" and s["phase"] != phase)
                or s["event"]["kind"] == "end"
            ),
            trace[-1],
        )

    def next_iteration(cursor: int) -> dict[str, Any]:
        return next(
            (
                s
                for s in trace[cursor + 1 :]
                if (
                    s["event"]["kind"] == "line"
                    and s["line"] == body_line
                    and s["iteration"] > trace[cursor]["iteration"]
                )
                or s["event"]["kind"] == "end"
            ),
            trace[-1],
        )

    for by, want in (("line", next_line), ("phase", next_phase), ("iteration", next_iteration)):
        sid = api.create(lesson)["id"]
        state = trace[0]
        for _ in range(len(trace)):
            expected = want(state["cursor"])
            state = api.step(sid, by)
            assert strip_id(state) == strip_id(expected), (lesson, by, expected["cursor"])
            if state["done"]:
                break
        assert state["done"], (lesson, by)
        # a step past the end returns the final state
        assert strip_id(api.step(sid, by)) == strip_id(trace[-1]), (lesson, by)


@pytest.mark.parametrize("lesson", LESSONS)
def test_seek_replays_any_cursor(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """seek moves to any earlier or later cursor with the state stepping gave there."""
    trace = traces(lesson)
    total = len(trace) - 1
    sid = api.create(lesson)["id"]
    for cursor in (total // 2, total - 1, 1, (3 * total) // 4, total // 4, 0, total):
        assert strip_id(api.seek(sid, cursor)) == strip_id(trace[cursor]), (lesson, cursor)
        assert strip_id(api.get(sid)) == strip_id(trace[cursor]), (lesson, cursor)


@pytest.mark.parametrize("lesson", ["custom_function", "dynamic_net", "inplace", "numpy"])
def test_steps_from_any_cursor(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """From any cursor (a forward op, a backward node, a line of a custom backward...),
    each step kind lands on the next event of its kind."""
    trace = traces(lesson)
    body_line = next(s["line"] for s in trace if s["iteration"] == 0)
    sid = api.create(lesson)["id"]

    def want(by: str, start: dict[str, Any]) -> dict[str, Any]:
        for s in trace[start["cursor"] + 1 :]:
            if s["event"]["kind"] == "end":
                return s
            if s["event"]["kind"] != "line":
                if by == "event":
                    return s
                continue
            if by in ("event", "line"):
                return s
            if by == "phase" and s["phase"] != start["phase"]:
                return s
            if by == "iteration" and s["line"] == body_line and s["iteration"] > start["iteration"]:
                return s
        return trace[-1]

    for start in trace[1 : -1 : max(1, len(trace) // 25)]:
        for by in ("event", "line", "phase", "iteration"):
            api.seek(sid, start["cursor"])
            landed = api.step(sid, by)
            expected = want(by, start)
            assert strip_id(landed) == strip_id(expected), (
                lesson,
                by,
                start["cursor"],
                landed["cursor"],
                expected["cursor"],
            )


@pytest.mark.parametrize("kind,count", [("line", 3), ("phase", 2), ("iteration", 2)])
@pytest.mark.parametrize("lesson", ["nn", "custom_function", "dynamic_net"])
def test_step_count_repeats_the_step(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str, kind: str, count: int
) -> None:
    """{"by": KIND, "count": n} is n steps of that kind."""
    one = api.create(lesson)["id"]
    many = api.create(lesson)["id"]
    api.step(one, "event", 3)
    api.step(many, "event", 3)
    for _ in range(count):
        single = api.step(one, kind)
    repeated = api.step(many, kind, count)
    assert strip_id(repeated) == strip_id(single), (lesson, kind)
    assert strip_id(repeated) == strip_id(traces(lesson)[repeated["cursor"]])


# =========================================================================== §3 lessons


VARIABLE_CASES = [(lesson, {}) for lesson in LESSONS] + [
    (lesson, {"zero_grad": False, "iterations": 3})
    for lesson in ("autograd", "nn", "custom_module", "dynamic_net", "inplace")
]


@pytest.mark.parametrize(
    "lesson,overrides",
    VARIABLE_CASES,
    ids=[f"{lesson}-{'-'.join(map(str, o.items())) or 'small'}" for lesson, o in VARIABLE_CASES],
)
def test_variables_are_those_of_a_plain_run(
    api: Api,
    traces: Callable[[str], list[dict[str, Any]]],
    lesson: str,
    overrides: dict[str, Any],
) -> None:
    """At the start of every iteration and at the end, `variables` holds exactly the
    tensors/arrays in the program's scope (module parameters as "model.<param name>"),
    each summarised as it is at that point of a plain run of the same program: shape,
    dtype, device, requires_grad, is_leaf, grad_fn, version, stats and .grad."""
    trace = api.trace(lesson, **overrides) if overrides else traces(lesson)
    final = trace[-1]
    body_line = next(s["line"] for s in trace if s["iteration"] == 0)
    starts = [s for s in trace if s["event"]["kind"] == "line" and s["line"] == body_line]
    found: list[dict[str, Any]] = []
    _, losses, scope = run_lesson_plainly(
        api.lesson(lesson)["source"], final["config"], snapshots=(body_line, found)
    )
    np.testing.assert_allclose(final["losses"], losses, rtol=1e-6)
    assert len(starts) == len(found) == final["config"]["iterations"], (len(starts), len(found))
    for state, facts in zip(starts, found, strict=True):
        assert_variables_match(state["variables"], facts, (lesson, "iteration", state["iteration"]))
    assert_variables_match(final["variables"], scope_facts(scope), (lesson, "end"))


@pytest.mark.parametrize("lesson", ["autograd", "custom_function", "nn", "inplace"])
def test_saved_tensors_are_those_autograd_saved(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """Just before the first backward, every function node of the graph lists the
    tensors its grad_fn saved for backward (same node names, same saved shapes), saved
    at the version they still have."""
    trace = traces(lesson)
    saved: list[Any] = []
    run_lesson_plainly(
        api.lesson(lesson)["source"], trace[0]["config"], saved_at_first_backward=saved
    )
    assert saved
    first_node = next(s for s in trace if s["event"]["kind"] == "node")
    sid = api.create(lesson)["id"]
    api.seek(sid, first_node["cursor"] - 1)
    graph = api.graph(sid)
    check_graph(graph)
    shown = [
        (node["name"], tuple(sorted(tuple(x["shape"]) for x in node["saved"])))
        for node in graph["nodes"]
        if node["kind"] == "function" and not node["name"].endswith("AccumulateGrad")
    ]
    assert sorted(shown) == sorted(saved), (sorted(shown), sorted(saved))
    for node in graph["nodes"]:
        for entry in node["saved"]:
            assert entry["version_saved"] == entry["version_now"] and not entry["stale"], node


def test_saved_tensor_goes_stale_when_updated_in_place(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """autograd: w2 is saved by the second matmul; the in-place update bumps its version,
    so while that graph is still in scope its saved entry shows version_saved < version_now;
    backward has already run that node, so the entry is freed, not stale (§5.1)."""
    trace = traces("autograd")
    sid = api.create("autograd")["id"]
    before = next(s for s in trace if s["phase"] == "update" and s["iteration"] == 0)
    after = next(s for s in trace if s["phase"] == "zero_grad" and s["iteration"] == 0)
    w2_before = before["variables"]["w2"]["version"]
    w2_after = after["variables"]["w2"]["version"]
    assert w2_after == w2_before + 1
    shape = before["variables"]["w2"]["shape"]

    def w2_entries(cursor: int) -> list[dict[str, Any]]:
        api.seek(sid, cursor)
        return [
            x
            for n in api.graph(sid)["nodes"]
            for x in n["saved"]
            if n["name"].startswith("MmBackward") and x["shape"] == shape
        ]

    entries = w2_entries(before["cursor"])
    assert entries and all(
        x["version_saved"] == x["version_now"] == w2_before and not x["stale"] for x in entries
    ), entries
    entries = w2_entries(after["cursor"])
    assert entries and all(
        x["version_saved"] == w2_before
        and x["version_now"] == w2_after
        and x["freed"]
        and not x["stale"]
        for x in entries
    ), entries


def test_node_ids_last_from_forward_op_to_backward_node(
    traces: Callable[[str], list[dict[str, Any]]],
) -> None:
    """Ids are stable: the node a forward op created has the same id in its backward
    node event; leaves keep their ids across iterations."""
    trace = traces("autograd")
    for t in range(SMALL["iterations"]):
        created = {
            s["event"]["node_id"]
            for s in trace
            if s["iteration"] == t and s["event"]["kind"] == "op" and s["event"]["node_id"]
        }
        ran = {
            s["event"]["node_id"]
            for s in trace
            if s["iteration"] == t
            and s["event"]["kind"] == "node"
            and not s["event"]["name"].endswith("AccumulateGrad")
        }
        assert ran and ran == created, (t, ran, created)
    accumulate = [
        [
            s["event"]["node_id"]
            for s in trace
            if s["iteration"] == t
            and s["event"]["kind"] == "node"
            and s["event"]["name"].endswith("AccumulateGrad")
        ]
        for t in range(SMALL["iterations"])
    ]
    assert len(accumulate[0]) == 2 and len(set(accumulate[0])) == 2


@pytest.mark.parametrize("lesson", ["autograd", "nn", "dynamic_net"])
def test_leaf_ids_are_stable_across_iterations(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    trace = traces(lesson)
    sid = api.create(lesson)["id"]
    leaves_seen: dict[tuple[str, tuple[int, ...] | None], str] = {}
    checked = 0
    for t in range(SMALL["iterations"]):
        for phase in ("loss", "update"):
            state = next(s for s in trace if s["iteration"] == t and s["phase"] == phase)
            api.seek(sid, state["cursor"])
            for node in api.graph(sid)["nodes"]:
                if node["kind"] != "leaf":
                    continue
                key = (node["name"], tuple(node["shape"]) if node["shape"] else None)
                assert leaves_seen.setdefault(key, node["id"]) == node["id"], (t, phase, key)
                checked += 1
    assert checked and len(leaves_seen) >= 2, leaves_seen


def test_tensors_lesson_does_backward_by_hand(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """`tensors`: backward by hand, so autograd records nothing and runs no node."""
    trace = traces("tensors")
    assert not [s for s in trace if s["event"]["kind"] == "node"]
    for state in trace:
        for name, summary in state["variables"].items():
            assert summary["requires_grad"] is False, (state["cursor"], name)
            assert summary["grad_fn"] is None and summary["grad"] is None, (state["cursor"], name)
    sid = api.create("tensors")["id"]
    for cursor in range(0, len(trace), max(1, len(trace) // 6)):
        api.seek(sid, cursor)
        graph = api.graph(sid)
        check_graph(graph)
        assert graph["kind"] in ("autograd", "none"), graph["kind"]
        assert not [n for n in graph["nodes"] if n["kind"] == "function"], cursor


def test_numpy_arrays_are_summarised_as_documented(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """NumPy arrays use the TensorSummary form with device "cpu", requires_grad false and
    version 0, even after in-place updates; their stats are the arrays' own."""
    trace = traces("numpy")
    first_torch = next(s["cursor"] for s in trace if s["event"]["kind"] == "op")
    before = trace[:first_torch]
    assert any(s["iteration"] == 1 for s in before)
    for state in before:
        for name, summary in state["variables"].items():
            where = (state["cursor"], name)
            check_summary(summary, name)
            assert summary["device"] == "cpu", where
            assert summary["requires_grad"] is False, where
            assert summary["version"] == 0, where
            assert "float64" in summary["dtype"], where
            assert summary["grad"] is None, where
    # Hand-written gradients of iteration 0, recomputed from the documented seeding.
    cfg = {**BASE, **SMALL}
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["N"], cfg["D_in"]))
    y = rng.standard_normal((cfg["N"], cfg["D_out"]))
    w1 = rng.standard_normal((cfg["D_in"], cfg["H"]))
    w2 = rng.standard_normal((cfg["H"], cfg["D_out"]))
    h = x.dot(w1)
    h_relu = np.maximum(h, 0)
    grad_y_pred = 2.0 * (h_relu.dot(w2) - y)
    grad_w2 = h_relu.T.dot(grad_y_pred)
    update = next(s for s in trace if s["phase"] == "update" and s["iteration"] == 0)
    for name, expected in (("h", h), ("h_relu", h_relu), ("w1", w1), ("w2", w2)):
        summary = update["variables"][name]
        assert summary["shape"] == list(expected.shape), name
        assert_stats_match(summary["stats"], expected, f"numpy.{name}")
    shapes = {tuple(v["shape"]) for v in update["variables"].values()}
    assert tuple(grad_w2.shape) in shapes
    matches = [
        n
        for n, v in update["variables"].items()
        if v["shape"] == list(grad_w2.shape)
        and math.isclose(v["stats"]["norm"], float(np.linalg.norm(grad_w2)), rel_tol=1e-6)
    ]
    assert matches, "no array holds the hand-written gradient of w2"


def test_numpy_lesson_ends_by_checking_against_autograd(
    traces: Callable[[str], list[dict[str, Any]]],
) -> None:
    """numpy ends by checking its hand-computed gradients against autograd's on the same
    (float64) arrays: autograd's backward runs after the training loop, on float64."""
    trace = traces("numpy")
    nodes = [s for s in trace if s["event"]["kind"] == "node"]
    assert nodes, "autograd never ran in the numpy lesson"
    assert all(len(s["losses"]) == SMALL["iterations"] for s in nodes)
    assert any(n["event"]["name"].endswith("AccumulateGrad") for n in nodes)
    final = trace[-1]["variables"]
    with_grad = [v for v in final.values() if v["requires_grad"] and v["grad"] is not None]
    assert with_grad, sorted(final)
    for summary in with_grad:
        assert "float64" in summary["dtype"] and "float64" in summary["grad"]["dtype"]
        assert summary["grad"]["shape"] == summary["shape"]


def test_autograd_versions_and_grads_follow_the_plain_program(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """version counts in-place updates; grad summarises .grad (null before the first
    backward, zeroed by grad.zero_()); both as a plain run of the same program has them."""
    trace = traces("autograd")
    cfg = {**BASE, **trace[0]["config"]}
    points = plain_autograd_checkpoints(cfg)
    for point in points:
        if point["where"] == "start":
            state = next(
                s for s in trace if s["iteration"] == point["t"] and s["event"]["kind"] == "line"
            )
        elif point["where"] == "after_backward":
            state = next(
                s
                for s in trace
                if s["iteration"] == point["t"]
                and s["event"]["kind"] == "line"
                and s["phase"] == "update"
            )
        else:
            state = trace[-1]
        for name in ("w1", "w2"):
            where = (point["where"], point["t"], name)
            summary = state["variables"][name]
            version, values = point[name]
            assert summary["version"] == version, where
            assert summary["requires_grad"] is True and summary["is_leaf"] is True, where
            assert_stats_match(summary["stats"], values, str(where))
            grad = point[f"{name}.grad"]
            if grad is None:
                assert summary["grad"] is None, where
                continue
            check_summary(summary["grad"], f"{name}.grad")
            assert summary["grad"]["version"] == grad[0], where
            assert summary["grad"]["shape"] == summary["shape"], where
            assert summary["grad"]["requires_grad"] is False, where
            assert summary["grad"]["device"] == "cpu", where
            assert "float32" in summary["grad"]["dtype"], where
            assert_stats_match(summary["grad"]["stats"], grad[1], f"{where}.grad")


def test_loss_variable_is_the_scalar_the_loss_list_records(
    traces: Callable[[str], list[dict[str, Any]]],
) -> None:
    trace = traces("autograd")
    for t in range(SMALL["iterations"]):
        state = next(s for s in trace if s["iteration"] == t and s["phase"] == "backward")
        loss = state["variables"]["loss"]
        assert loss["shape"] == [] and loss["requires_grad"] is True
        assert loss["is_leaf"] is False and "SumBackward" in (loss["grad_fn"] or "")
        assert len(state["losses"]) == t + 1
        value = state["losses"][t]
        for key in ("min", "max", "mean", "norm"):
            assert math.isclose(loss["stats"][key], abs(value) if key == "norm" else value)


def test_custom_function_is_a_graph_node_with_its_saved_input(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """`MyReLU(torch.autograd.Function)` with ctx.save_for_backward: its node is in the
    graph, listing the tensor it saved, and the engine runs it in the backward pass."""
    trace = traces("custom_function")
    loss_line = next(s for s in trace if s["phase"] == "loss" and s["iteration"] == 0)
    sid = api.create("custom_function")["id"]
    api.seek(sid, loss_line["cursor"])
    graph = api.graph(sid)
    check_graph(graph)
    mine = [n for n in graph["nodes"] if "MyReLU" in n["name"]]
    assert len(mine) == 1, [n["name"] for n in graph["nodes"]]
    assert mine[0]["kind"] == "function"
    assert mine[0]["saved"], mine[0]
    assert mine[0]["saved"][0]["shape"] == [SMALL["N"], SMALL["H"]]
    assert mine[0]["executed"] is False
    events = [s for s in trace if s["event"]["kind"] == "node" and s["iteration"] == 0]
    assert [s["event"]["name"] for s in events].count(mine[0]["name"]) == 1


def test_static_graph_is_captured_once_then_run(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """static_graph: the training step (forward and gradients) is captured once, before
    the loop; the loop runs the captured graph, so the engine runs no node there, and
    the graph view shows that same static graph at every step of the loop."""
    trace = traces("static_graph")
    in_loop = [s for s in trace if s["iteration"] >= 0 and not s["done"]]
    assert in_loop
    assert not [s for s in in_loop if s["event"]["kind"] == "node"]
    sid = api.create("static_graph")["id"]
    seen = None
    for state in [*in_loop[:: max(1, len(in_loop) // 8)], in_loop[-1], trace[-1]]:
        api.seek(sid, state["cursor"])
        graph = api.graph(sid)
        check_graph(graph)
        assert graph["kind"] == "static", state["cursor"]
        shape = (
            sorted((n["id"], n["kind"], n["name"]) for n in graph["nodes"]),
            sorted((e["source"], e["target"]) for e in graph["edges"]),
        )
        assert seen is None or shape == seen, state["cursor"]
        seen = shape
    assert seen is not None
    names = " ".join(name for _, _, name in seen[0])
    # forward and gradients: two matmuls forward, more for the gradients
    assert names.count("mm") >= 4, names


def test_dynamic_net_depth_comes_from_random_random(api: Api) -> None:
    """dynamic_net: each forward reuses the middle Linear randint(0, 3) times, from one
    random.Random(seed) per run, so its backward runs 2 + depth Linear nodes."""
    iterations, seed = 4, 1
    rng = random.Random(seed)
    depths = [rng.randint(0, 3) for _ in range(iterations)]
    assert len(set(depths)) > 1
    trace = api.trace("dynamic_net", iterations=iterations, seed=seed)
    for t, depth in enumerate(depths):
        names = [
            s["event"]["name"]
            for s in trace
            if s["event"]["kind"] == "node" and s["iteration"] == t
        ]
        linear = [n for n in names if n.startswith("Addmm") or n.startswith("Mm")]
        assert len(linear) == 2 + depth, (t, depth, names)
    assert len(trace[-1]["losses"]) == iterations
    # The graph in scope once the loss is computed is this forward's own, 2 + depth deep.
    sid = api.create("dynamic_net", iterations=iterations, seed=seed)["id"]
    for t, depth in enumerate(depths):
        state = next(s for s in trace if s["iteration"] == t and s["phase"] == "backward")
        api.seek(sid, state["cursor"])
        graph = api.graph(sid)
        linear = [
            n for n in graph["nodes"] if n["kind"] == "function" and n["name"].startswith("Addmm")
        ]
        assert len(linear) == 2 + depth, (t, depth, [n["name"] for n in graph["nodes"]])


def test_sgd_momentum_buffers_of_dynamic_net(api: Api) -> None:
    """SGD with momentum: after the first update every parameter that got a gradient has
    a momentum_buffer, keyed by "model.<param name>", equal to a plain run's."""
    seed = 7  # random.Random(7) draws depth 2 first: every parameter gets a gradient
    assert random.Random(seed).randint(0, 3) > 0
    cfg = {**BASE, **DIFFERS["dynamic_net"], **SMALL, "seed": seed}
    sid = api.create("dynamic_net", seed=seed)["id"]
    first = api.step(sid, "iteration")
    assert first["iteration"] == 0
    if first["optimizer"] is not None:
        assert first["optimizer"]["type"] == "SGD"
        for entry in first["optimizer"]["state"].values():
            assert "momentum_buffer" not in entry, "a buffer before the first step"
    state = api.step(sid, "iteration")
    assert state["iteration"] == 1
    optimizer = state["optimizer"]
    assert optimizer is not None and optimizer["type"] == "SGD"
    params = {k: v for k, v in state["variables"].items() if k.startswith("model.")}
    assert set(optimizer["state"]) == set(params)
    _, _, model, plain_opt = plain_module("dynamic_net", cfg, steps=1)
    assert plain_opt is not None
    unmatched = [plain_opt.state[p]["momentum_buffer"] for p in model.parameters()]
    assert len(unmatched) == len(params) == 6
    for name, entry in optimizer["state"].items():
        buffer = entry["momentum_buffer"]
        check_summary(buffer, f"{name}.momentum_buffer")
        assert buffer["shape"] == params[name]["shape"], name
        # match the plain run's buffers by shape and values (names depend on the class)
        hit = next(
            (
                i
                for i, tensor in enumerate(unmatched)
                if list(tensor.shape) == buffer["shape"]
                and math.isclose(
                    buffer["stats"]["norm"], float(tensor.norm()), rel_tol=1e-5, abs_tol=1e-7
                )
            ),
            None,
        )
        assert hit is not None, name
        assert_stats_match(buffer["stats"], unmatched.pop(hit).numpy(), name)


def test_adam_counts_its_steps(api: Api) -> None:
    """Adam's state: an integer step, exp_avg and exp_avg_sq per parameter."""
    cfg = {**BASE, **DIFFERS["optim"], **SMALL}
    final = api.step(api.create("optim")["id"], "end")
    optimizer = final["optimizer"]
    assert optimizer is not None and optimizer["type"] == "Adam"
    _, _, model, plain_opt = plain_module("optim", cfg)
    assert plain_opt is not None
    for name, param in model.named_parameters():
        entry = optimizer["state"][f"model.{name}"]
        assert type(entry["step"]) is int and entry["step"] == SMALL["iterations"], entry
        for buffer in ("exp_avg", "exp_avg_sq"):
            check_summary(entry[buffer], f"{name}.{buffer}")
            assert entry[buffer]["shape"] == list(param.shape)
            assert_stats_match(
                entry[buffer]["stats"], plain_opt.state[param][buffer].numpy(), f"{name}.{buffer}"
            )


def test_adam_state_lists_only_parameters_adam_keeps_state_for(
    traces: Callable[[str], list[dict[str, Any]]],
) -> None:
    """optimizer.state maps a parameter to {"step": int, buffers...}: Adam has no state
    for a parameter before its first step, and every entry it has carries "step"."""
    trace = traces("optim")
    first_update = next(s["cursor"] for s in trace if s["phase"] == "update")
    for state in trace:
        optimizer = state["optimizer"]
        if optimizer is None:
            continue
        assert optimizer["type"] == "Adam"
        if state["cursor"] <= first_update:
            assert optimizer["state"] == {}, (state["cursor"], optimizer["state"])
        for name, entry in optimizer["state"].items():
            assert type(entry.get("step")) is int, (state["cursor"], name, entry)


def test_custom_module_uses_plain_sgd(api: Api) -> None:
    """custom_module: torch.optim.SGD (no momentum), so no buffers in its state."""
    final = api.step(api.create("custom_module")["id"], "end")
    optimizer = final["optimizer"]
    assert optimizer is not None and optimizer["type"] == "SGD"
    params = {k for k in final["variables"] if k.startswith("model.")}
    assert len(params) == 4, sorted(final["variables"])
    assert set(optimizer["state"]) <= params
    for entry in optimizer["state"].values():
        assert not [k for k in entry if k != "step"], entry


# =========================================================================== §5 graph


@pytest.mark.parametrize("lesson", LESSONS)
def test_graph_invariants_while_stepping(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """Node kinds from the documented set; edges join nodes; focus is the current
    event's node; an AccumulateGrad is a function node with its own leaf; saved entries'
    stale says whether the version changed since saving; ids do not look like id()."""
    trace = traces(lesson)
    sid = api.create(lesson)["id"]
    picks = list(range(1, len(trace), max(1, len(trace) // 12)))
    picks += [s["cursor"] for s in trace if s["event"]["kind"] == "node"][:4]
    picks.append(len(trace) - 1)
    for cursor in sorted(set(picks)):
        state = api.seek(sid, cursor)
        graph = api.graph(sid)
        check_graph(graph)
        where = (lesson, cursor, state["event"])
        assert graph["kind"] in ("autograd", "static", "none"), where
        if lesson != "static_graph":
            assert graph["kind"] != "static", where
        if graph["kind"] == "none":
            assert graph["focus"] is None, where
        by_id = {n["id"]: n for n in graph["nodes"]}
        for node in graph["nodes"]:
            assert node["kind"] in NODE_KINDS, (where, node)
            assert not re.fullmatch(r"-?\d{6,}", node["id"]), (where, node["id"])
            assert not re.search(r"0x[0-9a-fA-F]{6,}", node["id"]), (where, node["id"])
            for saved in node["saved"]:
                assert saved["version_now"] >= saved["version_saved"], (where, saved)
                changed = saved["version_now"] != saved["version_saved"]
                assert saved["stale"] is (changed and not saved["freed"]), (where, saved)
        for node in graph["nodes"]:
            if node["name"].endswith("AccumulateGrad"):
                assert node["kind"] == "function", (where, node)
                leaves = {
                    other
                    for edge in graph["edges"]
                    for other in (edge["source"], edge["target"])
                    if node["id"] in (edge["source"], edge["target"])
                    and by_id[other]["kind"] == "leaf"
                }
                assert len(leaves) == 1, (where, node["id"], leaves)
        if state["event"]["kind"] in ("op", "node"):
            assert graph["focus"] == state["event"]["node_id"], where
        if state["event"]["kind"] == "end":
            assert graph["focus"] is None, where
        if state["event"]["kind"] == "node":
            assert by_id[graph["focus"]]["executed"] is True, where
            assert by_id[graph["focus"]]["name"] == state["event"]["name"], where


@pytest.mark.parametrize("lesson", ["autograd", "custom_function", "nn", "dynamic_net"])
def test_executed_marks_exactly_the_nodes_already_run(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """During the first backward pass, `executed` is true exactly for the nodes whose
    node events have happened so far."""
    trace = traces(lesson)
    sid = api.create(lesson)["id"]
    first = [s for s in trace if s["event"]["kind"] == "node" and s["iteration"] == 0]
    assert first
    ran: set[str] = set()
    before = first[0]["cursor"] - 1
    api.seek(sid, before)
    graph = api.graph(sid)
    assert not [n["id"] for n in graph["nodes"] if n["executed"]], lesson
    for state in first:
        ran.add(state["event"]["node_id"])
        api.seek(sid, state["cursor"])
        graph = api.graph(sid)
        executed = {n["id"] for n in graph["nodes"] if n["executed"]}
        assert executed == ran, (lesson, state["cursor"], executed ^ ran)


@pytest.mark.parametrize("lesson", ["autograd", "custom_function", "nn", "optim", "inplace"])
def test_focus_is_null_at_line_events(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """focus is the node of the current event; a line event has none."""
    trace = traces(lesson)
    sid = api.create(lesson)["id"]
    lines = [s for s in trace if s["event"]["kind"] == "line" and s["iteration"] == 0]
    for state in lines[:: max(1, len(lines) // 6)]:
        api.seek(sid, state["cursor"])
        assert api.graph(sid)["focus"] is None, (lesson, state["cursor"])


@pytest.mark.parametrize("lesson", LESSONS)
def test_graph_svg_and_dot_of_every_lesson(
    api: Api, traces: Callable[[str], list[dict[str, Any]]], lesson: str
) -> None:
    """graph.svg: image/svg+xml, a group per JSON node with the node's id; graph.dot:
    text/vnd.graphviz; both for every lesson, at its richest graph."""
    trace = traces(lesson)
    interesting = [s for s in trace if s["event"]["kind"] in ("op", "node")]
    state = interesting[len(interesting) // 2] if interesting else trace[len(trace) // 2]
    sid = api.create(lesson)["id"]
    api.seek(sid, state["cursor"])
    graph = api.graph(sid)
    svg = api.http.get(f"/api/sessions/{sid}/graph.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].split(";")[0].strip() == "image/svg+xml"
    root = ET.fromstring(svg.content)
    assert root.tag.endswith("svg")
    groups = {el.get("id"): el for el in root.iter() if el.tag.split("}")[-1] == "g"}
    for node in graph["nodes"]:
        assert node["id"] in groups, (lesson, node["id"])
    dot = api.http.get(f"/api/sessions/{sid}/graph.dot")
    assert dot.status_code == 200
    assert dot.headers["content-type"].split(";")[0].strip() == "text/vnd.graphviz"


# =========================================================================== §5 REST


def test_json_endpoints_answer_application_json(api: Api) -> None:
    sid = api.create("nn")["id"]
    api.step(sid, "iteration")
    responses = {
        "lessons": api.http.get("/api/lessons"),
        "lesson": api.http.get("/api/lessons/nn"),
        "devices": api.http.get("/api/devices"),
        "healthz": api.http.get("/healthz"),
        "state": api.http.get(f"/api/sessions/{sid}"),
        "step": api.http.post(f"/api/sessions/{sid}/step", json={"by": "event", "count": 1}),
        "seek": api.http.post(f"/api/sessions/{sid}/seek", json={"cursor": 40}),
        "graph": api.http.get(f"/api/sessions/{sid}/graph"),
        "tensor": api.http.get(f"/api/sessions/{sid}/tensors/model.0.weight"),
        "404": api.http.get("/api/sessions/nope/graph"),
        "422": api.http.post(f"/api/sessions/{sid}/step", json={"by": "sideways"}),
        "413": api.http.post(f"/api/sessions/{sid}/seek", json={"cursor": 1, "x": "y" * 70_000}),
    }
    for what, response in responses.items():
        assert response.headers["content-type"].split(";")[0].strip() == "application/json", (
            what,
            response.headers["content-type"],
        )
        response.json()
    for what in ("404", "422", "413"):
        status = responses[what].status_code
        assert status == int(what), (what, status)
        detail = responses[what].json()["detail"]
        assert isinstance(detail, str) and detail.strip(), (what, detail)


def test_create_answers_201_with_the_state_get_returns(api: Api) -> None:
    response = api.http.post("/api/sessions", json={"lesson": "optim", "config": SMALL})
    assert response.status_code == 201, response.text
    created = response.json()
    check_state(created, "optim")
    assert created["event"]["kind"] in (None, *EVENT_KINDS)
    assert created["optimizer"] is None or created["optimizer"]["state"] == {}
    assert created["variables"] == {} and created["error"] is None
    for _ in range(4):  # whichever process answers
        assert api.get(created["id"]) == created


def test_a_deleted_session_is_unknown_everywhere(api: Api) -> None:
    sid = api.create("autograd")["id"]
    api.step(sid, "iteration")
    response = api.http.delete(f"/api/sessions/{sid}")
    assert response.status_code == 204 and response.content == b""
    calls = [
        api.http.get(f"/api/sessions/{sid}"),
        api.http.post(f"/api/sessions/{sid}/step", json={"by": "event", "count": 1}),
        api.http.post(f"/api/sessions/{sid}/seek", json={"cursor": 3}),
        api.http.get(f"/api/sessions/{sid}/graph"),
        api.http.get(f"/api/sessions/{sid}/graph.svg"),
        api.http.get(f"/api/sessions/{sid}/graph.dot"),
        api.http.get(f"/api/sessions/{sid}/tensors/w1"),
        api.http.delete(f"/api/sessions/{sid}"),
    ]
    for response in calls:
        assert response.status_code == 404, (response.request.url, response.status_code)
        assert isinstance(response.json()["detail"], str)


def test_tensor_is_404_while_not_in_scope(api: Api) -> None:
    """Unknown tensor: 404 — a name not (yet, or no longer) among the variables."""
    sid = api.create("autograd")["id"]
    assert api.http.get(f"/api/sessions/{sid}/tensors/w1").status_code == 404
    state = api.step(sid, "iteration")
    assert "w1" in state["variables"]
    assert api.http.get(f"/api/sessions/{sid}/tensors/w1").status_code == 200
    state = api.seek(sid, 0)
    assert "w1" not in state["variables"]
    response = api.http.get(f"/api/sessions/{sid}/tensors/w1")
    assert response.status_code == 404, response.text
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    "lesson,phase", [("nn", "update"), ("numpy", "update"), ("optim", "update")]
)
def test_tensor_detail_extends_the_state_summary(api: Api, lesson: str, phase: str) -> None:
    """TensorDetail is the variable's TensorSummary plus preview and histogram."""
    sid = api.create(lesson, iterations=3)["id"]
    state = api.step(sid, "iteration", 2)
    while state["phase"] != phase:
        state = api.step(sid, "phase")
    assert state["variables"]
    for name, summary in state["variables"].items():
        detail = api.tensor(sid, name)
        for key, value in summary.items():
            assert detail[key] == value, (lesson, name, key)
        assert "preview" in detail and "histogram" in detail, name
        counts = detail["histogram"]["counts"]
        assert len(counts) == 32 and sum(counts) == math.prod(summary["shape"]), name


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/sessions", b"{not json"),
        ("/api/sessions", b"[1, 2]"),
        ("/api/sessions", b'{"lesson": "autograd", "config": [1]}'),
        ("/api/sessions", b'{"lesson": "autograd", "config": "N=8"}'),
        ("/api/sessions", b'{"lesson": 5, "config": {}}'),
        ("step", b"{oops"),
        ("step", b'"event"'),
        ("seek", b"{oops"),
        ("seek", b"[3]"),
    ],
)
def test_malformed_bodies_get_a_4xx_with_a_sentence(api: Api, path: str, body: bytes) -> None:
    if not path.startswith("/"):
        sid = api.create("autograd")["id"]
        path = f"/api/sessions/{sid}/{path}"
    response = api.http.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip(), detail


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/no_such_resource"),
        ("PUT", "/api/sessions"),
        ("GET", "/api/sessions"),
        ("DELETE", "/api/lessons/autograd"),
        ("POST", "/api/lessons"),
    ],
)
def test_other_client_errors_have_the_error_body(api: Api, method: str, path: str) -> None:
    """Errors: 4xx with {"detail": "<a sentence a user can act on>"}."""
    response = api.http.request(method, path)
    assert 400 <= response.status_code < 500, response.status_code
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip(), detail


def test_config_that_is_not_an_object_is_422(api: Api) -> None:
    for config in ([1], "N=8", 8):
        response = api.http.post("/api/sessions", json={"lesson": "autograd", "config": config})
        assert response.status_code == 422, (config, response.text)
        assert isinstance(response.json()["detail"], str)


def test_devices_are_only_those_that_work_here(api: Api) -> None:
    devices = api.http.get("/api/devices").json()
    ids = [d["id"] for d in devices]
    assert len(ids) == len(set(ids)), ids
    working = {"cpu"} | {f"cuda:{i}" for i in range(torch.cuda.device_count())}
    if torch.cuda.is_available():
        working.add("cuda")
    assert set(ids) <= working, (ids, working)
    for device in devices:
        assert isinstance(device["name"], str) and device["name"].strip(), device


def test_healthz_names_the_dot_version(api: Api) -> None:
    body = api.http.get("/healthz").json()
    assert body["status"] == "ok"
    assert isinstance(body["devices"], list)
    out = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=10)
    version = re.search(r"\d+\.\d+(\.\d+)?", out.stderr + out.stdout)
    assert version is not None
    assert version.group(0) in body["graphviz"], (body["graphviz"], version.group(0))


def test_seek_body_over_the_limit_is_413(api: Api) -> None:
    sid = api.create("autograd")["id"]
    body = json.dumps({"cursor": 2, "pad": " " * (64 * 1024)})
    response = api.http.post(
        f"/api/sessions/{sid}/seek", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.status_code
    assert isinstance(response.json()["detail"], str)
    assert api.get(sid)["cursor"] == 0


def test_chunked_body_over_the_limit_is_413(api: Api) -> None:
    """The body cap holds without a Content-Length too (chunked transfer encoding)."""
    body = json.dumps({"lesson": "autograd", "config": SMALL, "pad": "x" * 70_000}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = api.http.post(
        "/api/sessions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413, response.text
    assert isinstance(response.json()["detail"], str)


def test_scalar_tensor_detail_has_32_bins(
    api: Api, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    trace = traces("autograd")
    state = next(s for s in trace if s["phase"] == "backward")
    sid = api.create("autograd")["id"]
    api.seek(sid, state["cursor"])
    detail = api.tensor(sid, "loss")
    assert detail["shape"] == []
    assert len(detail["histogram"]["counts"]) == 32
    assert len(detail["histogram"]["edges"]) == 33
    assert sum(detail["histogram"]["counts"]) == 1
    assert math.isclose(detail["stats"]["mean"], state["losses"][0])


# =========================================================================== two processes


def test_every_process_gives_the_same_answers(
    server: LiveServer, traces: Callable[[str], list[dict[str, Any]]]
) -> None:
    """A session answers the same whichever worker process serves the request: a run
    stepped over one kept-alive connection equals one stepped over fresh connections,
    and repeated reads over fresh connections agree, graph ids included."""
    fresh_trace = traces("dynamic_net")
    sticky = Api(server.url, fresh=False)
    fresh = Api(server.url)
    try:
        kept = sticky.trace("dynamic_net")
        assert [strip_id(s) for s in kept] == [strip_id(s) for s in fresh_trace]
        sid = fresh.create("dynamic_net")["id"]
        node = next(s for s in fresh_trace if s["event"]["kind"] == "node")
        fresh.seek(sid, node["cursor"])
        states = [fresh.get(sid) for _ in range(10)]
        graphs = [fresh.graph(sid) for _ in range(10)]
        assert all(s == states[0] for s in states)
        assert strip_id(states[0]) == strip_id(node)
        assert all(g == graphs[0] for g in graphs)
        assert graphs[0]["focus"] == node["event"]["node_id"]
        # interleave steps and reads: every answer continues where the last one stopped
        for cursor in range(node["cursor"] + 1, node["cursor"] + 15):
            assert strip_id(fresh.step(sid)) == strip_id(fresh_trace[cursor]), cursor
            assert fresh.get(sid)["cursor"] == cursor
    finally:
        sticky.forget()
        fresh.forget()
        sticky.close()
        fresh.close()


def test_concurrent_steps_of_one_session_each_count(server: LiveServer) -> None:
    """Steps sent at once over separate connections (so to both processes) each move the
    cursor by one event: none is lost or applied twice."""
    from concurrent.futures import ThreadPoolExecutor

    client = Api(server.url)
    try:
        sid = client.create("autograd")["id"]

        def step(_: int) -> int:
            other = Api(server.url)
            try:
                return int(other.step(sid, "event")["cursor"])
            finally:
                other.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            cursors = sorted(pool.map(step, range(8)))
        assert cursors == list(range(1, 9)), cursors
        assert client.get(sid)["cursor"] == 8
    finally:
        client.forget()
        client.close()


def test_sessions_live_in_the_sqlite_store_and_survive_a_restart(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """AGX_DATA_DIR is the folder of the embedded SQLite session store."""
    first = live_server({"WEB_CONCURRENCY": "2"})
    client = Api(first.url)
    try:
        sid = client.create("custom_function")["id"]
        state = client.step(sid, "iteration", 2)
        graph = client.graph(sid)
    finally:
        client.close()
    files = [p for p in (tmp_path / "var").rglob("*") if p.is_file()]
    sqlite = [p for p in files if p.read_bytes()[:16] == b"SQLite format 3\x00"]
    assert sqlite, files
    with sqlite3.connect(sqlite[0]) as db:
        tables = db.execute("select name from sqlite_master where type = 'table'").fetchall()
    assert tables
    first.stop()
    second = live_server({"WEB_CONCURRENCY": "2"})
    client = Api(second.url)
    try:
        assert strip_id(client.get(sid)) == strip_id(state)
        assert client.graph(sid) == graph
    finally:
        client.close()


# =========================================================================== CUDA


@pytest.mark.cuda
@pytest.mark.parametrize(
    "lesson", ["autograd", "custom_function", "nn", "dynamic_net", "inplace", "numpy"]
)
def test_cuda_runs_like_a_plain_run_on_the_gpu(api: Api, lesson: str) -> None:
    """On CUDA the engine runs backward in its own device thread: node events still come,
    in the engine's order, and every state's variables are what the same program has on
    the GPU."""
    ids = {d["id"] for d in api.http.get("/api/devices").json()}
    if not torch.cuda.is_available() or "cuda" not in ids:
        pytest.skip("no CUDA device here")
    trace = api.trace(lesson, device="cuda")
    final = trace[-1]
    assert final["config"]["device"] == "cuda"
    body_line = next(s["line"] for s in trace if s["iteration"] == 0)
    starts = [s for s in trace if s["event"]["kind"] == "line" and s["line"] == body_line]
    found: list[dict[str, Any]] = []
    order, losses, scope = run_lesson_plainly(
        api.lesson(lesson)["source"], final["config"], snapshots=(body_line, found)
    )
    reported = [s["event"]["name"] for s in trace if s["event"]["kind"] == "node"]
    assert reported == order, (reported, order)
    np.testing.assert_allclose(final["losses"], losses, rtol=1e-5)
    for state, facts in zip(starts, found, strict=True):
        assert_variables_match(state["variables"], facts, (lesson, "cuda", state["iteration"]))
    assert_variables_match(final["variables"], scope_facts(scope), (lesson, "cuda", "end"))
    if lesson != "numpy":
        assert any(v["device"].startswith("cuda") for v in final["variables"].values())


# =========================================================================== §6 page


def default_trace(api: Api, lesson: str, events: int) -> list[dict[str, Any]]:
    """The first states of a session with the lesson's defaults (what the page runs)."""
    response = api.http.post("/api/sessions", json={"lesson": lesson, "config": {}})
    assert response.status_code == 201, response.text
    state = response.json()
    api.created.append(state["id"])
    states = [state]
    for _ in range(events):
        states.append(api.step(state["id"], "event"))
    return states


def expect_state(page: Any, state: dict[str, Any]) -> None:
    """The page shows `state`: its next line, and one row per variable with its version."""
    from playwright.sync_api import expect

    current = page.locator('[data-line][aria-current="step"]')
    if state["line"] is not None:
        expect(current).to_have_count(1)
        expect(current).to_have_attribute("data-line", str(state["line"]))
    rows = page.get_by_test_id("variables").locator("[data-name]")
    expect(rows).to_have_count(len(state["variables"]))
    for name, summary in state["variables"].items():
        row = page.get_by_test_id("variables").locator(f'[data-name="{name}"]')
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-version", str(summary["version"]))


@pytest.mark.e2e
@pytest.mark.parametrize("lesson", ["numpy", "custom_function", "static_graph", "dynamic_net"])
def test_code_panel_has_every_source_line(
    page: Any, server: LiveServer, api: Api, lesson: str
) -> None:
    from playwright.sync_api import expect

    source = source_lines(api, lesson)
    page.goto(f"{server.url}/lessons/{lesson}")
    lines = page.locator("[data-line]")
    expect(lines).to_have_count(len(source), timeout=15_000)
    numbers = lines.evaluate_all("els => els.map(e => e.getAttribute('data-line'))")
    assert numbers == [str(i) for i in range(1, len(source) + 1)]
    texts = lines.evaluate_all("els => els.map(e => e.textContent)")
    for number, (text, want) in enumerate(zip(texts, source, strict=True), start=1):
        assert want.strip() in text, (number, want, text)
    expect(page.locator('[data-line][aria-current="step"]')).to_have_count(1)


@pytest.mark.e2e
def test_page_steps_back_and_resets_like_the_api(page: Any, server: LiveServer, api: Api) -> None:
    """Step moves one event, Step back one event back, Reset to cursor 0; the line that
    runs next, the variable rows and versions, and the focused graph node follow."""
    from playwright.sync_api import expect

    trace = default_trace(api, "autograd", 32)
    node = next(s for s in trace if s["event"]["kind"] == "node")
    page.goto(f"{server.url}/lessons/autograd")
    expect(page.locator("[data-line]").first).to_be_attached(timeout=15_000)
    expect_state(page, trace[0])
    step = page.get_by_role("button", name="Step", exact=True)
    for cursor in range(1, node["cursor"] + 1):
        step.click()
        expect_state(page, trace[cursor])
    # The graph shows the node of the current (node) event with class "focus".
    sid = trace[0]["id"]
    api.seek(sid, node["cursor"])
    graph_json = api.graph(sid)
    focus = graph_json["focus"]
    assert focus == node["event"]["node_id"]
    graph = page.get_by_test_id("graph")
    expect(graph.locator(f'svg [id="{focus}"]')).to_have_class(re.compile(r"(^|\s)focus(\s|$)"))
    focused = graph.locator("svg .focus").evaluate_all("els => els.map(e => e.id)")
    node_ids = {n["id"] for n in graph_json["nodes"]}
    assert [i for i in focused if i in node_ids] == [focus], focused
    inline = set(graph.locator("svg g[id]").evaluate_all("els => els.map(e => e.id)"))
    assert node_ids <= inline, sorted(node_ids - inline)
    back = page.get_by_role("button", name="Step back", exact=True)
    for cursor in range(node["cursor"] - 1, node["cursor"] - 6, -1):
        back.click()
        expect_state(page, trace[cursor])
    page.get_by_role("button", name="Reset", exact=True).click()
    expect_state(page, trace[0])


@pytest.mark.e2e
def test_page_buttons_step_like_the_api(page: Any, server: LiveServer, api: Api) -> None:
    """Step over line, Next phase, Next iteration and Run to end do what the matching
    step kinds of the API do, from the same cursor."""
    from playwright.sync_api import expect

    response = api.http.post("/api/sessions", json={"lesson": "autograd", "config": {}})
    sid = response.json()["id"]
    api.created.append(sid)
    page.goto(f"{server.url}/lessons/autograd")
    expect(page.locator("[data-line]").first).to_be_attached(timeout=15_000)
    for button, by in (
        ("Next iteration", "iteration"),
        ("Step over line", "line"),
        ("Step over line", "line"),
        ("Next phase", "phase"),
        ("Next phase", "phase"),
        ("Step", "event"),
        ("Next phase", "phase"),
        ("Next iteration", "iteration"),
    ):
        want = api.step(sid, by)
        page.get_by_role("button", name=button, exact=True).click()
        expect_state(page, want)
    final = api.step(sid, "end")
    page.get_by_role("button", name="Run to end", exact=True).click()
    expect_state(page, final)
    expect(page.get_by_test_id("losses").locator("svg, canvas").first).to_be_attached()


@pytest.mark.e2e
def test_page_works_from_the_keyboard(page: Any, server: LiveServer, api: Api) -> None:
    """Tab reaches the stepping buttons, and Space or Enter on one presses it."""
    from playwright.sync_api import expect

    trace = default_trace(api, "autograd", 0)
    sid = trace[0]["id"]
    page.goto(f"{server.url}/lessons/autograd")
    expect(page.locator("[data-line]").first).to_be_attached(timeout=15_000)
    expect_state(page, trace[0])

    def tab_to(name: str) -> None:
        button = page.get_by_role("button", name=name, exact=True)
        # Tab forwards to a button after the focused element, Shift+Tab back to one before.
        after = button.evaluate(
            "el => !(el.compareDocumentPosition(document.activeElement)"
            " & Node.DOCUMENT_POSITION_FOLLOWING)"
        )
        key = "Tab" if after else "Shift+Tab"
        for _ in range(80):
            if button.evaluate("el => el === document.activeElement"):
                return
            page.keyboard.press(key)
        raise AssertionError(f"{key} never reached the {name!r} button")

    tab_to("Next iteration")
    page.keyboard.press("Space")
    expect_state(page, api.step(sid, "iteration"))
    tab_to("Step over line")
    page.keyboard.press("Enter")
    expect_state(page, api.step(sid, "line"))
    page.keyboard.press("Space")
    expect_state(page, api.step(sid, "line"))
    tab_to("Step back")
    page.keyboard.press("Enter")
    here = api.get(sid)["cursor"]
    expect_state(page, api.seek(sid, here - 1))
    for name in BUTTONS:
        button = page.get_by_role("button", name=name, exact=True)
        assert button.evaluate("el => el.tabIndex") >= 0, name
