"""The benchmarks' own helpers still fit the code they measure (they run outside the suite)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.engine.nodes import NodeRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_render


def test_render_bench_builds_its_graph_through_the_engine() -> None:
    graph = bench_render.dynamic_net_graph(NodeRegistry())
    assert graph["kind"] == "autograd"
    assert len(graph["nodes"]) == 39
    ids = {node["id"] for node in graph["nodes"]}
    assert all(edge["source"] in ids and edge["target"] in ids for edge in graph["edges"])


def test_the_copy_bench_copies_the_run_where_it_stands() -> None:
    import bench_copy

    m = bench_copy.measure(repeat=1)  # asserts, in its process, each copy's cursor
    assert m["cursor"] > 7000 and m["fork"] > 0 and m["replay"] > 0


def test_the_checkpoint_bench_seeks_where_it_says_with_and_without_forks() -> None:
    import bench_checkpoints

    m = bench_checkpoints.measure(repeat=1, iterations=30)  # asserts each seek's cursor
    assert m["forks"]["end"] == m["none"]["end"] > 0
    assert m["none"]["replays"] > 0 and m["forks"]["replays"] <= m["none"]["replays"]
