"""Graph → DOT → SVG: ids, classes, the layout cache, escaping, limits and the dot timeout."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import threading
import time
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import layout, render
from app.engine.graph import autograd_graph, static_graph
from app.engine.nodes import NodeRegistry
from app.engine.render import GraphTooLarge, RenderError, RenderTimeout, to_dot, to_svg
from app.engine.session import Session
from app.lessons.registry import get_lesson

SVG = "{http://www.w3.org/2000/svg}"
SMALL = {"N": 8, "D_in": 20, "H": 10, "D_out": 3, "iterations": 3}

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    render.cache_clear()
    layout.cache_clear()
    yield
    render.cache_clear()
    layout.cache_clear()


def _groups(svg: str, kind: str) -> dict[str, set[str]]:
    """The SVG's node (or edge) groups: id -> classes."""
    root = ET.fromstring(svg)
    found = {}
    for group in root.iter(f"{SVG}g"):
        classes = set(group.get("class", "").split())
        if kind in classes:
            found[group.get("id", "")] = classes
    return found


def _texts(svg: str, node_id: str) -> list[str]:
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("id") == node_id)
    return [t.text or "" for t in group.iter(f"{SVG}text")]


def _fake_run(registry: NodeRegistry, scope: dict[str, Any]) -> Any:
    return types.SimpleNamespace(
        registry=registry,
        scope=scope,
        frame=None,
        in_module_frame=True,
        node=None,
        line_nodes=[],
        changed_at={},
    )


def _two_layer_graph() -> dict[str, Any]:
    """The autograd lesson's graph after the loss line, built by the engine."""
    registry = NodeRegistry()
    x, y = torch.randn(8, 20), torch.randn(8, 3)
    w1 = torch.randn(20, 10, requires_grad=True)
    w2 = torch.randn(10, 3, requires_grad=True)
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    scope = {"x": x, "y": y, "w1": w1, "w2": w2, "y_pred": y_pred, "loss": loss}
    return autograd_graph(_fake_run(registry, scope))


def _hand_graph(prefix: str = "n", *, focus: str | None = None) -> dict[str, Any]:
    def node(i: int, kind: str, name: str, **extra: Any) -> dict[str, Any]:
        base = {"id": f"{prefix}{i}", "kind": kind, "name": name, "shape": None}
        return {**base, "saved": [], "executed": False, "tensors": [], **extra}

    stale = {"name": "self", "shape": [3], "version_saved": 0, "version_now": 2, "stale": True}
    fresh = {**stale, "version_now": 0, "stale": False}
    nodes = [
        node(0, "leaf", "w", shape=[3]),
        node(1, "function", "torch::autograd::AccumulateGrad", executed=True, grad_count=2),
        node(2, "function", "MulBackward0", saved=[stale, fresh]),
        node(3, "saved", "self", shape=[3]),
        node(4, "output", "loss", shape=[]),
    ]
    ids = [n["id"] for n in nodes]
    pairs = [(0, 1), (1, 2), (1, 2), (3, 2), (2, 4)]
    edges = [{"source": ids[s], "target": ids[t]} for s, t in pairs]
    return {"kind": "autograd", "nodes": nodes, "edges": edges, "focus": focus}


def _session_at_first_backward_node(iterations_before: int) -> tuple[Session, dict[str, Any]]:
    lesson = get_lesson("autograd")
    config = {**lesson.defaults, **{k: v for k, v in SMALL.items() if k in lesson.fields}}
    session = Session(id="render", lesson=lesson, config=config)
    session.step(by="iteration", count=iterations_before + 1)
    while session.state()["event"]["kind"] != "node":
        session.step(by="event")
    session.step(by="event", count=2)
    return session, session.graph()


def test_svg_node_groups_are_the_json_node_ids() -> None:
    graph = _two_layer_graph()
    svg = to_svg(graph)
    nodes = _groups(svg, "node")
    assert set(nodes) == {n["id"] for n in graph["nodes"]}
    for node in graph["nodes"]:
        assert node["kind"] in nodes[node["id"]]
    edges = _groups(svg, "edge")
    assert set(edges) == {f"edge:{e['source']}->{e['target']}" for e in graph["edges"]}


