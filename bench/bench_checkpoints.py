"""Checkpoints as forks, through real session hosts: with them vs without any.

Two stores side by side, each with its own zygote and hosts: one keeps a CPU session's
checkpoints (forks of its program: kept as a long walk passes, the program a move back
leaves, those built while idle; a move back hands the session over to a successor
forked from the nearest, app.engine.family), the other keeps none (every move back
replays from the start). Each runs `custom_module` at seed sizes to the end, then makes
the same random seeks at once, with no idle time between them (so only the forks taken
on the way and those left behind serve). Alternated, `--repeat` times.

Run: .venv/bin/python bench/bench_checkpoints.py [--repeat N] [--iterations N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.engine.hosts import Hosts  # noqa: E402
from app.engine.records import SQLiteRecords  # noqa: E402
from app.engine.store import HostLimits, SessionStore  # noqa: E402
from app.lessons.config import Limits, resolve_config  # noqa: E402
from app.lessons.registry import get_lesson  # noqa: E402
from app.settings import Settings  # noqa: E402

CAPS = {"hosts": 16, "bytes": 1 << 40, "cuda_hosts": 1}
SEEKS = 12


def _store(folder: Path, checkpoints: int) -> SessionStore:
    hosts = Hosts(folder / "hosts", caps=CAPS, answer_timeout_s=120.0)
    limits = replace(HostLimits.of(Settings()), checkpoints=checkpoints)
    return SessionStore(
        SQLiteRecords(folder / "sessions.db"), hosts, limits=limits, max_sessions=64, ttl_s=3600
    )


def _one(store: SessionStore, iterations: int, seed: int) -> dict[str, Any]:
    lesson = get_lesson("custom_module")
    config = resolve_config(
        lesson, {"iterations": iterations}, limits=Limits(max_session_bytes=1 << 40)
    )
    session_id = store.create(lesson=lesson, config=config)["id"]
    store.state(session_id)  # the host started: not timed
    started = time.perf_counter()
    end = store.step(session_id, by="end", count=1)["cursor"]
    walked = time.perf_counter() - started
    forks = len(store.ping(session_id)["forks"])
    rng = random.Random(seed)
    seeks = []
    for _ in range(SEEKS):
        target = rng.randrange(end)
        started = time.perf_counter()
        assert store.seek(session_id, cursor=target)["cursor"] == target
        seeks.append(time.perf_counter() - started)
    ping = store.ping(session_id)
    private = _family_uss(ping["pid"])
    store.delete(session_id)
    return {
        "uss": private,
        "end": end,
        "walk": walked,
        "forks_on_the_way": forks,
        "seeks": seeks,
        "replays": ping["replays"],
    }


def _family_uss(pid: int) -> float:
    """The private memory (USS, bytes) of every process of the session's family: its
    process group (app.engine.family)."""
    import psutil

    group = os.getpgid(pid)
    total = 0
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group:
                total += process.memory_full_info().uss
        except (psutil.Error, ProcessLookupError):
            continue
    return total


def measure(repeat: int = 3, iterations: int = 500) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as top:
        stores = {
            "forks": _store(Path(top) / "forks", Settings().checkpoints),
            "none": _store(Path(top) / "none", 0),
        }
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in stores}
        try:
            for round_ in range(repeat):
                for name, store in stores.items():
                    found[name].append(_one(store, iterations, seed=round_))
        finally:
            for store in stores.values():
                store.close()
    result: dict[str, Any] = {"iterations": iterations, "repeat": repeat, "seeks": SEEKS}
    for name, runs in found.items():
        result[name] = {
            "end": runs[0]["end"],
            "walk": statistics.median(r["walk"] for r in runs),
            "forks_on_the_way": statistics.median(r["forks_on_the_way"] for r in runs),
            "seek_median": statistics.median(s for r in runs for s in r["seeks"]),
            "seeks_total": statistics.median(sum(r["seeks"]) for r in runs),
            "replays": statistics.median(r["replays"] for r in runs),
            "uss": statistics.median(r["uss"] for r in runs),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    m = measure(args.repeat, args.iterations)
    forks, none = m["forks"], m["none"]
    print(
        f"custom_module, seed sizes, {m['iterations']} iterations (cursor {forks['end']}); "
        f"median of {m['repeat']} rounds"
    )
    print(f"{'':40} {'forked checkpoints':>20} {'none':>12}")
    print(f"{'run to end (ms)':40} {forks['walk'] * 1e3:20.0f} {none['walk'] * 1e3:12.0f}")
    print(f"{'  forks kept on the way':40} {forks['forks_on_the_way']:20.0f} {0:12d}")
    label = f"{m['seeks']} seeks at once, in all (ms)"
    print(f"{label:40} {forks['seeks_total'] * 1e3:20.0f} {none['seeks_total'] * 1e3:12.0f}")
    print(
        f"{'  a seek, median (ms)':40} {forks['seek_median'] * 1e3:20.1f} "
        f"{none['seek_median'] * 1e3:12.1f}"
    )
    print(f"{'  replays from the start':40} {forks['replays']:20.0f} {none['replays']:12.0f}")
    print(
        f"{'private memory of its processes (MiB)':40} {forks['uss'] / 2**20:20.1f} "
        f"{none['uss'] / 2**20:12.1f}"
    )
    print(
        f"run to end, forks ÷ none: {forks['walk'] / none['walk']:.2f}×; "
        f"seeks, none ÷ forks: {none['seeks_total'] / forks['seeks_total']:.2f}×"
    )


if __name__ == "__main__":
    main()
