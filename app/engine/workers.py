"""Threads that run lesson programs: a paused program holds one, a finished one gives it back."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["WorkerPool"]


class WorkerPool:
    """Threads that run lesson programs, kept for reuse.

    A paused program holds its thread, so the pool grows with the number of
    live sessions; a thread that finishes its program waits for the next one
    (warm allocator arenas and OpenMP teams make a reused thread faster than
    a new one) unless enough are already idle.
    """

    def __init__(self, max_idle: int = 4) -> None:
        self._max_idle = max_idle
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, task: Callable[[], bool]) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker(self)
            worker.start()
        worker.give(task)

    def forget(self) -> None:
        """In a forked child: the idle threads were the parent's (a child has only the
        thread that forked), so none is there to take a program."""
        self._idle = []
        self._lock = threading.Lock()

    def _done(self, worker: _Worker) -> bool:
        """Take ``worker`` back; False if it should exit instead."""
        with self._lock:
            if len(self._idle) >= self._max_idle:
                return False
            self._idle.append(worker)
            return True


class _Worker(threading.Thread):
    def __init__(self, pool: WorkerPool) -> None:
        super().__init__(name="lesson-worker", daemon=True)
        self._pool = pool
        self._task: Callable[[], bool] | None = None
        self._ready = threading.Event()

    def give(self, task: Callable[[], bool]) -> None:
        self._task = task
        self._ready.set()

    def run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            task, self._task = self._task, None
            # NOTE: a program stopped mid-way (session closed) may not have run
            # its `with` exits (torch.no_grad() among them): its thread-local
            # state is not trusted again, the thread ends with it.
            clean = task() if task is not None else True
            del task  # an idle worker must not keep its last run (and its tensors) alive
            if not clean or not self._pool._done(self):
                return
