"""REST round trips over a real uvicorn on loopback, measured side by side in one run.

Targets (DESIGN.md §8): one `step` request (by event) ≤ 3× a no-op request
(GET /healthz); a graph.svg cache hit ≤ 2 ms. The hit is timed as a whole request and
reported beyond a no-op too: the server's own time (session lock, graph build, cached
layout, response), without the HTTP round trip every request pays. bench_render.py
times the layout cache alone.

The session is the `autograd` lesson at its default (seed) sizes with 500 iterations,
so STEPS events never reach the end. Requests alternate between the kinds, so drift
in the machine's load affects every kind alike.

Run: .venv/bin/python bench/bench_api.py [--steps N]
(`measure()` returns the times and `start_server()` starts a server, for the other benches.)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TARGET_STEP_RATIO = 3.0
TARGET_SVG_HIT_MS = 2.0
# Worker processes of the deployment (`make run`, the image's WEB_CONCURRENCY).
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    data_dir: str, env: Mapping[str, str] | None = None, *, workers: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `uvicorn app.main:app` on a free loopback port with `env`'s AGX_ settings.

    `workers` > 1 starts that many worker processes under uvicorn's supervisor (the
    returned process), as `make run` and the image do (`WORKERS`).
    """
    port = _free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("AGX_")}
    server_env.update({"AGX_DATA_DIR": data_dir, **(env or {})})
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    command += ["--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, env=server_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start within 60 s")


def _timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed * 1000


def _row(name: str, times: list[float], base: float | None) -> str:
    times = sorted(times)
    median = statistics.median(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    ratio = f"{median / base:7.2f}×" if base else "      –"
    over = f"{median - base:9.3f}" if base else "        –"
    return f"{name:<30} {median:9.3f} {p95:8.3f} {ratio} {over}"


def measure(*, steps: int = 1000) -> dict[str, Any]:
    """Time `steps` requests of each kind on a fresh server; times in ms, per kind."""
    with tempfile.TemporaryDirectory() as data_dir:
        server, url = start_server(data_dir)
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                body = {"lesson": "autograd", "config": {"iterations": 500}}
                session = client.post("/api/sessions", json=body).json()["id"]
                step = {"by": "event", "count": 1}
                base = f"/api/sessions/{session}"

                def noop() -> httpx.Response:
                    return client.get("/healthz")

                def step_event() -> httpx.Response:
                    return client.post(f"{base}/step", json=step)

                def state() -> httpx.Response:
                    return client.get(base)

                def svg() -> httpx.Response:
                    return client.get(f"{base}/graph.svg")

                for _ in range(50):  # warm up: imports, thread pool, first layouts
                    noop(), step_event(), state(), svg()
                times: dict[str, list[float]] = {"noop": [], "step": [], "state": [], "svg": []}
                for _ in range(steps):
                    times["noop"].append(_timed(noop))
                    times["step"].append(_timed(step_event))
                    times["state"].append(_timed(state))
                    svg()  # a new cursor may be a new structure: lay it out untimed
                    times["svg"].append(_timed(svg))  # the same graph again: a cache hit
                cursor = client.get(base).json()["cursor"]
        finally:
            server.terminate()
            server.wait(timeout=10)
    noop_median = statistics.median(times["noop"])
    return {
        "steps": steps,
        "cursor": cursor,
        "times": times,
        "step_ratio": statistics.median(times["step"]) / noop_median,
        # The server's own time for a hit: the whole request less a no-op's HTTP round trip.
        "svg_hit": statistics.median(times["svg"]) - noop_median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="step requests to time")
    args = parser.parse_args()
    m = measure(steps=args.steps)
    times = m["times"]
    noop_median = statistics.median(times["noop"])
    print(
        f"autograd lesson, seed sizes; {args.steps} requests of each kind, to cursor {m['cursor']}"
    )
    print(f"{'request':<30} {'median ms':>9} {'p95 ms':>8} {'÷ no-op':>8} {'− no-op ms':>9}")
    print(_row("GET /healthz (no-op)", times["noop"], None))
    print(_row("POST …/step {by: event}", times["step"], noop_median))
    print(_row("GET …/{id} (state)", times["state"], noop_median))
    print(_row("GET …/graph.svg (cache hit)", times["svg"], noop_median))
    step_ratio, svg_hit = m["step_ratio"], m["svg_hit"]
    print(
        f"step ÷ no-op: {step_ratio:.2f}× (target ≤ {TARGET_STEP_RATIO:g}×) "
        f"{'ok' if step_ratio <= TARGET_STEP_RATIO else 'MISSED'}; "
        f"graph.svg hit beyond a no-op: {svg_hit:.2f} ms (target ≤ {TARGET_SVG_HIT_MS:g} ms) "
        f"{'ok' if svg_hit <= TARGET_SVG_HIT_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
