"""`self_test`: prove each layer of the sandbox by trying what it forbids.

A throwaway child of the calling process applies the layers one at a time, as `confine`
does, and after each one tries what that layer alone must stop (so that a refusal is
the layer's own, not a later one's): a descriptor it inherited, a write past
``RLIMIT_FSIZE``, a file outside the allowed folders, a TCP connection, a signal or an
abstract socket outside the host, a fork, an exec. Then it checks that torch still
computes what it computed before. It reports over a socket, one line per proof.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.engine.sandbox import layers as _layers
from app.engine.sandbox.layers import LAYERS, SandboxError, landlock_abi

__all__ = ["self_test"]

_TIMEOUT_S = 10.0
_SOURCE = str(Path(_layers.__file__).resolve())  # a file of the app's own source
_SYS_IO_URING_SETUP, _SYS_CLONE3 = 425, 435  # x86-64 and the generic table alike


def self_test(timeout_s: float = _TIMEOUT_S) -> dict[str, Any]:
    """Confine a child of this process and try what each layer forbids; never raise.

    Call it where a fork is safe (one thread, as in the zygote at its start). The
    report: ``in_force`` (every layer proven, and torch computes), ``layers`` (per
    layer: null when proven, else why not), ``torch`` (null, or why it fails
    confined), ``landlock_abi``, ``confine_ms`` and ``ms`` (the whole test).
    """
    started = time.perf_counter()
    found: dict[str, Any] = {}
    try:
        found = _run_child(timeout_s)
    except Exception as exc:  # a report, whatever happens
        found["error"] = f"the self-test could not run: {type(exc).__name__}: {exc}"
    missing = found.get("error", "the confined child reported nothing on it")
    report_layers = {layer: found.get(layer, missing) for layer in LAYERS}
    torch_why = found.get("torch", missing)
    return {
        "in_force": all(why is None for why in report_layers.values()) and torch_why is None,
        "layers": report_layers,
        "torch": torch_why,
        "landlock_abi": landlock_abi(),
        "confine_ms": found.get("confine_ms"),
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _run_child(timeout_s: float) -> dict[str, Any]:
    if sys.platform != "linux":
        return {"error": f"the sandbox needs Linux (Landlock, seccomp); this is {sys.platform}"}
    ours, theirs = socket.socketpair()
    # Targets the child must not reach: an abstract socket of this process's, and a
    # file whose write only RLIMIT_FSIZE stops (sent once the child is confined).
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(f"\0agx-sandbox-{os.getpid()}")
    abstract.listen(1)
    growable = os.memfd_create("agx-sandbox-fsize")
    with ours, theirs, abstract, contextlib.ExitStack() as closing:
        closing.callback(os.close, growable)
        pid = os.fork()
        if pid == 0:  # pragma: no cover (a child; its report is what the tests read)
            code = 1
            try:
                _Child(theirs.fileno(), inherited=ours.fileno()).run()
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        socket.send_fds(ours, [b"f"], [growable])
        return _collect(ours, pid, timeout_s)


def _collect(sock: socket.socket, pid: int, timeout_s: float) -> dict[str, Any]:
    """Read the child's lines until it is done, ends or runs out of time; reap it."""
    found: dict[str, Any] = {}
    buffer, deadline, ended = b"", time.monotonic() + timeout_s, None
    try:
        while "done" not in found:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                ended = f"the confined child did not finish in {timeout_s:g} s"
                break
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                found.update(json.loads(line))
    finally:
        with contextlib.suppress(ProcessLookupError):
            if "done" not in found:
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if "done" not in found:
        found["error"] = ended or f"the confined child ended early ({_status(status)})"
    return found


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class _Child:
    """The confined child: applies each layer, then proves it; reports each proof."""

    def __init__(self, channel: int, *, inherited: int) -> None:
        self.channel = socket.socket(fileno=channel)
        self.inherited = inherited
        # What is compared or tried after confinement, found out before it.
        self.null = os.stat(os.devnull).st_rdev
        self.address_space = resource.getrlimit(resource.RLIMIT_AS)
        self.priority = os.getpriority(os.PRIO_PROCESS, os.getppid())
        self.writable = tempfile.gettempdir()
        self.expected = _compute()

    def say(self, **message: Any) -> None:
        self.channel.sendall(json.dumps(message).encode() + b"\n")

    def run(self) -> None:
        proofs: dict[str, Callable[[], str | None]] = {
            "descriptors": self.descriptors,
            "rlimits": self.rlimits,
            "landlock": self.landlock,
            "seccomp": self.seccomp,
        }
        spent = 0.0
        try:
            steps = _layers.layers(self.channel.fileno(), cpu_s=1.0)
            for layer, apply in steps:
                started = time.perf_counter()
                apply()
                spent += time.perf_counter() - started
                self.say(**{layer: _attempt(proofs[layer])})
        except SandboxError as exc:
            self.say(**{exc.layer: f"not applied: {exc.why}"})
            for layer in LAYERS[LAYERS.index(exc.layer) + 1 :]:
                self.say(**{layer: f"not applied: the {exc.layer} layer failed first"})
            self.say(torch=f"not tried: the {exc.layer} layer failed")
        else:
            self.say(torch=_attempt(self.computes), confine_ms=round(spent * 1000, 2))
        self.say(done=True)

    # -- the proofs: None when the layer stopped every attempt, else what got through

    def descriptors(self) -> str | None:
        with contextlib.suppress(OSError):
            os.fstat(self.inherited)
            return f"inherited descriptor {self.inherited} is still open"
        for fd in (0, 1, 2):
            if os.fstat(fd).st_rdev != self.null:
                return f"descriptor {fd} is not /dev/null"
        if signal.getsignal(signal.SIGXFSZ) != signal.SIG_IGN:
            return "SIGXFSZ is not ignored (a write past RLIMIT_FSIZE would kill)"
        return None

    def rlimits(self) -> str | None:
        limit = resource.getrlimit
        if limit(resource.RLIMIT_FSIZE) != (0, 0) or limit(resource.RLIMIT_CORE) != (0, 0):
            return "RLIMIT_FSIZE or RLIMIT_CORE is not 0"
        if limit(resource.RLIMIT_NOFILE)[1] > 64 or limit(resource.RLIMIT_CPU)[0] < 0:
            return "RLIMIT_NOFILE or RLIMIT_CPU is not set"
        if _above(limit(resource.RLIMIT_AS), self.address_space):
            return "RLIMIT_AS was loosened"
        self.channel.settimeout(5.0)
        _, fds, _, _ = socket.recv_fds(self.channel, 1, 1)
        self.channel.settimeout(None)
        return _refused(lambda: os.write(fds[0], b"x"), errno.EFBIG, "a write past RLIMIT_FSIZE")

    def landlock(self) -> str | None:
        abi = landlock_abi() or 0
        if abi < _layers.MIN_LANDLOCK_ABI:
            return f"Landlock ABI {abi} is below {_layers.MIN_LANDLOCK_ABI}"
        new_file = os.path.join(self.writable, f"agx-sandbox-{os.getpid()}")
        create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        near = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with tcp, near:
            return _first(
                _refused(lambda: open("/etc/passwd", "rb"), errno.EACCES, "reading /etc/passwd"),
                _refused(lambda: open(_SOURCE, "rb"), errno.EACCES, "reading the app's source"),
                _refused(lambda: os.open(new_file, create), errno.EACCES, "creating a file"),
                _refused(lambda: tcp.connect(("127.0.0.1", 9)), errno.EACCES, "a TCP connect"),
                _refused(lambda: tcp.bind(("127.0.0.1", 0)), errno.EACCES, "a TCP bind"),
                _refused(lambda: os.kill(os.getppid(), 0), errno.EPERM, "a signal to the parent"),
                _refused(
                    lambda: near.connect(f"\0agx-sandbox-{os.getppid()}"),
                    errno.EPERM,
                    "connecting to an abstract socket outside",
                ),
            )

    def seccomp(self) -> str | None:
        parent = os.getppid()
        libc = ctypes.CDLL(None, use_errno=True)

        def syscall(number: int) -> None:
            if libc.syscall(number, 0, 0) < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))

        return _first(
            _refused(lambda: socket.socket(socket.AF_INET), errno.EPERM, "a socket"),
            _refused(_fork, errno.EPERM, "a fork"),
            _refused(lambda: os.execv("/bin/true", ["true"]), errno.EPERM, "an exec"),
            _refused(lambda: os.kill(parent, 0), errno.EPERM, "kill on the parent"),
            _refused(
                lambda: os.setpriority(os.PRIO_PROCESS, parent, self.priority),
                errno.EPERM,
                "setpriority on the parent",
            ),
            _refused(
                lambda: resource.prlimit(parent, resource.RLIMIT_NOFILE),
                errno.EPERM,
                "prlimit on the parent",
            ),
            _refused(lambda: syscall(_SYS_IO_URING_SETUP), errno.EPERM, "io_uring_setup"),
            _refused(lambda: syscall(_SYS_CLONE3), errno.ENOSYS, "clone3"),
            _thread_runs(),
        )

    def computes(self) -> str | None:
        got = _compute()
        return None if got == self.expected else f"torch computed {got}, not {self.expected}"


