"""The four layers of the sandbox and `confine`, which applies them (see the package's notes)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import math
import os
import resource
import signal
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.engine.sandbox.syscalls import ALLOWED, ARGUMENTS, OWN_PROCESS

try:  # ctypes over libseccomp2: missing on macOS, or where the library is not installed
    import pyseccomp
except (ImportError, RuntimeError, OSError) as exc:
    pyseccomp = None
    _NO_SECCOMP = f"libseccomp cannot be loaded ({exc})"

__all__ = ["LAYERS", "SandboxError", "confine", "landlock_abi", "layers"]

#: The layers, in the order `confine` applies them.
LAYERS = ("descriptors", "rlimits", "landlock", "seccomp")

MIN_LANDLOCK_ABI = 6  # signal and abstract-socket scoping arrived with ABI 6 (Linux 6.12)
_MAX_FILES = 64  # the host's listener, the connections it holds, and its program's files
_APP = Path(__file__).resolve().parents[2]  # the app's source: never readable once confined


class SandboxError(Exception):
    """A layer of the sandbox could not be applied (``layer``: one of `LAYERS`)."""

    def __init__(self, layer: str, why: str) -> None:
        super().__init__(f"{layer}: {why}")
        self.layer = layer
        self.why = why


def confine(channel_fd: int, *, cpu_s: float, keep: tuple[int, ...] = ()) -> None:
    """Apply every layer to this process, which must have one thread (raise
    `SandboxError` naming the first layer that cannot be applied); of its descriptors,
    the channel and ``keep`` stay open."""
    for _, apply in layers(channel_fd, cpu_s=cpu_s, keep=keep):
        apply()


def layers(
    channel_fd: int, *, cpu_s: float, keep: tuple[int, ...] = ()
) -> list[tuple[str, Callable[[], None]]]:
    """The layers `confine` applies, in order, each as ``(name, apply)``."""
    if sys.platform != "linux":
        raise SandboxError("landlock", f"Landlock and seccomp are Linux's; this is {sys.platform}")
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # the others would run unconfined
        raise SandboxError("seccomp", f"the process has {threads} threads; it must have one")
    # NOTE: Python finds its temporary folder by writing a file there, which no layer
    # will allow, and keeps the answer: find it now (torch asks for it when first used).
    with contextlib.suppress(OSError):
        tempfile.gettempdir()
    return [
        ("descriptors", lambda: _descriptors(channel_fd, keep)),
        ("rlimits", lambda: _rlimits(cpu_s)),
        ("landlock", lambda: _landlock(_readable())),
        ("seccomp", lambda: _seccomp(os.getpid())),
    ]


# -- descriptors ----------------------------------------------------------------


def _descriptors(channel_fd: int, keep: tuple[int, ...]) -> None:
    if channel_fd < 3:
        raise SandboxError("descriptors", f"the channel is descriptor {channel_fd}, not above 2")
    kept = sorted({channel_fd, *keep})
    if kept[0] < 3:
        raise SandboxError("descriptors", f"descriptor {kept[0]} is kept, not above 2")
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for low, high in zip([2, *kept], [*kept, 1 << 20], strict=True):
            os.closerange(low + 1, high)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (OSError, ValueError) as exc:
        raise SandboxError("descriptors", str(exc)) from None


# -- rlimits --------------------------------------------------------------------


def _rlimits(cpu_s: float) -> None:
    # NOTE: the process's CPU clock also runs for what the session is not charged for
    # (replays, checkpoints, the host's own work), which can cost as much as its steps:
    # hence twice the budget. SIGXCPU at the soft limit ends the host (the session is
    # replayed in a new one when next used), SIGKILL at the hard one.
    cpu = 2 * math.ceil(cpu_s) + 30
    limits = {
        resource.RLIMIT_FSIZE: (0, 0),
        resource.RLIMIT_NOFILE: (_MAX_FILES, _MAX_FILES),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_CPU: (cpu, cpu + 5),
    }
    for which, (soft, hard) in limits.items():
        old_soft, old_hard = resource.getrlimit(which)
        try:
            resource.setrlimit(which, (_lower(soft, old_soft), _lower(hard, old_hard)))
        except (OSError, ValueError) as exc:
            raise SandboxError("rlimits", f"limit {which}: {exc}") from None


def _lower(limit: int, old: int) -> int:
    return limit if old == resource.RLIM_INFINITY else min(limit, old)


# -- landlock -------------------------------------------------------------------

# <linux/landlock.h>
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_READ_FILE, _READ_DIR = 1 << 2, 1 << 3
_FS_ALL = (1 << 16) - 1  # every filesystem right of ABIs 1 to 7 (IOCTL_DEV, 1 << 15, is ABI 5's)
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2
_PR_SET_NO_NEW_PRIVS = 38


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: Any) -> int:
    # Integers as longs: a variadic call would leave the upper half of a register unset.
    words = [ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args]
    result = int(_libc.syscall(ctypes.c_long(number), *words))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def landlock_abi() -> int | None:
    """The kernel's Landlock ABI version (None without Landlock)."""
    if sys.platform != "linux":
        return None
    try:
        return _syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:  # ENOSYS: not built in; EOPNOTSUPP: disabled at boot
        return None


