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


def _create(store: SessionStore, lesson: str = "autograd") -> dict:
    found = get_lesson(lesson)
    return store.create(lesson=found, config=resolve_config(found, SMALL, limits=Limits()))


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
