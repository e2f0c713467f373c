"""Throughput of one replica against two behind nginx, measured side by side in one run.

The deployment of compose.yml's `scaled` profile on loopback (deploy/cluster.py):
Redis, two uvicorn replicas sharing their session records in it, nginx in front, plus
a second nginx in front of the first replica only. Three setups take turns, ROUNDS
times SECONDS each, so drift in the machine's load affects them alike:
  - one replica, direct: clients talk to replica 0's uvicorn;
  - one replica behind nginx: the same replica through its own nginx;
  - two replicas behind nginx: the deployment, sessions spread by consistent hashing.
In each, CLIENTS threads each step their own session of the `autograd` lesson at its
default sizes by one iteration per request (a training iteration traced op by op and
node by node), so the work is the app's, not the proxy's. The ratio that matters is
two replicas ÷ one replica, both behind nginx: at most the number of cores the
replicas can use (each replica runs lesson code on one core at a time, under the GIL),
less what nginx, Redis and the clients themselves take from the same cores.

Run: .venv/bin/python bench/bench_scale.py [--clients 8] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # deploy/ is a folder of scripts, not an installed package

from deploy.cluster import Cluster, Nginx, find_nginx  # noqa: E402

LESSON = {"lesson": "autograd", "config": {"iterations": 10000}}
STEP = {"by": "iteration", "count": 1}
# Room for every session of every setup to stay live, and for every client at once.
REPLICA_ENV = {"AGX_MAX_LIVE_SESSIONS": "64"}


@dataclass
class Setup:
    name: str
    url: str
    sessions: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds by component

    @property
    def rate(self) -> float:
        return len(self.times) / self.seconds


def create_sessions(setup: Setup, clients: int, nginx: Nginx | None = None) -> None:
    """Create `clients` sessions through the setup's URL and warm them up.

    With `nginx` (the one in front of several replicas), keep sessions so that each
    replica answers for as many as the others (give or take one): with a handful of
    sessions, hashing alone often splits them 6/2, which measures the split rather than
    what a second replica adds. The others are deleted.
    """
    per_replica = Counter[str]()
    with httpx.Client(base_url=setup.url, timeout=60) as client:
        for _ in range(clients * 8):
            if len(setup.sessions) == clients:
                return
            response = client.post("/api/sessions", json=LESSON)
            response.raise_for_status()
            session_id = response.json()["id"]
            # Warm up: the owner starts the run (by replay when another replica created
            # it), and the first iterations pay for lazy imports and allocations.
            for _ in range(3):
                client.post(f"/api/sessions/{session_id}/step", json=STEP).raise_for_status()
            owner = owners(nginx, [session_id])[session_id] if nginx else setup.url
            replicas = len(nginx.servers) if nginx else 1
            if per_replica[owner] < -(-clients // replicas):
                per_replica[owner] += 1
                setup.sessions.append(session_id)
            else:
                client.delete(f"/api/sessions/{session_id}").raise_for_status()
    raise SystemExit(f"could not spread {clients} sessions evenly over the replicas")


def cpu_seconds(components: dict[str, list[int]]) -> Counter[str]:
    """CPU time (user + system) used so far by each component's processes (nginx's
    include their workers), and by the whole machine."""
    used: Counter[str] = Counter()
    for name, pids in components.items():
        for pid in pids:
            process = psutil.Process(pid)
            workers = process.children() if name == "nginx" else []
            for each in [process, *workers]:
                times = each.cpu_times()
                used[name] += times.user + times.system
    machine = psutil.cpu_times()
    used["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    return used


def run(setup: Setup, seconds: float, components: dict[str, list[int]]) -> None:
    """Every client steps its own session for `seconds`; record each request's time
    and the CPU time each component used meanwhile."""
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def client_loop(session_id: str) -> None:
        times: list[float] = []
        errors: Counter[str] = Counter()
        with httpx.Client(base_url=setup.url, timeout=60) as client:
            path = f"/api/sessions/{session_id}/step"
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = client.post(path, json=STEP)
                except httpx.TransportError as error:
                    errors[type(error).__name__] += 1
                    continue
                if response.status_code == 200:
                    times.append(time.perf_counter() - started)
                else:
                    errors[str(response.status_code)] += 1
        with lock:
            setup.times.extend(times)
            setup.errors.update(errors)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in setup.sessions]
    cpu_before = cpu_seconds(components)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    setup.seconds += time.perf_counter() - started
    setup.cpu.update(cpu_seconds(components) - cpu_before)


def owners(nginx: Nginx, sessions: list[str]) -> dict[str, str]:
    """The replica that answered last for each of `sessions`, from nginx's access log."""
    answered: dict[str, str] = {}
    for key, upstreams, *_ in nginx.access_log():
        if key in sessions:
            answered[key] = upstreams.split(",")[-1]
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one turn")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each setup")
    args = parser.parse_args()
    missing = [name for name in ("redis-server",) if shutil.which(name) is None]
    missing += [] if find_nginx() else ["nginx"]
    if missing:
        print(f"skipped: {' and '.join(missing)} not installed (scripts/install-system-deps.sh)")
        return

    with (
        tempfile.TemporaryDirectory(prefix="agx-bench-scale-") as folder,
        # Every client here is 127.0.0.1: nginx's per-address request rate (compose's
        # 200/s) would measure the limiter, not the replicas.
        Cluster(
            Path(folder), replicas=2, env=REPLICA_ENV, access_log=False, request_rate="100000r/s"
        ) as cluster,
    ):
        first = cluster.replicas[0]
        single = Nginx([first.address], request_rate="100000r/s")
        try:
            single.start()
            setups = [
                Setup("one replica, direct", first.url),
                Setup("one replica behind nginx", single.url),
                Setup("two replicas behind nginx", cluster.url),
            ]
            create_sessions(setups[0], args.clients)
            create_sessions(setups[1], args.clients)
            create_sessions(setups[2], args.clients, cluster.nginx)
            components = {
                "replicas": [replica.pid for replica in cluster.replicas],
                "nginx": [cluster.nginx.pid, single.pid],
                "redis": [cluster.redis.pid],
                "clients": [os.getpid()],
            }
            for _ in range(args.rounds):
                for setup in setups:
                    run(setup, args.seconds, components)  # type: ignore[arg-type]
            split = Counter(owners(cluster.nginx, setups[2].sessions).values())
        finally:
            single.stop()

    print(
        f"{args.clients} clients, each stepping its own `autograd` session (default sizes) "
        f"by one iteration per request; {args.rounds} turns of {args.seconds:g} s per setup; "
        f"{os.cpu_count()} cores"
    )
    names = ["replicas", "nginx", "redis", "clients", "other"]
    for setup in setups:
        # Whatever else ran on the machine meanwhile (on a shared machine, other work).
        setup.cpu["other"] = setup.cpu.pop("machine") - sum(setup.cpu.values())
    print(
        f"{'setup':<26} {'req/s':>6} {'p50 ms':>6} {'p95 ms':>6}  cores busy: "
        + " ".join(f"{name:>8}" for name in names)
        + "  errors"
    )
    for setup in setups:
        times = sorted(setup.times)
        p50 = statistics.median(times) * 1000
        p95 = times[int(0.95 * (len(times) - 1))] * 1000
        busy = " ".join(f"{setup.cpu[name] / setup.seconds:8.2f}" for name in names)
        errors = ", ".join(f"{n}× {kind}" for kind, n in setup.errors.items()) or "none"
        print(f"{setup.name:<26} {setup.rate:6.1f} {p50:6.1f} {p95:6.1f}  {'':>11}{busy}  {errors}")
    ratio = setups[2].rate / setups[1].rate
    print(
        f"two replicas ÷ one, behind nginx: {ratio:.2f}× (at most about {os.cpu_count()}× "
        f"on {os.cpu_count()} cores); sessions per replica: {'/'.join(map(str, split.values()))}; "
        f"nginx ÷ direct with one replica: {setups[1].rate / setups[0].rate:.2f}×"
    )


if __name__ == "__main__":
    main()
