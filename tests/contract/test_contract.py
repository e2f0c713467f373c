"""Independent conformance checks of DESIGN.md §3–§6, written from the contract alone.

Every expectation here is derived from DESIGN.md (lessons, config, seeding, stepping model,
REST API shapes and errors, browser hooks); expected numbers are recomputed with plain
torch / NumPy from the documented seeding rules.
"""

from __future__ import annotations

import json
import math
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import LiveServer

SMALL: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}

LESSONS = (
    "numpy",
    "tensors",
    "autograd",
    "custom_function",
    "static_graph",
    "nn",
    "optim",
    "custom_module",
    "dynamic_net",
    "inplace",
)
BASE: dict[str, Any] = {
    "N": 64,
    "D_in": 1000,
    "H": 100,
    "D_out": 10,
    "learning_rate": 1e-6,
    "iterations": 10,
    "device": "cpu",
    "seed": 0,
}
DIFFERS: dict[str, dict[str, Any]] = {
    "nn": {"learning_rate": 1e-4},
    "optim": {"learning_rate": 1e-4},
    "custom_module": {"learning_rate": 1e-4, "iterations": 500},
    "dynamic_net": {"learning_rate": 1e-4, "momentum": 0.9, "iterations": 500},
}
#: Lessons whose program certainly uses `.grad` (autograd backward into leaves).
WITH_GRAD = ("autograd", "custom_function", "nn", "optim", "custom_module", "dynamic_net")
#: Lessons whose program certainly does not (backward by hand).
WITHOUT_GRAD = ("tensors",)
HAND_WRITTEN = ("tensors", "autograd", "custom_function", "static_graph")
MODULE_LESSONS = ("nn", "optim", "custom_module", "dynamic_net")

STATE_KEYS = {
    "id",
    "lesson",
    "config",
    "cursor",
    "done",
    "iteration",
    "phase",
    "line",
    "event",
    "losses",
    "variables",
    "optimizer",
    "error",
}
PHASES = {"setup", "forward", "loss", "backward", "update", "zero_grad", "done"}
EVENT_KINDS = {"line", "op", "node", "end"}
SUMMARY_KEYS = {
    "shape",
    "dtype",
    "device",
    "requires_grad",
    "is_leaf",
    "grad_fn",
    "version",
    "stats",
    "grad",
}
STATS_KEYS = {"min", "max", "mean", "std", "norm"}
NODE_KEYS = {"id", "kind", "name", "shape", "saved", "executed"}
SAVED_KEYS = {"name", "shape", "version_saved", "version_now", "stale"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("contract")
    live = LiveServer(env={"AGX_DATA_DIR": str(folder / "var")}, log_path=folder / "server.log")
    live.start()
    yield live
    live.stop()


class Api:
    def __init__(self, url: str, *, fresh: bool = False) -> None:
        """`fresh`: a new connection for every request (no keep-alive)."""
        self.created: list[str] = []
        self.http = httpx.Client(
            base_url=url,
            timeout=60.0,
            limits=httpx.Limits(max_keepalive_connections=0) if fresh else httpx.Limits(),
            event_hooks={"response": [self._track]},
        )

    def _track(self, response: httpx.Response) -> None:
        request = response.request
        if (
            request.method == "POST"
            and request.url.path == "/api/sessions"
            and response.status_code == 201
        ):
            response.read()
            self.created.append(response.json()["id"])

    def forget_sessions(self) -> None:
        """Delete the sessions a test created (the server caps live sessions)."""
        created, self.created = self.created, []
        for sid in created:
            self.http.delete(f"/api/sessions/{sid}")

    def create(self, lesson: str = "autograd", **config: Any) -> dict[str, Any]:
        response = self.http.post(
            "/api/sessions", json={"lesson": lesson, "config": {**SMALL, **config}}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def step(self, sid: str, by: str = "event", count: int = 1) -> dict[str, Any]:
        response = self.http.post(f"/api/sessions/{sid}/step", json={"by": by, "count": count})
        assert response.status_code == 200, response.text
        return response.json()

    def seek(self, sid: str, cursor: int) -> dict[str, Any]:
        response = self.http.post(f"/api/sessions/{sid}/seek", json={"cursor": cursor})
        assert response.status_code == 200, response.text
        return response.json()

    def graph(self, sid: str) -> dict[str, Any]:
        response = self.http.get(f"/api/sessions/{sid}/graph")
        assert response.status_code == 200, response.text
        return response.json()

    def tensor(self, sid: str, name: str) -> dict[str, Any]:
        response = self.http.get(f"/api/sessions/{sid}/tensors/{name}")
        assert response.status_code == 200, response.text
        return response.json()

    def run(self, lesson: str, **config: Any) -> dict[str, Any]:
        state = self.create(lesson, **config)
        return self.step(state["id"], "end")


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.http.close()


@pytest.fixture(autouse=True)
def _cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "api" in request.fixturenames:
        request.getfixturevalue("api").forget_sessions()


@pytest.fixture(scope="module")
def trace(api: Api) -> list[dict[str, Any]]:
    """Every state of an autograd run (SMALL sizes), stepped one event at a time."""
    state = api.create("autograd")
    states = [state]
    while not state["done"]:
        state = api.step(state["id"], "event")
        states.append(state)
        assert len(states) < 5000, "the run never ended"
    return states


def strip_id(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "id"}


# --------------------------------------------------------------------------- shape helpers


def check_summary(summary: Any, where: str) -> None:
    assert isinstance(summary, dict), where
    assert summary.keys() >= SUMMARY_KEYS, (where, summary.keys())
    assert isinstance(summary["shape"], list), where
    assert all(isinstance(d, int) and not isinstance(d, bool) for d in summary["shape"]), where
    assert isinstance(summary["dtype"], str), where
    assert isinstance(summary["device"], str), where
    assert isinstance(summary["requires_grad"], bool), where
    assert isinstance(summary["is_leaf"], bool), where
    assert summary["grad_fn"] is None or isinstance(summary["grad_fn"], str), where
    assert isinstance(summary["version"], int) and not isinstance(summary["version"], bool)
    assert isinstance(summary["stats"], dict), where
    assert summary["stats"].keys() >= STATS_KEYS, (where, summary["stats"])
    for key in STATS_KEYS:
        value = summary["stats"][key]
        assert value is None or isinstance(value, int | float), (where, key, value)
    if summary["grad"] is not None:
        check_summary(summary["grad"], f"{where}.grad")


def check_state(state: Any, lesson: str | None = None) -> None:
    assert isinstance(state, dict)
    assert state.keys() >= STATE_KEYS, STATE_KEYS - state.keys()
    assert isinstance(state["id"], str) and state["id"]
    if lesson is not None:
        assert state["lesson"] == lesson
    assert isinstance(state["config"], dict)
    assert isinstance(state["cursor"], int) and state["cursor"] >= 0
    assert isinstance(state["done"], bool)
    assert isinstance(state["iteration"], int) and state["iteration"] >= -1
    assert state["phase"] in PHASES, state["phase"]
    assert state["line"] is None or (isinstance(state["line"], int) and state["line"] >= 1)
    event = state["event"]
    assert isinstance(event, dict)
    assert {"kind", "line", "name", "node_id"} <= event.keys(), event
    if state["cursor"] > 0:
        assert event["kind"] in EVENT_KINDS, event
    else:
        assert event["kind"] is None or event["kind"] in EVENT_KINDS, event
    assert event["line"] is None or isinstance(event["line"], int)
    assert event["name"] is None or isinstance(event["name"], str)
    assert event["node_id"] is None or isinstance(event["node_id"], str)
    assert isinstance(state["losses"], list)
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in state["losses"])
    assert isinstance(state["variables"], dict)
    for name, summary in state["variables"].items():
        assert isinstance(name, str)
        check_summary(summary, name)
    optimizer = state["optimizer"]
    if optimizer is not None:
        assert isinstance(optimizer, dict) and {"type", "state"} <= optimizer.keys()
        assert isinstance(optimizer["type"], str)
        assert isinstance(optimizer["state"], dict)
        for pname, pstate in optimizer["state"].items():
            assert isinstance(pstate, dict), pname
            # DESIGN.md shows Adam's entry; torch's SGD keeps no "step" in its state.
            if optimizer["type"] == "Adam" or "step" in pstate:
                assert isinstance(pstate.get("step"), int), (pname, pstate)
            for key, buffer in pstate.items():
                if key != "step":
                    check_summary(buffer, f"optimizer.{pname}.{key}")
    error = state["error"]
    if error is not None:
        assert isinstance(error, dict) and {"type", "message"} <= error.keys()
        assert isinstance(error["type"], str) and isinstance(error["message"], str)


def check_graph(graph: Any) -> None:
    assert isinstance(graph, dict)
    assert {"kind", "nodes", "edges", "focus"} <= graph.keys()
    assert graph["kind"] in {"autograd", "static", "none"}
    ids = []
    for node in graph["nodes"]:
        assert node.keys() >= NODE_KEYS, node
        assert isinstance(node["id"], str)
        assert node["kind"] in {"function", "leaf", "saved", "output"}, node
        assert isinstance(node["name"], str)
        assert node["shape"] is None or all(isinstance(d, int) for d in node["shape"])
        assert isinstance(node["executed"], bool)
        assert isinstance(node["saved"], list)
        for saved in node["saved"]:
            assert saved.keys() >= SAVED_KEYS, saved
            assert isinstance(saved["name"], str)
            assert all(isinstance(d, int) for d in saved["shape"])
            assert isinstance(saved["version_saved"], int)
            assert isinstance(saved["version_now"], int)
            assert isinstance(saved["stale"], bool)
        ids.append(node["id"])
    assert len(ids) == len(set(ids)), "node ids are not unique"
    known = set(ids)
    for edge in graph["edges"]:
        assert {"source", "target"} <= edge.keys()
        assert edge["source"] in known, edge
        assert edge["target"] in known, edge
    assert graph["focus"] is None or graph["focus"] in known


def first_code_line_after(lines: list[str], index: int) -> int:
    for j in range(index + 1, len(lines)):
        text = lines[j].strip()
        if text and not text.startswith("#"):
            return j
    raise AssertionError("no line after the loop header")


# --------------------------------------------------------------------------- plain programs


def plain_hand_written(cfg: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[float]]:
    torch.manual_seed(cfg["seed"])
    x = torch.randn(cfg["N"], cfg["D_in"])
    y = torch.randn(cfg["N"], cfg["D_out"])
    w1 = torch.randn(cfg["D_in"], cfg["H"])
    w2 = torch.randn(cfg["H"], cfg["D_out"])
    initial = {"x": x.clone(), "y": y.clone(), "w1": w1.clone(), "w2": w2.clone()}
    losses = []
    lr = cfg["learning_rate"]
    for _ in range(cfg["iterations"]):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return initial, losses


def plain_numpy(cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], list[float]]:
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["N"], cfg["D_in"]))
    y = rng.standard_normal((cfg["N"], cfg["D_out"]))
    w1 = rng.standard_normal((cfg["D_in"], cfg["H"]))
    w2 = rng.standard_normal((cfg["H"], cfg["D_out"]))
    initial = {"x": x.copy(), "y": y.copy(), "w1": w1.copy(), "w2": w2.copy()}
    losses = []
    lr = cfg["learning_rate"]
    for _ in range(cfg["iterations"]):
        h = x.dot(w1)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)
        losses.append(float(np.square(y_pred - y).sum()))
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_h[h < 0] = 0
        grad_w1 = x.T.dot(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return initial, losses


class TwoLayerNet(nn.Module):
    def __init__(self, d_in: int, h: int, d_out: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, h)
        self.linear2 = nn.Linear(h, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.linear1(x).clamp(min=0))


class DynamicNet(nn.Module):
    def __init__(self, d_in: int, h: int, d_out: int, seed: int) -> None:
        super().__init__()
        self.input_linear = nn.Linear(d_in, h)
        self.middle_linear = nn.Linear(h, h)
        self.output_linear = nn.Linear(h, d_out)
        self.rng = random.Random(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_relu = self.input_linear(x).clamp(min=0)
        for _ in range(self.rng.randint(0, 3)):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        return self.output_linear(h_relu)


def plain_module(
    lesson: str, cfg: dict[str, Any], steps: int | None = None
) -> tuple[list[torch.Tensor], list[float], nn.Module, torch.optim.Optimizer | None]:
    torch.manual_seed(cfg["seed"])
    x = torch.randn(cfg["N"], cfg["D_in"])
    y = torch.randn(cfg["N"], cfg["D_out"])
    d_in, h, d_out = cfg["D_in"], cfg["H"], cfg["D_out"]
    model: nn.Module
    if lesson in ("nn", "optim"):
        model = nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, d_out))
    elif lesson == "custom_module":
        model = TwoLayerNet(d_in, h, d_out)
    else:
        model = DynamicNet(d_in, h, d_out, cfg["seed"])
    initial = [p.detach().clone() for p in model.parameters()]
    loss_fn = nn.MSELoss(reduction="sum")
    lr = cfg["learning_rate"]
    optimizer: torch.optim.Optimizer | None = None
    if lesson == "optim":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    elif lesson == "custom_module":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    elif lesson == "dynamic_net":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg["momentum"])
    losses = []
    for _ in range(cfg["iterations"] if steps is None else steps):
        loss = loss_fn(model(x), y)
        losses.append(loss.item())
        if optimizer is None:
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for param in model.parameters():
                    param -= lr * param.grad
        else:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return initial, losses, model, optimizer


