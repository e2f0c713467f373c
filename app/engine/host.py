"""A session host: the one process that runs one session's program (DESIGN.md §7).

Forked by its family's head (`app.engine.family`), which the zygote forks
(`app.engine.zygote`), a host owns its session's paused program and answers the requests
of every worker process on the machine, one at a time, over its own Unix socket
(`app.engine.wire`). The operating system bounds it: its address space (`RLIMIT_AS`: its
session's memory budget above what it used at rest), the kernel kills it first when
memory runs out (`oom_score_adj` 1000), and it dies with its family's head, which dies
with the zygote. On the CPU its checkpoints are forks of its program, and a move back
hands the session over to a successor forked from one (`app.engine.family`). Its steps
stop between events at their time limit, when cancelled, or when the session has used
its CPU time; a session that has used it steps no more.

A listener thread takes requests as they arrive: a `cancel` is done at once, anything
else waits in a bounded queue for the main thread, which runs the program. While no
request waits, the main thread builds checkpoints; after `idle_s` without one, the
host exits (the session is replayed where it was when next used).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch

from app.engine import family, wire
from app.engine.checkpoints import settle
from app.engine.copies import die_with_parent
from app.engine.family import Frozen, MoveTo
from app.engine.forking import Forking
from app.engine.gradcheck import GradcheckError
from app.engine.graph import GraphFreedError
from app.engine.output import bounded_text
from app.engine.session import Session, StepUnavailable
from app.engine.stops import Stop
from app.engine.tracer import Run
from app.lessons.registry import edited, get_lesson

__all__ = ["HostSpec", "serve"]

_log = logging.getLogger(__name__)

# Checkpoints are built once no request has come for QUIET_S, a piece of about
# CHUNK_S at a time, so that a request arriving meanwhile waits for one piece at most.
QUIET_S = 0.05
CHUNK_S = 0.01
# A step still running after LONG_STEP_S is a long run: its program thread drops to
# spec.background_nice, so that single steps of other sessions go first, and the next
# step raises it back (where RLIMIT_NICE allows: see to_foreground). Checkpoints are
# built there from the start. (Reads are answered by the main thread, never lowered.)
LONG_STEP_S = 0.2
# An edited program that makes no progress for a step's time limit and this much more,
# while a request waits, is ended (Host._watch).
STUCK_GRACE_S = 5.0
# What a host running edited code sends when it takes a request up, before its answer.
STARTED = {"started": True}
# How often an idle host of edited code checks that nothing of its program runs.
IDLE_CHECK_S = 0.1
_REQUEST_LIMIT = 1 << 20  # what a worker sends is small (a step, a name, an index)


@dataclass(frozen=True)
class HostSpec:
    """What a host runs and within which limits (sent by a worker, through the zygote)."""

    id: str
    lesson: str
    config: dict[str, Any]
    cursor: int  # where the session's record says it is: the host replays to there
    bytes: int  # the run's estimated tensor memory
    checkpoints: int
    memory_bytes: int  # the session's memory budget (its tensors and their copies)
    memory_margin_bytes: int  # address space above the budget: thread stacks, arenas
    step_time_s: float
    cpu_s: float  # CPU time the session's steps may use in all
    queue: int  # requests that may wait while one runs
    idle_s: float
    source: str | None = None  # a learner's edit of the lesson: run confined (sandbox)
    max_events: int | None = None  # the most events an edited program may run
    background_nice: int = 10  # of a program whose step ran LONG_STEP_S, and of builds
    lookahead_s: float = 0.5  # a look-ahead's time limit (Session.ahead); 0: none

    @property
    def forks(self) -> bool:
        """May its program be forked (copies, checkpoints: app.engine.family)? Forks copy
        the program's thread only: fine on CPU, where it is the only one that computes;
        never with a CUDA context, nor under the sandbox (no fork)."""
        return self.source is None and str(self.config.get("device", "cpu")) == "cpu"

    @classmethod
    def of(cls, message: dict[str, Any]) -> HostSpec:
        return cls(**{name: message[name] for name in cls.__dataclass_fields__})


class _Refused(Exception):
    """A request the host answers with an error of its own ``kind``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def serve(listener: socket.socket, spec: HostSpec, parent: int) -> None:
    """Run the host on ``listener`` until it is idle for ``spec.idle_s`` or closed
    (``parent``: the process id of its family's head, app.engine.family)."""
    _bound(spec, parent)
    if spec.source is not None:
        # Before the host starts a thread or runs a line of the edit (app.engine.sandbox).
        from app.engine.sandbox import confine

        confine(listener.fileno(), cpu_s=spec.cpu_s, keep=tuple(family.held()))
    host = Host(listener, spec)
    if host.forks:
        family.watch()
    host.serve()