def _compute() -> list[float]:
    """A small matmul and its backward: what every lesson does."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, generator=generator)
    w = torch.randn(16, 4, generator=generator, requires_grad=True)
    loss = (x @ w).clamp(min=0).pow(2).sum()
    loss.backward()
    assert w.grad is not None
    return [loss.item(), w.grad.sum().item()]


def _fork() -> None:
    if os.fork() == 0:  # the filter let it through: end the copy at once
        os._exit(0)


def _thread_runs() -> str | None:
    ran: list[bool] = []
    thread = threading.Thread(target=lambda: ran.append(True))
    thread.start()
    thread.join(5.0)
    return None if ran else "a thread did not run"


def _attempt(proof: Callable[[], str | None]) -> str | None:
    try:
        return proof()
    except Exception as exc:
        return f"the proof failed: {type(exc).__name__}: {exc}"


def _refused(attempt: Callable[[], object], code: int, what: str) -> str | None:
    """None when ``attempt`` fails with ``code``, else what happened instead."""
    try:
        attempt()
    except OSError as exc:
        if exc.errno == code:
            return None
        got = errno.errorcode.get(exc.errno or 0, exc.errno)
        return f"{what} failed with {got}, not {errno.errorcode[code]}"
    return f"{what} was allowed"


def _first(*whys: str | None) -> str | None:
    return next((why for why in whys if why is not None), None)


def _above(limit: tuple[int, int], before: tuple[int, int]) -> bool:
    def value(x: int) -> float:
        return math.inf if x == resource.RLIM_INFINITY else x

    return any(value(a) > value(b) for a, b in zip(limit, before, strict=True))
