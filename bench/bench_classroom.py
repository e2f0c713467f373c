"""The classroom (DESIGN.md §8): learners stepping while others run lessons to the end.

On a real uvicorn with the deployment's WORKERS worker processes, each session in its
own host: LEARNERS learners each step their own `autograd` session by `event` with
THINK_S (±50%) between steps, while RUNNERS others run `optim` sessions to the end the
way the page does (event steps of about 250 ms each, one after the other). Reported:
the learners' p50/p95 step latency and errors, next to the same learner stepping alone
on the same server just before (its baseline); the target is p95 ≤ 250 ms on 2 cores
with no errors. Each client connects from its own loopback address (127.0.0.2, …).

The same classroom runs first on a server whose long runs stay at normal priority
(`AGX_BACKGROUND_NICE=0`), for the learners' p95 side by side.

Also: a session's first state through its host (create, then the first step, which
starts the host and forks it from the zygote) next to the same through a Session made
in this process (what a worker did before hosts), and the private memory (USS) a live
host adds at the seed sizes.

Run: .venv/bin/python bench/bench_classroom.py [--learners 30] [--runners 3] [--seconds 20]
(`measure()` returns the figures, for bench_all.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import WORKERS, start_server
from bench_load import _Connection

from app.lessons.registry import get_lesson

TARGET_P95_MS = 250.0
LEARNERS = 30
RUNNERS = 3
THINK_S = 1.0
SECONDS = 20.0
_LEARNER = {"lesson": "autograd", "config": {"iterations": 500}}
_RUNNER = {"lesson": "optim", "config": {"iterations": 500}}
_SLICE_S = 0.25


class _Client(_Connection):
    def __init__(self, url: str, address: str) -> None:
        super().__init__(url)
        self.address = address

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, local_addr=(self.address, 0)
        )

    async def create(self, body: dict[str, Any]) -> str:
        status, payload = await self.request("POST", "/api/sessions", body)
        assert status == 201, payload
        return f"/api/sessions/{json.loads(payload)['id']}"


async def _learner(client: _Client, stop: float, think_s: float, out: dict[str, list]) -> None:
    path = await client.create(_LEARNER)
    await client.request("POST", f"{path}/step", {"by": "event"})  # its host starts
    while time.perf_counter() < stop:
        await asyncio.sleep(think_s * random.uniform(0.5, 1.5))
        started = time.perf_counter()
        status, payload = await client.request("POST", f"{path}/step", {"by": "event"})
        out["latency"].append(time.perf_counter() - started)
        if status != 200:
            out["errors"].append(status)
        elif json.loads(payload)["done"]:
            await client.request("POST", f"{path}/seek", {"cursor": 0})
    await client.request("DELETE", path)


async def _runner(client: _Client, stop: float, out: dict[str, list]) -> None:
    while time.perf_counter() < stop:
        path = await client.create(_RUNNER)
        count, done = 2000, False
        while not done and time.perf_counter() < stop:
            started = time.perf_counter()
            status, payload = await client.request(
                "POST", f"{path}/step", {"by": "event", "count": count}
            )
            took = time.perf_counter() - started
            if status != 200:
                out["runner_errors"].append(status)
                break
            done = json.loads(payload)["done"]
            out["runner_events"].append(count)
            count = max(50, min(200_000, round(count * _SLICE_S / max(took, 1e-3))))
        await client.request("DELETE", path)


async def _classroom(url: str, learners: int, runners: int, seconds: float) -> dict[str, list]:
    out: dict[str, list] = {"latency": [], "errors": [], "runner_errors": [], "runner_events": []}
    clients = [_Client(url, f"127.0.0.{2 + i}") for i in range(learners + runners)]
    for client in clients:
        await client.open()
    stop = time.perf_counter() + seconds
    await asyncio.gather(
        *(_learner(c, stop, THINK_S, out) for c in clients[:learners]),
        *(_runner(c, stop, out) for c in clients[learners:]),
    )
    for client in clients:
        await client.close()
    return out


async def _alone(url: str, steps: int) -> list[float]:
    client = _Client(url, "127.0.0.250")
    await client.open()
    out: dict[str, list] = {"latency": [], "errors": []}
    path = await client.create(_LEARNER)
    await client.request("POST", f"{path}/step", {"by": "event"})
    for _ in range(steps):
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        status, _ = await client.request("POST", f"{path}/step", {"by": "event"})
        out["latency"].append(time.perf_counter() - started)
        assert status == 200
    await client.request("DELETE", path)
    await client.close()
    return out["latency"]


async def _first_states(url: str, count: int) -> tuple[list[float], list[float]]:
    """Create a session and take its first step (its host starts), for the lesson and for
    an edit of it (its host confined by the sandbox first), alternated: both lists."""
    client = _Client(url, "127.0.0.251")
    await client.open()
    edit = {**_LEARNER, "source": get_lesson("autograd").source + "\n# edited\n"}
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(count):
        for body, out in ((_LEARNER, times[0]), (edit, times[1])):
            started = time.perf_counter()
            path = await client.create(body)
            status, _ = await client.request("POST", f"{path}/step", {"by": "event"})
            out.append(time.perf_counter() - started)
            assert status == 200
            await client.request("DELETE", path)
    await client.close()
    return times


def _in_process_first_states(count: int) -> list[float]:
    from app.engine.session import Session
    from app.lessons.config import Limits, resolve_config

    lesson = get_lesson("autograd")
    config = resolve_config(lesson, _LEARNER["config"], limits=Limits())
    times = []
    for i in range(count):
        started = time.perf_counter()
        session = Session(id=str(i), lesson=lesson, config=config)
        session.state()
        session.step(by="event")
        session.state()
        times.append(time.perf_counter() - started)
        session.close()
    return times


def _hosts(server: psutil.Process) -> list[psutil.Process]:
    tree = server.children(recursive=True)
    zygotes = [p for p in tree if "app.engine.zygote" in " ".join(p.cmdline())]
    return [host for zygote in zygotes for host in zygote.children()]


async def _host_memory(url: str, server: psutil.Process, sessions: int) -> float:
    """USS of a live host (seed sizes, through its first iteration), median over hosts."""
    client = _Client(url, "127.0.0.252")
    await client.open()
    paths = [await client.create(_LEARNER) for _ in range(sessions)]
    for path in paths:
        await client.request("POST", f"{path}/step", {"by": "iteration", "count": 2})
    uss = [host.memory_full_info().uss for host in _hosts(server)]
    for path in paths:
        await client.request("DELETE", path)
    await client.close()
    return statistics.median(uss)


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * (len(ordered) - 1)))] if ordered else 0.0


def measure(
    *, learners: int = LEARNERS, runners: int = RUNNERS, seconds: float = SECONDS
) -> dict[str, Any]:
    # The same classroom with the long runs left at normal priority, just before.
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir, {"AGX_BACKGROUND_NICE": "0"}, workers=WORKERS)
        try:
            flat = asyncio.run(_classroom(url, learners, runners, seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir, workers=WORKERS)
        try:
            alone = asyncio.run(_alone(url, 60))
            room = asyncio.run(_classroom(url, learners, runners, seconds))
            firsts, edited_firsts = asyncio.run(_first_states(url, 10))
            memory = asyncio.run(_host_memory(url, psutil.Process(server.pid), 4))
        finally:
            server.terminate()
            server.wait(timeout=30)
    local = _in_process_first_states(10)
    return {
        "learners": learners,
        "runners": runners,
        "seconds": seconds,
        "alone_p50": _p(alone, 0.5),
        "alone_p95": _p(alone, 0.95),
        "p50": _p(room["latency"], 0.5),
        "p95": _p(room["latency"], 0.95),
        "steps": len(room["latency"]),
        "errors": len(room["errors"]) + len(room["runner_errors"]),
        "runner_events": sum(room["runner_events"]),
        "flat_p50": _p(flat["latency"], 0.5),
        "flat_p95": _p(flat["latency"], 0.95),
        "flat_errors": len(flat["errors"]) + len(flat["runner_errors"]),
        "flat_runner_events": sum(flat["runner_events"]),
        "first_state": statistics.median(firsts),
        "first_state_edited": statistics.median(edited_firsts),
        "first_state_local": statistics.median(local),
        "host_uss": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=LEARNERS)
    parser.add_argument("--runners", type=int, default=RUNNERS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    m = measure(learners=args.learners, runners=args.runners, seconds=args.seconds)
    print(
        f"classroom: {m['learners']} learners (1 s think time) + {m['runners']} running to "
        f"the end, {m['seconds']:g} s: {m['steps']} steps, p50 {m['p50'] * 1e3:.1f} ms, "
        f"p95 {m['p95'] * 1e3:.1f} ms (target ≤ {TARGET_P95_MS:g} ms), {m['errors']} errors; "
        f"one learner alone p50 {m['alone_p50'] * 1e3:.1f} ms, p95 {m['alone_p95'] * 1e3:.1f} "
        f"ms; runners ran {m['runner_events']} events"
    )
    print(
        f"  the same with long runs at normal priority (AGX_BACKGROUND_NICE=0), just before: "
        f"p50 {m['flat_p50'] * 1e3:.1f} ms, p95 {m['flat_p95'] * 1e3:.1f} ms, "
        f"{m['flat_errors']} errors, runners ran {m['flat_runner_events']} events; "
        f"learners' p95 niced ÷ flat {m['p95'] / max(m['flat_p95'], 1e-9):.2f}x"
    )
    print(
        f"first state through a new host {m['first_state'] * 1e3:.1f} ms (an edit, its host "
        f"sandboxed: {m['first_state_edited'] * 1e3:.1f} ms) vs a Session in this process "
        f"{m['first_state_local'] * 1e3:.1f} ms; a live host's private memory "
        f"{m['host_uss'] / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
