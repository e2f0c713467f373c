"""Concurrent clients and memory per session, over a real uvicorn on loopback.

Throughput (DESIGN.md §8: ≥ 1.5× with no errors), on a server with the deployment's
WORKERS worker processes: CLIENTS clients, each stepping its own `autograd` session
(seed sizes, 500 iterations) by `event` as fast as answers come, vs one client doing the
same, in alternating rounds of ROUND_S seconds on one server. Each 8-client round is
divided by the 1-client round run just before it (same machine load); the median of
those ratios is reported. Any answer but 200, or a transport error, counts
as an error.

The clients are a minimal HTTP/1.1 client on asyncio streams (one keep-alive connection
each), so that the load generator's own CPU, on the same cores as the server, stays small
next to the server's (an httpx client costs more CPU per request).

Memory: the proportional set size (PSS) of the server's whole process tree (workers,
zygote and the session hosts: each live session is a process of its own; PSS, since
~330 MB of a host's RSS are torch pages it shares with the zygote) before and after
creating SESSIONS `autograd` sessions at the seed sizes and stepping each through its
first iteration, per session; then one session at the memory budget's limit (D_in at
AGX_MAX_DIM's default, H as large as the budget allows), after stepping to its end and
at its peak while stepping, next to the budget and the server's estimate, and what
DELETE gives back.

Run: .venv/bin/python bench/bench_load.py [--clients 8] [--round-s 3] [--rounds 3]
    [--workers 2]
(`measure_throughput()` and `measure_memory()` return the figures, for bench_all.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import WORKERS, start_server

from app.lessons.config import estimate_bytes, estimate_work
from app.lessons.registry import get_lesson
from app.settings import Settings

TARGET_RATIO = 1.5
CLIENTS = 8
ROUND_S = 3.0
ROUNDS = 3
SESSIONS = 8
_MIB = 1024**2
_LONG = {"lesson": "autograd", "config": {"iterations": 500}}


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends JSON and reads whole answers."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self._writer.write(head.encode() + data)
        status = int((await self._reader.readline()).split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)


async def _round(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """Let `clients` clients step their own sessions for `seconds`; count the answers."""
    connections = [_Connection(url) for _ in range(clients)]
    paths = []
    for connection in connections:  # untimed: connect, create, warm up
        await connection.open()
        status, payload = await connection.request("POST", "/api/sessions", _LONG)
        assert status == 201, payload
        path = f"/api/sessions/{json.loads(payload)['id']}"
        for _ in range(10):
            await connection.request("POST", f"{path}/step", {"by": "event"})
        paths.append(path)
    done, errors = [0] * clients, [0] * clients
    started = time.perf_counter()
    stop = started + seconds

    async def client(i: int) -> None:
        while time.perf_counter() < stop:
            try:
                status, _ = await connections[i].request(
                    "POST", f"{paths[i]}/step", {"by": "event"}
                )
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors[i] += 1
                await connections[i].close()
                await connections[i].open()
                continue
            if status == 200:
                done[i] += 1
            else:
                errors[i] += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    for connection, path in zip(connections, paths, strict=True):
        await connection.request("DELETE", path)
        await connection.close()
    return {
        "steps": sum(done),
        "errors": sum(errors),
        "seconds": elapsed,
        "rate": sum(done) / elapsed,
    }


def _cpu_seconds(supervisor: psutil.Process) -> float:
    """CPU seconds of the server's process tree (hosts come and go: counted while alive)."""
    total = 0.0
    for process in (supervisor, *supervisor.children(recursive=True)):
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


def _private(supervisor: psutil.Process) -> int:
    """The memory of the server's process tree: the sum of its processes' PSS, which counts
    a page shared by n of them (the zygote's torch) 1/n in each (their USS would not add
    up: a host's fork moves the zygote's pages from private to shared)."""
    total = 0
    for process in (supervisor, *supervisor.children(recursive=True)):
        try:
            total += process.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total


def measure_throughput(
    *,
    clients: int = CLIENTS,
    round_s: float = ROUND_S,
    rounds: int = ROUNDS,
    workers: int = WORKERS,
) -> dict[str, Any]:
    """Alternate 1-client and `clients`-client rounds on one server; return the rates.

    The server runs `workers` worker processes, as deployed. Also the server's CPU use
    in each kind of round (CPU seconds per second of wall time, all its processes): one
    interpreter cannot go past 1.0 while the work holds the GIL, so that is the ceiling
    of a single process whatever the number of clients.
    """
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir, workers=workers)
        supervisor = psutil.Process(server.pid)

        def timed_round(count: int) -> dict[str, Any]:
            cpu = _cpu_seconds(supervisor)
            result = asyncio.run(_round(url, count, round_s))
            result["cpu"] = (_cpu_seconds(supervisor) - cpu) / result["seconds"]
            return result

        try:
            asyncio.run(_round(url, clients, 1.0))  # warm up: threads, layouts, allocator
            one, many = [], []
            for _ in range(rounds):
                one.append(timed_round(1))
                many.append(timed_round(clients))
        finally:
            server.terminate()
            server.wait(timeout=10)
    ratios = [m["rate"] / o["rate"] for o, m in zip(one, many, strict=True)]
    return {
        "clients": clients,
        "workers": workers,
        "one": statistics.median(o["rate"] for o in one),
        "many": statistics.median(m["rate"] for m in many),
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "errors": sum(r["errors"] for r in one + many),
        "steps": sum(r["steps"] for r in one + many),
        "cpu_one": statistics.median(o["cpu"] for o in one),
        "cpu_many": statistics.median(m["cpu"] for m in many),
    }


