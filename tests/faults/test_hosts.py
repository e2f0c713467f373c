"""One client cannot stop, starve or slow another: real servers, real session hosts.

Each client talks from its own loopback address (127.0.0.2, 127.0.0.3, …), as clients
of a classroom would from their own machines.
"""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

#: The heaviest kind of run the default limits accept: one op of 67M multiply-adds
#: per step, about 9,900 iterations (over an hour of CPU in all).
HEAVY = {"N": 1, "D_in": 65536, "H": 1024, "D_out": 1, "iterations": 9900}
SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}


def _client(server, address: str, timeout: float = 60.0) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=timeout)


def _hosts(server) -> list[psutil.Process]:
    """The session hosts of a server: their families' processes (app.engine.family), the
    zygote's descendants."""
    tree = psutil.Process(server.process.pid).children(recursive=True)
    # (A fork keeps its parent's command line: each host's reads as the zygote's.)
    zygotes = [p for p in tree if "app.engine.zygote" in " ".join(p.cmdline())]
    zygotes = [p for p in zygotes if p.parent() not in zygotes]
    return [child for zygote in zygotes for child in zygote.children(recursive=True)]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _busiest(server) -> psutil.Process:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hosts = _hosts(server)
        if hosts:
            busiest = max(hosts, key=_cpu)
            if _cpu(busiest) > 0.5:
                return busiest
        time.sleep(0.1)
    raise AssertionError("no session host is busy")


def test_a_heavy_run_neither_blocks_nor_slows_another_client(live_server):
    server = live_server({"WEB_CONCURRENCY": "2"})
    heavy = _client(server, "127.0.0.2", timeout=120)
    light = _client(server, "127.0.0.3")
    created = heavy.post("/api/sessions", json={"lesson": "optim", "config": HEAVY})
    assert created.status_code == 201, created.text
    heavy_id = created.json()["id"]
    running = threading.Thread(
        target=lambda: heavy.post(f"/api/sessions/{heavy_id}/step", json={"by": "end"}),
        daemon=True,
    )
    running.start()
    host = _busiest(server)
    try:
        slowest = 0.0
        for lesson in ("autograd", "optim", "dynamic_net"):
            started = time.monotonic()
            made = light.post("/api/sessions", json={"lesson": lesson, "config": SMALL})
            slowest = max(slowest, time.monotonic() - started)
            assert made.status_code == 201, made.text
            for by in ("event", "line", "phase", "iteration", "event"):
                started = time.monotonic()
                stepped = light.post(f"/api/sessions/{made.json()['id']}/step", json={"by": by})
                slowest = max(slowest, time.monotonic() - started)
                assert stepped.status_code == 200, stepped.text
        assert slowest < 1.0, f"a request took {slowest:.2f} s while another client ran"
        # DELETE of the running session: its host stops using CPU within a second.
        started = time.monotonic()
        assert heavy.delete(f"/api/sessions/{heavy_id}").status_code == 204
        before = _cpu(host) if host.is_running() else None
        time.sleep(1.0 - min(1.0, time.monotonic() - started))
        stopped = not host.is_running() or host.status() == psutil.STATUS_ZOMBIE
        assert stopped or _cpu(host) - (before or 0) < 0.05
    finally:
        running.join(10)
        heavy.close()
        light.close()


def test_sigterm_with_steps_in_flight_exits_within_ten_seconds(live_server):
    server = live_server({"WEB_CONCURRENCY": "2"})
    clients = [_client(server, f"127.0.0.{i}") for i in (2, 3)]
    for client in clients:
        made = client.post("/api/sessions", json={"lesson": "optim", "config": HEAVY})
        assert made.status_code == 201, made.text
        url = f"/api/sessions/{made.json()['id']}/step"
        threading.Thread(
            target=_quietly, args=(client.post, url), kwargs={"json": {"by": "end"}}, daemon=True
        ).start()
    _busiest(server)
    tree = [psutil.Process(server.process.pid), *_tree(server)]

    started = time.monotonic()
    server.process.terminate()
    _, alive = psutil.wait_procs(tree, timeout=10)
    took = time.monotonic() - started
    for process in alive:
        process.kill()
    assert not alive, f"still running {took:.1f} s after SIGTERM: {[p.pid for p in alive]}"
    for client in clients:
        client.close()


def _tree(server) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children(recursive=True)


def _quietly(call, *args, **kwargs) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server went away: the test's point
        call(*args, **kwargs)


def test_a_client_that_hangs_up_cancels_its_step(live_server):
    server = live_server({"AGX_STEP_TIME_S": "60"})
    with _client(server, "127.0.0.2") as client:
        made = client.post("/api/sessions", json={"lesson": "optim", "config": HEAVY})
        session = f"/api/sessions/{made.json()['id']}"
        # Hung up once in the training loop: its setup draws 256 MiB of random numbers in
        # single ops of about a second each, and a step stops only between two events.
        with pytest.raises(httpx.ReadTimeout):
            client.post(f"{session}/step", json={"by": "end"}, timeout=4.0)
        hung_up = time.monotonic()
        host = _busiest(server)
        # Answered once the cancelled step has stopped and told its state (summaries of
        # 256 MiB tensors take seconds): then the host is idle.
        state = client.get(session).json()
        assert time.monotonic() - hung_up < 15, "the step went on after its client hung up"
        used = _cpu(host)
        time.sleep(1.0)
        assert _cpu(host) - used < 0.05, "the host kept running after its client hung up"
        assert not state["done"] and state["cursor"] > 0
        assert client.get(session).json()["cursor"] == state["cursor"]
