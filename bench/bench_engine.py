"""Engine overhead: a lesson run to the end through the explorer vs the plain program.

Both run in this process, alternated, and the best of several repetitions of
each is compared, so the ratio is measured side by side on the same machine
state. Also prints the cost of one `event` step and of seeking back.

    python bench/bench_engine.py [--lesson custom_module] [--iterations 500]
        [--device cpu] [--N 64 --D_in 1000 --H 100 --D_out 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from app.engine.session import Session
from app.lessons.plain import run_plain
from app.lessons.registry import get_lesson

TARGET_RATIO = 1.3


def _config(args: argparse.Namespace) -> dict[str, object]:
    lesson = get_lesson(args.lesson)
    config = dict(lesson.defaults)
    for name in ("N", "D_in", "H", "D_out", "iterations", "device"):
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    return config


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lesson", default="custom_module")
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--device", default=None)
    for dim in ("N", "D_in", "H", "D_out"):
        parser.add_argument(f"--{dim}", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lesson = get_lesson(args.lesson)
    config = _config(args)
    device = str(config["device"])

    def plain() -> float:
        _sync(device)
        start = time.perf_counter()
        run_plain(lesson.id, config)
        _sync(device)
        return time.perf_counter() - start

    def explorer() -> tuple[float, int]:
        session = Session(id="bench", lesson=lesson, config=config)
        _sync(device)
        start = time.perf_counter()
        session.step(by="end")
        _sync(device)
        elapsed = time.perf_counter() - start
        events = session.cursor
        session.close()
        return elapsed, events

    plain()
    explorer()  # warm up both paths (imports, allocator, worker thread)
    plain_times, explorer_times, events = [], [], 0
    for _ in range(args.repeat):
        plain_times.append(plain())
        elapsed, events = explorer()
        explorer_times.append(elapsed)

    session = Session(id="bench", lesson=lesson, config=config)
    step_times = []
    for _ in range(2000):
        start = time.perf_counter()
        session.step(by="event")
        step_times.append(time.perf_counter() - start)
        if session.done:
            break
    middle = events // 2
    session.step(by="end")
    start = time.perf_counter()
    session.seek(cursor=middle)
    seek_back = time.perf_counter() - start
    session.close()

    best_plain, best_explorer = min(plain_times), min(explorer_times)
    ratio = best_explorer / best_plain
    dims = ", ".join(f"{k}={config[k]}" for k in ("N", "D_in", "H", "D_out", "iterations"))
    print(f"engine benchmark: {lesson.id} on {device} ({dims}), {events} events per run")
    rows = [
        (f"plain program, best of {args.repeat}", f"{best_plain * 1e3:10.1f} ms", ""),
        (f"explorer, run to end, best of {args.repeat}", f"{best_explorer * 1e3:10.1f} ms", ""),
        ("ratio explorer / plain", f"{ratio:11.2f}x", f"<= {TARGET_RATIO}x"),
        (
            f"one event step (median of {len(step_times)})",
            f"{statistics.median(step_times) * 1e6:10.1f} us",
            "",
        ),
        (f"seek back to the middle (cursor {middle})", f"{seek_back * 1e3:10.1f} ms", ""),
    ]
    print(f"{'measure':44s} {'value':>13s}  target")
    for name, value, target in rows:
        print(f"{name:44s} {value:>13s}  {target}")


if __name__ == "__main__":
    main()
