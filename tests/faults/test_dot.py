"""Graphviz's `dot` hangs: graph.svg answers 503 in time, nothing is left running, and
the server stays healthy (and draws again once `dot` works)."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
DOT_TIMEOUT_S = 1.0
# What a 503 may take: the dot timeout, plus a loaded machine's scheduling.
ANSWER_WITHIN_S = DOT_TIMEOUT_S + 15

STUB = """#!/bin/sh
# A stand-in for Graphviz's dot: answers -V, and hangs while {flag} exists.
if [ "$1" = "-V" ]; then echo "dot - graphviz version 2.43.0 (0)" >&2; exit 0; fi
if [ -e "{flag}" ]; then sleep {marker}; fi
exec {dot} "$@"
"""


def _leftovers(marker: str) -> list[str]:
    """Command lines of the processes still running with `marker` in them."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if marker in command:
            found.append(f"{process.pid}: {command}")
    return found


def test_a_hanging_dot_is_killed_answers_503_and_leaves_the_server_healthy(live_server, tmp_path):
    real_dot = shutil.which("dot")
    if real_dot is None:
        pytest.skip("Graphviz's dot is not on PATH")
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    flag = tmp_path / "hang"
    flag.touch()
    # A sleep that outlives any test, with a unique duration to find it by.
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    stub = stub_dir / "dot"
    stub.write_text(STUB.format(flag=flag, marker=marker, dot=real_dot))
    stub.chmod(0o755)
    server = live_server(
        {"PATH": f"{stub_dir}:{os.environ['PATH']}", "AGX_DOT_TIMEOUT_S": str(DOT_TIMEOUT_S)}
    )

    with httpx.Client(base_url=server.url, timeout=120) as client:
        body = {"lesson": "autograd", "config": SMALL}
        base = f"/api/sessions/{client.post('/api/sessions', json=body).json()['id']}"
        client.post(f"{base}/step", json={"by": "event", "count": 12})

        started = time.monotonic()
        hung = client.get(f"{base}/graph.svg")
        took = time.monotonic() - started
        with ThreadPoolExecutor(3) as pool:  # concurrent requests for the same layout
            together = list(pool.map(lambda _: client.get(f"{base}/graph.svg"), range(3)))
        deadline = time.monotonic() + 10
        while _leftovers(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftovers = _leftovers(marker)

        health = client.get("/healthz")
        stepped = client.post(f"{base}/step", json={"by": "event"})
        graph = client.get(f"{base}/graph")
        flag.unlink()  # dot works again
        drawn = client.get(f"{base}/graph.svg")

    assert hung.status_code == 503, hung.text
    assert took < ANSWER_WITHIN_S
    detail = hung.json()["detail"]
    assert "Graphviz" in detail and f"{DOT_TIMEOUT_S:g} s" in detail
    assert hung.headers["Retry-After"].isdigit()
    assert [r.status_code for r in together] == [503, 503, 503]
    assert leftovers == []
    assert health.status_code == 200
    assert stepped.status_code == 200
    assert graph.status_code == 200
    assert drawn.status_code == 200, drawn.text
    assert drawn.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in drawn.text
