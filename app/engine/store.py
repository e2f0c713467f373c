"""Live sessions (LRU + idle expiry) over persisted session records.

Records (`app.engine.records`, SQLite or Redis) are the truth: a live `Session` is a
cache of one, and a session that is not live (never opened by this process, evicted,
or from before a restart) is rebuilt by replay, `Session(...)` then
`seek(cursor=record.cursor)`. Runs are deterministic, so the rebuilt session shows the
same numbers.
"""

from __future__ import annotations

import gc
import math
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from app.engine.checkpoints import CheckpointBuilder
from app.engine.locks import HostLocks
from app.engine.records import Records, SessionRecord
from app.engine.session import OUT_OF_MEMORY_ERRORS, Session
from app.lessons.config import estimate_bytes
from app.lessons.registry import Lesson, get_lesson

__all__ = [
    "Busy",
    "OutOfMemory",
    "SessionStore",
    "TooManySessions",
    "UnknownSession",
]

T = TypeVar("T")


class UnknownSession(Exception):
    """No session has this id (never created, deleted, or expired)."""

    def __init__(self, session_id: str) -> None:
        shown = session_id if len(session_id) <= 64 else session_id[:63] + "…"
        super().__init__(
            f"there is no session {shown!r}: it was deleted, it expired after being left "
            "unused, or the id is wrong; start a new one with POST /api/sessions"
        )
        self.session_id = session_id


class TooManySessions(Exception):
    """The store holds `max_sessions` sessions already."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Busy(Exception):
    """No torch job slot (or the session itself) came free within the queue timeout."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OutOfMemory(Exception):
    """The device ran out of memory; the session is back at its cursor before the move."""


@dataclass
class _Live:
    session: Session
    last_used: float
    bytes: int  # the run's estimated tensor memory


