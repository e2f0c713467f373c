"""Checkpoints as forked copies (app.engine.family): real hosts, real forks.

A CPU session's checkpoints are forks of its program; a move back hands the session
over to a successor forked from one. What the session shows must not depend on it:
every state here is compared with a plain Session in this process.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from app.engine.checkpoints import FREEZE_GAP_S
from app.engine.session import Session
from app.lessons.config import Limits, resolve_config
from app.lessons.registry import get_lesson

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    """The hosts run torch with one intra-op thread: so does the session compared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sessions(store, lesson: str, iterations: int) -> tuple[str, Session]:
    found = get_lesson(lesson)
    config = resolve_config(
        found, {**SMALL, "iterations": iterations}, limits=Limits(max_session_bytes=1 << 40)
    )
    created = store.create(lesson=found, config=config)
    local = Session(id=created["id"], lesson=found, config=created["config"])
    return created["id"], local


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _all_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _family(pid: int) -> list[int]:
    """The processes of the family whose live host is ``pid`` (its process group)."""
    group = os.getpgid(pid)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except ProcessLookupError:
                continue
    return found


def test_moves_back_go_on_from_forked_checkpoints_and_show_what_a_plain_run_shows(make_store):
    store = make_store(checkpoints=8)  # none dropped for want of room
    session_id, local = _sessions(store, "custom_module", 200)
    try:
        end = store.step(session_id, by="end", count=1)
        local.step(by="end")
        assert end == {**local.state(), "interrupted": None}
        middle = end["cursor"] // 2
        # Back: the program at the end is kept, as a fork (and any checkpoint the host
        # built while idle is one as well).
        assert store.seek(session_id, cursor=middle) == _seek(local, middle)
        back = store.ping(session_id)
        assert end["cursor"] in back["checkpoints"]
        assert len(back["forks"]) == len(back["checkpoints"]) and back["pid"] not in back["forks"]
        # To the end again: the fork kept there takes the session over, with no replay.
        local.step(by="end")
        assert store.step(session_id, by="end", count=1) == {**local.state(), "interrupted": None}
        there = store.ping(session_id)
        assert there["pid"] != back["pid"] and there["replays"] == back["replays"]
        # The host it replaced is a checkpoint now, where it stood.
        assert middle in there["checkpoints"] and back["pid"] in there["forks"]
        # Back past the middle: from a fork at or after it, not afresh.
        later = middle + 40
        assert store.seek(session_id, cursor=later) == _seek(local, later)
        again = store.ping(session_id)
        assert again["pid"] != there["pid"] and again["replays"] == there["replays"]
        assert store.graph(session_id) == local.graph()
        for by, count in (("event", 7), ("line", 3), ("iteration", 2)):
            local.step(by=by, count=count)
            assert store.step(session_id, by=by, count=count) == {
                **local.state(),
                "interrupted": None,
            }
        assert store.graph(session_id) == local.graph()
    finally:
        local.close()


def _seek(local: Session, cursor: int) -> dict:
    local.seek(cursor=cursor)
    return local.state()


def test_a_gradient_element_is_read_on_a_copy_of_a_forked_checkpoint(make_store):
    store = make_store(checkpoints=8)  # none dropped for want of room
    session_id, local = _sessions(store, "custom_module", 30)
    try:
        end = store.step(session_id, by="end", count=1)["cursor"]
        # A checkpoint forked in the last iteration, before its backward call.
        store.seek(session_id, cursor=end - 60)
        store.step(session_id, by="end", count=1)
        local.step(by="end")
        kept = store.ping(session_id)
        assert end - 60 in kept["checkpoints"]
        graph = local.graph()
        node = next(n for n in graph["nodes"] if n.get("ledger"))
        grads = node["ledger"]["grad_inputs"]
        k = next(i for i, grad in enumerate(grads) if grad is not None)
        index = [0] * len(grads[k]["shape"])
        expected = local.grad_element(node["id"], "inputs", k, index)
        assert store.grad_element(session_id, node["id"], "inputs", k, index) == expected
        after = store.ping(session_id)
        # The live host stayed; the checkpoint answered through a copy, and stays.
        assert after["pid"] == kept["pid"] and after["replays"] == kept["replays"]
        assert end - 60 in after["checkpoints"]
    finally:
        local.close()


def test_a_long_walk_keeps_forks_as_it_passes(make_store):
    store = make_store()
    session_id, local = _sessions(store, "custom_module", 4000)
    local.close()
    started = time.perf_counter()
    end = store.step(session_id, by="end", count=1)["cursor"]
    took = time.perf_counter() - started
    # Asked at once, before the host is idle for long enough to build any.
    kept = store.ping(session_id)
    if took < 1.5 * FREEZE_GAP_S:
        pytest.skip(f"the walk took {took:.1f} s: too short to keep forks on its way")
    assert kept["forks"] and all(0 < cursor < end for cursor in kept["checkpoints"])
    assert len(kept["forks"]) == len(kept["checkpoints"]) <= 4