def test_svg_is_inline_ready() -> None:
    svg = to_svg(_two_layer_graph())
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<!--" not in svg
    root = ET.fromstring(svg)
    assert all(root.get(attr) for attr in ("width", "height", "viewBox"))


def test_torchviz_colours_and_labels() -> None:
    graph = _hand_graph()
    svg = to_svg(graph)
    fills = {
        g.get("id"): g.find(f"{SVG}polygon").get("fill")  # type: ignore[union-attr]
        for g in ET.fromstring(svg).iter(f"{SVG}g")
        if "node" in g.get("class", "").split()
    }
    assert fills == {
        "n0": "lightblue",
        "n1": "lightgrey",
        "n2": "lightgrey",
        "n3": "orange",
        "n4": "#caff70",  # darkolivegreen1, as Graphviz writes it
    }
    assert _texts(svg, "n0") == ["w", "(3)"]
    assert _texts(svg, "n1") == ["AccumulateGrad", "×2"]
    assert _texts(svg, "n2") == ["MulBackward0"]
    assert _texts(svg, "n4") == ["loss", "()"]


def test_classes_follow_the_graph_state() -> None:
    svg = to_svg(_hand_graph(focus="n2"))
    nodes = _groups(svg, "node")
    # executed with no ledger: an earlier backward call ran it
    assert nodes["n1"] == {"node", "function", "executed", "freed"}
    assert nodes["n2"] == {"node", "function", "stale", "focus"}
    assert nodes["n0"] == {"node", "leaf"}
    assert nodes["n3"] == {"node", "saved"}
    # The same layout serves every state: only the group heads differ.
    assert render.cache_info().misses == 1
    moved = _groups(to_svg(_hand_graph(focus="n4")), "node")
    assert "focus" not in moved["n2"] and "focus" in moved["n4"]
    latest = _hand_graph(focus="n4")
    next(n for n in latest["nodes"] if n["id"] == "n1")["ledger"] = {"node_id": "n1"}
    assert _groups(to_svg(latest), "node")["n1"] == {"node", "function", "executed"}
    assert render.cache_info().misses == 1


def test_real_session_focus_executed_and_ids() -> None:
    session, graph = _session_at_first_backward_node(iterations_before=0)
    try:
        assert graph["focus"] is not None
        nodes = _groups(to_svg(graph), "node")
        assert set(nodes) == {n["id"] for n in graph["nodes"]}
        assert [i for i, classes in nodes.items() if "focus" in classes] == [graph["focus"]]
        executed = {n["id"] for n in graph["nodes"] if n["executed"]}
        assert executed and {i for i, c in nodes.items() if "executed" in c} == executed
    finally:
        session.close()


def test_stale_saved_tensor_marks_its_function() -> None:
    registry = NodeRegistry()
    x = torch.randn(3, requires_grad=True)
    y = x.exp()  # ExpBackward0 saves its result, y
    registry.add(y.grad_fn, list(y.shape))
    with torch.no_grad():
        y.add_(1)  # bumps y's version: the saved result is stale
    graph = autograd_graph(_fake_run(registry, {"x": x, "y": y}))
    nodes = _groups(to_svg(graph), "node")
    (exp,) = [n for n in graph["nodes"] if n["name"] == "ExpBackward0"]
    assert "stale" in nodes[exp["id"]]
    assert all("stale" not in c for i, c in nodes.items() if i != exp["id"])


def test_same_structure_with_new_ids_is_a_cache_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    run_dot = render._run_dot

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return run_dot(*args, **kwargs)

    monkeypatch.setattr(render, "_run_dot", counting)
    first = to_svg(_hand_graph("n", focus="n1"))
    later = to_svg(_hand_graph("m", focus="m1"))
    assert len(calls) == 1
    assert render.cache_info().hits == 1
    assert set(_groups(later, "node")) == {f"m{i}" for i in range(5)}
    assert 'id="n' not in later
    assert re.sub(r"\bn(?=\d)", "m", first) == later  # the same drawing, renamed


