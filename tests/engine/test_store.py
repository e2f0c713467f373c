"""The session store: LRU of live sessions over records, expiry, caps, bounded work."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from app.engine.records import SQLiteRecords
from app.engine.store import Busy, SessionStore, TooManySessions, UnknownSession
from app.lessons.config import Limits, resolve_config
from app.lessons.registry import get_lesson

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_store(tmp_path, clock):
    stores = []

    def make(**overrides) -> SessionStore:
        options = {
            "max_sessions": 8,
            "max_live_sessions": 2,
            "ttl_s": 100.0,
            "max_concurrent_work": 2,
            "queue_timeout_s": 0.2,
            "clock": clock,
            **overrides,
        }
        store = SessionStore(SQLiteRecords(tmp_path / "sessions.db"), **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def _create(store: SessionStore, lesson: str = "autograd", **overrides: object) -> dict:
    found = get_lesson(lesson)
    config = resolve_config(found, {**SMALL, **overrides}, limits=Limits())
    return store.create(lesson=found, config=config)


def test_create_step_seek_and_read(make_store):
    store = make_store()
    session_id = _create(store)["id"]

    stepped = store.step(session_id, by="line", count=6)
    store.step(session_id, by="end", count=1)
    back = store.seek(session_id, cursor=stepped["cursor"])

    assert back == stepped == store.state(session_id)


def test_the_record_follows_every_move(make_store, tmp_path):
    store = make_store()
    session_id = _create(store)["id"]
    store.step(session_id, by="event", count=9)

    record = SQLiteRecords(tmp_path / "sessions.db").get(session_id)

    assert record is not None and record.cursor == 9 and record.lesson == "autograd"


def test_live_sessions_are_capped_and_evicted_ones_replay(make_store):
    store = make_store(max_live_sessions=2)
    ids = [_create(store, "nn")["id"] for _ in range(3)]
    states = [store.step(i, by="line", count=10 + n) for n, i in enumerate(ids)]

    assert len(store._live) == 2
    assert ids[0] not in store._live
    assert store.state(ids[0]) == states[0]  # rebuilt by replay
    assert len(store._live) == 2


def test_sessions_in_use_are_not_evicted(make_store):
    store = make_store(max_live_sessions=1)
    first = _create(store)["id"]
    busy = store._lock_for(first)
    busy.acquire()
    try:
        _create(store)
        assert first in store._live  # held: left live, over the cap for a while
    finally:
        busy.release()


def test_the_session_cap(make_store):
    store = make_store(max_sessions=2)
    first = _create(store)["id"]
    _create(store)

    with pytest.raises(TooManySessions, match="2 sessions"):
        _create(store)
    store.delete(first)
    assert _create(store)["cursor"] == 0


def test_idle_sessions_expire_and_free_their_places(make_store, clock):
    store = make_store(max_sessions=1, ttl_s=100.0)
    session_id = _create(store)["id"]

    clock.now += 101

    with pytest.raises(UnknownSession):
        store.state(session_id)
    assert session_id not in store._live
    assert _create(store)["cursor"] == 0


def test_sweep_closes_idle_live_sessions(make_store, clock):
    store = make_store()
    session_id = _create(store)["id"]
    clock.now += 50
    kept = _create(store)["id"]

    clock.now += 60
    gone = store.sweep()

    assert gone == [session_id]
    assert session_id not in store._live and kept in store._live


def test_use_keeps_a_session_alive(make_store, clock):
    store = make_store(ttl_s=100.0)
    session_id = _create(store)["id"]
    for _ in range(3):
        clock.now += 60
        store.step(session_id, by="event", count=1)

    assert store.state(session_id)["cursor"] == 3


def test_unknown_and_deleted_sessions(make_store):
    store = make_store()
    session_id = _create(store)["id"]
    store.delete(session_id)

    with pytest.raises(UnknownSession):
        store.state(session_id)
    with pytest.raises(UnknownSession):
        store.delete(session_id)


def test_a_busy_session_answers_busy_after_the_queue_timeout(make_store):
    store = make_store(queue_timeout_s=0.1)
    session_id = _create(store)["id"]
    lock = store._lock_for(session_id)

    with lock, pytest.raises(Busy) as refused:
        store.state(session_id)
    assert refused.value.retry_after_s == 1


def test_work_slots_bound_concurrent_work(make_store):
    store = make_store(max_concurrent_work=2, queue_timeout_s=0.1)
    session_id = _create(store)["id"]
    holding = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with store.work():
            holding.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    holding.wait()
    try:
        with pytest.raises(Busy, match="busy"):
            store.step(session_id, by="event", count=1)
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert store.step(session_id, by="event", count=1)["cursor"] == 1


def test_deleted_sessions_free_their_tensors(make_store):
    store = make_store()
    session_id = _create(store)["id"]
    store.step(session_id, by="end", count=1)
    run = weakref.ref(store._live[session_id].session._run)

    store.delete(session_id)
    gc.collect()

    assert run() is None


def test_live_sessions_are_bounded_by_their_estimated_memory(make_store):
    from app.lessons.config import estimate_bytes

    lesson = get_lesson("nn")
    size = estimate_bytes(lesson, resolve_config(lesson, SMALL, limits=Limits()))
    store = make_store(max_live_sessions=10, max_live_bytes=2 * size)
    ids = [_create(store, "nn")["id"] for _ in range(3)]
    states = [store.step(i, by="line", count=10 + n) for n, i in enumerate(ids)]

    assert list(store._live) == ids[1:]  # the least recently used one made room
    assert store.live_bytes == 2 * size
    assert store.state(ids[0]) == states[0]  # rebuilt by replay, in place of ids[1]
    assert list(store._live) == [ids[2], ids[0]] and store.live_bytes == 2 * size
    for session_id in ids:
        store.delete(session_id)
    assert store.live_bytes == 0 and not store._live


def test_the_live_memory_default_is_a_quarter_of_the_memory():
    from app.settings import Settings, memory_bytes

    assert Settings().live_bytes() == max(Settings().max_session_bytes, memory_bytes() // 4)
    assert Settings(max_live_bytes=12345).live_bytes() == 12345
    assert 0 < memory_bytes() < 1 << 60


def _wait_for(condition, timeout_s: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def short_gaps(monkeypatch):
    """Checkpoints worth building every few hundred events even at these tiny sizes."""
    from app.engine import session as module

    monkeypatch.setattr(module, "CHECKPOINT_GAP_S", 1e-6)


def _checkpointing(make_store, **overrides) -> SessionStore:
    return make_store(checkpoints=3, checkpoint_max_bytes=1 << 30, **overrides)


def test_checkpoints_are_built_while_idle_and_serve_seeks_back(make_store, short_gaps):
    store = _checkpointing(make_store, max_live_sessions=4)
    plain = make_store(max_live_sessions=4)
    session_id = _create(store, "custom_module", iterations=40)["id"]
    end = store.step(session_id, by="end", count=1)["cursor"]
    session = store._live[session_id].session

    assert _wait_for(lambda: len(session.checkpoints) == 3)
    assert session.checkpoints[-1] == end - 64  # first, for "Step back" from the end
    assert store.live_bytes == 4 * store._live[session_id].bytes

    other = _create(plain, "custom_module", iterations=40)["id"]
    for cursor in (end - 1, end // 2, end - 200):
        assert store.seek(session_id, cursor=cursor) == {
            **plain.seek(other, cursor=cursor),
            "id": session_id,
        }
    assert session.replays == 0  # every seek went on from a checkpoint


def test_checkpoints_wait_until_no_request_is_running(make_store, short_gaps):
    store = _checkpointing(make_store)
    session_id = _create(store, "custom_module", iterations=40)["id"]
    session = store._live[session_id].session
    with store._builder.request():  # a request in progress
        store.step(session_id, by="end", count=1)
        assert not _wait_for(lambda: bool(session.checkpoints), timeout_s=0.5)
    assert _wait_for(lambda: bool(session.checkpoints))


def test_checkpoints_fit_the_live_memory_cap_and_go_first(make_store, short_gaps):
    from app.lessons.config import estimate_bytes

    lesson = get_lesson("custom_module")
    config = resolve_config(lesson, {**SMALL, "iterations": 40}, limits=Limits())
    size = estimate_bytes(lesson, config)
    store = _checkpointing(make_store, max_live_sessions=4, max_live_bytes=3 * size)
    first = _create(store, "custom_module", iterations=40)["id"]
    store.step(first, by="end", count=1)
    session = store._live[first].session
    assert _wait_for(lambda: len(session.checkpoints) == 2)  # 3 copies fill the cap
    assert not _wait_for(lambda: len(session.checkpoints) > 2, timeout_s=0.3)

    second = _create(store, "custom_module", iterations=40)["id"]
    assert list(store._live) == [first, second]  # its checkpoints made room, not itself
    assert len(session.checkpoints) == 1 and store.live_bytes == 3 * size
    store.delete(first)
    store.delete(second)
    assert store.live_bytes == 0


def test_large_sessions_keep_no_checkpoints_and_close_stops_the_builder(make_store, short_gaps):
    store = make_store(checkpoints=3, checkpoint_max_bytes=1)
    session_id = _create(store, "custom_module", iterations=40)["id"]
    end = store.step(session_id, by="end", count=1)["cursor"]
    session = store._live[session_id].session
    store.seek(session_id, cursor=end // 2)  # the program at the end is not kept either
    assert session.max_checkpoints == 0
    assert not _wait_for(lambda: bool(session.checkpoints), timeout_s=0.3)

    thread = store._builder._thread
    assert thread is not None and thread.is_alive()
    store.close()
    assert not thread.is_alive()


def test_a_session_moved_by_another_process_is_walked_there_while_idle(
    make_store, short_gaps, monkeypatch
):
    from app.engine import checkpoints

    monkeypatch.setattr(checkpoints, "POLL_S", 0.1)
    mover = make_store(max_live_sessions=4)
    follower = _checkpointing(make_store, max_live_sessions=4)  # same records: two processes
    session_id = _create(mover, "custom_module", iterations=40)["id"]
    assert follower.state(session_id)["cursor"] == 0  # live here too, at the start
    end = mover.step(session_id, by="end", count=1)["cursor"]
    session = follower._live[session_id].session

    assert _wait_for(lambda: session.cursor == end)  # caught up, in the background
    assert _wait_for(lambda: len(session.checkpoints) == 3)
    assert session.checkpoints[-1] == end - 64
    assert follower.seek(session_id, cursor=end - 1) == mover.seek(session_id, cursor=end - 1)
    assert session.replays == 0


def test_sessions_paused_in_the_device_thread_are_moved_on_showing_the_same(make_store):
    store = make_store(max_live_sessions=4)
    paused = _create(store, "autograd")["id"]
    other = _create(store, "autograd")["id"]
    shown = store.step(paused, by="event", count=40)
    graph = store.graph(paused)
    run = store._live[paused].session._run
    run.parked_elsewhere = True  # as if paused in a node hook in CUDA's device thread

    store._free_device_threads(besides=other)

    assert not run.parked_elsewhere and run.cursor == shown["cursor"] + 1
    assert store.state(paused) == shown and store.graph(paused) == graph
    assert store.step(paused, by="event", count=1)["cursor"] == shown["cursor"] + 1
