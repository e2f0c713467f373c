"""Escape attempts: learners' edits that try to get out of their session host.

Each attempt runs as edited code through the REST API (DESIGN.md §5.1) and must be
(a) contained with a clear error, the one asserted here, (b) without its side effect:
no file made or changed, no secret read, no other process touched (the checks of
`Escapes.assert_contained`), and (c) the server must serve on afterwards.

Python is not the boundary (app/engine/allowed.py): many attempts reach `os`, `sys`,
`ctypes` through torch's own modules on purpose, and then show that the operating
system refuses the call itself (app/engine/sandbox).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.sandbox.conftest import FILE_SECRET, MAX_EVENTS, Escapes
from tests.sandbox.expect import (
    Expect,
    answer_garbled,
    both,
    capable,
    descriptors,
    every_line_ends,
    host_alive,
    host_ended,
    host_threads_bounded,
    message_cut,
    no_settings,
    one_of,
    output_bounded,
    prints,
    raises,
    refused_as_untrusted,
    state_small,
)

pytestmark = pytest.mark.timeout(120)

EPERM = "[Errno 1] Operation not permitted"  # seccomp
EACCES = "[Errno 13] Permission denied"  # Landlock
# Reaching `os` and `sys` the way an edit can: through torch's module globals.
OS = "import torch\nos = torch.os\nsys = torch.sys\n"
LIBC = OS + "c = torch.ctypes\nlibc = c.CDLL(None, use_errno=True)\n"
IMPORT = "import torch\nimport_module = torch.importlib.import_module\n"
ONLY_ALLOWED = "it may import abc, array, bisect"


CAP_SYS_RESOURCE = 24
ROOT_RESOURCE = pytest.mark.xfail(
    capable(CAP_SYS_RESOURCE),
    strict=True,
    raises=AssertionError,
    reason="this server runs with CAP_SYS_RESOURCE (as root): a host may raise its own "
    "hard limits (prlimit on itself is allowed), so RLIMIT_AS, CPU and FSIZE bind nothing",
)

# -- the attempts --------------------------------------------------------------------

SEARCH_MEMORY = '''
decoy = {"made at run time": "agxsecret-" + "decoy"}  # proves the search sees objects
gc = torch.importlib.import_module("gc")
torch.sys.settrace(None)  # faster untraced
exec("""
gc.unfreeze()  # what the zygote froze is hidden from get_objects otherwise
objects = gc.get_objects()
found = []  # made after the list of objects: it would grow while searched
for o in objects:
    kind = type(o)
    if kind is dict:
        items = [*o, *o.values()]
    elif kind is list or kind is tuple or kind is set or kind is frozenset:
        items = o
    else:
        continue
    for s in items:
        if type(s) is bytes:
            s = s.decode("latin-1")
        if type(s) is str and "agxsecret-" in s:
            i = s.index("agxsecret-")
            found.append(s[i:i + 40])
""")
print(len(found), "strings found", found[:50])
'''

FORGE = (
    OS
    + """
socket, json, struct = sys.modules["socket"], sys.modules["json"], sys.modules["struct"]
data = json.dumps({"ok": "not a State", "cursor": 0, "moved": 0}).encode()
for fd in range(3, 64):
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        continue
    if not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):  # the worker's request
        s.sendall(struct.pack(">I", len(data)) + data)
    s.detach()
"""
)

# An i386 system call from 64-bit code (int 0x80): socket(AF_INET, SOCK_STREAM, 0), whose
# i386 number (359) is no x86-64 call the filter knows; the filter kills on a foreign arch.
INT80 = (
    OS
    + """
c = torch.ctypes
mmap = torch.importlib.import_module("mmap")
code = mmap.mmap(-1, 4096, prot=7)
code.write(bytes([0xB8, 0x67, 1, 0, 0,  # mov eax, 359 (i386 socket)
                  0xBB, 2, 0, 0, 0,  # mov ebx, AF_INET
                  0xB9, 1, 0, 0, 0,  # mov ecx, SOCK_STREAM
                  0x31, 0xD2,  # xor edx, edx
                  0xCD, 0x80,  # int 0x80
                  0xC3]))  # ret
