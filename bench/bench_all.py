"""Every benchmark of DESIGN.md §8 in one run, printed as one table of figures and targets.

Runs, one after the other on this machine: the engine (bench_engine.py: a lesson run to
its end through the explorer vs the plain program, alternated), the REST round trips
(bench_api.py: a step vs a no-op on a real uvicorn), forked checkpoints through real
hosts (bench_checkpoints.py: a run to the end and seeks back, with them vs with none),
the graph layout cache (bench_render.py: a hit, and a miss vs a bare `dot -Tsvg`),
concurrency and memory (bench_load.py: 8 clients vs 1, private memory per session), the
classroom (bench_classroom.py: 30 learners while 3 run lessons to the end), and the
browser (bench_browser.py: click `Step` until repainted; skipped where Chromium or
Playwright is missing). Each script's own comparison is side by side (alternated or
interleaved), so a busy machine slows both sides of a ratio alike.

Run: make bench, or .venv/bin/python bench/bench_all.py [--no-browser]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api
import bench_checkpoints
import bench_classroom
import bench_copy
import bench_engine
import bench_load
import bench_render

_MIB = 1024**2

Row = tuple[str, str, str, str]  # measure, value, target, verdict


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def engine_rows() -> list[Row]:
    m = bench_engine.measure(lesson="custom_module", iterations=500, repeat=7, steps=200)
    return [
        (
            f"engine: run to end ÷ plain loop ({m['lesson']}, seed sizes, 500 it.)",
            f"{m['ratio']:.2f}× ({m['explorer'] * 1e3:.0f} / {m['plain'] * 1e3:.0f} ms)",
            f"≤ {bench_engine.TARGET_RATIO:g}×",
            _verdict(m["ratio"] <= bench_engine.TARGET_RATIO),
        ),
        (
            "engine: one event step + state; one onto a backward node (its ledger written)",
            f"{m['step'] * 1e6:.0f} µs; {m['node_step'] * 1e6:.0f} µs",
            "–",
            "–",
        ),
        (
            f"engine: seek back to the middle (cursor {m['middle']}), replayed from the start",
            f"{m['seek_back'] * 1e3:.0f} ms",
            "–",
            "–",
        ),
        (
            f"engine: then step back, {m['presses']} presses (median, max)",
            f"{m['after_jump'] * 1e6:.0f} µs, {m['after_jump_max'] * 1e3:.2f} ms",
            "–",
            "–",
        ),
        (
            "engine: run to end as the page does (event steps) ÷ plain; then step back",
            f"{m['paged'] / m['plain']:.2f}× ({m['paged'] * 1e3:.0f} ms); "
            f"{m['paged_back'] * 1e3:.1f} ms",
            "–",
            "–",
        ),
        (
            f"engine: {len(m['checkpoints'])} checkpoints built (in the background)",
            f"{m['checkpoints_built'] * 1e3:.0f} ms",
            "–",
            "–",
        ),
        (
            "engine: with them, step back from the end / seek to the middle",
            f"{m['ck_step_back'] * 1e3:.0f} / {m['ck_middle'] * 1e3:.0f} ms",
            "–",
            "–",
        ),
    ]


def checkpoint_rows() -> list[Row]:
    m = bench_checkpoints.measure(repeat=3, iterations=2000)
    forks, none = m["forks"], m["none"]
    return [
        (
            f"hosts: run to end with forked checkpoints ÷ with none (custom_module, "
            f"{m['iterations']} iterations; {forks['forks_on_the_way']:.0f} forks kept on the way)",
            f"{forks['walk'] / none['walk']:.2f}× ({forks['walk'] * 1e3:.0f} / "
            f"{none['walk'] * 1e3:.0f} ms)",
            "–",
            "–",
        ),
        (
            f"hosts: then {m['seeks']} random seeks at once, with none ÷ with forked checkpoints",
            f"{none['seeks_total'] / forks['seeks_total']:.2f}× faster "
            f"({forks['seeks_total'] * 1e3:.0f} / {none['seeks_total'] * 1e3:.0f} ms; median "
            f"{forks['seek_median'] * 1e3:.0f} / {none['seek_median'] * 1e3:.0f} ms)",
            "–",
            "–",
        ),
        (
            "hosts: private memory (USS) of the session's processes then, with forked "
            "checkpoints / with none",
            f"{forks['uss'] / _MIB:.1f} / {none['uss'] / _MIB:.1f} MiB",
            "–",
            "–",
        ),
    ]


def copy_rows() -> list[Row]:
    m = bench_copy.measure()
    return [
        (
            f"engine: a copy of the run at cursor {m['cursor']} by fork ÷ a replay to it "
            "(custom_module, one thread, as in a host)",
            f"{m['replay'] / m['fork']:.0f}× faster ({m['fork'] * 1e3:.1f} / "
            f"{m['replay'] * 1e3:.0f} ms)",
            "–",
            "–",
        ),
        (
            "engine: a copy that looks its iteration ahead (the layout's structure)",
            f"{m['ahead'] * 1e3:.1f} ms",
            "–",
            "–",
        ),
    ]


def api_rows() -> list[Row]:
    m = bench_api.measure(steps=300)
    noop = statistics.median(m["times"]["noop"])
    step = statistics.median(m["times"]["step"])
    return [
        (
            "REST: step {by: event} round trip ÷ no-op (medians)",
            f"{m['step_ratio']:.2f}× ({step:.2f} / {noop:.2f} ms)",
            f"≤ {bench_api.TARGET_STEP_RATIO:g}×",
            _verdict(m["step_ratio"] <= bench_api.TARGET_STEP_RATIO),
        ),
        (
            "REST: graph.svg cache hit, beyond a no-op",
            f"{m['svg_hit']:.2f} ms",
            f"≤ {bench_api.TARGET_SVG_HIT_MS:g} ms",
            _verdict(m["svg_hit"] <= bench_api.TARGET_SVG_HIT_MS),
        ),
    ]


def render_rows() -> list[Row]:
    m = bench_render.measure()
    hit = statistics.median(m["hit"])
    miss, bare = statistics.fmean(m["miss"]), statistics.fmean(m["bare"])
    return [
        (
            f"render: graph.svg cache hit ({m['nodes']}-node graph, median)",
            f"{hit:.2f} ms",
            "≤ 2 ms",
            _verdict(hit <= 2.0),
        ),
        (
            "render: cache miss ÷ bare dot -Tsvg (means)",
            f"{m['ratio']:.2f}× ({miss:.1f} / {bare:.1f} ms)",
            "≤ 1.5×",
            _verdict(m["ratio"] <= 1.5),
        ),
    ]


def load_rows() -> list[Row]:
    t = bench_load.measure_throughput()
    m = bench_load.measure_memory()
    c = m["limit_config"]
    dims = "×".join(str(c[k]) for k in ("N", "D_in", "H", "D_out"))
    return [
        (
            f"load: {t['clients']} clients ÷ 1, steps/s, {t['workers']} server processes",
            f"{t['ratio']:.2f}× ({t['many']:.0f} / {t['one']:.0f} per s), {t['errors']} errors; "
            f"server CPU {t['cpu_one']:.2f} → {t['cpu_many']:.2f} s/s",
            f"≥ {bench_load.TARGET_RATIO:g}×, no errors",
            _verdict(t["ratio"] >= bench_load.TARGET_RATIO and not t["errors"]),
        ),
        (
            f"memory: PSS per live session, seed sizes ({m['sessions']} sessions)",
            f"{m['per_session'] / _MIB:.2f} MiB",
            f"(estimate {m['seed_estimate'] / _MIB:.2f} MiB)",
            "–",
        ),
        (
            f"memory: one session at the budget's limit ({dims}), peak PSS",
            f"{m['limit_peak'] / _MIB:.0f} MiB (held {m['limit_held'] / _MIB:.0f})",
            f"≤ budget {m['budget'] / _MIB:.0f} MiB",
            _verdict(m["limit_peak"] <= m["budget"]),
        ),
        (
            "memory: given back by DELETE of that session",
            f"{m['limit_released'] / _MIB:.0f} MiB",
            f"≈ held {m['limit_held'] / _MIB:.0f} MiB",
            _verdict(m["limit_released"] >= 0.9 * m["limit_held"]),
        ),
    ]


def classroom_rows() -> list[Row]:
    m = bench_classroom.measure()
    return [
        (
            f"classroom: {m['learners']} learners (1 s think) + {m['runners']} runs to the "
            "end, step p95 (÷ one learner alone)",
            f"{m['p95'] * 1e3:.0f} ms (p50 {m['p50'] * 1e3:.0f}; alone p95 "
            f"{m['alone_p95'] * 1e3:.0f} ms, {m['p95'] / m['alone_p95']:.1f}×), "
            f"{m['errors']} errors",
            f"≤ {bench_classroom.TARGET_P95_MS:g} ms, no errors",
            _verdict(m["p95"] * 1e3 <= bench_classroom.TARGET_P95_MS and not m["errors"]),
        ),
        (
            "classroom: learners' step p95 with the long runs niced ÷ at normal priority "
            "(AGX_BACKGROUND_NICE 10 vs 0, run just before)",
            f"{m['p95'] / max(m['flat_p95'], 1e-9):.2f}× ({m['p95'] * 1e3:.0f} / "
            f"{m['flat_p95'] * 1e3:.0f} ms); runners' events {m['runner_events']} / "
            f"{m['flat_runner_events']}",
            "≤ 1×",
            _verdict(m["p95"] <= m["flat_p95"]),
        ),
        (
            "hosts: a session's first state through a new host ÷ a Session in-process",
            f"{m['first_state'] * 1e3:.1f} ms / {m['first_state_local'] * 1e3:.1f} ms",
            "–",
            "–",
        ),
        (
            "sandbox: an edit's first state (host confined: seccomp, Landlock, rlimits) "
            "÷ a lesson's",
            f"{m['first_state_edited'] / m['first_state']:.2f}× "
            f"({m['first_state_edited'] * 1e3:.1f} / {m['first_state'] * 1e3:.1f} ms)",
            "–",
            "–",
        ),
        (
            "hosts: private memory (USS) of a live host, seed sizes",
            f"{m['host_uss'] / _MIB:.1f} MiB",
            "–",
            "–",
        ),
    ]


def browser_rows() -> list[Row]:
    name = "browser: click Step → graph and variables repainted, p95"
    try:
        import bench_browser
    except ImportError as exc:
        return [(name, f"not run ({exc})", f"≤ {100:g} ms", "–")]
    if not Path(bench_browser.CHROMIUM).exists():
        return [(name, f"not run (no Chromium at {bench_browser.CHROMIUM})", "≤ 100 ms", "–")]
    m = bench_browser.measure(steps=30)
    backs = bench_browser.step_back_after_run(waits=(0.0, 3.0))
    if m["errors"]:
        return [(name, f"page errors: {m['errors'][0][:60]}", "≤ 100 ms", "MISSED")]
    return [
        (
            name,
            f"{m['p95']:.0f} ms (p50 {m['p50']:.0f})",
            f"≤ {bench_browser.TARGET_P95_MS:g} ms",
            _verdict(m["p95"] <= bench_browser.TARGET_P95_MS),
        ),
        (
            "browser: Step back after Run to end (500 it.), pressed at once / after 3 s",
            " / ".join(f"{times[0]:.0f} ms" for times in backs.values()),
            "–",
            "–",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium step")
    args = parser.parse_args()
    parts: list[tuple[str, Callable[[], list[Row]]]] = [
        ("engine", engine_rows),
        ("copies", copy_rows),
        ("checkpoints", checkpoint_rows),
        ("REST", api_rows),
        ("render", render_rows),
        ("load and memory", load_rows),
        ("classroom", classroom_rows),
    ]
    if not args.no_browser:
        parts.append(("browser", browser_rows))

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    failed = False
    for name, measure in parts:
        print(f"measuring {name}…", file=sys.stderr, flush=True)
        try:
            rows += measure()
        except Exception:  # one broken measurement must not hide the others
            failed = True
            traceback.print_exc()
            rows.append((f"{name}: failed (traceback above)", "–", "–", "ERROR"))
    load_after = os.getloadavg()[0]

    print(
        f"\nAutograd Explorer benchmarks: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} → {load_after:.1f}, "
        f"{time.monotonic() - started:.0f} s"
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("measure", "value", "target", "")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
