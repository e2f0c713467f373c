"""Graph SVG rendering: a cache hit, a miss, and a bare `dot -Tsvg`, side by side.

Targets (DESIGN.md §8): a hit ≤ 2 ms; a miss ≤ 1.5× a bare `dot -Tsvg` of the
same DOT. The graph is shaped like the `dynamic_net` lesson's, with its one
middle Linear used six times, built by the engine from real tensors: 39 nodes.

Run: .venv/bin/python bench/bench_render.py (`measure()` returns the times, for bench_all.py)
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.engine import render
from app.engine.graph import autograd_graph
from app.engine.nodes import NodeRegistry

HIT_REPEATS = 2000
MISS_REPEATS = 30


def dynamic_net_graph(registry: NodeRegistry, depth: int = 6) -> dict[str, Any]:
    """One forward and loss of DynamicNet at ``depth``, as the engine's Graph."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    model = torch.nn.ModuleDict(
        {
            "input_linear": torch.nn.Linear(1000, 100),
            "middle_linear": torch.nn.Linear(100, 100),
            "output_linear": torch.nn.Linear(100, 10),
        }
    )
    h_relu = model["input_linear"](x).clamp(min=0)
    for _ in range(depth):
        h_relu = model["middle_linear"](h_relu).clamp(min=0)
    y_pred = model["output_linear"](h_relu)
    loss = (y_pred - y).pow(2).sum()
    for tensor in (h_relu, y_pred, loss):
        registry.add(tensor.grad_fn)
    scope = {"x": x, "y": y, "model": model, "h_relu": h_relu, "y_pred": y_pred, "loss": loss}
    run = types.SimpleNamespace(  # what autograd_graph reads of a paused Run
        registry=registry,
        scope=scope,
        frame=None,
        in_module_frame=True,
        node=None,
        line_nodes=[],
        changed_at={},
    )
    return autograd_graph(run)  # type: ignore[arg-type]


def renumbered(graph: dict[str, Any], offset: int) -> dict[str, Any]:
    """The same structure with the ids a later iteration would have."""

    def new(node_id: str) -> str:
        return re.sub(r"\d+", lambda m: str(int(m.group()) + offset), node_id)

    nodes = [{**node, "id": new(node["id"])} for node in graph["nodes"]]
    edges = [{"source": new(e["source"]), "target": new(e["target"])} for e in graph["edges"]]
    focus = new(graph["nodes"][3]["id"])
    return {**graph, "nodes": nodes, "edges": edges, "focus": focus}


def times_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure(*, hit_repeats: int = HIT_REPEATS, miss_repeats: int = MISS_REPEATS) -> dict[str, Any]:
    """Time cache hits, then misses interleaved with bare `dot -Tsvg` runs; times in ms."""
    dot = shutil.which("dot")
    assert dot is not None, "Graphviz's dot is not on PATH"
    graph = dynamic_net_graph(NodeRegistry())
    later = renumbered(graph, 40)
    # The exact DOT text Graphviz lays out on a miss (positional ids, no state).
    layout_dot = render._layout_key(render._model(graph, 400)).encode()

    render.cache_clear()
    render.to_svg(graph)
    hits_before = render.cache_info().hits
    hit = times_ms(lambda: render.to_svg(later), hit_repeats)
    assert render.cache_info().hits - hits_before == hit_repeats

    def miss() -> None:
        render.cache_clear()
        render.to_svg(later)

    def bare() -> None:
        subprocess.run([dot, "-Tsvg"], input=layout_dot, capture_output=True, check=True)

    miss_times: list[float] = []
    bare_times: list[float] = []
    for _ in range(miss_repeats):  # interleaved, so load and drift affect both alike
        miss_times += times_ms(miss, 1)
        bare_times += times_ms(bare, 1)
    return {
        "dot": dot,
        "nodes": len(graph["nodes"]),
        "edges": len(graph["edges"]),
        "hit": hit,
        "miss": miss_times,
        "bare": bare_times,
        "ratio": statistics.fmean(miss_times) / statistics.fmean(bare_times),
    }


def main() -> None:
    m = measure()

    def row(name: str, times: list[float], target: str = "") -> None:
        mean, median = statistics.fmean(times), statistics.median(times)
        print(f"{name:<24}{mean:>10.3f}{median:>10.3f}{target:>12}")

    print(f"graph: {m['nodes']} nodes, {m['edges']} edges; {m['dot']}")
    print(f"{'measure (ms)':<24}{'mean':>10}{'median':>10}{'target':>12}")
    row("cache hit (new ids)", m["hit"], "<= 2 ms")
    row("cache miss (to_svg)", m["miss"])
    row("bare dot -Tsvg", m["bare"])
    print(f"{'miss / bare (means)':<24}{m['ratio']:>10.2f}{'':>10}{'<= 1.5x':>12}")


if __name__ == "__main__":
    main()