call = c.CFUNCTYPE(c.c_long)(c.addressof(c.c_char.from_buffer(code)))
print("fd =", call())
"""
)

SYSCALLS = {  # name: (number, arguments...) on x86-64
    "clone": (56, 17, 0, 0, 0, 0),  # a process (SIGCHLD), not a thread
    "vfork": (58,),
    "unshare": (272, 0x10000000),
    "setns": (308, 0, 0),
    "mount": (165, 0, 0, 0, 0),
    "chroot": (161, 0),
    "bpf": (321, 0, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0),
    "keyctl": (250, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0),
    "pidfd_open": (434, "$victim_pid", 0),
    "process_vm_readv": (310, "$victim_pid", 0, 0, 0, 0, 0),
    "kcmp": (312, "$victim_pid", "$victim_pid", 0, 0, 0),
    "pidfd_getfd": (438, 0, 0, 0),
    "io_uring_setup": (425, 8, 0),
    "seccomp": (317, 0, 0, 0),
    "setuid": (105, 0),
    "personality": (135, 0xFFFFFFFF),
    "ioctl TIOCSTI": (16, 0, 0x5412, 0),
    "fcntl F_SETOWN": (72, 0, 8, "$server_pid"),
    "inotify_init1": (294, 0),
    "shmget": (29, 0, 4096, 0o1600),
    "msgget": (68, 0, 0o1600),
    "semget": (64, 0, 1, 0o1600),
    "mq_open": (240, 0, 0, 0, 0),
}
BATTERY = (
    LIBC
    + "calls = {"
    + ", ".join(
        f"{name!r}: ({', '.join(str(arg) for arg in args)},)" for name, args in SYSCALLS.items()
    )
    + "}\n"
    + "for name, args in calls.items():\n"
    + "    print(name, libc.syscall(*[c.c_long(a) for a in args]), c.get_errno())\n"
)


def case(name: str, source: str, expect: Expect, *marks: Any) -> Any:
    return pytest.param(source, expect, id=name, marks=marks)


ATTEMPTS = [
    # --- the allow-list of imports (defence in depth) ---
    case("import os", "import os\n", raises("ImportError", "'os'", ONLY_ALLOWED)),
    case("import subprocess", "import subprocess\n", raises("ImportError", "'subprocess'")),
    case("import socket", "from socket import socket\n", raises("ImportError", "'socket'")),
    case("import ctypes", "import ctypes.util\n", raises("ImportError", "'ctypes.util'")),
    case("__import__ sys", "__import__('sys')\n", raises("ImportError", "'sys'")),
    case("relative import", "from . import host\n", raises("ImportError", "may not import")),
    case("builtin open is gone", "open('/etc/passwd')\n", raises("NameError", "'open'")),
    # --- reading files ---
    case(
        "read /etc/passwd via torch.builtins.open",
        "import torch\nprint(torch.builtins.open('/etc/passwd').read())\n",
        raises("PermissionError", EACCES, "/etc/passwd"),
    ),
    case(
        "read the app's source via torch.os",
        OS + "print(os.read(os.open('$app_main', os.O_RDONLY), 100))\n",
        raises("PermissionError", EACCES, "$app_main"),
    ),
    case(
        "read a secret in the data folder",
        "import torch\nprint(torch.builtins.open('$secret_file').read())\n",
        raises("PermissionError", EACCES, "$secret_file"),
    ),
    case(
        "read the sessions database",
        "import torch\nprint(torch.builtins.open('$db', 'rb').read())\n",
        raises("PermissionError", EACCES, "$db"),
    ),
    case(
        "list the data folder",
        OS + "print(os.listdir('$data_dir'))\n",
        raises("PermissionError", EACCES, "$data_dir"),
    ),
    case(
        "numpy.loadtxt /etc/passwd (allowed modules only)",
        "import numpy\nprint(numpy.loadtxt('/etc/passwd', dtype=str))\n",
        raises("PermissionError", EACCES, "/etc/passwd"),
    ),
    case(
        # numpy opens the file with the program's builtins' `open`, which edits lack
        "numpy.fromfile a secret",
        "import numpy\nprint(numpy.fromfile('$secret_file', dtype=numpy.uint8))\n",
        raises("SystemError", "fromfile> returned NULL"),
    ),
    case(
        "torch.from_file a secret (C++ open)",
        "import torch\nprint(torch.from_file('$secret_file', size=8, dtype=torch.uint8))\n",
        raises("RuntimeError", "unable to open file", "Permission denied (13)"),
    ),
    case(
        "torch.load a secret by path",
        "import torch\nprint(torch.load('$secret_file'))\n",
        raises("PermissionError", EACCES),
    ),
    case(
        "importlib runs the app's main.py from its path",
        IMPORT
        + "util = import_module('importlib.util')\n"
        + "spec = util.spec_from_file_location('m', '$app_main')\n"
        + "spec.loader.exec_module(util.module_from_spec(spec))\n",
        raises("PermissionError", EACCES, "$app_main"),
    ),
    case(
        "read the server's /proc/pid/environ",
        "import torch\nprint(torch.builtins.open('/proc/$server_pid/environ').read())\n",
        raises("PermissionError", EACCES, "environ"),
    ),
    case(
        "read the server's /proc/pid/cmdline",
        "import torch\nprint(torch.builtins.open('/proc/$server_pid/cmdline').read())\n",
        raises("PermissionError", EACCES, "cmdline"),
    ),
    case(
        "open /proc/self/mem for writing",
        OS + "fd = os.open('/proc/self/mem', os.O_RDWR)\n",
        raises("PermissionError", EACCES, "/proc/self/mem"),
    ),
    case(
        "the host's descriptors are /dev/null and its sockets, no file",
        OS
        + "st = sys.modules['stat']\n"
        + "for fd in range(1024):\n"
        + "    try:\n"
        + "        mode = os.fstat(fd).st_mode\n"
        + "    except OSError:\n"
        + "        continue\n"
        + "    print(fd, 'chr' if st.S_ISCHR(mode) else 'sock' if st.S_ISSOCK(mode) else mode)\n",
        descriptors,
    ),
    # --- writing files ---
    case(
        "write into inherited descriptors 0 to 10",
        OS
        + "for fd in range(11):\n"
        + "    try:\n"
        + "        os.write(fd, b'x')\n"
        + "    except OSError:\n"
        + "        pass\n",
        answer_garbled,
    ),
    case(
        "write /tmp",
        "import torch\ntorch.builtins.open('$tmp_canary', 'w').write('x')\n",
        raises("PermissionError", EACCES, "$tmp_canary"),
    ),
    case(
        "create a file in the data folder",
        OS + "os.open('$data_canary', os.O_CREAT | os.O_WRONLY)\n",
        raises("PermissionError", EACCES, "$data_canary"),
    ),
    case(
        "write in the working folder",
        "import torch\ntorch.builtins.open('$mark', 'w')\n",
        raises("PermissionError", EACCES, "$mark"),
    ),
    case(
        "create /dev/shm/x",
        OS + "os.open('$shm_canary', os.O_CREAT | os.O_RDWR)\n",
        raises("PermissionError", EACCES, "$shm_canary"),
    ),
    case(
        "torch.save to /tmp (allowed modules only)",
        "import torch\ntorch.save(torch.ones(2), '$tmp_canary')\n",
        raises("RuntimeError", "open file failed", "Permission denied"),
    ),
    case(
        "numpy.save to /tmp (allowed modules only)",
        "import numpy\nnumpy.save('$tmp_canary', numpy.ones(2))\n",
        raises("PermissionError", EACCES, "$tmp_canary.npy"),
    ),
    case(
        "unlink the sessions database",
        OS + "os.unlink('$db')\n",
        raises("PermissionError", EPERM, "$db"),
    ),
    case(
        "truncate a secret",
        OS + "os.truncate('$secret_file', 0)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "chmod a secret",
        OS + "os.chmod('$secret_file', 0o777)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "rename a secret",
        OS + "os.rename('$secret_file', '$data_canary')\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "symlink /etc/passwd into /tmp",
        OS + "os.symlink('/etc/passwd', '$tmp_canary')\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "hard link a secret into /tmp",
        OS + "os.link('$secret_file', '$tmp_canary')\n",
        raises("PermissionError", EPERM),
    ),
    case("mkfifo in /tmp", OS + "os.mkfifo('$tmp_canary')\n", raises("PermissionError", EPERM)),
    case("memfd_create", OS + "print(os.memfd_create('x'))\n", raises("PermissionError", EPERM)),
    # --- sockets ---
    case(
        "TCP socket",
        OS + "s = sys.modules['socket']\ns.socket(s.AF_INET, s.SOCK_STREAM)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "TCP connect to a server on loopback",
        OS + "s = sys.modules['socket']\ns.create_connection(('127.0.0.1', $port), timeout=1)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "Unix socket to a listener outside the hosts",
        OS + "s = sys.modules['socket']\ns.socket(s.AF_UNIX).connect('$unix_canary')\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "Unix socket to the zygote",
        OS + "s = sys.modules['socket']\ns.socket(s.AF_UNIX).connect('$zygote_sock')\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "Unix socket to another session's host",
        OS + "s = sys.modules['socket']\ns.socket(s.AF_UNIX).connect('$victim_sock')\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "connect the host's own sockets to the zygote",
        OS
        + "s = sys.modules['socket']\n"
        + "for fd in range(3, 64):\n"
        + "    try:\n"
        + "        sock = s.socket(fileno=fd)\n"
        + "    except OSError:\n"
        + "        continue\n"
        + "    try:\n"
        + "        sock.connect('$zygote_sock')\n"
        + "        print(fd, 'connected')\n"
        + "    except OSError as exc:\n"
        + "        print(fd, exc)\n"
        + "    sock.detach()\n",
        every_line_ends(EPERM, at_least=2),
    ),
    case(
        "socketpair",
        OS + "print(sys.modules['socket'].socketpair())\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "io_uring_setup through ctypes",
        LIBC + "print(libc.syscall(425, 8, 0), c.get_errno())\n",
        prints(exactly="-1 1\n"),
    ),
    # --- processes ---
    case(
        "os.system",
        OS + "print(os.system('touch $tmp_canary'))\n",
        prints(exactly="32512\n"),  # exit status 127: no shell could be started
    ),
    case(
        "subprocess.run",
        IMPORT + "import_module('subprocess').run(['touch', '$tmp_canary'])\n",
        raises("PermissionError", EPERM),
    ),
    case("os.fork", OS + "print(os.fork())\n", raises("PermissionError", EPERM)),
    case(
        "os.execv",
        OS + "os.execv('/bin/sh', ['sh', '-c', 'touch $tmp_canary'])\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "os.posix_spawn",
        OS + "os.posix_spawn('/usr/bin/touch', ['touch', '$tmp_canary'], {})\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "pty.fork",  # no /dev/ptmx to open, and no fork
        IMPORT + "import_module('pty').fork()\n",
        raises("OSError", "out of pty devices"),
    ),
    case(
        "libc system() through torch.ctypes",
        LIBC + "print(libc.system(b'touch $tmp_canary'))\n",
        prints(exactly="32512\n"),
    ),
    case(
        "libc socket() through numpy.ctypeslib",
        "import numpy\nc = numpy.ctypeslib.ctypes\nlibc = c.CDLL(None, use_errno=True)\n"
        "print(libc.socket(2, 1, 0), c.get_errno())\n",
        prints(exactly="-1 1\n"),
    ),
    case(
        "libc socket() through cffi",  # not installed here: then importing it fails
        IMPORT
        + "ffi = import_module('cffi').FFI()\nffi.cdef('int socket(int, int, int);')\n"
        + "print(ffi.dlopen(None).socket(2, 1, 0), ffi.errno)\n",
        one_of(raises("ModuleNotFoundError", "cffi"), prints(exactly="-1 1\n")),
    ),
    case(
        "ptrace another session's host",
        LIBC + "print(libc.ptrace(16, $victim_pid, 0, 0), c.get_errno())\n",  # PTRACE_ATTACH
        prints(exactly="-1 1\n"),
    ),
    case(
        "raw system calls: namespaces, BPF, keys, other processes' memory",
        BATTERY,
        every_line_ends("-1 1", at_least=len(SYSCALLS)),
    ),
    case(
        "x32 system call ABI (socket)",
        LIBC + "print(libc.syscall(0x40000000 | 41, 2, 1, 0))\n",
        host_ended,
    ),
    case("i386 system call (int 0x80) from machine code", INT80, host_ended),
    # --- signals, priorities, limits of other processes ---
    case(
        "signal the server",
        OS + "os.kill($server_pid, $server_signal)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "SIGKILL the zygote (getppid)",
        OS + "os.kill(os.getppid(), 9)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "SIGSTOP another session's host",
        OS + "os.kill($victim_pid, 19)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "SIGKILL another session's host",
        OS + "os.kill($victim_pid, 9)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "signal 0 to the process group",
        OS + "os.kill(0, 0)\n",  # kill(0, SIGKILL) would end the zygote and every host
        raises("PermissionError", EPERM),
    ),
    case(
        "signal 0 to every process (-1)",
        OS + "os.kill(-1, 0)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "killpg the process group",
        OS + "os.killpg(os.getpgid(0), 9)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "renice another session's host",
        OS + "os.setpriority(os.PRIO_PROCESS, $victim_pid, 19)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "renice the server",
        OS + "os.setpriority(os.PRIO_PROCESS, $server_pid, 19)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "renice the process group",
        OS + "os.setpriority(os.PRIO_PGRP, 0, 19)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "prlimit another session's host",
        IMPORT + "r = import_module('resource')\nr.prlimit($victim_pid, r.RLIMIT_NOFILE, (3, 3))\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "prlimit the server",
        IMPORT + "r = import_module('resource')\nr.prlimit($server_pid, r.RLIMIT_AS, (1, 1))\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "pin another session's host to a CPU",
        OS + "os.sched_setaffinity($victim_pid, {0})\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "make its own host real-time (SCHED_FIFO)",
        OS + "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "raise its own priority (nice -20)",
        OS + "os.setpriority(os.PRIO_PROCESS, 0, -20)\n",
        raises("PermissionError", EPERM),
    ),
    case(
        "raise its own address-space limit",
        IMPORT + "r = import_module('resource')\n"
        "r.setrlimit(r.RLIMIT_AS, (r.RLIM_INFINITY, r.RLIM_INFINITY))\n",
        raises("ValueError", "not allowed to raise maximum limit"),
        ROOT_RESOURCE,
    ),
    case(
        "ignore SIGTERM (signal tampering)",
        OS + "signal = sys.modules['signal']\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n",
        raises("ValueError", "signal only works in main thread"),
    ),
    case(
        "set an interval timer",
        OS + "signal = sys.modules['signal']\nsignal.setitimer(signal.ITIMER_REAL, 0.1)\n",
        raises("itimer_error", EPERM),
    ),
    case("setsid", OS + "os.setsid()\n", raises("PermissionError", EPERM)),
    case(
        "SIGKILL its own host",  # allowed: it ends the attempt's own host only
        OS + "os.kill(os.getpid(), 9)\n",
        host_ended,
    ),
    case(
        "segfault (faulthandler._sigsegv)",
        IMPORT + "import_module('faulthandler')._sigsegv()\n",
        host_ended,
    ),
    case(
        "overflow the C stack (recursion limit 10**9)",
        OS
        + "exec('l = []\\nfor i in range(10**6): l = [l]')\n"
        + "sys.setrecursionlimit(10**9)\nprint(repr(l)[:10])\n",
        host_ended,
    ),
    # --- reaching os without torch: Python is not the boundary, the call is refused ---
    case(
        "().__class__.__base__.__subclasses__() -> os._wrap_close",
        "w = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close']\n"
        "g = w[0].__init__.__globals__\n"
        "print(g['read'](g['open']('/etc/passwd', g['O_RDONLY']), 100))\n",
        raises("PermissionError", EACCES, "/etc/passwd"),
    ),
    case(
        "BuiltinImporter.load_module('posix').system",
        "bi = [c for c in object.__subclasses__() if c.__name__ == 'BuiltinImporter']\n"
        "print(bi[0].load_module('posix').system('touch $tmp_canary'))\n",
        prints(exactly="32512\n"),
    ),
    case(
        "print.__func__.__globals__ -> the real __import__ -> os",
        "g = print.__func__.__globals__\n"
        "os = g['__builtins__']['__import__']('os')\n"
        "print(os.open('$app_main', 0))\n",
        raises("PermissionError", EACCES, "$app_main"),
    ),
    case(
        "torch.serialization.os",
        "import torch.serialization\nprint(torch.serialization.os.listdir('/'))\n",
        raises("PermissionError", EACCES),
    ),
    case(
        "torch.load of a crafted pickle (weights_only by default)",
        OS
        + "io = sys.modules['io']\n"
        + "class Boom:\n"
        + "    def __reduce__(self):\n"
        + "        return (os.system, ('touch $tmp_canary',))\n"
        + "buffer = io.BytesIO()\ntorch.save({'w': Boom()}, buffer)\nbuffer.seek(0)\n"
        + "torch.load(buffer)\n",
        raises("UnpicklingError", "Weights only load failed", "posix.system"),
    ),
    case(
        "torch.load of a crafted pickle, weights_only=False",
        OS
        + "io = sys.modules['io']\n"
        + "class Boom:\n"
        + "    def __reduce__(self):\n"
        + "        return (os.system, ('touch $tmp_canary',))\n"
        + "buffer = io.BytesIO()\ntorch.save({'w': Boom()}, buffer)\nbuffer.seek(0)\n"
        + "print(torch.load(buffer, weights_only=False))\n",
        prints(exactly="{'w': 32512}\n"),  # pickle ran os.system, which could start nothing
    ),
    # --- secrets ---
    case(
        "the environment holds no setting and no secret",
        OS + "print(sorted(os.environ))\n",
        both(prints("PYTHONPATH"), no_settings),
    ),
    case(
        "search every object for the secrets (gc.get_objects)",
        "import torch\n" + SEARCH_MEMORY,
        prints("strings found", "agxsecret-decoy"),
    ),
    # --- time, memory, threads, output ---
    case(
        "an endless Python loop",
        "while True:\n    pass\n",
        raises("EventLimit", f"ran {MAX_EVENTS} events", "AGX_CODE_MAX_EVENTS"),
    ),
    case(
        "a list that grows forever",
        "a = []\nwhile True:\n    a.append(' ' * 10**7)\n",
        both(raises("MemoryError"), host_alive),
    ),
    case(
        "torch.empty(1 << 40)",
        "import torch\nx = torch.empty(1 << 40)\n",
        raises("RuntimeError", "can't allocate memory"),
    ),
    case(
        "numpy.ones(1 << 40)",
        "import numpy\nx = numpy.ones(1 << 40)\n",
        raises("MemoryError", "Unable to allocate 8.00 TiB"),
    ),
    case("bytearray(1 << 40)", "x = bytearray(1 << 40)\n", raises("MemoryError")),
    case(
        "threading.Thread in a loop",
        "import torch\nthreading = torch.sys.modules['threading']\n"
        "time = torch.sys.modules['time']\n"
        "while True:\n    threading.Thread(target=time.sleep, args=(100,)).start()\n",
        both(raises("RuntimeError", "can't start new thread"), host_threads_bounded),
    ),
    case(
        "_thread.start_new_thread in a loop",
        "import torch\n_thread, time = torch.sys.modules['_thread'], torch.sys.modules['time']\n"
        "while True:\n    _thread.start_new_thread(time.sleep, (100,))\n",
        both(raises("RuntimeError", "can't start new thread"), host_threads_bounded),
    ),
    case(
        "deep recursion",
        "def f(n):\n    return f(n + 1)\nf(0)\n",
        both(raises("RecursionError", "maximum recursion depth"), host_alive),
    ),
    case(
        "print in a loop",
        "for i in range(300):\n    print('y' * 4000, 'y' * 4000)\n",
        output_bounded,
    ),
    case("an exception with a huge message", "raise ValueError('x' * 10**6)\n", message_cut),
    # --- untrusted answers and floods: the host ended, or the program's 422 ---
    case(
        "a forged answer on the worker's connection",
        FORGE + "x = 1\n",
        refused_as_untrusted,
    ),
    case(
        "a forged answer nested 100000 deep",
        FORGE.replace(
            'json.dumps({"ok": "not a State", "cursor": 0, "moved": 0}).encode()',
            'b"[" * 100000 + b"]" * 100000',
        )
        + "x = 1\n",
        refused_as_untrusted,
    ),
    case(
        "a Tensor subclass whose __torch_function__ raises",
        "import torch\nclass T(torch.Tensor):\n    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        raise ValueError('nope')\n"
        "x = torch.zeros(2).as_subclass(T)\ny = 1\n",
        refused_as_untrusted,
    ),
    case(
        "a flood of variables",
        "import torch\nz = torch.zeros(1)\n"
        "exec(\"globals().update({('v%d' % i) * 20: z for i in range(20000)})\")\ny = 1\n",
        state_small,
    ),
]


@pytest.mark.parametrize(("source", "expect"), ATTEMPTS)
def test_an_escape_attempt_is_contained(attempt: Escapes, source: str, expect: Expect) -> None:
    outcome = attempt.run(source)
    expect(outcome, attempt)
    attempt.assert_contained(outcome)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="documented (app/engine/sandbox): Landlock does not govern utimensat, and "
    "the host needs it to touch its own socket; another host's socket can be made the "
    "least recently used, so the zygote ends that host first",
)
def test_another_hosts_socket_cannot_be_touched(attempt: Escapes) -> None:
    socket_path = attempt.ctx["victim_sock"]
    before = os.stat(socket_path).st_mtime
    outcome = attempt.run("import torch\ntorch.os.utime('$victim_sock', (0, 0))\n")
    assert os.stat(socket_path).st_mtime == before, "its time was set to 1970"
    assert outcome.error["type"] == "PermissionError"
    attempt.assert_contained(outcome)


def test_a_graph_drawn_from_hostile_names_shows_them_as_text(attempt: Escapes) -> None:
    # The server (not confined) draws the graph with Graphviz from names the program
    # chose: a name that closes the DOT string would make Graphviz read a file.
    name = 'a"]; x [image="$secret_file" label=<<IMG SRC="$secret_file"/>>]; y ["'
    source = (
        "import torch\nw = torch.ones(2, requires_grad=True)\n"
        f"globals()[{name!r}] = (w * 2).sum()\n"
        'F = type(\'Z"];q[image="$secret_file"];r["\', (torch.autograd.Function,), {\n'
        "    'forward': staticmethod(lambda ctx, x: x * 3),\n"
        "    'backward': staticmethod(lambda ctx, g: g * 3)})\n"
        "v = F.apply(w).sum()\nz = 1\n"
    )
    outcome = attempt.run(source)
    assert outcome.state["done"] and outcome.state["error"] is None, outcome.text
    attempt.api.seek(outcome.session_id, cursor=outcome.state["cursor"] - 1)
    response = attempt.api.get(f"/api/sessions/{outcome.session_id}/graph.svg")
    assert response.status_code == 200, response.text
    svg = response.text
    assert "<image" not in svg and "<img" not in svg.lower()
    assert attempt.fill("a&quot;]; x [image=&quot;$secret_file&quot;") in svg  # as text
    assert FILE_SECRET not in svg
    attempt.assert_contained(outcome)
