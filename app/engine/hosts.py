"""The worker side of session hosts: start the zygote, reach a session's host, end it.

Every worker process (and every app on the machine that shares the hosts' folder)
talks to the same zygote and to the one host of each session, so a session has one
live copy on the machine. See `app.engine.zygote` and `app.engine.host`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.engine import wire
from app.engine.gradcheck import GradcheckError
from app.engine.graph import GraphFreedError
from app.engine.host import STARTED, HostSpec, stuck_message
from app.engine.session import StepUnavailable
from app.settings import host_environment

__all__ = [
    "MALFORMED",
    "CpuSpent",
    "HostDied",
    "Hosts",
    "ProgramFailed",
    "ProgramStuck",
    "SessionBusy",
]

_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `app`
_START_TIMEOUT_S = 120.0  # a cold zygote imports torch (seconds; more on a busy machine)


class SessionBusy(Exception):
    """The session's host has as many requests waiting as it takes (409)."""


class CpuSpent(Exception):
    """The session has used its CPU time (429)."""


class HostDied(Exception):
    """The session's host ended while it answered (503 once; the next request replays)."""


class ProgramStuck(Exception):
    """An edited program's operation ran past the step's time limit; its host ended (422)."""


class ProgramFailed(Exception):
    """An edited program's objects broke what its host does with them, e.g. the State
    (422: the program's doing, not the server's)."""


