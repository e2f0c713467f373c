"""Engine overhead: a lesson run to the end through the explorer vs the plain program.

Both run in this process, alternated, and the best of several repetitions of
each is compared, so the ratio is measured side by side on the same machine
state. Also prints the cost of one `event` step and of seeking back.

    python bench/bench_engine.py [--lesson custom_module] [--iterations 500]
        [--device cpu] [--N 64 --D_in 1000 --H 100 --D_out 10] [--repeat 5]

`measure()` returns the same figures as numbers (bench_all.py uses it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from typing import Any

from app.engine.checkpoints import settle
from app.engine.session import Session
from app.lessons.plain import run_plain
from app.lessons.registry import get_lesson

TARGET_RATIO = 1.3
PAGE_CHUNK = 2000  # events per step of the page's `Run to end` (its first; then tuned)
PRESSES = 40  # presses of "Step back" timed after a jump back


def _config(lesson_id: str, overrides: Mapping[str, object]) -> dict[str, object]:
    config = dict(get_lesson(lesson_id).defaults)
    config.update({name: value for name, value in overrides.items() if value is not None})
    return config


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure(
    *,
    lesson: str = "custom_module",
    iterations: int = 500,
    device: str | None = None,
    dims: Mapping[str, int | None] | None = None,
    repeat: int = 5,
    steps: int = 2000,
) -> dict[str, Any]:
    """Time `lesson` run plainly and through the explorer, alternated; return the figures.

    Times are in seconds: `plain` and `explorer` are the best of `repeat` runs each,
    `step` the median of up to `steps` single `event` steps, `seek_back` one seek from
    the end back to the middle, `after_jump` the median of the PRESSES step backs after it.
    """
    program = get_lesson(lesson)
    config = _config(lesson, {**(dims or {}), "iterations": iterations, "device": device})
    on = str(config["device"])

    def plain() -> float:
        _sync(on)
        start = time.perf_counter()
        run_plain(program.id, config)
        _sync(on)
        return time.perf_counter() - start

    def explorer() -> tuple[float, int]:
        session = Session(id="bench", lesson=program, config=config)
        _sync(on)
        start = time.perf_counter()
        session.step(by="end")
        _sync(on)
        elapsed = time.perf_counter() - start
        events = session.cursor
        session.close()
        return elapsed, events

    plain()
    explorer()  # warm up both paths (imports, allocator, worker thread)
    plain_times, explorer_times, events = [], [], 0
    for _ in range(repeat):
        plain_times.append(plain())
        elapsed, events = explorer()
        explorer_times.append(elapsed)

    # Without checkpoints: a seek back replays from the start.
    session = Session(id="bench", lesson=program, config=config, checkpoints=0)
    step_times, node_times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        session.step(by="event")
        taken = time.perf_counter() - start
        step_times.append(taken)
        if session.state()["event"]["kind"] == "node":  # as the API does after every step
            node_times.append(time.perf_counter() - start)  # the ledger is written there
        if session.done:
            break
    backs = []
    for _ in range(50):
        start = time.perf_counter()
        session.seek(cursor=session.cursor - 1)
        session.state()
        backs.append(time.perf_counter() - start)
    middle = events // 2
    session.step(by="end")
    start = time.perf_counter()
    session.seek(cursor=middle)
    session.state()
    session.graph()
    seek_back = time.perf_counter() - start
    # "Step back" pressed again and again after that jump: the replay kept these.
    after_jump = []
    for _ in range(PRESSES):
        start = time.perf_counter()
        session.seek(cursor=session.cursor - 1)
        session.state()
        session.graph()
        after_jump.append(time.perf_counter() - start)
    session.close()
    checkpointed = _with_checkpoints(program, config, events)
    paged = _as_the_page_runs(program, config)

    best_plain, best_explorer = min(plain_times), min(explorer_times)
    return {
        "lesson": program.id,
        "device": on,
        "config": config,
        "repeat": repeat,
        "events": events,
        "plain": best_plain,
        "explorer": best_explorer,
        "ratio": best_explorer / best_plain,
        "steps": len(step_times),
        "step": statistics.median(step_times),
        "node_step": statistics.median(node_times) if node_times else 0.0,
        "node_steps": len(node_times),
        "middle": middle,
        "seek_back": seek_back,
        "step_back": statistics.median(backs),
        "presses": PRESSES,
        "after_jump": statistics.median(after_jump),
        "after_jump_max": max(after_jump),
        **checkpointed,
        **paged,
    }


def _as_the_page_runs(program: Any, config: dict[str, object]) -> dict[str, Any]:
    """`Run to end` as the page does it (event steps of PAGE_CHUNK), then `Step back`."""
    session = Session(id="bench", lesson=program, config=config, checkpoints=0)
    start = time.perf_counter()
    while not session.done:
        session.step(by="event", count=PAGE_CHUNK)
    paged = time.perf_counter() - start
    back = _view(session, session.cursor - 1)
    session.close()
    return {"paged": paged, "paged_back": back}


def _view(session: Session, cursor: int) -> float:
    """Seconds to seek to `cursor` and show its state and graph."""
    start = time.perf_counter()
    session.seek(cursor=cursor)
    session.state()
    session.graph()
    return time.perf_counter() - start


def _with_checkpoints(program: Any, config: dict[str, object], events: int) -> dict[str, Any]:
    """Seeks back once the checkpoints the store builds while idle are there."""
    session = Session(id="bench", lesson=program, config=config)
    session.step(by="end")
    start = time.perf_counter()
    while (target := session.checkpoint_target()) is not None:
        run = session.new_run()
        run.advance("event", target)
        settle(run)  # as the host does: a run paused inside a CUDA backward is not kept
        if not session.add_checkpoint(run):
            break
    built = time.perf_counter() - start
    kept = session.checkpoints
    figures = {
        "checkpoints": kept,
        "checkpoints_built": built,
        "ck_step_back": _view(session, events - 1),
        "ck_middle": _view(session, events // 2),
        "ck_quarter": _view(session, events // 4),
    }
    start = time.perf_counter()
    session.step(by="end")  # goes on with the program kept at the end
    figures["ck_end_again"] = time.perf_counter() - start
    figures["ck_replays"] = session.replays
    session.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lesson", default="custom_module")
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--device", default=None)
    for dim in ("N", "D_in", "H", "D_out"):
        parser.add_argument(f"--{dim}", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    dims = {dim: getattr(args, dim) for dim in ("N", "D_in", "H", "D_out")}
    m = measure(
        lesson=args.lesson,
        iterations=args.iterations,
        device=args.device,
        dims=dims,
        repeat=args.repeat,
    )
    config, repeat = m["config"], m["repeat"]
    dims_text = ", ".join(f"{k}={config[k]}" for k in ("N", "D_in", "H", "D_out", "iterations"))
    print(
        f"engine benchmark: {m['lesson']} on {m['device']} ({dims_text}), "
        f"{m['events']} events per run"
    )
    rows = [
        (f"plain program, best of {repeat}", f"{m['plain'] * 1e3:10.1f} ms", ""),
        (f"explorer, run to end, best of {repeat}", f"{m['explorer'] * 1e3:10.1f} ms", ""),
        ("ratio explorer / plain", f"{m['ratio']:11.2f}x", f"<= {TARGET_RATIO}x"),
        (f"one event step (median of {m['steps']})", f"{m['step'] * 1e6:10.1f} us", ""),
        (
            f"one node event step + its state, ledger (median of {m['node_steps']})",
            f"{m['node_step'] * 1e6:10.1f} us",
            "",
        ),
        ("step back + state (median of 50)", f"{m['step_back'] * 1e6:10.1f} us", ""),
        (
            f"no checkpoints: seek to the middle (cursor {m['middle']}) + state, graph",
            f"{m['seek_back'] * 1e3:10.1f} ms",
            "",
        ),
        (
            f"then step back + state, graph (median of {m['presses']})",
            f"{m['after_jump'] * 1e6:10.1f} us",
            f"max {m['after_jump_max'] * 1e3:.1f} ms",
        ),
        (
            f"run to end as the page does (steps of {PAGE_CHUNK} events)",
            f"{m['paged'] * 1e3:10.1f} ms",
            f"{m['paged'] / m['plain']:.2f}x plain",
        ),
        (
            "then step back + state, graph (views of the last iteration)",
            f"{m['paged_back'] * 1e3:10.1f} ms",
            "",
        ),
        (
            f"{len(m['checkpoints'])} checkpoints built while idle (all in turn)",
            f"{m['checkpoints_built'] * 1e3:10.1f} ms",
            "cursors " + ", ".join(map(str, m["checkpoints"])),
        ),
        (
            "with them: step back from the end + state, graph",
            f"{m['ck_step_back'] * 1e3:10.1f} ms",
            "",
        ),
        (
            "with them: seek to the middle + state, graph",
            f"{m['ck_middle'] * 1e3:10.1f} ms",
            f"{m['seek_back'] / m['ck_middle']:.1f}x faster",
        ),
        ("with them: seek to a quarter + state, graph", f"{m['ck_quarter'] * 1e3:10.1f} ms", ""),
        (
            "with them: run to end again",
            f"{m['ck_end_again'] * 1e3:10.1f} ms",
            f"replays {m['ck_replays']}",
        ),
    ]
    print(f"{'measure':62s} {'value':>13s}  target")
    for name, value, target in rows:
        print(f"{name:62s} {value:>13s}  {target}")


if __name__ == "__main__":
    main()
