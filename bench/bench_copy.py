"""A copy of the run at cursor k: a fork of the paused program vs a replay to k.

`Run.copy` forks in the program's own thread, so the child holds the program exactly as
it stands (copy-on-write); a replay runs the program again from its start to k. Both are
timed here side by side, alternated, on `custom_module` at seed sizes, paused in the
middle of a 500-iteration run; plus a copy that runs on to the end of its iteration and
returns the graph's structure there (the layout's look-ahead, `Session.ahead`).

Like a session host, the measuring process runs torch with one intra-op thread and one
BLAS/OpenMP thread (a fork of a process whose OpenMP pool has run hangs): `measure()`
starts it so, with `python bench/bench_copy.py --json`.

Run: .venv/bin/python bench/bench_copy.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def measure(repeat: int = 9) -> dict[str, Any]:
    """The figures of `_measure_here`, measured in a process set up as a host is."""
    env = {**os.environ, **ONE_THREAD}
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--json", "--repeat", str(repeat)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _measure_here(repeat: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from app.engine.layout import structure
    from app.engine.lookahead import structure_after
    from app.engine.session import Session
    from app.lessons.registry import get_lesson

    lesson = get_lesson("custom_module")
    session = Session(id="bench", lesson=lesson, config={**lesson.defaults, "iterations": 500})
    try:
        session.step(by="iteration", count=250)
        session.step(by="event", count=20)  # into the middle iteration's forward pass
        run = session._run  # the program itself, paused at cursor k
        k, iteration = run.cursor, run.iteration
        forks, aheads, replays = [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            assert run.copy(lambda copy: copy.cursor, 10.0) == k
            forks.append(time.perf_counter() - started)
            started = time.perf_counter()
            found = run.copy(lambda copy: structure_after(copy, iteration), 10.0)
            aheads.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = session.new_run()
            again.advance("event", k)
            replays.append(time.perf_counter() - started)
            assert again.cursor == k
            assert len(found["nodes"]) >= len(structure(session.graph())["nodes"]) > 0
            again.close()
        assert run.cursor == k  # the copies moved only themselves
    finally:
        session.close()
    fork, ahead, replay = (statistics.median(xs) for xs in (forks, aheads, replays))
    return {"cursor": k, "fork": fork, "ahead": ahead, "replay": replay, "ratio": replay / fork}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(_measure_here(args.repeat)))
        return
    m = measure(args.repeat)
    print(f"custom_module, seed sizes, paused at cursor {m['cursor']} (median of {args.repeat})")
    print(f"  a copy by fork:                        {m['fork'] * 1e3:8.1f} ms")
    print(f"  a copy that looks its iteration ahead: {m['ahead'] * 1e3:8.1f} ms")
    print(f"  a replay to the same cursor:           {m['replay'] * 1e3:8.1f} ms")
    print(f"  replay ÷ fork: {m['ratio']:.0f}×")


if __name__ == "__main__":
    main()