def test_a_later_iteration_of_a_real_session_is_a_cache_hit() -> None:
    first, graph = _session_at_first_backward_node(iterations_before=0)
    second, later = _session_at_first_backward_node(iterations_before=1)
    try:
        assert {n["id"] for n in graph["nodes"]} != {n["id"] for n in later["nodes"]}
        to_svg(graph)
        svg = to_svg(later)
        assert render.cache_info().misses == 1
        assert set(_groups(svg, "node")) == {n["id"] for n in later["nodes"]}
    finally:
        first.close()
        second.close()


def test_another_structure_is_a_miss() -> None:
    to_svg(_two_layer_graph())
    graph = _hand_graph()
    graph["edges"] = graph["edges"][:-1]
    to_svg(graph)
    assert render.cache_info().misses == 2


def test_concurrent_misses_on_one_structure_run_dot_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    run_dot = render._run_dot

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        time.sleep(0.2)
        return run_dot(*args, **kwargs)

    monkeypatch.setattr(render, "_run_dot", slow)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(to_svg(_hand_graph(f"t{i}_"))))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 8
    prefixes = sorted(re.findall(r'<g id="(t\d)_0"', svg)[0] for svg in results)
    assert prefixes == [f"t{i}" for i in range(8)]  # each caller got its own ids


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_CACHE", render._LayoutCache(maxsize=2))
    graphs = [_hand_graph() for _ in range(3)]
    for i, graph in enumerate(graphs):
        graph["nodes"][0]["name"] = f"w{i}"
        to_svg(graph)
    to_svg(graphs[0])  # evicted by the third
    assert render.cache_info() == render.CacheInfo(hits=0, misses=4, maxsize=2, currsize=2)


HOSTILE = 'a"b\\c<d>&e&lt;\nf\r\ng\x00h\ud800\\'


def test_hostile_names_and_ids_are_escaped() -> None:
    graph = _hand_graph()
    graph["nodes"][0]["name"] = HOSTILE
    graph["nodes"][2]["name"] = '"]; x -> y; z [label="'
    graph["nodes"][4]["id"] = 'out:"<&>\\'
    graph["edges"][-1]["target"] = 'out:"<&>\\'
    dot = to_dot(graph)
    checked = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert len(_groups(checked.stdout.decode(), "node")) == 5  # no node was injected
    svg = to_svg(graph)
    assert set(_groups(svg, "node")) == {"n0", "n1", "n2", "n3", 'out:"<&>\\'}
    assert _texts(svg, "n0") == ['a"b\\c<d>&e&lt;', "f", "g\ufffdh\ufffd\\", "(3)"]
    assert _texts(svg, "n2") == ['"]; x -> y; z [label="']


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(st.text(max_size=12), min_size=2, max_size=2),
    node_id=st.text(min_size=1).filter(lambda s: s not in {"n0", "n1", "n2", "n4"}),
)
def test_any_text_gives_valid_dot_and_svg(names: list[str], node_id: str) -> None:
    graph = _hand_graph()
    graph["nodes"][0]["name"], graph["nodes"][2]["name"] = names
    graph["nodes"][3]["id"] = node_id
    graph["edges"][3]["source"] = node_id
    subprocess.run(["dot", "-Tsvg"], input=to_dot(graph).encode(), capture_output=True, check=True)
    nodes = _groups(to_svg(graph), "node")
    assert set(nodes) == {"n0", "n1", "n2", render._clean(node_id), "n4"}


def test_dot_text_has_real_ids_and_classes() -> None:
    dot = to_dot(_hand_graph(focus="n2"))
    assert '"n2" [label="MulBackward0" fillcolor=lightgrey id="n2"' in dot
    assert 'class="function stale focus"' in dot
    assert '"n1" -> "n2" [id="edge:n1->n2"]' in dot
    assert '"n1" -> "n2" [id="edge:n1->n2:2"]' in dot
    assert '"n3" -> "n2" [id="edge:n3->n2" dir=none]' in dot
    svg = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True)
    assert set(_groups(svg.stdout.decode(), "node")) == {f"n{i}" for i in range(5)}


