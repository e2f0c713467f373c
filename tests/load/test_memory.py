"""A session's tensors are given back to the system when it ends, whatever the lesson.

Each live session runs in its own host process: the memory counted is the proportional
set size (PSS) of the server's whole process tree, workers, zygote and hosts.

NOTE: a lesson that defines a custom autograd.Function (custom_function, inplace) runs in
a globals dict that ends up in a reference cycle through C++: the scope holds the last
`loss`, whose graph holds the Function's ctx (a C++ PyNode's strong reference), whose
class's methods hold the scope as their __globals__. Python's collector cannot see the
C++ edge, so unless the scope is cleared when its run is closed, every session of those
lessons (and every replay after a seek back) keeps all of its tensors for good.
"""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

# w1 and w1.grad are 128 MiB each: allocated with mmap, so freeing them shows in the RSS.
BIG = {"N": 64, "D_in": 16384, "H": 2048, "D_out": 10, "iterations": 2}
SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 2}
_MIB = 2**20


def _private(process: psutil.Process) -> int:
    """The memory of ``process`` and its descendants: the sum of their PSS, which counts
    a page shared by n of them (the zygote's torch) 1/n in each (their USS would not add
    up: a host's fork moves the zygote's pages from private to shared)."""
    total = 0
    for each in (process, *process.children(recursive=True)):
        try:
            total += each.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total


def test_deleting_a_session_gives_its_tensors_memory_back_for_every_kind_of_lesson(live_server):
    server = live_server()
    process = psutil.Process(server.process.pid)
    figures = {}
    with httpx.Client(base_url=server.url, timeout=300) as client:
        for lesson in ("autograd", "custom_function", "inplace"):
            # A first run of each, small: what torch keeps once (the inplace lesson's
            # first backward error holds its frames) is not counted below.
            small = client.post("/api/sessions", json={"lesson": lesson, "config": SMALL})
            client.post(f"/api/sessions/{small.json()['id']}/step", json={"by": "end"})
            client.delete(f"/api/sessions/{small.json()['id']}")
            before = _private(process)
            created = client.post("/api/sessions", json={"lesson": lesson, "config": BIG})
            assert created.status_code == 201, created.text
            base = f"/api/sessions/{created.json()['id']}"
            assert client.post(f"{base}/step", json={"by": "end"}).status_code == 200
            # A seek back replays from the start in a new run; the old one must go too.
            assert client.post(f"{base}/seek", json={"cursor": 1}).status_code == 200
            assert client.post(f"{base}/step", json={"by": "end"}).status_code == 200
            held = _private(process)
            assert client.delete(base).status_code == 204
            time.sleep(0.5)
            after = _private(process)
            figures[lesson] = ((held - before) / _MIB, (after - before) / _MIB)

    shown = ", ".join(f"{k}: held {h:.0f} MiB, kept {a:.0f} MiB" for k, (h, a) in figures.items())
    for lesson, (held, kept) in figures.items():
        assert held > 200, f"{lesson} did not hold its tensors? {shown}"
        assert kept < 64, f"{lesson} kept its tensors after DELETE: {shown}"
