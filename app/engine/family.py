"""A session's family of processes: its head, its live host, its forked checkpoints.

On CPU a checkpoint is a fork of the session's program, paused where it was taken
(DESIGN.md §7: "a copy of the run at cursor k"). A move back goes on from the nearest
one: it forks a *successor*, which becomes the live host, and the host it replaces
stays as a checkpoint where its program stood. So the process that runs the session
changes; what stays is:

- the **head**, the process the zygote forks (its pid is the host's, for the zygote):
  it forks the first live host and then only waits. Every process of the family dies
  with it: each watches the head's *life pipe*, whose write end only the head holds,
  and exits on its EOF. The head ends the family (SIGKILL to its process group) once
  the live host ends or dies: it watches the *token* pipe, whose write end only the
  live host holds, handed from host to successor. It reaps the family's orphans
  (a child subreaper).
- the **listening socket**, which only the live host holds, handed on with the token
  and the connections it has taken and not answered.

A checkpoint waits on its *channel* (a socket pair with the live host; the live host's
end is handed on as well) for one command at a time: fork a successor, fork one that
walks on to a later cursor and stays there as a checkpoint (``grow``), or fork a copy
that answers one question and ends. Its channel's EOF (the live host dropped it, or
ended) ends it. See docs/fork-checkpoints.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from app.engine import wire
from app.engine.copies import CopyFailed, answer_of

__all__ = [
    "Frozen",
    "MoveTo",
    "head",
    "held",
    "serve_frozen",
    "watch",
]

_PR_SET_CHILD_SUBREAPER = 36
_MAX_FDS = 250  # handed on at once: the listener, the token, connections, channels
_COMMAND_TIMEOUT_S = 30.0

# The read end of the head's life pipe (every process of a family holds it), and the
# write end of the token (the live host holds it).
life: int | None = None
token: int | None = None


@dataclass(eq=False)
class Frozen:
    """A checkpoint in a process of its own: the program paused at ``cursor``.

    Also what a successor knows of the host it replaces, until its move takes the
    program it was forked with (``missing_since``: that host's program's).
    """

    cursor: int
    done: bool
    pid: int
    channel: socket.socket
    missing_since: int | None = None
    keepable: bool = field(default=True, init=False)

    def describe(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "done": self.done, "pid": self.pid}

    @classmethod
    def of(cls, described: dict[str, Any], channel: int) -> Frozen:
        """The checkpoint ``described`` (by describe, or Session.left_behind with a pid),
        reached on the socket descriptor ``channel``."""
        return cls(
            int(described["cursor"]),
            bool(described["done"]),
            int(described["pid"]),
            socket.socket(fileno=channel),
            missing_since=described.get("missing_since"),
        )

    def command(self, message: dict[str, Any], fds: list[int]) -> Any:
        """Send one command (with ``fds``) and return its answer; OSError or
        ConnectionError if the checkpoint is gone or refused."""
        channel = self.channel
        channel.settimeout(_COMMAND_TIMEOUT_S)
        socket.send_fds(channel, [b"!"], fds)
        wire.write(channel, message)
        answer = wire.read(channel)
        if "ok" not in answer:
            raise ConnectionError(str(answer.get("error")))
        return answer["ok"]

    def copy(self, message: dict[str, Any], timeout_s: float = _COMMAND_TIMEOUT_S) -> Any:
        """Ask the checkpoint for a copy of its program that answers ``message`` (see
        the host's on_command) and ends; CopyFailed (or OSError) if none answers."""
        reader, writer = os.pipe()
        try:
            pid = self.command({"op": "copy", "work": message}, [writer])
        except ConnectionError as exc:
            raise CopyFailed(str(exc)) from None
        finally:
            os.close(writer)
        try:
            return answer_of(int(pid), reader, timeout_s)
        finally:
            os.close(reader)

    def close(self) -> None:
        """End the checkpoint (its channel's EOF would; the kill makes it now)."""
        self.channel.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class MoveTo(Exception):
    """The program should go on from ``frozen``, a checkpoint in another process: the
    host hands the session over to a successor forked there (see Checkpoints.nearest)."""

    def __init__(self, frozen: Frozen) -> None:
        super().__init__(f"go on from the checkpoint at {frozen.cursor}")
        self.frozen = frozen


def head(start: Callable[[], None], given: list[socket.socket], *, forks: bool) -> NoReturn:
    """Become a family's head (in the process the zygote forks) and fork its first live
    host, which runs ``start()``, and to which ``given`` belong (the head closes them);
    return never: exit once the live host is gone. A host that never ``forks`` (CUDA,
    edited code: app.engine.host) stays the live one: it gets no token, and the head
    waits for it to end instead (under the sandbox it holds no pipe)."""
    global life, token
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # the zygote ends the family with one killpg
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    life_r, life_w = os.pipe()
    token_r, token_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(life_w)
        os.close(token_r)
        if not forks:
            os.close(token_w)
            token_w = None  # type: ignore[assignment]
        life, token = life_r, token_w
        code = 0
        try:
            start()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(life_r)
    os.close(token_w)
    for sock in given:
        sock.close()
    if forks:
        while not select.select([token_r], [], [], 1.0)[0]:
            _reap()
    else:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    # The live host ended (idle, closed) or died: so does every process of the family.
    os.killpg(0, signal.SIGKILL)
    os._exit(0)


def watch() -> None:
    """In every process of a family that forks: exit when the head has gone, and reap
    this process's children that ended (a thread)."""
    if life is None:
        return

    def run(fd: int) -> None:
        while not select.select([fd], [], [], 1.0)[0]:
            _reap()
        os._exit(0)

    threading.Thread(target=run, args=(life,), name="family", daemon=True).start()


def held() -> list[int]:
    """The family's descriptors a live host holds: the token (for a successor)."""
    return [] if token is None else [token]


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def serve_frozen(
    channel: socket.socket, on_command: Callable[[dict[str, Any], list[int]], Any]
) -> NoReturn:
    """Be a checkpoint: answer the commands that come on ``channel`` with
    ``on_command(message, fds)`` (which owns the fds), until its EOF; then exit."""
    channel.settimeout(None)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, 1, _MAX_FDS)
            if not data:
                break
            message = wire.read(channel, 1 << 24)
        except (OSError, ValueError):
            break
        try:
            answer: dict[str, Any] = {"ok": on_command(message, fds)}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            wire.write(channel, answer)
        except OSError:
            break
    os._exit(0)
