"""The edited-code sandbox: what confines a session host that runs a learner's program.

A learner's edit is arbitrary Python, and Python reaches every system call through
`ctypes`, so nothing inside the interpreter can stop it: only the kernel can. A host
that runs edited code calls `confine` once, single-threaded, before it starts a thread
(every thread it starts later inherits the confinement, which cannot be undone):

- **descriptors**: every inherited descriptor but the host's channel is closed (the
  zygote's lock, a worker's stderr), 0, 1 and 2 read and write /dev/null, and
  SIGXFSZ is ignored, so that a write past ``RLIMIT_FSIZE`` fails with EFBIG.
- **rlimits**: no file may grow (``RLIMIT_FSIZE`` 0), few descriptors
  (``RLIMIT_NOFILE``), no core dump, and a CPU-time backstop (``RLIMIT_CPU``: the
  host already stops steps at the session's budget; this ends a host whose program
  escapes that). ``RLIMIT_AS``, set by the host for CPU sessions, is left as it is.
- **landlock** (ABI ≥ 6 required: Linux ≥ 6.12): files are read-only and readable
  only beneath Python's, torch's and numpy's folders and the system libraries, so the
  app's source, /etc, the session database and every other user file cannot be read,
  and nothing can be written, created, renamed or removed anywhere; TCP bind and
  connect are denied; signals and abstract Unix sockets cannot reach a process
  outside the host. (Plain ctypes: PyPI's ``landlock`` knows no network or scope rule.)
- **seccomp**: an allow-list of the system calls CPython, torch, numpy and the host's
  serving use; anything else answers EPERM (a clear Python error, not a kill), and
  ``clone3`` answers ENOSYS so that glibc starts threads with ``clone``, which is
  allowed for threads only. No socket, connect, bind, fork, exec, ptrace, namespace,
  mount, BPF, io_uring or keyring call, and no priority or scheduling-class change
  (a root server's host could make itself real-time); the calls that name a process
  (kill, prlimit, sched_setaffinity, …) may name the host itself only.

What it does NOT protect against (the host is not a hardened VM):
- the CPU it is given: cache and timing side channels, the load it puts on a core;
  memory up to ``RLIMIT_AS`` (the host's budget), and the descriptors it may hold;
- metadata: Landlock does not govern ``stat`` and ``utimensat``, so the program can
  learn which paths exist (and their sizes and times) and set the times of files the
  server's user owns (the host touches its own socket that way; other hosts' sockets
  are touched the same way, which only changes which host the zygote ends first);
- its own process: it may read and change its own memory and files already open in
  it (its channel, the connections it accepts), and answer its workers anything: a
  host that ran edited code is untrusted input to the server (`app.engine.wire`);
- what it may still read: Python's, torch's and numpy's files, the system libraries,
  /proc/cpuinfo and /sys/devices/system/cpu (nothing secret, but torch.compile and
  anything else that writes a cache or runs a compiler fail there);
- kernel bugs reachable through the calls it is allowed.

`self_test` proves each layer by trying the forbidden things in a throwaway child.
"""

from __future__ import annotations

from app.engine.sandbox.layers import LAYERS, SandboxError, confine, landlock_abi
from app.engine.sandbox.selftest import self_test

__all__ = ["LAYERS", "SandboxError", "confine", "landlock_abi", "self_test"]