class SessionStore:
    """Sessions by id: create, use (serialised per id, bounded work), delete, expire.

    Every method blocks (torch work, I/O): call them from worker threads, never from an
    event loop.
    """

    def __init__(
        self,
        records: Records,
        *,
        max_sessions: int,
        max_live_sessions: int,
        max_live_bytes: int | None = None,
        checkpoints: int = 0,
        checkpoint_max_bytes: int = 0,
        ttl_s: float,
        max_concurrent_work: int,
        queue_timeout_s: float,
        host_locks: HostLocks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._host_locks = host_locks
        self._max_sessions = max_sessions
        self._max_live = max_live_sessions
        self._max_live_bytes = max_live_bytes
        self._ttl_s = ttl_s
        self._queue_timeout_s = queue_timeout_s
        self._clock = clock
        self._slots = threading.BoundedSemaphore(max_concurrent_work)
        self._guard = threading.Lock()  # over _live, _locks and _last_sweep
        self._live: OrderedDict[str, _Live] = OrderedDict()
        # NOTE: a lock lives while some thread holds a reference to it, so ids of gone
        # sessions leave nothing behind and two threads on one id share one lock.
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._last_sweep = clock()
        self._checkpoints = checkpoints
        self._checkpoint_max_bytes = checkpoint_max_bytes
        self._builder = CheckpointBuilder(self) if checkpoints else None

    # -- service ---------------------------------------------------------

    def create(self, *, lesson: Lesson, config: dict[str, Any]) -> dict[str, Any]:
        """Start a session of `lesson` with a resolved `config`; return its State."""
        self.sweep()
        now = self._clock()
        record = SessionRecord(secrets.token_hex(16), lesson.id, dict(config), 0, now, now)
        if not self._records.add(record, limit=self._max_sessions):
            raise TooManySessions(
                f"the server already holds its limit of {self._max_sessions} sessions; "
                "delete sessions you no longer need (DELETE /api/sessions/{id}) or wait "
                f"for idle ones to expire (after {self._ttl_s:g} s)",
                # A hint: an idle session frees a place within ttl_s; ask again within a minute.
                retry_after_s=max(1, min(60, math.ceil(self._ttl_s))),
            )
        try:
            return self._use(record.id, _checked(Session.state), moves=True)
        except BaseException:
            self._records.delete(record.id)
            raise

    def state(self, session_id: str) -> dict[str, Any]:
        return self._use(session_id, Session.state)

    def step(self, session_id: str, *, by: str, count: int) -> dict[str, Any]:
        """Advance `count` steps of kind `by` (past the end: the end); return the State."""

        def step(session: Session) -> dict[str, Any]:
            session.step(by=by, count=count)
            return session.state()

        return self._use(session_id, _checked(step), moves=True)

    def seek(self, session_id: str, *, cursor: int) -> dict[str, Any]:
        """Move to `cursor` (past the end: the end); return the State."""

        def seek(session: Session) -> dict[str, Any]:
            session.seek(cursor=cursor)
            return session.state()

        return self._use(session_id, _checked(seek), moves=True)

    def graph(self, session_id: str) -> dict[str, Any]:
        return self._use(session_id, Session.graph)

    def torchviz_dot(self, session_id: str) -> str:
        return self._use(session_id, Session.torchviz_dot)

    def tensor(self, session_id: str, name: str) -> dict[str, Any]:
        """TensorDetail of `name`; KeyError (not UnknownSession) when it is not in scope."""
        return self._use(session_id, lambda session: session.tensor(name))

    def gradcheck(self, session_id: str, tensor: str, index: list[int]) -> dict[str, Any]:
        """Check one gradient element; KeyError when `tensor` is not in scope."""
        return self._use(session_id, lambda session: session.gradcheck(tensor, index))

    def grad_element(
        self, session_id: str, node_id: str, side: str, k: int, index: list[int]
    ) -> dict[str, Any]:
        """An element of a gradient in a node's ledger (KeyError: no such ledger here)."""
        return self._use(
            session_id, lambda session: session.grad_element(node_id, side, k, index), moves=True
        )

    def check_records(self) -> dict[str, Any]:
        """What /healthz says of the session records (raises when they cannot be read)."""
        return self._records.check()

    def delete(self, session_id: str) -> None:
        with self._session_lock(session_id):
            if not self._records.delete(session_id):
                raise UnknownSession(session_id)
            self._drop_live(session_id)

    @contextmanager
    def work(self) -> Iterator[None]:
        """Hold one of the `max_concurrent_work` job slots (raise Busy after the timeout)."""
        if not self._slots.acquire(timeout=self._queue_timeout_s):
            raise Busy(
                "the server is busy running other lessons; try again in a moment",
                retry_after_s=max(1, math.ceil(self._queue_timeout_s)),
            )
        try:
            yield
        finally:
            self._slots.release()

    def sweep(self) -> list[str]:
        """Delete the records idle for longer than the TTL and close their live sessions."""
        now = self._clock()
        with self._guard:
            self._last_sweep = now
            idle = [i for i, live in self._live.items() if live.last_used < now - self._ttl_s]
        gone = self._records.expire(before=now - self._ttl_s)
        for session_id in {*gone, *idle}:
            lock = self._lock_for(session_id)
            # One in use is not idle: it is saved again when its request ends.
            if lock.acquire(blocking=False):
                try:
                    self._drop_live(session_id)
                finally:
                    lock.release()
        return gone

    def close(self) -> None:
        """Close every live session and the records."""
        if self._builder is not None:
            self._builder.stop()
        with self._guard:
            lives = list(self._live.values())
            self._live.clear()
        for live in lives:
            live.session.close()
        self._records.close()
        if self._host_locks is not None:
            self._host_locks.close()

    # -- mechanics -------------------------------------------------------

    def _use(self, session_id: str, action: Callable[[Session], T], *, moves: bool = False) -> T:
        if self._builder is None:
            return self._use_now(session_id, action, moves=moves)
        with self._builder.request():
            result = self._use_now(session_id, action, moves=moves)
        if moves:
            self._evict()  # a move back keeps the program it left as a checkpoint
            self._builder.want(session_id)
        return result

    def _use_now(
        self, session_id: str, action: Callable[[Session], T], *, moves: bool = False
    ) -> T:
        if self._clock() - self._last_sweep > min(self._ttl_s / 4, 60.0):
            self.sweep()
        with self._session_lock(session_id):
            record = self._records.get(session_id)
            now = self._clock()
            if record is None or record.last_used < now - self._ttl_s:
                if record is not None:
                    self._records.delete(session_id)
                self._drop_live(session_id)
                raise UnknownSession(session_id)
            failure: str | None = None
            with self.work():
                try:
                    result, cursor = self._act(record, action, now)
                except torch.cuda.OutOfMemoryError as exc:
                    failure = _first_line(exc)
                if failure is not None:
                    self._forget_after_oom(session_id)
                    raise OutOfMemory(
                        f"the device ran out of memory ({failure}); the session is still at "
                        "its previous step: try again later, or use a smaller config"
                    )
            self._records.touch(
                session_id, cursor=cursor if moves else record.cursor, last_used=now
            )
            return result

    def _act(
        self, record: SessionRecord, action: Callable[[Session], T], now: float
    ) -> tuple[T, int]:
        if record.config.get("device", "cpu") != "cpu":
            self._free_device_threads(besides=record.id)
        session = self._live_session(record, now)
        return action(session), session.cursor

    def _free_device_threads(self, *, besides: str) -> None:
        """Move the other live sessions out of any backward they are paused in on a GPU.

        NOTE: there the autograd engine runs backward in its device thread, one per
        device, and a program paused in a node hook holds that thread: any other
        backward on the device would wait for it to move, maybe until it expires. They
        keep showing where they are (`Session.free_device_thread`).
        """
        with self._guard:
            others = [i for i, live in self._live.items() if i != besides]
        for session_id in others:
            self._with_lock(session_id, self._free_device_thread)

    def _free_device_thread(self, session_id: str) -> None:
        live = self._live_of(session_id)
        if live is not None:
            live.session.free_device_thread()

    def _live_of(self, session_id: str) -> _Live | None:
        """The live entry of `session_id` (hold its lock to use the session)."""
        with self._guard:
            return self._live.get(session_id)

    def _forget_after_oom(self, session_id: str) -> None:
        """Close the run an out-of-memory error left at an unknown point, and free memory.

        NOTE: called after the `except` block, once the traceback (whose frames hold the
        run's tensors) is gone. The record keeps the cursor before the failed move, so a
        later request rebuilds the session there by replay.
        """
        self._drop_live(session_id)
        gc.collect()
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    @contextmanager
    def _session_lock(self, session_id: str) -> Iterator[None]:
        """Hold the session against other threads, then against other processes."""
        busy = Busy(
            "this session is busy with another request; try again when it has finished",
            retry_after_s=max(1, math.ceil(self._queue_timeout_s)),
        )
        deadline = time.monotonic() + self._queue_timeout_s
        with ExitStack() as held:
            lock = self._lock_for(session_id)
            if not lock.acquire(timeout=self._queue_timeout_s):
                raise busy
            held.callback(lock.release)
            if self._host_locks is not None:
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    held.enter_context(self._host_locks.hold(session_id, remaining))
                except TimeoutError:
                    raise busy from None
            yield

    def _lock_for(self, session_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(session_id)
            if lock is None:
                lock = self._locks[session_id] = threading.Lock()
            return lock

    def _live_session(self, record: SessionRecord, now: float) -> Session:
        """The live session of `record` (held lock), rebuilt by replay when not live."""
        with self._guard:
            live = self._live.get(record.id)
            if live is not None:
                self._live.move_to_end(record.id)
                live.last_used = now
        if live is None:
            lesson = get_lesson(record.lesson)
            size = estimate_bytes(lesson, record.config)
            # NOTE: not on CUDA: device memory is smaller than the cap (which is the
            # host's), and each checkpoint is a copy of the session's tensors there.
            small = size <= self._checkpoint_max_bytes and record.config.get("device") == "cpu"
            checkpoints = self._checkpoints if small else 0
            session = Session(
                id=record.id, lesson=lesson, config=record.config, checkpoints=checkpoints
            )
            session.seek(cursor=record.cursor)
            with self._guard:
                self._live[record.id] = _Live(session, now, size)
            self._evict()
            return session
        if live.session.cursor != record.cursor:
            # Another replica moved this session since this one last used it.
            live.session.seek(cursor=record.cursor)
        return live.session

    def _moved_elsewhere(self) -> list[str]:
        """Live sessions whose records are further on: another process moved them."""
        with self._guard:
            lives = list(self._live.items())
        found = []
        for session_id, live in lives:
            record = self._records.get(session_id)
            if record is not None and record.cursor > live.session.cursor:
                found.append(session_id)
        return found

    @property
    def live_bytes(self) -> int:
        """The estimated tensor memory of the live sessions and their checkpoints."""
        with self._guard:
            return sum(
                live.bytes * (1 + len(live.session.checkpoints)) for live in self._live.values()
            )

    def _over_caps(self) -> bool:
        """More live sessions, or more of their estimated memory, than the caps allow?"""
        with self._guard:
            if len(self._live) > self._max_live:
                return True
        return self._max_live_bytes is not None and self.live_bytes > self._max_live_bytes

    def _evict(self) -> None:
        """Close least recently used live sessions while over a cap, skipping those in use.

        The newest one stays: memory is then bounded by the cap plus the sessions that
        requests hold (at most `max_concurrent_work` of them run at once).
        """
        with self._guard:
            candidates = list(self._live)
        # Checkpoints go first (they only save time), then whole sessions but the newest.
        for session_id in candidates:
            if not self._over_caps():
                return
            self._with_lock(session_id, self._drop_checkpoints)
        for session_id in candidates[:-1]:
            if not self._over_caps():
                return
            self._with_lock(session_id, self._drop_live)

    def _with_lock(self, session_id: str, action: Callable[[str], None]) -> None:
        """Run `action(session_id)` if no request holds the session now."""
        lock = self._lock_for(session_id)
        if lock.acquire(blocking=False):
            try:
                action(session_id)
            finally:
                lock.release()

    def _drop_checkpoints(self, session_id: str) -> None:
        live = self._live_of(session_id)
        while live is not None and self._over_caps() and live.session.drop_checkpoint():
            pass

    def _drop_live(self, session_id: str) -> None:
        with self._guard:
            live = self._live.pop(session_id, None)
        if live is not None:
            live.session.close()


def _checked(action: Callable[[Session], dict[str, Any]]) -> Callable[[Session], dict[str, Any]]:
    """Wrap a move so that an out-of-memory error the lesson caught is raised instead.

    Running out of memory depends on what else the device holds, not on the lesson:
    it must not become the session's recorded outcome, which replay would not reproduce.
    """

    def checked(session: Session) -> dict[str, Any]:
        state = action(session)
        error = state.get("error")
        if error and error.get("type") in OUT_OF_MEMORY_ERRORS:
            raise torch.cuda.OutOfMemoryError(error.get("message", "out of memory"))
        return state

    return checked


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