def assert_stats_match(stats: dict[str, Any], expected: np.ndarray, where: str) -> None:
    values = np.asarray(expected, dtype=np.float64)
    for key, want in (
        ("min", values.min()),
        ("max", values.max()),
        ("mean", values.mean()),
        ("norm", np.sqrt((values**2).sum())),
    ):
        assert math.isclose(stats[key], want, rel_tol=1e-4, abs_tol=1e-5), (where, key)
    # DESIGN.md does not say whether `std` is the sample (torch) or population (NumPy) one.
    assert any(
        math.isclose(stats["std"], values.std(ddof=ddof), rel_tol=1e-4, abs_tol=1e-5)
        for ddof in (0, 1)
    ), (where, "std", stats["std"])


def assert_preview_match(preview: Any, expected: np.ndarray, where: str) -> None:
    want = np.asarray(expected, dtype=np.float64)
    want = want[:8] if want.ndim == 1 else want[:8, :8]
    got = np.asarray(preview, dtype=np.float64)
    assert got.shape == want.shape, (where, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=where)


# =========================================================================== §3 lessons


def test_lesson_list_has_exactly_the_documented_ids(api: Api) -> None:
    response = api.http.get("/api/lessons")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    lessons = response.json()
    assert isinstance(lessons, list)
    assert sorted(lesson["id"] for lesson in lessons) == sorted(LESSONS)
    for lesson in lessons:
        assert {"id", "title", "summary", "defaults"} <= lesson.keys()
        assert isinstance(lesson["title"], str) and lesson["title"]
        assert isinstance(lesson["summary"], str) and lesson["summary"]
        assert isinstance(lesson["defaults"], dict)


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_defaults_are_the_documented_ones(api: Api, lesson: str) -> None:
    listed = {item["id"]: item for item in api.http.get("/api/lessons").json()}
    defaults = listed[lesson]["defaults"]
    expected = {**BASE, **DIFFERS.get(lesson, {})}
    for key, value in expected.items():
        assert key in defaults, (lesson, key)
        assert defaults[key] == value, (lesson, key, defaults[key])
        assert type(defaults[key]) is type(value), (lesson, key, defaults[key])
    extra = set(defaults) - set(expected)
    if lesson in WITH_GRAD:
        assert defaults.get("zero_grad") is True, (lesson, defaults)
    if lesson in WITHOUT_GRAD:
        assert "zero_grad" not in defaults, (lesson, defaults)
    if "zero_grad" in defaults:
        assert defaults["zero_grad"] is True
    if lesson != "dynamic_net":
        assert "momentum" not in defaults, (lesson, defaults)
    # Only the documented config fields exist.
    assert extra <= {"zero_grad"}, (lesson, extra)


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_detail_has_source_and_bilingual_notes(api: Api, lesson: str) -> None:
    response = api.http.get(f"/api/lessons/{lesson}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert {"id", "title", "summary", "defaults", "source", "notes"} <= detail.keys()
    assert detail["id"] == lesson
    listed = {item["id"]: item for item in api.http.get("/api/lessons").json()}
    assert detail["defaults"] == listed[lesson]["defaults"]
    assert detail["title"] == listed[lesson]["title"]
    assert isinstance(detail["source"], str) and detail["source"].strip()
    n_lines = len(detail["source"].splitlines())
    assert isinstance(detail["notes"], dict)
    for line, note in detail["notes"].items():
        assert line.isdigit() and 1 <= int(line) <= n_lines, line
        assert isinstance(note.get("en"), str) and isinstance(note.get("zh"), str)


@pytest.mark.parametrize("lesson", LESSONS)
def test_created_session_resolves_config_with_defaults(api: Api, lesson: str) -> None:
    defaults = api.http.get(f"/api/lessons/{lesson}").json()["defaults"]
    response = api.http.post("/api/sessions", json={"lesson": lesson, "config": {"N": 8}})
    assert response.status_code == 201, response.text
    state = response.json()
    check_state(state, lesson)
    assert state["config"] == {**defaults, "N": 8}
    assert state["cursor"] == 0
    assert state["done"] is False
    assert state["iteration"] == -1
    assert state["losses"] == []
    assert api.http.delete(f"/api/sessions/{state['id']}").status_code == 204


def test_session_with_empty_body_config_uses_defaults(api: Api) -> None:
    response = api.http.post("/api/sessions", json={"lesson": "tensors", "config": {}})
    assert response.status_code == 201, response.text
    defaults = api.http.get("/api/lessons/tensors").json()["defaults"]
    assert response.json()["config"] == defaults


@pytest.mark.parametrize("lesson", HAND_WRITTEN)
def test_seeding_of_hand_written_torch_lessons(api: Api, lesson: str) -> None:
    cfg = {**BASE, **SMALL, "seed": 1234}
    state = api.step(api.create(lesson, seed=1234)["id"], "iteration")
    assert state["iteration"] == 0
    initial, _ = plain_hand_written(cfg)
    for name, tensor in initial.items():
        assert name in state["variables"], (lesson, name, sorted(state["variables"]))
        summary = state["variables"][name]
        assert summary["shape"] == list(tensor.shape)
        assert "float32" in summary["dtype"]
        assert summary["device"] == "cpu"
        detail = api.tensor(state["id"], name)
        assert_stats_match(detail["stats"], tensor.numpy(), f"{lesson}.{name}")
        assert_preview_match(detail["preview"], tensor.numpy(), f"{lesson}.{name}")


def test_seeding_of_numpy_lesson(api: Api) -> None:
    cfg = {**BASE, **SMALL, "seed": 7}
    state = api.step(api.create("numpy", seed=7)["id"], "iteration")
    assert state["iteration"] == 0
    initial, _ = plain_numpy(cfg)
    for name, array in initial.items():
        summary = state["variables"][name]
        assert summary["shape"] == list(array.shape)
        assert "float64" in summary["dtype"]
        assert summary["device"] == "cpu"
        assert summary["requires_grad"] is False
        assert summary["version"] == 0
        detail = api.tensor(state["id"], name)
        assert_stats_match(detail["stats"], array, f"numpy.{name}")
        assert_preview_match(detail["preview"], array, f"numpy.{name}")


@pytest.mark.parametrize("lesson", MODULE_LESSONS)
def test_seeding_of_module_lessons(api: Api, lesson: str) -> None:
    cfg = {**BASE, **DIFFERS.get(lesson, {}), **SMALL, "seed": 3}
    state = api.step(api.create(lesson, seed=3)["id"], "iteration")
    assert state["iteration"] == 0
    params, _, _, _ = plain_module(lesson, cfg, steps=0)
    model_vars = {k: v for k, v in state["variables"].items() if k.startswith("model.")}
    assert len(model_vars) == len(params), sorted(state["variables"])
    remaining = dict(model_vars)
    for tensor in params:
        match = None
        for name, summary in remaining.items():
            if summary["shape"] != list(tensor.shape):
                continue
            detail = api.tensor(state["id"], name)
            try:
                assert_preview_match(detail["preview"], tensor.numpy(), name)
            except AssertionError:
                continue
            assert_stats_match(detail["stats"], tensor.numpy(), name)
            assert summary["requires_grad"] is True and summary["is_leaf"] is True
            match = name
            break
        assert match is not None, (lesson, list(tensor.shape), sorted(remaining))
        del remaining[match]
    for name in ("x", "y"):
        assert name in state["variables"], (lesson, name)
    torch.manual_seed(3)
    x = torch.randn(8, 16)
    assert_preview_match(api.tensor(state["id"], "x")["preview"], x.numpy(), "x")


def test_sequential_parameters_are_named_model_dot_param(api: Api) -> None:
    state = api.step(api.create("nn")["id"], "iteration")
    names = {k for k in state["variables"] if k.startswith("model.")}
    assert names == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    assert state["variables"]["model.0.weight"]["shape"] == [SMALL["H"], SMALL["D_in"]]


def test_hand_written_lessons_share_one_loss_sequence(api: Api) -> None:
    cfg = {**BASE, **SMALL, "learning_rate": 1e-4, "seed": 5}
    _, expected = plain_hand_written(cfg)
    runs = {}
    for lesson in HAND_WRITTEN:
        final = api.run(lesson, learning_rate=1e-4, seed=5)
        assert final["done"] is True and final["error"] is None, (lesson, final["error"])
        runs[lesson] = final["losses"]
        assert len(final["losses"]) == SMALL["iterations"], lesson
        np.testing.assert_allclose(final["losses"], expected, rtol=1e-4, err_msg=lesson)
    first = runs["tensors"]
    for lesson, losses in runs.items():
        np.testing.assert_allclose(losses, first, rtol=1e-4, err_msg=lesson)


def test_numpy_loss_sequence_is_the_sum_of_squared_errors(api: Api) -> None:
    cfg = {**BASE, **SMALL, "learning_rate": 1e-4, "seed": 2}
    _, expected = plain_numpy(cfg)
    final = api.run("numpy", learning_rate=1e-4, seed=2)
    assert final["done"] is True
    np.testing.assert_allclose(final["losses"], expected, rtol=1e-9)


@pytest.mark.parametrize("lesson", MODULE_LESSONS)
def test_module_lesson_loss_sequences(api: Api, lesson: str) -> None:
    cfg = {**BASE, **DIFFERS.get(lesson, {}), **SMALL, "seed": 11}
    _, expected, _, _ = plain_module(lesson, cfg)
    final = api.run(lesson, seed=11)
    assert final["done"] is True and final["error"] is None, final["error"]
    assert len(final["losses"]) == SMALL["iterations"]
    np.testing.assert_allclose(final["losses"], expected, rtol=1e-5, err_msg=lesson)


def test_zero_grad_false_accumulates_gradients(api: Api) -> None:
    """With zero_grad=false the .grad of a leaf keeps growing across iterations."""

    def grad_after_two(zero_grad: bool) -> dict[str, Any]:
        sid = api.create("autograd", zero_grad=zero_grad, learning_rate=1e-9)["id"]
        state = api.step(sid, "iteration", 2)  # start of iteration 1
        assert state["iteration"] == 1
        while state["phase"] != "update":  # iteration 1's backward has run
            state = api.step(sid, "phase")
            assert not state["done"]
        grad = state["variables"]["w2"]["grad"]
        assert grad is not None
        return grad

    accumulated = grad_after_two(False)
    zeroed = grad_after_two(True)
    # Two nearly identical gradients summed: the norm about doubles.
    ratio = accumulated["stats"]["norm"] / zeroed["stats"]["norm"]
    assert 1.5 < ratio < 2.5, ratio


def test_dynamic_net_takes_momentum_and_others_do_not(api: Api) -> None:
    ok = api.http.post(
        "/api/sessions", json={"lesson": "dynamic_net", "config": {**SMALL, "momentum": 0.5}}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["config"]["momentum"] == 0.5
    for lesson in LESSONS:
        if lesson == "dynamic_net":
            continue
        bad = api.http.post(
            "/api/sessions", json={"lesson": lesson, "config": {**SMALL, "momentum": 0.5}}
        )
        assert bad.status_code == 422, (lesson, bad.text)
        assert "momentum" in bad.json()["detail"]


def test_zero_grad_rejected_where_the_lesson_has_no_grad(api: Api) -> None:
    for lesson in WITHOUT_GRAD:
        bad = api.http.post(
            "/api/sessions", json={"lesson": lesson, "config": {**SMALL, "zero_grad": False}}
        )
        assert bad.status_code == 422, (lesson, bad.text)
        assert "zero_grad" in bad.json()["detail"]
    for lesson in WITH_GRAD:
        ok = api.http.post(
            "/api/sessions", json={"lesson": lesson, "config": {**SMALL, "zero_grad": False}}
        )
        assert ok.status_code == 201, (lesson, ok.text)
        assert ok.json()["config"]["zero_grad"] is False


def test_same_config_same_numbers(api: Api) -> None:
    a = api.run("dynamic_net", seed=9)
    b = api.run("dynamic_net", seed=9)
    assert a["losses"] == b["losses"]
    assert strip_id(a) == strip_id(b)


# =========================================================================== §4 stepping


def test_trace_shapes_and_cursor_counts_events(trace: list[dict[str, Any]]) -> None:
    for index, state in enumerate(trace):
        check_state(state, "autograd")
        assert state["cursor"] == index
        assert state["done"] is (index == len(trace) - 1)
    kinds = {state["event"]["kind"] for state in trace[1:]}
    assert {"line", "op", "node", "end"} <= kinds, kinds
    assert trace[-1]["event"]["kind"] == "end"
    assert trace[-1]["phase"] == "done"
    assert all(s["event"]["kind"] != "end" for s in trace[:-1])


def test_trace_event_details(trace: list[dict[str, Any]], api: Api) -> None:
    source = api.http.get("/api/lessons/autograd").json()["source"].splitlines()
    for state in trace[1:]:
        event = state["event"]
        if event["kind"] == "line":
            assert event["line"] is not None and 1 <= event["line"] <= len(source)
            assert state["line"] == event["line"]
        if event["kind"] == "op":
            assert event["name"] and re.search(r"(aten::|torch\.|Tensor\.)\w+", event["name"])
        if event["kind"] == "node":
            assert event["name"], event
            assert re.match(r"^[\w:]+$", event["name"]), event["name"]
    node_names = [s["event"]["name"] for s in trace if s["event"]["kind"] == "node"]
    assert any("MmBackward" in n for n in node_names), node_names
    assert any(n.endswith("AccumulateGrad") for n in node_names), node_names


def test_losses_one_per_finished_iteration(trace: list[dict[str, Any]]) -> None:
    final = trace[-1]
    assert len(final["losses"]) == SMALL["iterations"]
    for state in trace:
        assert len(state["losses"]) in (state["iteration"], state["iteration"] + 1) or (
            state["iteration"] == -1 and state["losses"] == []
        ), (state["cursor"], state["iteration"], state["losses"])
        if state["iteration"] > 0:
            assert len(state["losses"]) >= state["iteration"]
    starts = [s for s in trace if s["event"]["kind"] == "line"]
    for state in starts:
        if state["iteration"] >= 0:
            assert len(state["losses"]) <= state["iteration"] + 1
    # losses never shrink while stepping forward
    lengths = [len(s["losses"]) for s in trace]
    assert lengths == sorted(lengths)


def test_iteration_from_fresh_stops_at_start_of_iteration_zero(
    api: Api, trace: list[dict[str, Any]]
) -> None:
    source = api.http.get("/api/lessons/autograd").json()["source"].splitlines()
    sid = api.create("autograd")["id"]
    state = api.step(sid, "iteration")
    assert state["iteration"] == 0
    assert state["event"]["kind"] == "line"
    assert state["losses"] == []
    assert state["phase"] != "setup"
    first = next(s for s in trace if s["iteration"] == 0)
    assert state["cursor"] == first["cursor"]
    assert strip_id(state) == strip_id(first)
    # The line is the first line of the training loop's body.
    headers = [i for i, text in enumerate(source) if re.match(r"\s*for\s+\w+\s+in\s+", text)]
    loop = max(i for i in headers if i < state["line"] - 1)
    assert first_code_line_after(source, loop) == state["line"] - 1, state["line"]
    second = api.step(sid, "iteration")
    assert second["iteration"] == 1
    assert second["line"] == state["line"]
    assert len(second["losses"]) == 1


def test_line_step_lands_on_next_line_event(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    state = api.seek(sid, 0)
    for _ in range(40):
        if state["done"]:
            break
        nxt = api.step(sid, "line")
        want = next(
            (s for s in trace[state["cursor"] + 1 :] if s["event"]["kind"] in ("line", "end")),
            trace[-1],
        )
        assert nxt["cursor"] == want["cursor"], (state["cursor"], nxt["cursor"])
        assert nxt["event"]["kind"] in ("line", "end")
        state = nxt


def test_phase_step_lands_where_the_phase_differs(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    state = api.seek(sid, 0)
    phases_seen = set()
    for _ in range(60):
        if state["done"]:
            break
        nxt = api.step(sid, "phase")
        want = next(
            (
                s
                for s in trace[state["cursor"] + 1 :]
                if (s["event"]["kind"] == "line" and s["phase"] != state["phase"])
                or s["event"]["kind"] == "end"
            ),
            trace[-1],
        )
        assert nxt["cursor"] == want["cursor"], (state["phase"], nxt["phase"], nxt["cursor"])
        assert nxt["phase"] != state["phase"] or nxt["done"]
        phases_seen.add(nxt["phase"])
        state = nxt
    assert state["done"]
    assert {"forward", "loss", "backward", "update"} <= phases_seen, phases_seen


def test_end_and_step_past_end(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    final = api.step(sid, "end")
    assert strip_id(final) == strip_id(trace[-1])
    for by in ("event", "line", "phase", "iteration", "end"):
        again = api.step(sid, by)
        assert again["done"] is True
        assert strip_id(again) == strip_id(final), by
    big = api.step(api.create("autograd")["id"], "event", 1_000_000)
    assert strip_id(big) == strip_id(final)


def test_event_count_moves_cursor_by_count(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    state = api.step(sid, "event", 7)
    assert strip_id(state) == strip_id(trace[7])
    response = api.http.post(f"/api/sessions/{sid}/step", json={"by": "event"})
    assert response.status_code == 200, response.text
    assert response.json()["cursor"] == 8  # count defaults to 1


def test_seek_backward_and_forward_give_identical_states(
    api: Api, trace: list[dict[str, Any]]
) -> None:
    sid = api.create("autograd")["id"]
    api.step(sid, "end")
    total = len(trace) - 1
    picks = [total, total - 1, total // 2, 3, 0, total // 3, (2 * total) // 3, 1, total]
    for cursor in picks:
        state = api.seek(sid, cursor)
        assert strip_id(state) == strip_id(trace[cursor]), cursor
    past = api.seek(sid, total + 1000)
    assert strip_id(past) == strip_id(trace[-1])
    got = api.http.get(f"/api/sessions/{sid}")
    assert got.status_code == 200
    assert strip_id(got.json()) == strip_id(trace[-1])


def test_seek_reproduces_graph(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    cursor = next(s["cursor"] for s in trace if s["phase"] == "backward") + 3
    api.seek(sid, cursor)
    graph_a = api.graph(sid)
    api.seek(sid, len(trace) - 1)
    api.seek(sid, 0)
    api.seek(sid, cursor)
    graph_b = api.graph(sid)
    assert graph_a == graph_b


def test_variables_and_grad_after_backward(api: Api, trace: list[dict[str, Any]]) -> None:
    start_update = next(s for s in trace if s["phase"] == "update")
    w1 = start_update["variables"]["w1"]
    assert w1["requires_grad"] is True and w1["is_leaf"] is True and w1["grad_fn"] is None
    assert w1["grad"] is not None and w1["grad"]["shape"] == w1["shape"]
    loss = start_update["variables"].get("loss")
    if loss is not None and isinstance(loss, dict) and loss["shape"] == []:
        assert loss["grad_fn"] is not None and loss["is_leaf"] is False
    # In-place updates bump the version counter of w1.
    start_iter1 = next(s for s in trace if s["iteration"] == 1)
    first_iter0 = next(s for s in trace if s["iteration"] == 0)
    assert start_iter1["variables"]["w1"]["version"] > first_iter0["variables"]["w1"]["version"]
    assert all(s["optimizer"] is None for s in trace)
    assert all(s["error"] is None for s in trace)


def test_optimizer_state_for_adam(api: Api) -> None:
    cfg = {**BASE, **DIFFERS["optim"], **SMALL, "seed": 4}
    sid = api.create("optim", seed=4)["id"]
    state = api.step(sid, "iteration", 2)  # start of iteration 1: one Adam step done
    assert state["iteration"] == 1
    optimizer = state["optimizer"]
    assert optimizer is not None and optimizer["type"] == "Adam"
    names = {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    assert set(optimizer["state"]) == names
    _, _, model, plain_opt = plain_module("optim", cfg, steps=1)
    assert plain_opt is not None
    for name, param in zip(sorted(names), sorted(model.named_parameters()), strict=True):
        assert name == f"model.{param[0]}"
        entry = optimizer["state"][name]
        assert entry["step"] == 1
        assert {"exp_avg", "exp_avg_sq"} <= entry.keys()
        want = plain_opt.state[param[1]]
        for buffer in ("exp_avg", "exp_avg_sq"):
            assert entry[buffer]["shape"] == list(param[1].shape)
            assert_stats_match(entry[buffer]["stats"], want[buffer].numpy(), f"{name}.{buffer}")


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_runs_to_end_with_valid_states(api: Api, lesson: str) -> None:
    sid = api.create(lesson)["id"]
    state = api.step(sid, "line", 5)
    check_state(state, lesson)
    check_graph(api.graph(sid))
    state = api.step(sid, "end")
    check_state(state, lesson)
    assert state["done"] is True and state["event"]["kind"] == "end" and state["phase"] == "done"
    check_graph(api.graph(sid))
    if lesson != "inplace":
        assert state["error"] is None, state["error"]
        assert len(state["losses"]) == SMALL["iterations"]


def test_inplace_lesson_shows_runtime_error(api: Api) -> None:
    sid = api.create("inplace")["id"]
    state = api.seek(sid, 0)
    errors = []
    while not state["done"]:
        state = api.step(sid, "line")
        check_state(state, "inplace")
        if state["error"] is not None:
            errors.append(state["error"])
        assert state["cursor"] < 100_000
    assert any(
        e["type"] == "RuntimeError" and "inplace" in e["message"].replace("in-place", "inplace")
        for e in errors
    ), errors
    # The lesson's outcome is the error, not a server failure: a 200 `end` state carrying it.
    assert state["event"]["kind"] == "end" and state["phase"] == "done"
    assert state["error"] is not None and state["error"]["type"] == "RuntimeError"
    assert "inplace" in state["error"]["message"].replace("in-place", "inplace")
    assert len(state["losses"]) == SMALL["iterations"]
    again = api.http.get(f"/api/sessions/{sid}")
    assert again.status_code == 200 and again.json()["error"] == state["error"]


def test_inplace_lesson_marks_stale_saved_tensors(api: Api) -> None:
    sid = api.create("inplace")["id"]
    state = api.seek(sid, 0)
    stale = False
    while not state["done"] and not stale:
        state = api.step(sid, "line")
        graph = api.graph(sid)
        check_graph(graph)
        for node in graph["nodes"]:
            for saved in node["saved"]:
                # §5.1: stale = not yet run by backward, and changed since it was saved.
                changed = saved["version_now"] != saved["version_saved"]
                assert saved["stale"] == (changed and not saved["freed"]), saved
                stale = stale or saved["stale"]
    assert stale, "no saved tensor was ever shown modified after saving"


# =========================================================================== §5 graph


def test_graph_during_forward_and_backward(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    assert api.graph(sid)["focus"] is None or isinstance(api.graph(sid)["focus"], str)
    first_line = next(s for s in trace if s["iteration"] == 0)
    api.seek(sid, first_line["cursor"])
    graph = api.graph(sid)
    check_graph(graph)
    assert graph["kind"] == "autograd"
    assert {n["name"] for n in graph["nodes"] if n["kind"] == "leaf"} >= {"w1", "w2"}
    # The backward's AccumulateGrad and leaves are separate nodes.
    node = next(s for s in trace if s["event"]["kind"] == "node")
    api.seek(sid, node["cursor"])
    graph = api.graph(sid)
    check_graph(graph)
    assert graph["focus"] is not None
    if node["event"]["node_id"] is not None:
        assert graph["focus"] == node["event"]["node_id"]
    by_id = {n["id"]: n for n in graph["nodes"]}
    assert any(n["executed"] for n in graph["nodes"])
    accs = [n for n in graph["nodes"] if n["name"].endswith("AccumulateGrad")]
    leaves = [n for n in graph["nodes"] if n["kind"] == "leaf"]
    assert accs and leaves
    assert all(n["kind"] == "function" for n in accs)
    linked = {
        (e["source"], e["target"])
        for e in graph["edges"]
        if {by_id[e["source"]]["kind"], by_id[e["target"]]["kind"]} == {"function", "leaf"}
    }
    assert linked, "no edge between an AccumulateGrad and its leaf"
    assert any(n["saved"] for n in graph["nodes"] if n["kind"] == "function")
    # After the whole backward every node of the iteration has executed.
    update = next(s for s in trace if s["phase"] == "update")
    api.seek(sid, update["cursor"])
    graph = api.graph(sid)
    functions = [n for n in graph["nodes"] if n["kind"] == "function"]
    assert functions and all(n["executed"] for n in functions)


def test_focus_is_the_node_of_a_forward_op_event(api: Api, trace: list[dict[str, Any]]) -> None:
    """The graph grows op by op: an op that created a grad_fn has it in the graph, in
    focus, before the line binds its result to a name; an op under no_grad has none."""
    sid = api.create("autograd")["id"]
    ops = [s for s in trace if s["event"]["kind"] == "op" and s["iteration"] == 0]
    forward = [op for op in ops if op["phase"] in ("forward", "loss")]
    assert forward and all(op["event"]["node_id"] is not None for op in forward)
    for op in ops:
        api.seek(sid, op["cursor"])
        graph = api.graph(sid)
        check_graph(graph)
        assert graph["focus"] == op["event"]["node_id"], (op["cursor"], op["event"])
        if op["event"]["node_id"] is not None:
            focused = next(n for n in graph["nodes"] if n["id"] == graph["focus"])
            assert focused["kind"] == "function"


def test_focus_is_the_node_of_a_backward_node_event(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    nodes = [s for s in trace if s["event"]["kind"] == "node" and s["iteration"] == 0]
    assert nodes
    for state in nodes:
        api.seek(sid, state["cursor"])
        graph = api.graph(sid)
        assert graph["focus"] is not None
        assert graph["focus"] == state["event"]["node_id"], state["event"]
        focused = next(n for n in graph["nodes"] if n["id"] == graph["focus"])
        assert focused["name"] == state["event"]["name"]


def test_node_ids_are_stable_while_stepping(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    start = next(s for s in trace if s["iteration"] == 0)["cursor"]
    api.seek(sid, start)
    previous: dict[str, dict[str, Any]] = {}
    for _ in range(25):
        state = api.step(sid, "event")
        graph = api.graph(sid)
        nodes = {n["id"]: n for n in graph["nodes"]}
        for node_id, node in previous.items():
            if node_id in nodes:
                assert nodes[node_id]["name"] == node["name"]
                assert nodes[node_id]["kind"] == node["kind"]
        # A node that existed and still exists keeps its id: the earlier set persists
        # while the forward pass only adds nodes.
        if state["phase"] == "forward" and previous:
            assert set(previous) <= set(nodes), state["cursor"]
        previous = nodes
        if state["phase"] not in ("forward", "loss"):
            break


def test_static_graph_lesson_has_static_graph(api: Api) -> None:
    sid = api.create("static_graph")["id"]
    api.step(sid, "iteration")
    first = api.graph(sid)
    check_graph(first)
    assert first["kind"] == "static"
    assert first["nodes"]
    api.step(sid, "iteration")
    second = api.graph(sid)
    strip = lambda g: ({n["id"]: n["name"] for n in g["nodes"]}, g["edges"])  # noqa: E731
    assert strip(first) == strip(second), "the captured static graph changed"


def test_numpy_lesson_graph_kind_none_before_autograd(api: Api) -> None:
    sid = api.create("numpy")["id"]
    api.step(sid, "iteration")
    graph = api.graph(sid)
    check_graph(graph)
    assert graph["kind"] == "none"


def test_graph_svg_groups_have_json_node_ids(api: Api, trace: list[dict[str, Any]]) -> None:
    sid = api.create("autograd")["id"]
    node = next(s for s in trace if s["event"]["kind"] == "node")
    api.seek(sid, node["cursor"])
    graph = api.graph(sid)
    response = api.http.get(f"/api/sessions/{sid}/graph.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0].strip() == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.tag.endswith("svg")
    group_ids = {el.get("id") for el in root.iter() if el.tag.endswith("}g") or el.tag == "g"} - {
        None
    }
    for node_json in graph["nodes"]:
        assert node_json["id"] in group_ids, node_json["id"]


def test_graph_dot_content_type(api: Api) -> None:
    sid = api.create("autograd")["id"]
    api.step(sid, "phase", 2)
    response = api.http.get(f"/api/sessions/{sid}/graph.dot")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0].strip() == "text/vnd.graphviz"
    assert "digraph" in response.text or "graph" in response.text


# =========================================================================== §5 tensors


@pytest.mark.parametrize("name,shape", [("x", [8, 16]), ("y", [8, 4]), ("w1", [16, 8])])
def test_tensor_detail_preview_and_histogram(api: Api, name: str, shape: list[int]) -> None:
    sid = api.create("autograd", N=20, D_in=30)["id"]
    api.step(sid, "iteration")
    detail = api.tensor(sid, name)
    check_summary(detail, name)
    preview = detail["preview"]
    assert isinstance(preview, list) and 1 <= len(preview) <= 8
    assert all(isinstance(row, list) and 1 <= len(row) <= 8 for row in preview)
    want_rows = min(8, detail["shape"][0])
    want_cols = min(8, detail["shape"][1])
    assert len(preview) == want_rows and all(len(row) == want_cols for row in preview)
    hist = detail["histogram"]
    assert len(hist["counts"]) == 32
    assert len(hist["edges"]) == 33
    assert hist["edges"] == sorted(hist["edges"])
    assert sum(hist["counts"]) == math.prod(detail["shape"])
    assert math.isclose(hist["edges"][0], detail["stats"]["min"], rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(hist["edges"][-1], detail["stats"]["max"], rel_tol=1e-5, abs_tol=1e-6)


# =========================================================================== §5 errors


def assert_error(response: httpx.Response, status: int, *mentions: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"detail"}
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    for word in mentions:
        assert word in body["detail"], (word, body["detail"])


def test_unknown_lesson_is_404(api: Api) -> None:
    assert_error(api.http.get("/api/lessons/no_such_lesson"), 404)
    assert_error(api.http.post("/api/sessions", json={"lesson": "no_such", "config": {}}), 404)


@pytest.mark.parametrize(
    "method,suffix",
    [
        ("GET", ""),
        ("DELETE", ""),
        ("POST step", "/step"),
        ("POST seek", "/seek"),
        ("GET", "/graph"),
        ("GET", "/graph.svg"),
        ("GET", "/graph.dot"),
        ("GET", "/tensors/x"),
    ],
)
def test_unknown_session_is_404(api: Api, method: str, suffix: str) -> None:
    url = f"/api/sessions/doesnotexist0000{suffix}"
    if method == "GET":
        response = api.http.get(url)
    elif method == "DELETE":
        response = api.http.delete(url)
    elif method == "POST step":
        response = api.http.post(url, json={"by": "event", "count": 1})
    else:
        response = api.http.post(url, json={"cursor": 0})
    assert_error(response, 404)


def test_deleted_session_is_gone(api: Api) -> None:
    sid = api.create("autograd")["id"]
    response = api.http.delete(f"/api/sessions/{sid}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(api.http.get(f"/api/sessions/{sid}"), 404)


def test_unknown_tensor_is_404(api: Api) -> None:
    sid = api.create("autograd")["id"]
    api.step(sid, "iteration")
    assert_error(api.http.get(f"/api/sessions/{sid}/tensors/no_such_tensor"), 404)


INVALID_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("N zero", {"N": 0}, "N"),
    ("N negative", {"N": -3}, "N"),
    ("N string", {"N": "8"}, "N"),
    ("N null", {"N": None}, "N"),
    ("N fraction", {"N": 8.5}, "N"),
    ("N bool", {"N": True}, "N"),
    ("D_in zero", {"D_in": 0}, "D_in"),
    ("H string", {"H": "8"}, "H"),
    ("D_out fraction", {"D_out": 2.5}, "D_out"),
    ("D_out huge", {"D_out": 10**12}, "D_out"),
    ("N huge", {"N": 10**9}, "N"),
    ("lr zero", {"learning_rate": 0}, "learning_rate"),
    ("lr negative", {"learning_rate": -0.1}, "learning_rate"),
    ("lr above one", {"learning_rate": 1.5}, "learning_rate"),
    ("lr string", {"learning_rate": "0.001"}, "learning_rate"),
    ("lr null", {"learning_rate": None}, "learning_rate"),
    ("iterations zero", {"iterations": 0}, "iterations"),
    ("iterations too many", {"iterations": 10_001}, "iterations"),
    ("iterations fraction", {"iterations": 2.5}, "iterations"),
    ("iterations string", {"iterations": "3"}, "iterations"),
    ("seed negative", {"seed": -1}, "seed"),
    ("seed too big", {"seed": 2**32}, "seed"),
    ("seed fraction", {"seed": 0.5}, "seed"),
    ("seed string", {"seed": "0"}, "seed"),
    ("device unknown", {"device": "tpu"}, "device"),
    ("device missing gpu", {"device": "cuda:97"}, "device"),
    ("device number", {"device": 0}, "device"),
    ("device null", {"device": None}, "device"),
    ("zero_grad string", {"zero_grad": "true"}, "zero_grad"),
    ("zero_grad null", {"zero_grad": None}, "zero_grad"),
    ("unknown field", {"batch_size": 4}, "batch_size"),
]


@pytest.mark.parametrize(
    "config,field", [c[1:] for c in INVALID_CONFIGS], ids=[c[0] for c in INVALID_CONFIGS]
)
def test_invalid_config_is_422_naming_the_field(
    api: Api, config: dict[str, Any], field: str
) -> None:
    response = api.http.post(
        "/api/sessions", json={"lesson": "autograd", "config": {**SMALL, **config}}
    )
    assert_error(response, 422, field)


@pytest.mark.parametrize(
    "config,field,limit",
    [
        ({"learning_rate": 1.5}, "learning_rate", "1"),
        ({"iterations": 10_001}, "iterations", "1"),
        ({"seed": 2**32}, "seed", "4294967296"),
        ({"N": 0}, "N", "1"),
    ],
)
def test_out_of_bounds_names_the_limit(
    api: Api, config: dict[str, Any], field: str, limit: str
) -> None:
    response = api.http.post(
        "/api/sessions", json={"lesson": "autograd", "config": {**SMALL, **config}}
    )
    assert_error(response, 422, field)
    detail = response.json()["detail"]
    assert (
        limit in detail.replace(",", "").replace("_", "")
        or "2**32" in detail
        or ("2^32" in detail or "2³²" in detail)
    ), detail


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "Infinity"])
def test_non_finite_learning_rate_is_422(api: Api, literal: str) -> None:
    body = (
        '{"lesson": "autograd", "config": {"N": 8, "D_in": 16, "H": 8, "D_out": 4, '
        f'"iterations": 3, "learning_rate": {literal}}}}}'
    )
    response = api.http.post(
        "/api/sessions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    if literal.endswith("e999"):
        assert "learning_rate" in detail, detail


@pytest.mark.parametrize("value", [1.0, -0.1, "0.9", None])
def test_invalid_momentum_is_422(api: Api, value: Any) -> None:
    response = api.http.post(
        "/api/sessions",
        json={"lesson": "dynamic_net", "config": {**SMALL, "momentum": value}},
    )
    assert_error(response, 422, "momentum")


def test_momentum_zero_accepted(api: Api) -> None:
    response = api.http.post(
        "/api/sessions", json={"lesson": "dynamic_net", "config": {**SMALL, "momentum": 0}}
    )
    assert response.status_code == 201, response.text


def test_bounds_edges_accepted(api: Api) -> None:
    for config in (
        {"learning_rate": 1},
        {"learning_rate": 1e-12},
        {"seed": 2**32 - 1},
        {"seed": 0},
        {"iterations": 1},
        {"N": 1, "D_in": 1, "H": 1, "D_out": 1},
        {"device": "cpu"},
    ):
        response = api.http.post(
            "/api/sessions", json={"lesson": "tensors", "config": {**SMALL, **config}}
        )
        assert response.status_code == 201, (config, response.text)
        assert {**SMALL, **config}.items() <= response.json()["config"].items()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"by": "bogus", "count": 1}, "by"),
        ({"by": "event", "count": 0}, "count"),
        ({"by": "event", "count": -1}, "count"),
        ({"by": "event", "count": 1_000_001}, "count"),
        ({"by": "event", "count": "1"}, "count"),
        ({"by": "event", "count": 1.5}, "count"),
        ({"by": "event", "count": None}, "count"),
        ({"count": 1}, "by"),
        ({"by": None}, "by"),
    ],
)
def test_invalid_step_body_is_422(api: Api, body: dict[str, Any], field: str) -> None:
    sid = api.create("autograd")["id"]
    response = api.http.post(f"/api/sessions/{sid}/step", json=body)
    assert_error(response, 422, field)
    assert api.http.get(f"/api/sessions/{sid}").json()["cursor"] == 0


@pytest.mark.parametrize("cursor", [-1, "3", 1.5, None])
def test_invalid_seek_body_is_422(api: Api, cursor: Any) -> None:
    sid = api.create("autograd")["id"]
    response = api.http.post(f"/api/sessions/{sid}/seek", json={"cursor": cursor})
    assert_error(response, 422, "cursor")


def test_session_body_without_lesson_is_422(api: Api) -> None:
    assert_error(api.http.post("/api/sessions", json={"config": {}}), 422, "lesson")


def test_oversized_body_is_413(api: Api) -> None:
    body = {"lesson": "autograd", "config": dict(SMALL), "pad": "x" * (65 * 1024)}
    response = api.http.post("/api/sessions", json=body)
    assert_error(response, 413)
    sid = api.create("autograd")["id"]
    response = api.http.post(
        f"/api/sessions/{sid}/step", content=json.dumps({"by": "event", "x": "y" * 70_000})
    )
    assert_error(response, 413)


def test_body_just_under_limit_is_not_413(api: Api) -> None:
    body = json.dumps({"lesson": "autograd", "config": {**SMALL, "N": 8}})
    padded = body[:-1] + " " * (60 * 1024) + "}"
    response = api.http.post(
        "/api/sessions", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


def test_healthz(api: Api) -> None:
    response = api.http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["graphviz"], str) and re.search(r"\d", body["graphviz"])
    assert isinstance(body["devices"], list) and body["devices"]


def test_devices_list_cpu(api: Api) -> None:
    response = api.http.get("/api/devices")
    assert response.status_code == 200
    devices = response.json()
    assert isinstance(devices, list)
    assert all({"id", "name"} <= d.keys() and isinstance(d["name"], str) for d in devices)
    ids = [d["id"] for d in devices]
    assert "cpu" in ids
    assert all(re.fullmatch(r"cpu|cuda(:\d+)?|mps", i) for i in ids), ids
    for device in ids:
        response = api.http.post(
            "/api/sessions", json={"lesson": "tensors", "config": {**SMALL, "device": device}}
        )
        assert response.status_code == 201, (device, response.text)


# =========================================================================== §6 page


BUTTONS = (
    "Step",
    "Step over line",
    "Next phase",
    "Next iteration",
    "Run to end",
    "Step back",
    "Reset",
)


def test_home_lists_lesson_links(api: Api) -> None:
    response = api.http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for lesson in LESSONS:
        assert re.search(rf'href="[^"]*/lessons/{lesson}(\?[^"]*)?"', response.text), lesson


def test_unknown_lesson_page_is_404(api: Api) -> None:
    assert api.http.get("/lessons/no_such_lesson").status_code == 404


@pytest.mark.e2e
def test_explorer_page_hooks(page: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/")
    for lesson in LESSONS:
        expect(page.locator(f'a[href*="/lessons/{lesson}"]').first).to_be_visible()

    page.goto(f"{server.url}/lessons/autograd")
    for name in BUTTONS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)
    code_lines = page.locator("[data-line]")
    expect(code_lines.first).to_be_attached(timeout=15_000)
    numbers = [int(v) for v in code_lines.evaluate_all("els => els.map(e => e.dataset.line)")]
    assert numbers == list(range(1, len(numbers) + 1))
    expect(page.get_by_test_id("losses")).to_be_attached()
    expect(page.get_by_test_id("graph")).to_be_attached()
    variables = page.get_by_test_id("variables")
    expect(variables).to_be_attached()
    current = page.locator('[data-line][aria-current="step"]')

    page.get_by_role("button", name="Next iteration", exact=True).click()
    expect(variables.locator('[data-name="w1"]')).to_have_count(1, timeout=15_000)
    expect(current).to_have_count(1)
    rows = variables.locator("[data-name]")
    for row in rows.all():
        assert re.fullmatch(r"\d+", row.get_attribute("data-version") or ""), row
    names = rows.evaluate_all("els => els.map(e => e.dataset.name)")
    assert len(names) == len(set(names)), names
    assert {"x", "y", "w1", "w2"} <= set(names)

    line_before = current.get_attribute("data-line")
    page.get_by_role("button", name="Step over line", exact=True).click()
    expect(current).not_to_have_attribute("data-line", line_before or "")

    # Step through events until the forward op's node is focused in the graph.
    focus = page.get_by_test_id("graph").locator("svg .focus")
    for _ in range(8):
        if focus.count():
            break
        page.get_by_role("button", name="Step", exact=True).click()
        page.wait_for_timeout(300)
    expect(focus.first).to_be_attached()
    assert page.get_by_test_id("graph").locator("svg").count() >= 1

    page.get_by_role("button", name="Next phase", exact=True).click()
    expect(current).to_have_count(1)

    # Keyboard: the Step button is reachable and operable without a mouse.
    step = page.get_by_role("button", name="Step", exact=True)
    step.focus()
    line_before = current.get_attribute("data-line")
    for _ in range(6):
        page.keyboard.press("Enter")
        page.wait_for_timeout(200)
    page.get_by_role("button", name="Run to end", exact=True).click()
    expect(page.get_by_test_id("losses").locator("svg, canvas").first).to_be_attached()
    page.get_by_role("button", name="Step back", exact=True).click()
    expect(current).to_have_count(1)
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(variables.locator("[data-name]")).to_have_count(0)


# =========================================================================== more §3–§6 probes


def plain_autograd(cfg: dict[str, Any]) -> list[float]:
    """The autograd lesson's program run plainly (zero_grad honoured)."""
    torch.manual_seed(cfg["seed"])
    x = torch.randn(cfg["N"], cfg["D_in"])
    y = torch.randn(cfg["N"], cfg["D_out"])
    w1 = torch.randn(cfg["D_in"], cfg["H"], requires_grad=True)
    w2 = torch.randn(cfg["H"], cfg["D_out"], requires_grad=True)
    losses = []
    for _ in range(cfg["iterations"]):
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= cfg["learning_rate"] * w1.grad
            w2 -= cfg["learning_rate"] * w2.grad
            if cfg["zero_grad"]:
                w1.grad.zero_()
                w2.grad.zero_()
    return losses


def test_zero_grad_false_loss_sequence(api: Api) -> None:
    cfg = {**BASE, **SMALL, "iterations": 4, "learning_rate": 1e-4, "zero_grad": False}
    expected = plain_autograd(cfg)
    final = api.run("autograd", iterations=4, learning_rate=1e-4, zero_grad=False)
    np.testing.assert_allclose(final["losses"], expected, rtol=1e-5)
    with_zeroing = plain_autograd({**cfg, "zero_grad": True})
    assert not np.allclose(expected, with_zeroing, rtol=1e-6), "config had no effect"


@pytest.mark.parametrize("start_fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_iteration_step_from_anywhere(
    api: Api, trace: list[dict[str, Any]], start_fraction: float
) -> None:
    start = trace[int(len(trace) * start_fraction)]
    sid = api.create("autograd")["id"]
    api.seek(sid, start["cursor"])
    landed = api.step(sid, "iteration")
    loop_line = next(s for s in trace if s["iteration"] == 0)["line"]
    want = next(
        (
            s
            for s in trace[start["cursor"] + 1 :]
            if s["event"]["kind"] == "line" and s["line"] == loop_line and s["iteration"] >= 0
        ),
        trace[-1],
    )
    assert landed["cursor"] == want["cursor"], (start["cursor"], landed["cursor"])
    if not landed["done"]:
        assert landed["iteration"] == max(start["iteration"], -1) + 1 or (
            start["iteration"] == -1 and landed["iteration"] == 0
        )


@pytest.mark.parametrize("cursor", [10**12, 2**63, 10**30])
def test_seek_far_past_end_gives_final_state(
    api: Api, trace: list[dict[str, Any]], cursor: int
) -> None:
    sid = api.create("autograd")["id"]
    response = api.http.post(f"/api/sessions/{sid}/seek", json={"cursor": cursor})
    assert response.status_code == 200, response.text
    assert strip_id(response.json()) == strip_id(trace[-1])


@pytest.mark.parametrize(
    "body,field",
    [({"by": "event", "count": True}, "count"), ({"cursor": True}, "cursor")],
)
def test_boolean_is_not_an_integer_in_step_and_seek(
    api: Api, body: dict[str, Any], field: str
) -> None:
    sid = api.create("autograd")["id"]
    kind = "step" if "by" in body else "seek"
    response = api.http.post(f"/api/sessions/{sid}/{kind}", json=body)
    assert_error(response, 422, field)


@pytest.mark.parametrize(
    "config",
    [
        {"N": 100_000, "D_in": 100_000, "H": 100_000, "D_out": 100_000},
        {"N": 50_000, "D_in": 50_000},
        {"D_in": 10**7},
    ],
)
def test_oversized_configs_are_422_not_allocated(api: Api, config: dict[str, Any]) -> None:
    response = api.http.post(
        "/api/sessions", json={"lesson": "tensors", "config": {**SMALL, **config}}
    )
    assert_error(response, 422)
    detail = response.json()["detail"]
    assert any(field in detail for field in config) or "memory" in detail.lower(), detail
    assert re.search(r"\d", detail), detail


def test_cuda_rejected_when_not_listed(api: Api) -> None:
    ids = {d["id"] for d in api.http.get("/api/devices").json()}
    if "cuda" in ids or "cuda:0" in ids:
        pytest.skip("this host has CUDA")
    for device in ("cuda", "cuda:0", "CPU", "cpu:0", ""):
        response = api.http.post(
            "/api/sessions", json={"lesson": "autograd", "config": {**SMALL, "device": device}}
        )
        assert_error(response, 422, "device")


def test_custom_backward_lines_are_stepped_on_cpu(api: Api) -> None:
    source = api.http.get("/api/lessons/custom_function").json()["source"].splitlines()
    header = next(i for i, t in enumerate(source) if re.match(r"\s*def backward\(", t))
    indent = len(source[header]) - len(source[header].lstrip())
    body = set()
    for j in range(header + 1, len(source)):
        text = source[j]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        if text.strip():
            body.add(j + 1)
    sid = api.create("custom_function", iterations=1)["id"]
    state = api.seek(sid, 0)
    seen_node = False
    backward_lines = []
    while not state["done"]:
        state = api.step(sid, "event")
        if state["event"]["kind"] == "node":
            seen_node = True
        if seen_node and state["event"]["kind"] == "line" and state["line"] in body:
            backward_lines.append(state["line"])
    assert backward_lines, "the custom backward's lines were never stepped"


def test_tensor_detail_of_vector_and_numpy(api: Api) -> None:
    sid = api.create("nn", H=20)["id"]
    api.step(sid, "iteration")
    bias = api.tensor(sid, "model.0.bias")
    check_summary(bias, "model.0.bias")
    assert bias["shape"] == [20]
    flat = np.asarray(bias["preview"], dtype=np.float64).ravel()
    assert 1 <= flat.size <= 8
    assert len(bias["histogram"]["counts"]) == 32
    assert sum(bias["histogram"]["counts"]) == 20
    sid = api.create("numpy")["id"]
    api.step(sid, "iteration")
    detail = api.tensor(sid, "w1")
    assert "float64" in detail["dtype"] and detail["device"] == "cpu"
    assert detail["requires_grad"] is False and detail["version"] == 0
    assert len(detail["histogram"]["counts"]) == 32
    assert sum(detail["histogram"]["counts"]) == SMALL["D_in"] * SMALL["H"]


def test_manual_update_lessons_have_no_optimizer(api: Api) -> None:
    for lesson in ("numpy", "tensors", "nn"):
        final = api.run(lesson)
        assert final["optimizer"] is None, lesson


def test_error_bodies_are_json(api: Api) -> None:
    response = api.http.get("/api/sessions/nope")
    assert response.headers["content-type"].startswith("application/json")
    response = api.http.post("/api/sessions", json={"lesson": "autograd", "config": {"N": 0}})
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.e2e
@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_page_runs_without_console_errors(
    page: Any,
    server: LiveServer,
    lesson: str,
) -> None:
    from playwright.sync_api import expect

    response = page.goto(f"{server.url}/lessons/{lesson}")
    assert response is not None and response.status == 200
    for name in BUTTONS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)
    page.get_by_role("button", name="Next iteration", exact=True).click()
    current = page.locator('[data-line][aria-current="step"]')
    expect(current).to_have_count(1)
    expect(page.get_by_test_id("variables").locator("[data-name]").first).to_be_attached()
    page.get_by_role("button", name="Run to end", exact=True).click()
    expect(page.get_by_test_id("losses").locator("svg, canvas").first).to_be_attached()
    page.wait_for_timeout(300)


@pytest.mark.e2e
def test_page_versions_match_the_api(page: Any, server: LiveServer, api: Api) -> None:
    from playwright.sync_api import expect

    defaults = api.http.get("/api/lessons/autograd").json()["defaults"]
    sid = api.http.post("/api/sessions", json={"lesson": "autograd", "config": defaults}).json()[
        "id"
    ]
    state = api.step(sid, "iteration", 2)
    page.goto(f"{server.url}/lessons/autograd")
    variables = page.get_by_test_id("variables")
    button = page.get_by_role("button", name="Next iteration", exact=True)
    button.click()
    expect(variables.locator('[data-name="w1"]')).to_have_count(1)
    # Keyboard: the same button works with Enter once focused.
    button.focus()
    page.keyboard.press("Enter")
    w1 = variables.locator('[data-name="w1"]')
    expect(w1).to_have_attribute("data-version", str(state["variables"]["w1"]["version"]))
    line = page.locator('[data-line][aria-current="step"]')
    expect(line).to_have_attribute("data-line", str(state["line"]))
    for name, summary in state["variables"].items():
        row = variables.locator(f'[data-name="{name}"]')
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-version", str(summary["version"]))


@pytest.mark.parametrize("size,status", [(64 * 1024, 201), (64 * 1024 + 1, 413)])
def test_body_size_limit_boundary(api: Api, size: int, status: int) -> None:
    body = json.dumps({"lesson": "autograd", "config": SMALL})
    padded = body[:-1] + " " * (size - len(body)) + "}"
    assert len(padded.encode()) == size
    response = api.http.post(
        "/api/sessions", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text


def test_iteration_is_minus_one_before_the_loop(trace: list[dict[str, Any]]) -> None:
    first = next(i for i, s in enumerate(trace) if s["iteration"] == 0)
    assert first > 0
    assert all(s["iteration"] == -1 for s in trace[:first])
    # Every line before the loop header is setup (the header's own phase is not specified).
    header = trace[first - 1]["line"]
    setup = [s for s in trace[1:first] if s["event"]["kind"] == "line" and s["line"] != header]
    assert setup and all(s["phase"] == "setup" for s in setup), [
        (s["line"], s["phase"]) for s in setup
    ]
    iterations = [s["iteration"] for s in trace]
    assert iterations == sorted(iterations)
    assert max(iterations) == SMALL["iterations"] - 1