def _bound(spec: HostSpec, parent: int) -> None:
    """Die with the family's head, die first under memory pressure, cap the address
    space.

    NOTE: Linux only (prctl, /proc); elsewhere a host runs without these bounds.
    """
    if sys.platform != "linux":
        return
    die_with_parent(parent)
    # As far as the hard limit allows, a thread lowered for a long step may be raised back.
    _, hard = resource.getrlimit(resource.RLIMIT_NICE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NICE, (hard, hard))
    # A container may refuse: then the kernel makes its own choice.
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as file:
        file.write("1000")
    device = str(spec.config.get("device", "cpu"))
    if device == "cpu":
        # NOTE: what the process maps at rest (~750 MB of torch, mostly never touched)
        # plus the budget and a margin: the budget is what the lesson's tensors add.
        with open("/proc/self/statm") as statm:
            at_rest = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = at_rest + spec.memory_bytes + spec.memory_margin_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    elif device.startswith("cuda") and torch.cuda.is_available():
        # RLIMIT_AS breaks CUDA's initialisation: a share of the device instead.
        index = torch.device(device).index or 0
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, spec.memory_bytes / total), index)


class Host(Forking):
    def __init__(
        self, listener: socket.socket, spec: HostSpec, session: Session | None = None
    ) -> None:
        self._listener = listener
        self._path = listener.getsockname()
        self._spec = spec
        if session is None:
            lesson = get_lesson(spec.lesson)
            session = Session(
                id=spec.id,
                lesson=lesson if spec.source is None else edited(lesson, spec.source),
                config=spec.config,
                checkpoints=spec.checkpoints,
                max_events=spec.max_events,
            )
        self._session = session
        self.forks = spec.forks
        session.can_copy = self.forks
        session.lookahead.timeout_s = spec.lookahead_s
        if self.forks:
            session.kept.freeze = self._freeze
        # The listener thread of a host that forks runs until a byte comes on this pipe
        # (a hand-over). (Under the sandbox, no pipe can be made.)
        self._stop_r, self._stop_w = os.pipe() if self.forks else (-1, -1)
        self._listening: threading.Thread | None = None
        self._accepting: socket.socket | None = None  # a connection being read
        # A successor's first request goes on from the program it was forked with.
        self._adopting = False
        self._requests: queue.Queue[tuple[socket.socket, dict[str, Any]]] = queue.Queue()
        self._cancel = threading.Event()  # of the step in progress
        self._cpu_spent = 0.0
        # The host's own priority (read by its main thread): each step starts there,
        # whatever a long step or a checkpoint's build lowered its thread to before.
        self._nice = os.getpriority(os.PRIO_PROCESS, 0)
        self._building: tuple[Run, int] | None = None  # a checkpoint being built, its cursor
        # A checkpoint a fork is building (_grow), bound for its cursor until it says.
        self._growing: Frozen | None = None
        self._builds = {"forked": 0, "replayed": 0}  # checkpoints built while idle, how
        self._closing = False
        self._moved_at = 0.0  # when the session last moved here (time.time())
        # The connection whose answer is being worked out, and the lock its answer is
        # written under (by the main thread, or by the watchdog of an edited program).
        self._answering: socket.socket | None = None
        self._served = 0
        self._write = threading.Lock()

    def serve(self, handed: list[tuple[socket.socket, dict[str, Any]]] | None = None) -> None:
        """Answer requests until idle or closed; a successor first answers those
        ``handed`` over (app.engine.family)."""
        for item in handed or []:
            self._requests.put(item)
        self._listen_again()
        if self._spec.source is not None:
            threading.Thread(target=self._watch, name="host-watchdog", daemon=True).start()
        if handed is None:
            self._session.seek(cursor=self._spec.cursor)
            self._moved()
        edited = self._spec.source is not None
        idle_since = time.monotonic()
        cpu_at = time.process_time()
        while not self._closing:
            # (A successor's program is its session's only once it answered what it was
            # handed: Session.adopt.)
            building = self._requests.empty() and (self._worth_building() or self._ahead_wanted())
            try:
                wait = QUIET_S if building else IDLE_CHECK_S if edited else 1.0
                conn, request = self._requests.get(timeout=wait)
            except queue.Empty:
                if time.monotonic() - idle_since > self._spec.idle_s:
                    return
                if edited and not building and time.process_time() - cpu_at > wait / 2:
                    _log.warning("session host %s: its program runs between steps", os.getpid())
                    return  # a thread the program left running: end it with the host
                self._idle()
                cpu_at = time.process_time()
                continue
            self._touch(busy=True)
            self._answering, self._served = conn, self._served + 1
            if edited:  # when it began, for the worker's own watchdog (Hosts.call)
                with contextlib.suppress(OSError):
                    wire.write(conn, STARTED)
            with conn:
                handed_over = self._answer(conn, request)
            if handed_over:  # a successor serves the session: this is a checkpoint now
                self._be_frozen()
            self._touch(busy=False)
            idle_since = time.monotonic()
            cpu_at = time.process_time()

    def _touch(self, *, busy: bool) -> None:
        """Tell the zygote, which ends the least recently used hosts first, that this
        one is in use (busy: a time far ahead, so that it is never picked meanwhile)."""
        now = time.time() + (1e9 if busy else 0)
        with contextlib.suppress(OSError):
            os.utime(self._path, (now, now))

    # -- listener thread ---------------------------------------------------

    def _listen_again(self) -> None:
        # (Where it may be stopped, select says when to accept, without blocking in it.)
        self._listener.setblocking(not self.forks)
        self._listening = threading.Thread(target=self._listen, name="host-listener", daemon=True)
        self._listening.start()

    def _stop_listening(self) -> None:
        os.write(self._stop_w, b"!")
        assert self._listening is not None
        self._listening.join()
        os.read(self._stop_r, 1)

    def _listen(self) -> None:
        while True:
            if self.forks:
                waiting = [self._listener.fileno(), self._stop_r]
                if self._stop_r in select.select(waiting, [], [])[0]:
                    return
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            self._accepting = conn  # (a fork meanwhile closes it: Forking._leave_to_parent)
            try:
                conn.settimeout(5.0)
                request = wire.read(conn, _REQUEST_LIMIT)
                if request.get("op") == "cancel":
                    self._cancel.set()
                    wire.write(conn, {"ok": True})
                elif self._requests.qsize() >= self._spec.queue:
                    wire.write(conn, _error("busy", _busy(self._spec.queue)))
                else:
                    conn.settimeout(None)
                    self._requests.put((conn, request))
                    continue  # the main thread answers and closes it
            except (OSError, ValueError, AttributeError):
                pass  # a worker gone, or not a request: nothing to answer
            finally:
                self._accepting = None
            conn.close()

    # -- main thread ---------------------------------------------------------

    def _answer(self, conn: socket.socket, request: dict[str, Any]) -> bool:
        """Answer ``request`` on ``conn``; True if it was handed over to a successor."""
        try:
            try:
                self._follow(request.get("record"))
                answer: dict[str, Any] = {"ok": self._do(request)}
            finally:
                if self._adopting:
                    self._adopting = False
                    self._session.adopted()
        except MoveTo as move:
            return self._hand_over(move.frozen, conn, request) or self._answer(conn, request)
        except _Refused as exc:
            answer = _error(exc.kind, str(exc))
        except KeyError as exc:
            answer = _error("key", str(exc.args[0]) if exc.args else "")
        except GraphFreedError as exc:
            answer = _error("graph_freed", str(exc))
        except StepUnavailable as exc:
            answer = _error("step_unavailable", str(exc))
        except GradcheckError as exc:
            answer = {**_error("gradcheck", exc.message), "status": exc.status}
        except Exception as exc:
            if self._spec.source is not None:  # an edit's own objects, most likely
                answer = _error("program", f"{type(exc).__name__}: {bounded_text(exc)}")
            elif isinstance(exc, ValueError):
                answer = _error("value", str(exc))
            else:  # the server answers 500 and logs it
                _log.exception("session host %s failed on %s", os.getpid(), request.get("op"))
                answer = _error("internal", f"{type(exc).__name__}: {exc}")
        # What the worker writes in the record: where the session is, since which move.
        answer["cursor"], answer["moved"] = self._session.cursor, self._moved_at
        with self._write, contextlib.suppress(OSError):  # a worker gone waits for nothing
            self._answering = None
            wire.write(conn, answer)
        return False

    def _watch(self) -> None:
        """End the host when an edited program makes no progress, with a request waiting,
        for longer than a step may take: one operation of its own that never returns
        (a step stops between events, so only a single operation can outlive it)."""
        limit = self._spec.step_time_s + STUCK_GRACE_S
        seen, since = None, time.monotonic()
        while True:
            time.sleep(0.25)
            now, mark = time.monotonic(), (self._served, self._session.cursor)
            if mark != seen or self._answering is None:
                seen, since = mark, now
            elif now - since > limit:
                # No new connection from here on (one taken now would be reset as the
                # host ends): the next request goes to the zygote for a new host.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                with self._write:
                    if self._answering is not None:
                        with contextlib.suppress(OSError):
                            wire.write(self._answering, _error("stuck", stuck_message(limit)))
                    os._exit(3)

    def _follow(self, record: dict[str, Any] | None) -> None:
        """Go where the session's record says, if another replica moved it since.

        NOTE: the record's cursor carries the stamp of the move that set it (this
        host's answers carry theirs, and a record never goes back to an older stamp),
        so a record stamped at or before this host's last move says nothing new, even
        when a worker read it before another wrote that move: only a later one is
        followed.
        """
        if record is None or float(record["moved"]) <= self._moved_at:
            return
        cursor = int(record["cursor"])
        if cursor != self._session.cursor:
            self._session.seek(cursor=cursor)  # a replay: not charged
        self._moved_at = float(record["moved"])

    def _moved(self) -> None:
        """Stamp a move made here (later than any before, whatever the clock does)."""
        self._moved_at = max(time.time(), self._moved_at + 1e-6)

    def _do(self, request: dict[str, Any]) -> Any:
        session = self._session
        op = request.get("op")
        if op == "state":
            return session.state()
        if op == "step":
            try:
                return self._step(str(request["by"]), int(request["count"]))
            finally:
                self._moved()
        if op == "seek":  # a replay: atomic, and not charged to the CPU budget
            session.seek(cursor=int(request["cursor"]))
            self._moved()
            return session.state()
        if op == "graph":
            return session.graph()
        if op == "graph_ahead":  # the graph, and the iteration's whole structure
            # A copy counts against the session's memory budget, as a checkpoint does.
            ahead = session.ahead() if self._room_for_one_more() else None
            return {"graph": session.graph(), "ahead": ahead}
        if op == "torchviz_dot":
            return session.torchviz_dot()
        if op == "tensor":
            return session.tensor(str(request["name"]))
        if op == "gradcheck":
            return session.gradcheck(str(request["tensor"]), list(request["index"]))
        if op == "grad_element":
            return session.grad_element(
                str(request["node_id"]),
                str(request["side"]),
                int(request["k"]),
                list(request["index"]),
            )
        if op == "ping":
            return {
                "pid": os.getpid(),
                "cursor": session.cursor,
                "cpu_spent": self._cpu_spent,
                "checkpoints": session.checkpoints,
                "forks": [kept.pid for kept in session.kept.forked()],
                "builds": self._builds,
                "replays": session.replays,
                "looks_ahead": session.looks_ahead,
            }
        if op == "close":
            self._closing = True
            return True
        raise _Refused("value", f"unknown request {op!r}")

    def _step(self, by: str, count: int) -> dict[str, Any]:
        spec = self._spec
        left = spec.cpu_s - self._cpu_spent
        if left <= 0:
            raise _Refused(
                "cpu",
                f"this session has used its CPU time ({spec.cpu_s:g} s of steps); it can "
                "still be read and moved back, or start a new session",
            )
        self._cancel = cancel = threading.Event()
        started = time.process_time()
        now = time.monotonic()
        stop = Stop(
            deadline=now + spec.step_time_s,
            cpu_deadline=started + left,
            cancel=cancel,
            background_at=now + LONG_STEP_S if spec.background_nice else None,
            background_nice=spec.background_nice,
            foreground_nice=self._nice if spec.background_nice else None,
        )
        try:
            interrupted = self._session.step(by=by, count=count, stop=stop)
        finally:
            self._cpu_spent += time.process_time() - started
        state = self._session.state()
        return state if interrupted is None else {**state, "interrupted": interrupted}

    # -- checkpoints -----------------------------------------------------------

    def _worth_building(self) -> bool:
        """Is there a checkpoint to build, now? Not while the program is paused where no
        other run of it may move (Run.keepable): inside a torch.fx tracer, whose
        process-wide state a run through one would see."""
        if self._growing is not None:
            return True
        if not self._session.keepable:
            return False
        return self._building is not None or self._session.checkpoint_target() is not None

    def _ahead_wanted(self) -> bool:
        return not self._session.ahead_known(next_one=True) and self._room_for_one_more()

    def _idle(self) -> None:
        """Use a quiet moment: look the next iteration ahead (so that the step into it
        finds its layout's structure ready), else build a piece of a checkpoint."""
        if self._ahead_wanted():
            self._session.ahead(next_one=True)
        else:
            self._build_piece()

    def _build_piece(self) -> None:
        """Advance the checkpoint being built by a piece; keep it once it is there.

        Where the session forks its checkpoints, one is built from the nearest fork
        before its cursor, by a fork of that one, in a process of its own (_grow); else
        by a second run of the program here, from its start.
        """
        session = self._session
        if self._growing is not None:
            self._grown()
            return
        if not session.keepable:  # see _worth_building (_idle may come for a look-ahead)
            return
        if self._building is None:
            target = session.checkpoint_target()
            if target is None or not self._room_for_one_more():
                return
            if self.forks and self._grow(target):
                return
            self._building = (session.new_run(), target)
        run, target = self._building
        background = Stop(background_at=0.0, background_nice=self._spec.background_nice)
        run.advance(
            "event",
            min(max(16, int(CHUNK_S / session.pace)), target - run.cursor),
            stop=background if self._spec.background_nice else None,
        )
        settle(run)  # never left where another run may not move (Run.keepable)
        if run.cursor >= target or run.done:
            self._building = None
            self._builds["replayed"] += session.add_checkpoint(run)

    def _room_for_one_more(self) -> bool:
        """Does the session's memory budget hold one more copy of its program?"""
        copies = 2 + len(self._session.checkpoints)
        return self._spec.bytes * copies <= self._spec.memory_bytes


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message}}


def stuck_message(limit: float) -> str:
    return (
        f"one operation of this program ran for over {limit:g} s without reaching its next "
        "line, longer than a step may take (AGX_STEP_TIME_S), so it was stopped; the "
        "session goes back to where this step began. Make that operation smaller (fewer "
        "elements, or a loop in Python instead of one long call)"
    )


def _busy(queue: int) -> str:
    return (
        f"this session is busy: {queue} requests already wait for it; try again when its "
        "step has finished, or cancel it (POST /api/sessions/{id}/cancel)"
    )
