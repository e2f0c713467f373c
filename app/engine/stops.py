"""When a step stops early, and at what scheduling priority its program runs.

A step's program checks its :class:`Stop` at every event (Goal, in the tracer): it
stops between two events, never inside one, so a stopped program is paused exactly
as a step would leave it (DESIGN.md §5.1).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

__all__ = ["Stop", "to_background", "to_foreground"]


class Stop:
    """When a step stops early, between two events: at a wall-clock ``deadline``, once
    the process has used ``cpu_deadline`` seconds of CPU, or when ``cancel`` is set.

    ``reason`` says which ("time" or "cancelled", as State.interrupted names them) and
    ``detail`` says it in a sentence, once it has been reached. The program's thread
    runs the step at ``foreground_nice`` (given: raised back there as it sets out, where
    the OS allows, see :func:`to_foreground`), and from ``background_at``
    (monotonic) on at ``background_nice`` (see :func:`to_background`).
    """

    def __init__(
        self,
        *,
        deadline: float | None = None,
        cpu_deadline: float | None = None,
        cancel: threading.Event | None = None,
        background_at: float | None = None,
        background_nice: int = 10,
        foreground_nice: int | None = None,
    ) -> None:
        self.foreground_nice = foreground_nice
        self.deadline = deadline
        self.cpu_deadline = cpu_deadline
        self.cancel = cancel
        self.background_at = background_at
        self.background_nice = background_nice
        self.reason: str | None = None
        self.detail = ""

    def begin(self) -> None:
        """Called by the program's thread as it sets out on the step."""
        if self.foreground_nice is not None:
            to_foreground(self.foreground_nice)

    def reached(self) -> bool:
        # Checked by the program's own thread at every event (the one to lower): one
        # clock read serves both times.
        now = time.monotonic()
        if self.background_at is not None and now >= self.background_at:
            self.background_at = None
            to_background(self.background_nice)
        if self.cancel is not None and self.cancel.is_set():
            self.reason, self.detail = "cancelled", "the step was cancelled"
        elif self.deadline is not None and now >= self.deadline:
            self.reason, self.detail = "time", "the step ran for its time limit"
        elif self.cpu_deadline is not None and time.process_time() >= self.cpu_deadline:
            self.reason, self.detail = "time", "the session used up its CPU time"
        return self.reason is not None


def to_background(nice: int) -> None:
    """Lower the calling thread's scheduling priority to ``nice``, if it is above it.

    NOTE: on Linux the nice value belongs to a thread. A confined host may not change
    it at all (seccomp: EPERM).
    """
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def to_foreground(nice: int) -> None:
    """Raise the calling thread's scheduling priority back to ``nice``, if it is below it.

    NOTE: an unprivileged thread may raise its priority only as far as RLIMIT_NICE
    allows (to nice 20 - limit; hosts raise their soft limit to the hard one, and the
    compose file sets it to 20, so nice 0): elsewhere a thread lowered stays lowered.
    """
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) > nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
