"""deploy/cluster.py as a process: what it starts, what SIGTERM ends, replicas restarted on
command, and clients behind its nginx counted each by their own address."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.scale.conftest import ROOT, skip_without_binaries

pytestmark = pytest.mark.slow

BODY = {"lesson": "autograd", "config": {"N": 8, "D_in": 16, "H": 8, "D_out": 4}}


def _client(url: str, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=60
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_cluster_counts_clients_apart_restarts_a_replica_and_stops_whole(tmp_path: Path):
    skip_without_binaries()
    command = [sys.executable, "deploy/cluster.py", "--replicas", "2", "--folder", str(tmp_path)]
    command += ["--env", "AGX_MAX_SESSIONS_PER_ADDRESS=3"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGX_")},
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        started = json.loads(process.stdout.readline())
        url, pids = started["url"], started["pids"]
        assert set(pids) == {"redis-server", "replica-0", "replica-1", "nginx"}
        assert all(_alive(pid) for pid in pids.values())

        # Behind nginx each client counts by its own address, not nginx's.
        with _client(url, "127.0.0.2") as first, _client(url, "127.0.0.3") as second:
            codes = [first.post("/api/sessions", json=BODY).status_code for _ in range(4)]
            refused = first.post("/api/sessions", json=BODY)
            made = second.post("/api/sessions", json=BODY)
        assert codes == [201, 201, 201, 429]
        assert "address cap" in refused.json()["detail"]
        assert made.status_code == 201, made.text
        session = made.json()["id"]

        # A replica restarted on command comes back on its port; the session is served.
        process.stdin.write("restart 0\n")
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        assert answer["ok"], answer
        assert answer["pids"]["replica-0"] not in (None, pids["replica-0"])
        assert not _alive(pids["replica-0"])
        with _client(url, "127.0.0.3") as second:
            for _ in range(4):  # whichever replica owns it
                assert second.get(f"/api/sessions/{session}").status_code == 200
        process.stdin.write("restart 7\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["ok"] is False
        everything = [*pids.values(), answer["pids"]["replica-0"]]

        # SIGTERM ends Redis, nginx and the replicas with it.
        process.send_signal(signal.SIGTERM)
        started_at = time.monotonic()
        process.wait(timeout=30)
        took = time.monotonic() - started_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert took < 15
    assert [pid for pid in everything if _alive(pid)] == []
