"""Checkpoints of a process's live sessions, built while it answers no request.

The session store's helper (it reads the store's live sessions, locks and job slots):
see `Session` for what a checkpoint is and where one is worth having.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.engine.session import OUT_OF_MEMORY_ERRORS, settle

if TYPE_CHECKING:
    from app.engine.store import SessionStore, _Live

__all__ = ["CheckpointBuilder"]

_log = logging.getLogger(__name__)

# Checkpoints are built only once the process has had no request for QUIET_S, in
# pieces of about CHUNK_S so that a request arriving meanwhile waits for one at most.
QUIET_S = 0.05
CHUNK_S = 0.01
# While quiet, live sessions that another process (or replica) moved on are looked for
# every POLL_S, and walked there in the background.
POLL_S = 1.0


class CheckpointBuilder:
    """Builds checkpoints of the live sessions (`Session.checkpoint_target`) while the
    process answers no request, in a thread of its own.

    A checkpoint is a second run of a session's program paused at an earlier cursor,
    so it costs a replay to that cursor: it is built only when nothing else is waiting
    (no request for QUIET_S, a free job slot), a piece of CHUNK_S at a time, and kept
    only for CPU sessions small enough (`checkpoint_max_bytes`) while the live memory
    cap leaves room for one more copy. Before that, a live session that another
    process moved on (its record is further) is walked there, in pieces too.
    """

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._cv = threading.Condition()  # over everything below
        self._wanted: OrderedDict[str, None] = OrderedDict()  # sessions to look at
        self._requests = 0  # requests in progress
        self._quiet_since = time.monotonic()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def request(self) -> Iterator[None]:
        """Mark a request in progress (building waits for it)."""
        with self._cv:
            self._requests += 1
            self._start()
        try:
            yield
        finally:
            with self._cv:
                self._requests -= 1
                self._quiet_since = time.monotonic()
                self._cv.notify_all()

    def want(self, session_id: str) -> None:
        """Look at `session_id` when quiet: does a checkpoint of it need building?"""
        with self._cv:
            self._wanted[session_id] = None
            self._start()
            self._cv.notify_all()

    def _start(self) -> None:
        """Start the builder's thread (with `_cv` held), once this process serves."""
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._serve, name="checkpoints", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._cv.notify_all()
        if thread is not None:
            thread.join(timeout=10)

    def _quiet(self) -> bool:
        """Wait until no request has run for QUIET_S; False if stopping."""
        with self._cv:
            while not self._stopping:
                quiet = time.monotonic() - self._quiet_since
                if self._requests == 0 and quiet >= QUIET_S:
                    return True
                self._cv.wait(None if self._requests else QUIET_S - quiet)
            return False

    def _serve(self) -> None:
        while self._quiet():
            with self._cv:
                waited = not self._wanted and not self._cv.wait(POLL_S)
                session_id = self._wanted.popitem(last=False)[0] if self._wanted else None
            if session_id is None:
                if waited:  # a quiet second: any session moved on elsewhere?
                    for moved in self._store._moved_elsewhere():
                        self.want(moved)
                continue
            try:
                self._catch_up(session_id)
                if self._build(session_id):
                    self.want(session_id)  # one more may be worth it
            except Exception:  # a failed checkpoint costs only time: keep serving
                _log.exception("building a checkpoint of session %s failed", session_id)

    def _slot(self) -> bool:
        """Take a job slot once quiet; False if stopping. Release it with `_slots`."""
        while self._quiet():
            if self._store._slots.acquire(blocking=False):
                return True
            time.sleep(QUIET_S)
        return False

    def _catch_up(self, session_id: str) -> None:
        """Walk the live session on to its record's cursor, where another process (or
        replica) moved it, so that this process too answers for it without a long walk
        and keeps checkpoints near where it is."""
        store = self._store
        lock = store._lock_for(session_id)
        while self._slot():
            try:
                if not lock.acquire(blocking=False):
                    return
                try:
                    record = store._records.get(session_id)
                    live = store._live_of(session_id)
                    if record is None or live is None or record.cursor <= live.session.cursor:
                        return
                    session = live.session
                    events = int(CHUNK_S / session.pace) if session.pace else 0
                    session.catch_up(record.cursor, max(256, events))
                finally:
                    lock.release()
            finally:
                store._slots.release()

    def _build(self, session_id: str) -> bool:
        """Build and add the checkpoint `session_id` wants most; True if one was added."""
        store = self._store
        lock = store._lock_for(session_id)
        if not lock.acquire(blocking=False):
            return False  # in use: looked at again after that request
        try:
            live = store._live_of(session_id)
            if live is None or not self._room_for(live):
                return False
            session = live.session
            target = session.checkpoint_target()
            if target is None:
                return False
            run, chunk = session.new_run(), max(16, int(CHUNK_S / session.pace))
        finally:
            lock.release()
        kept = False
        try:
            while run.cursor < target and not run.done:
                if not self._slot():
                    return False
                try:
                    run.advance("event", min(chunk, target - run.cursor))
                    settle(run)  # never left holding a device thread
                finally:
                    store._slots.release()
            if not lock.acquire(timeout=store._queue_timeout_s):
                return False
            try:
                live = store._live_of(session_id)
                if live is None or live.session is not session or not self._room_for(live):
                    return False
                if run.error is not None and run.error["type"] in OUT_OF_MEMORY_ERRORS:
                    return False  # not what the program does: what the device had left
                kept = True  # by the session from here on, or closed by it
                return session.add_checkpoint(run)
            finally:
                lock.release()
        finally:
            if not kept:
                run.close()

    def _room_for(self, live: _Live) -> bool:
        """May `live` keep one more copy of its program within the memory caps?"""
        store = self._store
        if live.session.max_checkpoints == 0:
            return False
        cap = store._max_live_bytes
        return cap is None or store.live_bytes + live.bytes <= cap
