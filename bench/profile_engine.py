"""Where the explorer's time goes: cProfile of a lesson run to its end, in its worker thread.

The plain loop runs first (warm-up and reference), then one explorer run under the
profiler; the functions with the most time of their own are printed. cProfile slows
Python code more than torch's kernels, so read the ranking, not the totals.

    python bench/profile_engine.py [--lesson custom_module] [--iterations 200]
        [--device cpu] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from app.engine import tracer
from app.engine.session import Session
from app.lessons.plain import run_plain
from app.lessons.registry import get_lesson


def profile(lesson_id: str, iterations: int, device: str | None, top: int) -> None:
    lesson = get_lesson(lesson_id)
    config: dict[str, Any] = {**lesson.defaults, "iterations": iterations}
    if device:
        config["device"] = device
    run_plain(lesson_id, config)
    Session(id="warm", lesson=lesson, config=config).close()
    started = time.perf_counter()
    run_plain(lesson_id, config)
    print(f"plain loop: {(time.perf_counter() - started) * 1e3:.0f} ms")

    profiler = cProfile.Profile()
    execute = tracer.Run._execute

    def profiled(run: tracer.Run) -> bool:
        profiler.enable()
        try:
            return execute(run)
        finally:
            profiler.disable()

    tracer.Run._execute = profiled  # type: ignore[method-assign,assignment]
    try:
        session = Session(id="profiled", lesson=lesson, config=config)
        started = time.perf_counter()
        session.step(by="end")
        print(f"explorer under cProfile: {(time.perf_counter() - started) * 1e3:.0f} ms")
        session.close()
    finally:
        tracer.Run._execute = execute  # type: ignore[method-assign,assignment]
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="custom_module")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--device", default=None)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    profile(args.lesson, args.iterations, args.device, args.top)


if __name__ == "__main__":
    main()
