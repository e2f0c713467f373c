"""The explorer on CUDA: backward runs in the engine's device thread.

There ``sys.settrace`` is not active, so node events must come from node hooks
alone, and pausing inside backward parks the device thread. Skipped without a GPU.
"""

from __future__ import annotations

import time

import pytest
import torch

from app.engine.session import Session
from app.lessons.plain import run_plain
from app.lessons.registry import LESSONS, get_lesson

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SMALL = {"N": 16, "D_in": 32, "H": 16, "D_out": 4, "iterations": 3, "device": "cuda"}


def _config(lesson_id: str) -> dict[str, object]:
    lesson = get_lesson(lesson_id)
    config = dict(lesson.defaults)
    config.update({k: v for k, v in SMALL.items() if k in lesson.fields})
    return config


@pytest.mark.parametrize("lesson_id", list(LESSONS))
@pytest.mark.parametrize("by", ["end", "event"])
def test_cuda_runs_equal_plain_cuda_runs(lesson_id: str, by: str) -> None:
    config = _config(lesson_id)
    session = Session(id="cuda", lesson=get_lesson(lesson_id), config=config)
    try:
        nodes = 0
        while not session.done:
            session.step(by=by)
            nodes += session.state()["event"]["kind"] == "node"
        plain = run_plain(lesson_id, config)
        assert session._run.scope["losses"] == plain["losses"]
        state = session.state()
        if "__error__" in plain:
            assert state["error"]["type"] == type(plain["__error__"]).__name__
        if by == "event" and lesson_id not in ("numpy", "tensors", "static_graph"):
            assert nodes > 0, "node events are recorded from the device thread"
        for name, summary in state["variables"].items():
            if summary["device"] != "cpu":
                assert summary["device"].startswith("cuda"), name
    finally:
        session.close()


def test_pause_inside_cuda_backward_and_close() -> None:
    session = Session(
        id="cuda", lesson=get_lesson("custom_function"), config=_config("custom_function")
    )
    try:
        while session.state()["event"]["kind"] != "node":
            session.step(by="event")
        graph = session.graph()
        assert graph["focus"] is not None
        assert any(n["executed"] for n in graph["nodes"])
        assert not all(n["executed"] for n in graph["nodes"] if n["kind"] == "function")
    finally:
        session.close()  # unwinds the parked device thread
    again = Session(id="cuda2", lesson=get_lesson("autograd"), config=_config("autograd"))
    again.step(by="end")
    assert len(again.state()["losses"]) == SMALL["iterations"]
    again.close()


@pytest.mark.parametrize("lesson_id", ["custom_function", "dynamic_net", "inplace"])
def test_cuda_cursors_show_the_same_whether_stepped_to_or_jumped_to(lesson_id: str) -> None:
    config = _config(lesson_id)
    walked = Session(id="cuda", lesson=get_lesson(lesson_id), config=config)
    jumped = Session(id="cuda", lesson=get_lesson(lesson_id), config=config)
    try:
        seen = []
        while not walked.done:
            seen.append((walked.state(), walked.graph()))
            walked.step(by="event")
        for cursor in range(len(seen) - 1, 0, -7):  # backwards: every one a replay or a kept view
            jumped.seek(cursor=cursor)
            assert jumped.state() == seen[cursor][0], f"state at cursor {cursor}"
            assert jumped.graph() == seen[cursor][1], f"graph at cursor {cursor}"
    finally:
        walked.close()
        jumped.close()


def test_checkpoints_never_hold_the_device_thread() -> None:
    """A run paused inside a CUDA backward holds the engine's device thread: it is never
    kept as a checkpoint, and one built there is first moved out of that backward."""
    from app.engine.checkpoints import settle

    session = Session(
        id="cuda", lesson=get_lesson("custom_function"), config=_config("custom_function")
    )
    other = Session(id="cuda2", lesson=get_lesson("autograd"), config=_config("autograd"))
    try:
        while session.state()["event"]["kind"] != "node":
            session.step(by="event")
        inside = session.cursor
        assert session._run.parked_elsewhere
        # A seek back that replays (not one to a view kept of cursor 5): the program
        # left inside backward is closed, not kept.
        session._replay(5)
        assert session.cursor == 5 and not session._run.parked_elsewhere
        assert session.checkpoints == []
        run = session.new_run()
        run.advance("event", inside)
        assert run.parked_elsewhere
        settle(run)
        assert not run.parked_elsewhere and run.cursor > inside
        assert session.add_checkpoint(run)
        other.step(by="end")  # the device thread is free for another session's backward
        assert len(other.state()["losses"]) == SMALL["iterations"]
    finally:
        session.close()
        other.close()


def _store(tmp_path, **limits):
    from dataclasses import replace

    from app.engine.hosts import Hosts
    from app.engine.records import SQLiteRecords
    from app.engine.store import HostLimits, SessionStore
    from app.settings import Settings

    caps = {"hosts": 8, "bytes": 1 << 40, "cuda_hosts": 4}
    return SessionStore(
        SQLiteRecords(tmp_path / "sessions.db"),
        Hosts(tmp_path / "hosts", caps=caps, answer_timeout_s=120.0),
        limits=replace(HostLimits.of(Settings()), **limits),
        max_sessions=4,
        ttl_s=100.0,
    )


def test_the_store_keeps_no_checkpoints_of_cuda_sessions(tmp_path) -> None:
    store = _store(tmp_path, checkpoints=4, checkpoint_max_bytes=1 << 30)
    try:
        session_id = store.create(lesson=get_lesson("autograd"), config=_config("autograd"))["id"]
        end = store.step(session_id, by="end", count=1)["cursor"]
        store.seek(session_id, cursor=end // 2)
        time.sleep(1.0)  # a CPU host would build checkpoints meanwhile
        assert store.ping(session_id)["checkpoints"] == []
    finally:
        store.close()


def test_a_session_paused_inside_cuda_backward_does_not_hold_up_another(tmp_path) -> None:
    import threading

    store = _store(tmp_path)
    try:
        lesson = get_lesson("custom_function")
        paused = store.create(lesson=lesson, config=_config("custom_function"))["id"]
        while store.state(paused)["event"]["kind"] != "node":
            shown = store.step(paused, by="event", count=1)
        other = store.create(lesson=lesson, config=_config("custom_function"))["id"]
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (store.step(other, by="end", count=1), done.set()), daemon=True
        )
        worker.start()
        assert done.wait(timeout=60), "the other session's backward waited for the paused one"
        assert store.state(paused) == shown  # which still shows where it was
    finally:
        store.close()