class Hosts:
    """The hosts of sessions, reached through their sockets in ``folder``."""

    def __init__(
        self,
        folder: Path,
        *,
        caps: dict[str, int],
        answer_timeout_s: float,
    ) -> None:
        self.folder = folder
        self._caps = caps
        self._answer_timeout_s = answer_timeout_s
        self._guard = threading.Lock()
        self._used: set[str] = set()  # sessions whose hosts this process reached
        self._sandbox: dict[str, Any] | None = None

    def path(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()[:24]
        return str(self.folder / f"{digest}.sock")

    def call(
        self,
        spec: Callable[[], HostSpec],
        message: dict[str, Any],
        session_id: str,
        *,
        stuck_after_s: float | None = None,
    ) -> Any:
        """Send ``message`` to the session's host, starting it (from ``spec()``) if none
        runs; return its answer (``{"ok": result, "cursor": int}``) or raise what it
        refused with.

        Given ``stuck_after_s`` (a host that runs edited code, which says when it takes
        the request up), a host that has not answered that long after is ended from here
        and the call raises ProgramStuck: its own watchdog may be starved (a C call that
        holds the GIL), stopped or rewritten by the program; this one is out of its reach.
        """
        path = self.path(session_id)
        with self._guard:
            self._used.add(session_id)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                sock = _connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise HostDied("the session's host could not be started") from None
                spawn = {"op": "spawn", "path": path, "spec": asdict(spec()), "caps": self._caps}
                self._zygote(spawn)
                time.sleep(0.005)
        answer: Any = None
        with sock:
            sock.settimeout(self._answer_timeout_s)
            try:
                wire.write(sock, message)
                answer = wire.read(sock)
                if stuck_after_s is not None and answer == STARTED:
                    # The host took the request up: from now on it has stuck_after_s.
                    sock.settimeout(stuck_after_s + 1.0)
                    answer = wire.read(sock)
            except TimeoutError:
                if stuck_after_s is None:
                    raise SessionBusy(
                        "this session's host did not answer in time; try again in a moment"
                    ) from None
                # From outside, whatever the program did to its host (even to the notice).
                self.kill(session_id)
                if answer == STARTED:
                    raise ProgramStuck(stuck_message(stuck_after_s)) from None
                raise ProgramStuck(
                    f"this program's session host did not answer for "
                    f"{self._answer_timeout_s:g} s (its program may have changed it), so it "
                    "was ended; the session goes back to where its last answered step left it"
                ) from None
            except (wire.WireError, ConnectionError):
                raise HostDied(
                    "the session's host ended while answering (it may have run out of "
                    "memory); the next request replays the session to where it was"
                ) from None
        if not _well_formed(answer):  # a host that ran edited code is not trusted
            self.kill(session_id)
            raise HostDied(MALFORMED)
        if "ok" in answer:
            return answer
        raise _refusal(answer)

    def cancel(self, session_id: str) -> bool:
        """Stop the step in flight of a session at its next event; False if no host runs."""
        try:
            sock = _connect(self.path(session_id))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        with sock:
            sock.settimeout(5.0)
            try:
                wire.write(sock, {"op": "cancel"})
                wire.read(sock)
            except (OSError, wire.WireError):
                return False
        return True

    def kill(self, session_id: str) -> None:
        """End the session's host at once, if one runs."""
        if self._zygote_running():
            self._zygote({"op": "kill", "path": self.path(session_id)})
        with self._guard:
            self._used.discard(session_id)

    def warm(self) -> None:
        """Start the zygote if none serves the folder, and wait until it does."""
        self._zygote({"op": "stats"})

    def sandbox(self) -> dict[str, Any]:
        """The report of the edited-code sandbox's self-test, from the zygote (started if
        none runs; see `app.engine.sandbox.self_test`), asked once for this object's life."""
        if self._sandbox is None:
            self._sandbox = self._zygote({"op": "sandbox"})
        return self._sandbox

    def stats(self) -> dict[str, Any] | None:
        """What the zygote holds (None when no zygote runs)."""
        if not self._zygote_running():
            return None
        result: dict[str, Any] = self._zygote({"op": "stats"})
        return result

    def close(self) -> None:
        """End the hosts of the sessions this process used."""
        with self._guard:
            used, self._used = self._used, set()
        for session_id in used:
            try:
                self.kill(session_id)
            except OSError:
                return  # the zygote is gone, and the hosts with it

    # -- the zygote ------------------------------------------------------------

    def _zygote_running(self) -> bool:
        try:
            _connect(str(self.folder / "zygote.sock")).close()
        except OSError:
            return False
        return True

    def _zygote(self, request: dict[str, Any]) -> Any:
        path = str(self.folder / "zygote.sock")
        try:
            sock = _connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock = self._start_zygote(path)
        with sock:
            sock.settimeout(30.0)
            # Every request names this process: the zygote serves while one it knows lives.
            wire.write(sock, {**request, "pid": os.getpid()})
            answer = wire.read(sock)
        if "ok" not in answer:
            raise RuntimeError(f"the zygote refused {request['op']}: {answer}")
        return answer["ok"]

    def _start_zygote(self, path: str) -> socket.socket:
        """Start the zygote (one per folder: a lock file decides) and connect to it."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.folder / "starting.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return _connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            subprocess.Popen(
                [sys.executable, "-m", "app.engine.zygote", str(self.folder), str(os.getpid())],
                env=host_environment(_ROOT),
                cwd=_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # its hosts talk over sockets; errors go to stderr
                start_new_session=True,  # a terminal's Ctrl-C reaches the server, not it
                close_fds=True,
            )
            deadline = time.monotonic() + _START_TIMEOUT_S
            while True:
                try:
                    return _connect(path)
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(path) from None
        raise
    return sock


MALFORMED = (
    "the session's host sent an answer that is not one (its program may have changed "
    "it); the host was ended, and the next request replays the session"
)


def _well_formed(answer: Any) -> bool:
    """An answer: an object with an ``error``, or an ``ok`` with the cursor and the stamp
    of the move that set it."""
    if not isinstance(answer, dict):
        return False
    if "ok" not in answer:
        return isinstance(answer.get("error"), dict)
    cursor, moved = answer.get("cursor"), answer.get("moved")
    return (
        type(cursor) is int
        and 0 <= cursor < 1 << 53
        and isinstance(moved, int | float)
        and not isinstance(moved, bool)
        and math.isfinite(moved)
    )


def _refusal(answer: dict[str, Any]) -> Exception:
    error = answer.get("error") or {}
    kind, message = str(error.get("kind")), str(error.get("message", ""))[:2000]
    if kind == "key":
        return KeyError(message)
    if kind == "value":
        return ValueError(message)
    if kind == "graph_freed":
        return GraphFreedError(message)
    if kind == "gradcheck":
        return GradcheckError(int(answer.get("status", 409)), message)
    if kind == "busy":
        return SessionBusy(message)
    if kind == "cpu":
        return CpuSpent(message)
    if kind == "stuck":
        return ProgramStuck(message)
    if kind == "program":
        return ProgramFailed(
            f"the program's objects could not be shown ({message}); change the code that made them"
        )
    if kind == "step_unavailable":
        return StepUnavailable(message)
    return RuntimeError(f"the session's host failed: {message}")
