"""Sessions: their records (the truth) and their hosts (the live programs).

A record (`app.engine.records`, SQLite or Redis) says which lesson, which config and
which cursor; the session's host (`app.engine.hosts`) runs the program paused there.
A host that is not running (never started on this machine, ended when idle or by the
memory caps, died, or from before a restart) is started from the record and replays
to its cursor: runs are deterministic, so it shows the same numbers.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.engine.host import STUCK_GRACE_S, HostSpec
from app.engine.hosts import Hosts
from app.engine.records import Records, SessionRecord
from app.engine.session import Session
from app.lessons.config import estimate_bytes
from app.lessons.registry import Lesson, edited, get_lesson
from app.settings import Settings

__all__ = ["HostLimits", "SessionStore", "TooManySessions", "UnknownSession"]


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


@dataclass(frozen=True)
class HostLimits:
    """What every host of this server gets (see `HostSpec`), from the settings."""

    checkpoints: int
    checkpoint_max_bytes: int
    memory_bytes: int
    memory_margin_bytes: int
    step_time_s: float
    cpu_s: float
    queue: int
    idle_s: float
    max_events: int = 1_000_000  # events an edited program may run
    background_nice: int = 10
    lookahead_s: float = 0.5

    @classmethod
    def of(cls, settings: Settings) -> HostLimits:
        return cls(
            checkpoints=settings.checkpoints,
            checkpoint_max_bytes=settings.checkpoint_max_bytes,
            memory_bytes=settings.max_session_bytes,
            memory_margin_bytes=settings.host_memory_margin_bytes,
            step_time_s=settings.step_time_s,
            cpu_s=settings.session_cpu_s,
            queue=settings.session_queue,
            idle_s=settings.host_idle_s,
            max_events=settings.code_max_events,
            background_nice=settings.background_nice,
            lookahead_s=settings.lookahead_s,
        )

    def spec(self, record: SessionRecord, lesson: Lesson) -> HostSpec:
        size = estimate_bytes(lesson, record.config)
        # NOTE: not on CUDA: each checkpoint is a copy of the session's tensors there.
        small = size <= self.checkpoint_max_bytes and record.config.get("device", "cpu") == "cpu"
        return HostSpec(
            id=record.id,
            lesson=record.lesson,
            config=dict(record.config),
            cursor=record.cursor,
            bytes=size,
            checkpoints=self.checkpoints if small else 0,
            memory_bytes=self.memory_bytes,
            memory_margin_bytes=self.memory_margin_bytes,
            step_time_s=self.step_time_s,
            cpu_s=self.cpu_s,
            queue=self.queue,
            idle_s=self.idle_s,
            source=record.source,
            max_events=self.max_events,
            background_nice=self.background_nice,
            lookahead_s=self.lookahead_s,
        )


class SessionStore:
    """Sessions by id: create, use (through their hosts), cancel, delete, expire.

    Every method blocks (socket and store I/O): call them from worker threads, never
    from an event loop.
    """

    def __init__(
        self,
        records: Records,
        hosts: Hosts,
        *,
        limits: HostLimits,
        max_sessions: int,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self.hosts = hosts
        self._limits = limits
        self._max_sessions = max_sessions
        self._ttl_s = ttl_s
        self._clock = clock
        self._last_sweep = clock()

    # -- service ---------------------------------------------------------

    def create(self, *, lesson: Lesson, config: dict[str, Any]) -> dict[str, Any]:
        """Start a session of `lesson` (or of a learner's edit of it, see
        `app.lessons.registry.edited`) with a resolved `config`; return its State."""
        self.sweep()
        now = self._clock()
        source = lesson.source if lesson.edited else None
        record = SessionRecord(
            secrets.token_hex(16), lesson.id, dict(config), 0, now, now, source=source
        )
        if not self._records.add(record, limit=self._max_sessions):
            raise TooManySessions(
                f"the server already holds its limit of {self._max_sessions} sessions; "
                "delete sessions you no longer need (DELETE /api/sessions/{id}) or wait "
                f"for idle ones to expire (after {self._ttl_s:g} s)",
                # A hint: an idle session frees a place within ttl_s; ask again within a minute.
                retry_after_s=max(1, min(60, math.ceil(self._ttl_s))),
            )
        # NOTE: no host yet: it starts with the first request for the session, where that
        # lands (nginx routes by session id). Before its first line a program has run
        # nothing (an edit is compiled, not run), so its state is read here.
        session = Session(id=record.id, lesson=lesson, config=record.config)
        try:
            return session.state()
        finally:
            session.close()

    def warm(self) -> None:
        """Start the zygote now rather than at the first session (it imports torch)."""
        self.hosts.warm()

    def state(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(session_id, {"op": "state"})
        return result

    def step(self, session_id: str, *, by: str, count: int) -> dict[str, Any]:
        """Advance `count` steps of kind `by` (past the end: the end); return the State
        (with `interrupted` set when the step stopped early)."""
        result: dict[str, Any] = self._call(session_id, {"op": "step", "by": by, "count": count})
        return result

    def seek(self, session_id: str, *, cursor: int) -> dict[str, Any]:
        """Move to `cursor` (past the end: the end); return the State."""
        message = {"op": "seek", "cursor": cursor}
        result: dict[str, Any] = self._call(session_id, message)
        return result

    def graph(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(session_id, {"op": "graph"})
        return result

    def graph_ahead(self, session_id: str) -> dict[str, Any]:
        """``{"graph": Graph, "ahead": the structure this iteration will leave, or None}``
        (see Session.ahead)."""
        result: dict[str, Any] = self._call(session_id, {"op": "graph_ahead"})
        return result

    def torchviz_dot(self, session_id: str) -> str:
        return str(self._call(session_id, {"op": "torchviz_dot"}))

    def tensor(self, session_id: str, name: str) -> dict[str, Any]:
        """TensorDetail of `name`; KeyError (not UnknownSession) when it is not in scope."""
        result: dict[str, Any] = self._call(session_id, {"op": "tensor", "name": name})
        return result

    def gradcheck(self, session_id: str, tensor: str, index: list[int]) -> dict[str, Any]:
        """Check one gradient element; KeyError when `tensor` is not in scope."""
        message = {"op": "gradcheck", "tensor": tensor, "index": index}
        result: dict[str, Any] = self._call(session_id, message)
        return result

    def grad_element(
        self, session_id: str, node_id: str, side: str, k: int, index: list[int]
    ) -> dict[str, Any]:
        """An element of a gradient in a node's ledger (KeyError: no such ledger here)."""
        message = {"op": "grad_element", "node_id": node_id, "side": side, "k": k, "index": index}
        result: dict[str, Any] = self._call(session_id, message)
        return result

    def source(self, session_id: str) -> dict[str, Any]:
        """The program the session runs: its source, whether it is a learner's edit, the
        lines that differ from the lesson's and the notes of those that do not."""
        record = self._record(session_id)
        lesson = _lesson_of(record)
        return {
            "source": lesson.source,
            "edited": lesson.edited,
            "changed": list(lesson.changed or ()),
            "notes": {str(line): dict(note) for line, note in lesson.notes.items()},
        }

    def ping(self, session_id: str) -> dict[str, Any]:
        """The host's process id, cursor, CPU time spent and checkpoints (for tests)."""
        result: dict[str, Any] = self._call(session_id, {"op": "ping"})
        return result

    def cancel(self, session_id: str) -> None:
        """Stop the session's step in flight, if any, at its next event."""
        if self._records.get(session_id) is None:
            raise UnknownSession(session_id)
        self.hosts.cancel(session_id)

    def check_records(self) -> dict[str, Any]:
        """What /healthz says of the session records (raises when they cannot be read)."""
        return self._records.check()

    def delete(self, session_id: str) -> None:
        if not self._records.delete(session_id):
            raise UnknownSession(session_id)
        self.hosts.kill(session_id)

    def sweep(self) -> list[str]:
        """Delete the records idle for longer than the TTL and end their hosts."""
        now = self._clock()
        self._last_sweep = now
        gone = self._records.expire(before=now - self._ttl_s)
        for session_id in gone:
            self.hosts.kill(session_id)
        return gone

    def close(self) -> None:
        """End the hosts this process used, and close the records."""
        self.hosts.close()
        self._records.close()

    # -- mechanics -------------------------------------------------------

    def _stuck_after(self, record: SessionRecord) -> float | None:
        """How long a host running edited code may take to answer once it took the
        request up (None: a lesson's host): a step stops at the step time, and one
        operation gets the grace its host's own watchdog gives it."""
        if record.source is None:
            return None
        return self._limits.step_time_s + STUCK_GRACE_S

    def _record(self, session_id: str) -> SessionRecord:
        """The session's record (UnknownSession: none, or expired)."""
        now = self._clock()
        if now - self._last_sweep > min(self._ttl_s / 4, 60.0):
            self.sweep()
        record = self._records.get(session_id)
        if record is None or record.last_used < now - self._ttl_s:
            if record is not None:
                self._records.delete(session_id)
                self.hosts.kill(session_id)
            raise UnknownSession(session_id)
        return record

    def _call(self, session_id: str, message: dict[str, Any]) -> Any:
        now = self._clock()
        record = self._record(session_id)

        def spec() -> HostSpec:
            return self._limits.spec(record, get_lesson(record.lesson))

        # The record tells a host this replica did not move to follow another's moves.
        sent = {**message, "record": {"cursor": record.cursor, "moved": record.moved}}
        answer = self.hosts.call(spec, sent, session_id, stuck_after_s=self._stuck_after(record))
        result = answer["ok"]
        # Used until now: a long step (or a host's start) does not count as idle time.
        used = max(now, self._clock())
        self._records.touch(
            session_id, cursor=answer["cursor"], last_used=used, moved=answer["moved"]
        )
        return result


def _lesson_of(record: SessionRecord) -> Lesson:
    lesson = get_lesson(record.lesson)
    return lesson if record.source is None else edited(lesson, record.source)