def budget_config(settings: Settings) -> dict[str, Any]:
    """An `autograd` config at the memory budget: D_in at max_dim, H as large as fits."""
    lesson = get_lesson("autograd")
    config = {**lesson.defaults, "D_in": settings.max_dim, "iterations": 2}

    def fits(h: int) -> bool:
        trial = {**config, "H": h}
        return (
            estimate_bytes(lesson, trial) <= settings.max_session_bytes
            and estimate_work(lesson, trial) <= settings.max_work
        )

    low, high = 1, settings.max_dim
    while low < high:  # the largest H that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    config["H"] = low
    return config


@contextmanager
def _peak_private(process: psutil.Process) -> Iterator[list[int]]:
    """Sample the tree's PSS every 50 ms while the block runs; yield [peak] (set after)."""
    peak = [_private(process)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _private(process))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
        peak[0] = max(peak[0], _private(process))


def measure_memory(*, sessions: int = SESSIONS) -> dict[str, Any]:
    """PSS per live session at the seed sizes and of one session at the budget's limit."""
    import httpx

    # The server runs with no AGX_ settings but its data folder: the defaults, not this
    # shell's environment (model_construct reads no environment).
    settings = Settings.model_construct()
    at_limit = budget_config(settings)
    seed = {"lesson": "autograd", "config": {}}
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir)
        process = psutil.Process(server.pid)
        try:
            with httpx.Client(base_url=url, timeout=600) as client:

                def create(body: dict[str, Any]) -> str:
                    response = client.post("/api/sessions", json=body)
                    assert response.status_code == 201, response.text
                    return str(response.json()["id"])

                def step(session_id: str, by: str, count: int = 1) -> None:
                    body = {"by": by, "count": count}
                    response = client.post(f"/api/sessions/{session_id}/step", json=body)
                    assert response.status_code == 200, response.text

                for _ in range(2):  # warm up: the first session pays for lazy imports
                    warm = create(seed)
                    step(warm, "iteration", 2)
                    client.get(f"/api/sessions/{warm}/graph.svg")
                    client.delete(f"/api/sessions/{warm}")
                before = _private(process)
                ids = [create(seed) for _ in range(sessions)]
                for session_id in ids:
                    step(session_id, "iteration", 2)  # through iteration 0: grads exist
                after = _private(process)
                for session_id in ids:
                    client.delete(f"/api/sessions/{session_id}")

                base = _private(process)
                with _peak_private(process) as peak:
                    big = create({"lesson": "autograd", "config": at_limit})
                    step(big, "end")
                held = _private(process)
                client.delete(f"/api/sessions/{big}")
                time.sleep(0.5)
                released = _private(process)
        finally:
            server.terminate()
            server.wait(timeout=30)
    lesson = get_lesson("autograd")
    return {
        "sessions": sessions,
        "per_session": (after - before) / sessions,
        "seed_estimate": estimate_bytes(lesson, {**lesson.defaults}),
        "limit_config": at_limit,
        "limit_estimate": estimate_bytes(lesson, at_limit),
        "budget": settings.max_session_bytes,
        "limit_held": held - base,
        "limit_peak": peak[0] - base,
        "limit_released": held - released,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--round-s", type=float, default=ROUND_S)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--workers", type=int, default=WORKERS, help="server processes")
    args = parser.parse_args()
    t = measure_throughput(
        clients=args.clients, round_s=args.round_s, rounds=args.rounds, workers=args.workers
    )
    ratios = ", ".join(f"{r:.2f}" for r in t["ratios"])
    verdict = "ok" if t["ratio"] >= TARGET_RATIO and not t["errors"] else "MISSED"
    print(
        f"throughput, steps/s (median of {args.rounds} rounds of {args.round_s:g} s, "
        f"{t['workers']} server processes):"
    )
    print(f"  1 client  {t['one']:8.0f}")
    print(f"  {t['clients']} clients {t['many']:8.0f}")
    print(
        f"  server CPU per second: {t['cpu_one']:.2f} with 1 client, "
        f"{t['cpu_many']:.2f} with {t['clients']}"
    )
    print(
        f"  ratio {t['ratio']:.2f}× (rounds: {ratios}; target ≥ {TARGET_RATIO:g}×), "
        f"{t['errors']} errors in {t['steps']} steps: {verdict}"
    )
    m = measure_memory(sessions=args.sessions)
    c = m["limit_config"]
    dims = ", ".join(f"{k}={c[k]}" for k in ("N", "D_in", "H", "D_out", "iterations"))
    print("memory, server RSS (psutil), autograd lesson:")
    print(
        f"  per live session at the seed sizes ({m['sessions']} sessions): "
        f"{m['per_session'] / _MIB:.2f} MiB (tensor estimate {m['seed_estimate'] / _MIB:.2f} MiB)"
    )
    print(f"  one session at the budget's limit ({dims}):")
    print(
        f"    estimate {m['limit_estimate'] / _MIB:.0f} MiB of a {m['budget'] / _MIB:.0f} MiB "
        f"budget; held at the end {m['limit_held'] / _MIB:.0f} MiB, peak while stepping "
        f"{m['limit_peak'] / _MIB:.0f} MiB, "
        f"given back by DELETE {m['limit_released'] / _MIB:.0f} MiB"
    )


if __name__ == "__main__":
    main()