def test_static_graph_uses_the_same_conventions() -> None:
    from torch.fx.experimental.proxy_tensor import make_fx

    module = make_fx(lambda x, w: x.mm(w).clamp(min=0).sum())(torch.randn(4, 3), torch.randn(3, 2))
    graph = static_graph(module)
    nodes = _groups(to_svg(graph), "node")
    assert set(nodes) == {n["id"] for n in graph["nodes"]}
    leaves = {i for i, classes in nodes.items() if "leaf" in classes}
    assert len(leaves) == 2 and sum("output" in c for c in nodes.values()) == 1


def test_too_many_nodes() -> None:
    graph = _hand_graph()
    with pytest.raises(GraphTooLarge, match=r"5 nodes.*at most 4"):
        to_svg(graph, max_nodes=4)
    with pytest.raises(GraphTooLarge):
        to_dot(graph, max_nodes=4)
    assert to_svg(graph, max_nodes=5).startswith("<svg")
    assert render.cache_info().misses == 1


def test_empty_graph() -> None:
    svg = to_svg({"kind": "none", "nodes": [], "edges": [], "focus": None})
    assert svg.startswith("<svg") and _groups(svg, "node") == {}


def test_unknown_edge_endpoint_is_refused() -> None:
    graph = _hand_graph()
    graph["edges"].append({"source": "n0", "target": "missing"})
    with pytest.raises(ValueError, match="unknown node"):
        to_dot(graph)


def _stand_in_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    script = tmp_path / "dot"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("dot") == str(script)
    return script


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_hung_dot_is_killed_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not `exec sleep`: the shell stays dot's process and sleep is its child.
    body = f"echo $$ > {tmp_path}/dot.pid\nsleep 30 &\necho $! > {tmp_path}/sleep.pid\nwait\n"
    _stand_in_dot(tmp_path, monkeypatch, body)
    start = time.monotonic()
    with pytest.raises(RenderTimeout, match=r"0\.5 s"):
        to_svg(_hand_graph(), timeout_s=0.5)
    assert time.monotonic() - start < 1.5
    pids = [int((tmp_path / name).read_text()) for name in ("dot.pid", "sleep.pid")]
    deadline = time.monotonic() + 2
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in pids)
    # A failure is not cached: the real dot draws it next time.
    monkeypatch.undo()
    assert to_svg(_hand_graph()).startswith("<svg")


def test_dot_failure_reports_its_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stand_in_dot(tmp_path, monkeypatch, "echo 'syntax error in line 3' >&2\nexit 1\n")
    with pytest.raises(RenderError, match="syntax error in line 3"):
        to_svg(_hand_graph())


def test_missing_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="not installed"):
        to_svg(_hand_graph())
    with pytest.raises(RenderError):
        render.dot_version()


def test_dot_version() -> None:
    assert "graphviz version" in render.dot_version()


# -- the page's layout -------------------------------------------------------------------


def _chain(ids: list[str], *, executed: bool, ledger: bool, line0: int = 1) -> list[dict[str, Any]]:
    """Function nodes n(ids[0]) → … each taking the one before (a forward chain)."""
    return [
        {
            "id": node_id,
            "kind": "function",
            "name": ["MmBackward0", "ClampBackward1", "SumBackward0", "ExpBackward0"][i % 4],
            "shape": [8, 8],
            "saved": [],
            "executed": executed,
            "tensors": [],
            "ledger": {"node_id": node_id} if ledger else None,
            "line": line0 + i,
        }
        for i, node_id in enumerate(ids)
    ]