def _looked_back(store) -> str:
    """A session of ``autograd`` run to its end, then back to 30: the end kept as a fork."""
    session_id, local = _sessions(store, "autograd", 20)
    local.close()
    store.step(session_id, by="end", count=1)
    store.seek(session_id, cursor=30)
    return session_id


def test_a_forked_checkpoint_holds_nothing_of_the_live_host(make_store):
    store = make_store()
    session_id = _looked_back(store)
    (fork,) = store.ping(session_id)["forks"]
    kinds = sorted(
        os.readlink(f"/proc/{fork}/fd/{fd}").split(":")[0]
        for fd in os.listdir(f"/proc/{fork}/fd")
        if int(fd) > 2
    )
    # Its channel to the live host, and the head's life pipe: no listener, no token,
    # no connection of a worker (whose end would then not see the live host go).
    assert kinds == ["pipe", "socket"]


def test_deleting_a_session_ends_every_process_of_its_family(make_store):
    store = make_store()
    session_id = _looked_back(store)
    store.step(session_id, by="end", count=1)  # a successor: the first host a checkpoint
    ping = store.ping(session_id)
    family = _family(ping["pid"])
    assert set(ping["forks"]) < set(family) and len(family) >= 3  # and the head
    store.delete(session_id)
    assert _all_gone(family, 1.0)


def test_a_live_host_that_dies_takes_its_family_and_the_session_is_replayed(make_store):
    store = make_store()
    session_id, local = _sessions(store, "autograd", 20)
    try:
        store.step(session_id, by="end", count=1)
        store.seek(session_id, cursor=30)
        ping = store.ping(session_id)
        family = _family(ping["pid"])
        os.kill(ping["pid"], signal.SIGKILL)
        assert _all_gone(family, 2.0)
        # Replayed where the record says, by a new family.
        assert store.state(session_id) == _seek(local, 30)
        assert store.ping(session_id)["pid"] not in family
    finally:
        local.close()


def test_requests_from_two_workers_during_hand_overs_all_answer_and_agree(make_store):
    """Seeks, steps and reads from two stores (two worker processes) at once: the
    requests that wait while a move hands the session over go with it, in order."""
    stores = [make_store(), make_store()]
    session_id, local = _sessions(stores[0], "custom_module", 300)
    try:
        end = stores[0].step(session_id, by="end", count=1)["cursor"]
        local.step(by="end")
        failures: list[str] = []
        answered = [0]
        stop = time.monotonic() + 8.0

        def client(seed: int) -> None:
            rng = random.Random(seed)
            store = stores[seed % 2]
            while time.monotonic() < stop:
                op = rng.choice(["seek", "seek", "state", "graph", "step"])
                try:
                    if op == "seek":
                        store.seek(session_id, cursor=rng.randrange(end))
                    elif op == "step":
                        store.step(session_id, by="event", count=rng.randrange(1, 50))
                    else:
                        getattr(store, op)(session_id)
                    answered[0] += 1
                except Exception as exc:  # each one is a failure to report
                    failures.append(f"{op}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        hand_overs = stores[0].ping(session_id)
        assert not failures, failures[:5]
        assert answered[0] > 50 and hand_overs["forks"]
        for cursor in (end // 3, end - 5, 7):
            assert stores[1].seek(session_id, cursor=cursor) == _seek(local, cursor)
    finally:
        local.close()


def test_a_checkpoint_built_while_idle_grows_from_a_fork_before_it(make_store):
    """Built in the background by a fork of the nearest checkpoint before it, walking
    on from there: not a replay from the start in the host."""
    store = make_store(checkpoints=8)  # room for more than the walk keeps
    # Long enough that a seek would walk for more than CHECKPOINT_GAP_S (0.1 s).
    session_id, local = _sessions(store, "custom_module", 1500)
    try:
        end = store.step(session_id, by="end", count=1)["cursor"]
        store.seek(session_id, cursor=end // 2)  # the end kept as a fork ...
        store.step(session_id, by="end", count=1)  # ... goes on: the middle kept as one
        first = store.ping(session_id)
        deadline = time.monotonic() + 20
        while store.ping(session_id)["builds"]["forked"] == 0:
            assert time.monotonic() < deadline, store.ping(session_id)
            time.sleep(0.1)
        built = store.ping(session_id)
        assert built["replays"] == first["replays"]
        # Where it grew: past a fork there was (one with none before it is replayed).
        grown = [
            cursor
            for cursor in set(built["checkpoints"]) - set(first["checkpoints"])
            if cursor > min(first["checkpoints"])
        ]
        assert grown, (first, built)
        local.step(by="end")
        local.seek(cursor=max(grown))
        assert store.seek(session_id, cursor=max(grown)) == local.state()
        moved = store.ping(session_id)
        assert moved["pid"] != built["pid"] and moved["replays"] == first["replays"]
    finally:
        local.close()