def _readable() -> list[str]:
    """What a confined host may read: Python, its packages (torch and numpy among them),
    the system libraries, and what torch reads about the CPU. Never the app's folder."""
    import numpy
    import torch

    places = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *(sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")),
        str(Path(torch.__file__).parent.parent),
        str(Path(numpy.__file__).parent.parent),
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/proc/cpuinfo",
        "/sys/devices/system/cpu",
        "/dev/urandom",
    }
    real = {Path(os.path.realpath(place)) for place in places if os.path.exists(place)}
    # A folder that holds the app (a prefix at / or at the checkout) would grant its source.
    granted = {place for place in real if not _APP.is_relative_to(place)}
    return sorted(
        str(place)
        for place in granted
        if not any(place != other and place.is_relative_to(other) for other in granted)
    )


def _landlock(readable: list[str]) -> None:
    abi = landlock_abi()
    if abi is None:
        raise SandboxError("landlock", "the kernel has no Landlock (Linux ≥ 5.13 with it enabled)")
    if abi < MIN_LANDLOCK_ABI:
        raise SandboxError(
            "landlock",
            f"the kernel's Landlock ABI is {abi}; signal scoping needs {MIN_LANDLOCK_ABI}",
        )
    attr = _RulesetAttr(
        handled_access_fs=_FS_ALL,  # rights a rule does not grant are denied
        handled_access_net=_NET_BIND_TCP | _NET_CONNECT_TCP,  # no rule: both denied
        scoped=_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL,
    )
    try:
        ruleset = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    except OSError as exc:
        raise SandboxError("landlock", f"landlock_create_ruleset: {exc}") from None
    try:
        for place in readable:
            fd = os.open(place, os.O_PATH | os.O_CLOEXEC)
            try:
                access = _READ_FILE | (_READ_DIR if os.path.isdir(place) else 0)
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                _syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
            finally:
                os.close(fd)
        # What Landlock requires of an unprivileged process (seccomp too: libseccomp sets it).
        one, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        _syscall(_RESTRICT_SELF, ruleset, 0)
    except OSError as exc:
        raise SandboxError("landlock", str(exc)) from None
    finally:
        os.close(ruleset)


# -- seccomp --------------------------------------------------------------------

_CLONE_THREAD = 0x00010000


def _seccomp(pid: int) -> None:
    if pyseccomp is None:
        raise SandboxError("seccomp", _NO_SECCOMP)
    allow, equal = pyseccomp.ALLOW, pyseccomp.EQ
    try:
        rules = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
        rules.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)  # x32, i386 calls
        for name in ALLOWED:
            rules.add_rule(allow, name)
        for name, (index, values) in ARGUMENTS.items():
            for value in values:
                rules.add_rule(allow, name, pyseccomp.Arg(index, equal, value))
        for name, (fixed, or_zero) in OWN_PROCESS.items():
            for who in (0, pid) if or_zero else (pid,):
                args = [pyseccomp.Arg(i, equal, value) for i, value in fixed]
                rules.add_rule(allow, name, *args, pyseccomp.Arg(len(fixed), equal, who))
        # A thread, never a new process. clone3's flags are in memory, out of the filter's
        # sight: ENOSYS makes glibc fall back to clone, whose flags are its first argument.
        thread = pyseccomp.Arg(0, pyseccomp.MASKED_EQ, _CLONE_THREAD, _CLONE_THREAD)
        rules.add_rule(allow, "clone", thread)
        rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.load()
    except (OSError, RuntimeError, ValueError) as exc:
        raise SandboxError("seccomp", str(exc)) from None
