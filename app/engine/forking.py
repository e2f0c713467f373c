"""The side of a session host that forks (app.engine.family, docs/fork-checkpoints.md).

On the CPU a host keeps its checkpoints as forks of its program, each waiting on a
channel: it takes them (_freeze), has them grow new ones while idle (_grow), hands the
session over to a successor forked from one (_hand_over), and, in a fork, serves the
commands of the live host (_on_command) or becomes it (_succeed).
"""

from __future__ import annotations

import os
import queue
import select
import socket
from typing import TYPE_CHECKING, Any

from app.engine import family, wire
from app.engine.copies import CopyFailed, answer_with
from app.engine.family import Frozen
from app.engine.hooks import Peek
from app.engine.session import Session, peeked
from app.engine.stops import Stop, to_foreground
from app.engine.tracer import Run

if TYPE_CHECKING:
    from app.engine.host import HostSpec

__all__ = ["Forking"]

_STALE: list[Any] = []  # see Forking._succeed


class Forking:
    """Mixed into app.engine.host.Host: what it does with forks of its program."""

    _listener: socket.socket
    _spec: HostSpec
    _session: Session
    _requests: queue.Queue[tuple[socket.socket, dict[str, Any]]]
    _answering: socket.socket | None
    _accepting: socket.socket | None
    _stop_r: int
    _stop_w: int
    _building: tuple[Run, int] | None
    _growing: Frozen | None
    _builds: dict[str, int]
    _cpu_spent: float
    _moved_at: float
    _nice: int
    _adopting: bool
    _channel: socket.socket

    def _stop_listening(self) -> None:
        raise NotImplementedError  # (the host's)

    def _listen_again(self) -> None:
        raise NotImplementedError  # (the host's)

    def _room_for_one_more(self) -> bool:
        raise NotImplementedError  # (the host's)

    def serve(self, handed: list[tuple[socket.socket, dict[str, Any]]] | None = None) -> None:
        raise NotImplementedError  # (the host's)

    def _grow(self, target: int) -> bool:
        """Have the nearest fork before ``target`` fork one that walks there, in the
        background, and stays as a checkpoint; False if there is none to ask."""
        base = self._session.kept.nearest_fork(target)
        if base is None:
            return False
        mine, theirs = socket.socketpair()
        try:
            pid = base.command({"op": "grow", "target": target}, [theirs.fileno()])
        except OSError:
            mine.close()
            return False
        finally:
            theirs.close()
        self._growing = Frozen(target, False, int(pid), mine)  # (where it is bound)
        return True

    def _grown(self) -> None:
        """Keep the checkpoint _grow asked for, once it says it is there."""
        grown, self._growing = self._growing, None
        assert grown is not None
        if not select.select([grown.channel], [], [], 0)[0]:
            self._growing = grown
            return  # still walking
        try:
            grown.channel.settimeout(5.0)
            there = wire.read(grown.channel)
            grown.cursor, grown.done = int(there["cursor"]), bool(there["done"])
        except (OSError, ValueError, KeyError, TypeError):
            grown.close()
            return
        self._builds["forked"] += self._session.add_checkpoint(grown)

    def _grow_here(self, run: Run, channel: socket.socket, fd: int, target: int) -> None:
        """In a fork of a checkpoint: walk to ``target`` in the background, say where
        it got, and stay there as a checkpoint (on the channel ``fd``)."""
        channel.close()  # the checkpoint's
        mine = socket.socket(fileno=fd)
        family.watch()
        nice = self._spec.background_nice
        run.advance(
            "event",
            target - run.cursor,
            stop=Stop(background_at=0.0, background_nice=nice) if nice else None,
        )
        wire.write(mine, {"cursor": run.cursor, "done": run.done})
        family.serve_frozen(mine, lambda m, fds: self._on_command(run, mine, m, fds))

    def _freeze(self, run: Run) -> Frozen | None:
        """Keep ``run`` as a checkpoint in a process of its own (Checkpoints.freeze): a fork
        of it that waits for commands on a channel (None: no room, or no fork)."""
        if not self._room_for_one_more():
            return None
        mine, theirs = socket.socketpair()

        def child() -> None:
            mine.close()
            self._leave_to_parent()
            family.watch()
            family.serve_frozen(theirs, lambda m, fds: self._on_command(run, theirs, m, fds))

        pid = run.fork_child(child)
        theirs.close()
        if pid is None:  # (or the fork, given a goal: it goes on as a successor)
            mine.close()
            return None
        return Frozen(run.cursor, run.done, pid, mine)

    def _leave_to_parent(self) -> None:
        """In a fork that is not the live host: close what only the live host may hold
        (its listener, connections, checkpoints' channels and the token), so that their
        ends see it when the live host is gone."""
        taken = [self._answering, self._accepting, *(c for c, _ in self._requests.queue)]
        for sock in [self._listener, *taken]:
            if sock is not None:
                sock.close()
        for kept in self._session.kept.forked():
            kept.channel.close()
        if self._growing is not None:
            self._growing.channel.close()
        if family.token is not None:
            os.close(family.token)
            family.token = None
        os.close(self._stop_r)
        os.close(self._stop_w)

    def _on_command(
        self, run: Run, channel: socket.socket, message: dict[str, Any], fds: list[int]
    ) -> int:
        """In a checkpoint: fork a copy that answers one question (``copy``), one that
        walks on to a later cursor and stays there as a checkpoint (``grow``), or a
        successor that serves the session from here on (``successor``)."""
        try:
            op, work = message["op"], message.get("work") or {}
            if op == "copy" and work.get("op") == "peek":  # Session.grad_element's
                (writer,) = fds
                node_id, side, k, index = work["peek"]
                peek = Peek(node_id, side, int(k), tuple(index))
                target = int(work["target"])
                pid = run.fork_child(lambda: answer_with(lambda: peeked(run, peek, target), writer))
            elif op == "grow":
                (fd,) = fds
                target = int(message["target"])
                pid = run.fork_child(lambda: self._grow_here(run, channel, fd, target))
            elif op == "successor":
                pid = run.fork_child(lambda: self._succeed(run, channel, message, fds))
            else:
                raise ValueError(f"unknown command {op!r}")
        finally:
            for fd in fds:
                os.close(fd)
        if pid is None:
            raise CopyFailed("the checkpoint could not fork")
        return pid

    def _hand_over(self, frozen: Frozen, conn: socket.socket, request: dict[str, Any]) -> bool:
        """Hand the session over to a successor forked from ``frozen``: the listener,
        the token, this request and those waiting, and every checkpoint, this process
        among them. False (``frozen`` closed, the requests back in place) if it failed."""
        self._stop_listening()
        waiting = []
        while not self._requests.empty():
            waiting.append(self._requests.get_nowait())
        session = self._session
        kept = [*session.kept.forked(), frozen]
        mine, theirs = socket.socketpair()
        conns = [conn, *(c for c, _ in waiting)]
        token = family.held()
        message = {
            "op": "successor",
            "requests": [request, *(r for _, r in waiting)],
            "left": {**session.left_behind(), "pid": os.getpid()},
            "view": session.view,
            "kept": [k.describe() for k in kept],
            "token": bool(token),
            "cpu_spent": self._cpu_spent,
            "moved_at": self._moved_at,
            "replays": session.replays,
            "nice": self._nice,
            "builds": self._builds,
        }
        fds = [
            self._listener.fileno(),
            *token,
            theirs.fileno(),
            *(k.channel.fileno() for k in kept),
            *(c.fileno() for c in conns),
        ]
        try:
            frozen.command(message, fds)
        except OSError:
            frozen.close()
            mine.close()
            theirs.close()
            for item in waiting:
                self._requests.put(item)
            self._listen_again()
            return False
        for sock in [theirs, self._listener, *(k.channel for k in kept), *conns[1:]]:
            sock.close()
        if token:
            os.close(family.token)  # type: ignore[arg-type]
            family.token = None
        session.kept.forget_forked()
        if self._building is not None:  # (a checkpoint is not building any)
            self._building[0].close()
            self._building = None
        if self._growing is not None:
            self._growing.close()
            self._growing = None
        self._channel = mine
        return True

    def _be_frozen(self) -> None:
        """After a hand-over: stay as the checkpoint where the program stands."""
        run = self._session.program
        channel = self._channel
        family.serve_frozen(channel, lambda m, fds: self._on_command(run, channel, m, fds))

    def _succeed(
        self, run: Run, channel: socket.socket, message: dict[str, Any], fds: list[int]
    ) -> None:
        """In a successor, forked from a checkpoint of ``run``: serve the session."""
        channel.close()  # the checkpoint's
        fds = list(fds)
        listener = socket.socket(fileno=fds.pop(0))
        if message["token"]:
            family.token = fds.pop(0)
        left_behind = Frozen.of(message["left"], fds.pop(0))
        kept = [Frozen.of(described, fds.pop(0)) for described in message["kept"]]
        session = self._session
        # What this process was forked with and will not use: kept, never collected
        # (a run whose thread is not here, sockets closed by number).
        _STALE.append((self, session.program, self._building))
        conns = [socket.socket(fileno=fd) for fd in fds]
        session.kept.take_over(kept)
        session.adopt(run, left_behind, message["view"])
        session.replays = int(message["replays"])
        to_foreground(int(message["nice"]))  # this thread was the checkpoint's
        host = type(self)(listener, self._spec, session)  # type: ignore[call-arg]
        host._cpu_spent, host._moved_at = float(message["cpu_spent"]), float(message["moved_at"])
        host._adopting = True
        host._builds = dict(message["builds"])
        family.watch()
        host.serve(handed=list(zip(conns, message["requests"], strict=True)))
        os._exit(0)
