"""The system calls a confined session host may make (`app.engine.sandbox`'s seccomp layer).

Found by running every lesson, the host's serving and the self-test under strace with
the filter loaded, and adding what failed: what CPython, torch (with its threads),
numpy and the host's sockets use once started. Anything not here answers EPERM.
"""

from __future__ import annotations

__all__ = ["ALLOWED", "ARGUMENTS", "OWN_PROCESS"]

#: Allowed whatever their arguments.
ALLOWED = (
    # files (Landlock decides which), descriptors and memory
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "lseek",
    "close",
    "openat",
    "open",
    "fstat",
    "newfstatat",
    "statx",
    "stat",
    "lstat",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "getcwd",
    "dup",
    "dup2",
    "dup3",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    # the host's serving: its listener and the connections it accepts
    "accept",
    "accept4",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "shutdown",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    # threads, time and signals of this process
    "futex",
    "set_robust_list",
    "rseq",
    "set_tid_address",
    "sched_yield",
    "getcpu",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "getrusage",
    "times",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "uname",
    "sysinfo",
    "getrandom",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "exit",
    "exit_group",
    "restart_syscall",
    # the host touches its own socket file (the zygote ends the least recently used)
    "utimensat",
)

#: Allowed when argument ``index`` is one of ``values`` (commands that act on this
#: process or a descriptor it holds, never another process).
ARGUMENTS: dict[str, tuple[int, tuple[int, ...]]] = {
    # F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC (not F_SETOWN: SIGIO)
    "fcntl": (1, (0, 1, 2, 3, 4, 1030)),
    # TCGETS (isatty), FIONBIO, FIONCLEX, FIOCLEX
    "ioctl": (1, (0x5401, 0x5421, 0x5450, 0x5451)),
    # PR_SET_NAME, PR_GET_NAME (thread names)
    "prctl": (0, (15, 16)),
}

#: Allowed when they name this process: name -> (arguments fixed before the process's
#: argument, as (index, value) pairs; whether 0, "this process", is also accepted).
#: kill(0) would signal the whole process group (the zygote and every host): pid only.
#: Nothing that sets a priority or a scheduling class (setpriority, sched_setscheduler,
#: sched_setparam, ioprio_set): a server with CAP_SYS_NICE (root) would let a host
#: raise its own, and make itself real-time, starving the server.
OWN_PROCESS: dict[str, tuple[tuple[tuple[int, int], ...], bool]] = {
    "kill": ((), False),
    "tgkill": ((), False),
    "prlimit64": ((), True),
    "sched_getaffinity": ((), True),
    "sched_setaffinity": ((), True),
    "sched_getparam": ((), True),
    "sched_getscheduler": ((), True),
    "getpriority": (((0, 0),), True),  # PRIO_PROCESS only: PRIO_PGRP would reach the zygote
    "ioprio_get": (((0, 1),), True),  # IOPRIO_WHO_PROCESS
}