def _iterations(old: list[str], new: list[str], *, old_ledger: bool) -> dict[str, Any]:
    """A past iteration's chain (run by backward) beside the current one, sharing a leaf."""
    leaf = {"id": "leaf0", "kind": "leaf", "name": "w", "shape": [8, 8], "saved": []}
    acc = {**_chain(["acc:leaf0"], executed=False, ledger=False)[0], "name": "AccumulateGrad"}
    nodes = [{**leaf, "executed": False, "tensors": ["w"]}, acc]
    nodes += _chain(old, executed=True, ledger=old_ledger)
    nodes += _chain(new, executed=False, ledger=False)
    edges = [{"source": "leaf0", "target": "acc:leaf0"}]
    for chain in (old, new):
        if chain:
            edges.append({"source": "acc:leaf0", "target": chain[0]})
        edges += [{"source": a, "target": b} for a, b in itertools.pairwise(chain)]
    return {"kind": "autograd", "nodes": nodes, "edges": edges, "focus": None}


def test_a_new_iterations_node_takes_its_twins_place_and_nothing_moves():
    ran = layout.layout(_iterations(["n0", "n1", "n2"], [], old_ledger=True))
    steps = [
        layout.layout(_iterations(["n0", "n1", "n2"], ["n3", "n4", "n5"][:k], old_ledger=False))
        for k in range(1, 4)
    ]

    for k, placed in enumerate(steps, start=1):
        assert placed["key"] == ran["key"]
        # the twins of the new nodes are hidden; the others keep their places
        assert sorted(placed["hidden"]) == ["n0", "n1", "n2"][:k]
        for new, old in zip(["n3", "n4", "n5"][:k], ["n0", "n1", "n2"], strict=False):
            assert placed["nodes"][new] == ran["nodes"][old]
        for node_id, box in placed["nodes"].items():
            if node_id in ran["nodes"]:
                assert box == ran["nodes"][node_id]


def test_nodes_without_a_twin_go_beside_the_laid_out_structure():
    """The dynamic net grew deeper: the extra node moves nothing laid out before it."""
    before = layout.layout(_iterations(["n0", "n1"], ["n2", "n3"], old_ledger=False))
    deeper = layout.layout(_iterations(["n0", "n1"], ["n2", "n3", "n4"], old_ledger=False))

    assert deeper["key"] == before["key"]
    assert all(deeper["nodes"][k] == box for k, box in before["nodes"].items())
    cx, _, w, _ = deeper["nodes"]["n4"]
    laid = [b for k, b in before["nodes"].items()]
    assert cx - w / 2 > max(x + bw / 2 for x, _, bw, _ in laid)
    # and once the past iteration is gone, the current structure is laid out afresh
    alone = layout.layout(_iterations([], ["n2", "n3", "n4"], old_ledger=False))
    assert alone["key"] != deeper["key"] and not alone["hidden"]


def test_an_output_node_sits_beside_the_node_that_made_it():
    graph = _two_layer_graph()
    placed = layout.layout(graph)
    out = next(n["id"] for n in graph["nodes"] if n["kind"] == "output")
    source = next(e["source"] for e in graph["edges"] if e["target"] == out)
    ox, oy, ow, _ = placed["nodes"][out]
    sx, sy, sw, _ = placed["nodes"][source]
    assert oy == sy and ox - ow / 2 > sx + sw / 2
    # outputs come and go without touching the rest of the layout
    without = {
        **graph,
        "nodes": [n for n in graph["nodes"] if n["id"] != out],
        "edges": [e for e in graph["edges"] if e["target"] != out],
    }
    assert layout.layout(without)["key"] == placed["key"]


def test_the_layout_is_made_once_per_structure():
    graph = _two_layer_graph()
    first = layout.layout(graph)
    misses = layout._LAYOUTS.misses
    again = layout.layout({**graph, "focus": graph["nodes"][2]["id"]})
    assert again == first and layout._LAYOUTS.misses == misses


def test_the_in_process_layout_equals_dots_and_falls_back_to_it(monkeypatch):
    graph = _two_layer_graph()
    in_process = layout.layout(graph)
    key = next(iter(layout._LAYOUTS._entries))
    text = layout._LIBGVC.plain(key)
    if text is not None:  # libgvc present: the same numbers as `dot -Tplain`
        stdout, _ = render._run_dot(["-Tplain"], key.encode(), 5.0)
        assert text == stdout.decode()
    layout.cache_clear()
    monkeypatch.setattr(layout._LIBGVC, "plain", lambda source: None)
    assert layout.layout(graph) == in_process
