"""The zygote: imports torch and the lessons once, then forks one host per live session.

Started by a worker process with exec (`python -m app.engine.zygote FOLDER OWNER_PID`),
a clean environment (no settings, no secrets) and one BLAS/OpenMP thread, it starts no
thread and no CUDA context, so that a fork of it is a clean, ready process: a session
host (`app.engine.host`; what it forks is the head of the host's family of processes,
`app.engine.family`, which forks the host, and whose pid is the host's here). It listens
on FOLDER/zygote.sock and answers:

- ``spawn``: start the host of a session at its socket path unless one runs there;
- ``kill``: end a session's host at once (SIGKILL to its family);
- ``stats``: the live hosts;
- ``sandbox``: the report of the edited-code sandbox's self-test, run once at start
  (`app.engine.sandbox.self_test`, in a throwaway child, while the zygote has one thread).

Every request names the worker process that sends it: the zygote and every host end
once none of those processes is alive.

It keeps the live hosts within caps (their count, their estimated bytes, CUDA hosts),
ending the least recently used (a host touches its socket file when it answers); an
ended host's session is replayed when next used.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]

_TICK_S = 0.25
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class _Host:
    pid: int
    bytes: int
    cuda: bool
    started: float


class Zygote:
    def __init__(self, folder: Path, owner: int, sandbox: dict[str, Any], lock: int) -> None:
        self.folder = folder
        self.lock = lock  # held while it serves the folder (not by its hosts)
        self.owners = {owner}
        self.sandbox = sandbox
        self.hosts: dict[str, _Host] = {}  # by socket path
        self.conn: socket.socket | None = None  # the request being answered
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def serve(self) -> None:
        path = self.folder / "zygote.sock"
        path.unlink(missing_ok=True)
        self.listener.bind(str(path))
        self.listener.listen(128)
        while self.owners:
            readable, _, _ = select.select([self.listener], [], [], _TICK_S)
            if readable:
                conn, _ = self.listener.accept()
                with conn:
                    self.conn = conn
                    self._answer(conn)
            self._reap()
            self.owners = {pid for pid in self.owners if _alive(pid)}
        self._end_all()
        path.unlink(missing_ok=True)

    def _end_all(self) -> None:
        """Kill every host and reap it, with every process of its family (so none is
        left behind as a zombie: this is their subreaper, and they come here as the
        processes that forked them end)."""
        hosts, self.hosts = list(self.hosts.values()), {}
        for host in hosts:
            _kill(host.pid)
        deadline = time.monotonic() + 5.0
        with contextlib.suppress(ChildProcessError):  # none left
            while time.monotonic() < deadline:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.005)

    def _answer(self, conn: socket.socket) -> None:
        from app.engine import wire

        try:
            conn.settimeout(5.0)
            request = wire.read(conn, 1 << 20)
            wire.write(conn, {"ok": self._do(request)})
        except Exception as exc:
            with contextlib.suppress(OSError):
                wire.write(conn, {"error": {"kind": "internal", "message": str(exc)}})

    def _do(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        if "pid" in request:
            self.owners.add(int(request["pid"]))
        if op == "spawn":
            return self._spawn(request)
        if op == "kill":
            host = self.hosts.pop(request["path"], None)
            Path(request["path"]).unlink(missing_ok=True)
            if host is not None:
                _kill(host.pid)
            return host is not None
        if op == "stats":
            return {"hosts": len(self.hosts), "bytes": sum(h.bytes for h in self.hosts.values())}
        if op == "sandbox":
            return self.sandbox
        raise ValueError(f"unknown request {op!r}")

    def _spawn(self, request: dict[str, Any]) -> str:
        from app.engine.host import HostSpec

        path = request["path"]
        spec = HostSpec.of(request["spec"])
        self._reap()
        host = self.hosts.get(path)
        if host is not None and _alive(host.pid) and os.path.exists(path):
            return "running"
        cuda = str(spec.config.get("device", "cpu")) != "cpu"
        self._make_room(spec.bytes, cuda, request["caps"])
        Path(path).unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._become_host(listener, spec, zygote)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # (the host does too: whichever runs first)
        listener.close()
        self.hosts[path] = _Host(pid, spec.bytes, cuda, time.monotonic())
        return "started"

    def _become_host(self, listener: socket.socket, spec: Any, zygote: int) -> None:
        """The head of the session's family of processes (app.engine.family), which
        forks its live host."""
        from app.engine.copies import die_with_parent
        from app.engine.family import head
        from app.engine.host import serve

        try:
            self.listener.close()
            if self.conn is not None:
                self.conn.close()
            os.close(self.lock)
            die_with_parent(zygote)
            parent = os.getpid()
            head(lambda: serve(listener, spec, parent), [listener], forks=spec.forks)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)

    def _make_room(self, size: int, cuda: bool, caps: dict[str, int]) -> None:
        """End least recently used hosts until one more of ``size`` bytes fits the caps."""

        def over() -> bool:
            hosts = self.hosts.values()
            return (
                len(self.hosts) + 1 > caps["hosts"]
                or sum(h.bytes for h in hosts) + size > caps["bytes"]
                or (cuda and sum(h.cuda for h in hosts) + 1 > caps["cuda_hosts"])
            )

        while self.hosts and over():
            now = time.time()
            idle = sorted(self.hosts, key=_last_used)
            path = next((p for p in idle if now - _last_used(p) > 1.0), None)
            if path is None:
                return  # all busy right now: the caps are exceeded for a moment
            _kill(self.hosts.pop(path).pid)
            Path(path).unlink(missing_ok=True)

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for path, host in list(self.hosts.items()):
                if host.pid == pid:
                    del self.hosts[path]
                    Path(path).unlink(missing_ok=True)


def _last_used(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _alive(pid: int) -> bool:
    """Is ``pid`` running (a zombie, ended but not yet reaped by its parent, is not)?"""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill(pid: int) -> None:
    """End a host: its family (app.engine.family), whose process group it leads."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _preload() -> None:
    """Import what every host needs, once, before any fork."""
    import numpy  # noqa: F401
    import torch
    import torch._dynamo

    import app.engine.host  # noqa: F401
    from app.engine.program import program_for
    from app.lessons.registry import LESSONS

    torch.set_num_threads(1)
    for lesson in LESSONS.values():
        program_for(lesson)
    gc.collect()
    gc.freeze()  # what is alive now is shared with every host: keep the collector off it


def main(argv: list[str]) -> int:
    folder, owner = Path(argv[1]), int(argv[2])
    os.umask(0o077)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = open(folder / "zygote.lock", "a")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another zygote serves this folder
    _preload()
    from app.engine.sandbox import self_test

    if sys.platform == "linux":  # a family's processes left by their head come here to be reaped
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)

    sandbox = self_test()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    zygote = Zygote(folder, owner, sandbox, lock.fileno())
    try:
        zygote.serve()
    finally:
        zygote._end_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
