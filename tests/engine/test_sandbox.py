"""The edited-code sandbox (app/engine/sandbox): each layer proven by a real attempt.

Every attempt runs in a fresh `python -c` (the zygote's environment: one thread each for
torch and the BLAS) that confines itself, then reports over a socket the test holds:
this process has run torch with threads, so a fork of it is not safe, and a confined
test runner would be no use to anyone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from app.engine.hosts import Hosts
from app.engine.sandbox import LAYERS
from app.settings import host_environment

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Landlock and seccomp: Linux")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "app" / "engine" / "sandbox" / "layers.py"

PRELUDE = """
import errno, json, os, resource, signal, socket, sys, threading
import numpy, torch
torch.set_num_threads(1)
from app.engine.sandbox import layers as sandbox_layers

CHANNEL, ONLY = int(sys.argv[1]), sys.argv[2].split(",")
channel = socket.socket(fileno=CHANNEL)

def confine(cpu_s=5.0):
    for name, apply in sandbox_layers.layers(CHANNEL, cpu_s=cpu_s):
        if name in ONLY:
            apply()

def outcome(attempt):
    try:
        attempt()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, exc.errno)
    return "ok"

def report(**found):
    channel.sendall(json.dumps(found).encode())

def uncaught(kind, value, trace):  # stderr is /dev/null once confined
    import traceback
    report(uncaught="".join(traceback.format_exception(kind, value, trace)))

sys.excepthook = uncaught

def compute(threads=1):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 512, generator=g)
    w = torch.randn(512, 256, generator=g, requires_grad=True)
    loss = (x @ w).tanh().pow(2).sum()
    loss.backward()
    return [loss.item(), w.grad.double().sum().item(), w.grad[3, 5].item()]
"""


def run(body: str, *, layers: tuple[str, ...] = LAYERS, fds: tuple[int, ...] = ()) -> Any:
    """Run PRELUDE + ``body`` in a fresh interpreter with ``layers`` (applied by the body's
    ``confine()``); send it ``fds``; return what it ``report``ed."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        script = PRELUDE + textwrap.dedent(body)
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(theirs.fileno()), ",".join(layers)],
            pass_fds=[theirs.fileno()],
            env=host_environment(ROOT),
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        for fd in fds:
            socket.send_fds(ours, [b"f"], [fd])
        ours.settimeout(120)
        chunks = []
        while chunk := ours.recv(1 << 16):
            chunks.append(chunk)
        _, stderr = process.communicate(timeout=120)
    assert chunks, f"the child reported nothing (exit {process.returncode}): {stderr.decode()}"
    found = json.loads(b"".join(chunks))
    assert "uncaught" not in found, found["uncaught"]
    return found


def test_descriptors_inherited_are_closed_and_0_1_2_are_dev_null():
    found = run(
        """
        inherited = os.open(os.devnull, os.O_RDONLY)
        null = os.stat(os.devnull).st_rdev
        confine()
        report(
            inherited=outcome(lambda: os.fstat(inherited)),
            std=[os.fstat(fd).st_rdev == null for fd in (0, 1, 2)],
            sigxfsz=signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN,
        )
        """,
        layers=("descriptors",),
    )
    assert found == {"inherited": "EBADF", "std": [True, True, True], "sigxfsz": True}


def test_rlimits_a_file_cannot_grow_descriptors_are_few_and_cpu_is_bounded():
    growable = os.memfd_create("test-sandbox")  # a regular file, received once confined
    try:
        found = run(
            """
            resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
            confine(cpu_s=2.5)
            _, fds, _, _ = socket.recv_fds(channel, 1, 1)
            opened = []
            def exhaust():
                while True:
                    opened.append(os.dup(CHANNEL))
            report(
                write=outcome(lambda: os.write(fds[0], b"x")),
                files=outcome(exhaust),
                highest=max(opened),
                limits={name: resource.getrlimit(getattr(resource, name))
                        for name in ("RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE",
                                     "RLIMIT_CPU", "RLIMIT_AS")},
            )
            """,
            fds=(growable,),
        )
        assert os.fstat(growable).st_size == 0
    finally:
        os.close(growable)
    assert found["write"] == "EFBIG"  # not a SIGXFSZ that kills
    assert found["files"] == "EMFILE" and found["highest"] == 63
    assert found["limits"] == {
        "RLIMIT_FSIZE": [0, 0],
        "RLIMIT_NOFILE": [64, 64],
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_CPU": [36, 41],  # twice the budget (3 s) and 30 s; SIGKILL 5 s later
        "RLIMIT_AS": [8 << 30, 8 << 30],  # as the host set it: never loosened
    }


def test_landlock_alone_denies_files_tcp_signals_and_abstract_sockets(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("the server's user owns this")
    tcp = socket.create_server(("127.0.0.1", 0))
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0test-sandbox-{os.getpid()}")
    abstract.listen(1)
    with tcp, abstract:
        found = run(
            f"""
            import torch.nn.functional
            confine()
            tcp = socket.socket(socket.AF_INET)
            near = socket.socket(socket.AF_UNIX)
            report(
                passwd=outcome(lambda: open("/etc/passwd", "rb")),
                source=outcome(lambda: open({str(SOURCE)!r}, "rb")),
                app=outcome(lambda: os.listdir({str(ROOT / "app")!r})),
                read_mine=outcome(lambda: open({str(mine)!r}, "rb")),
                write_mine=outcome(lambda: open({str(mine)!r}, "ab")),
                create=outcome(lambda: open({str(tmp_path / "new.txt")!r}, "x")),
                mkdir=outcome(lambda: os.mkdir({str(tmp_path / "dir")!r})),
                unlink=outcome(lambda: os.unlink({str(mine)!r})),
                connect=outcome(lambda: tcp.connect(("127.0.0.1", {tcp.getsockname()[1]}))),
                bind=outcome(lambda: tcp.bind(("127.0.0.1", 0))),
                signal=outcome(lambda: os.kill(os.getppid(), 0)),
                abstract=outcome(lambda: near.connect("\\0test-sandbox-{os.getpid()}")),
                torch=outcome(lambda: open(torch.nn.functional.__file__, "rb")),
                cpuinfo=outcome(lambda: open("/proc/cpuinfo", "rb")),
                own_signal=outcome(lambda: os.kill(os.getpid(), 0)),
            )
            """,
            layers=("landlock",),
        )
    assert found == {
        "passwd": "EACCES",
        "source": "EACCES",
        "app": "EACCES",
        "read_mine": "EACCES",
        "write_mine": "EACCES",
        "create": "EACCES",
        "mkdir": "EACCES",
        "unlink": "EACCES",
        "connect": "EACCES",  # the test listens there: without Landlock it connects
        "bind": "EACCES",
        "signal": "EPERM",
        "abstract": "EPERM",
        "torch": "ok",
        "cpuinfo": "ok",
        "own_signal": "ok",
    }
    assert mine.read_text() == "the server's user owns this"


SECCOMP_ATTEMPTS = """
import ctypes, subprocess
from pyseccomp import Arch, resolve_syscall
libc = ctypes.CDLL(None, use_errno=True)
def raw(name, *args):
    def call():
        number = resolve_syscall(Arch.NATIVE, name)
        if libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args]) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    return call
def fork():
    if os.fork() == 0:
        os._exit(0)
    os.wait()
# Values as they are, so that an attempt let through changes nothing.
parent = os.getppid()
nice, group_nice = os.getpriority(os.PRIO_PROCESS, parent), os.getpriority(os.PRIO_PGRP, 0)
cpus = os.sched_getaffinity(parent)
ATTEMPTS = {
    "socket_inet": lambda: socket.socket(socket.AF_INET),
    "socket_unix": lambda: socket.socket(socket.AF_UNIX),
    "socketpair": lambda: socket.socketpair(),
    "fork": fork,
    "subprocess": lambda: subprocess.run(["true"]),
    "kill_parent": lambda: os.kill(parent, 0),
    "kill_group": lambda: os.kill(0, 0),
    "kill_all": lambda: os.kill(-1, 0),
    "tgkill_parent": raw("tgkill", parent, parent, 0),
    "prlimit_parent": lambda: resource.prlimit(parent, resource.RLIMIT_NOFILE),
    "fcntl_setown": raw("fcntl", CHANNEL, 8, parent),  # F_SETOWN: SIGIO to the parent
    "memfd_create": lambda: os.memfd_create("x"),
    "fchmod": lambda: os.fchmod(CHANNEL, 0o600),
    "io_uring_setup": raw("io_uring_setup", 1, 0),
    "clone3": raw("clone3", 0, 0),
    "kill_self": lambda: os.kill(os.getpid(), 0),
    "setpriority_self": lambda: os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(0, 0)),
    "prlimit_self": lambda: resource.prlimit(0, resource.RLIMIT_NOFILE),
    "affinity_self": lambda: os.sched_getaffinity(0),
}
# Tried confined only: unconfined they would act on the test runner, or end the child.
CONFINED_ONLY = {
    "setpriority_parent": lambda: os.setpriority(os.PRIO_PROCESS, parent, nice),
    "setpriority_group": lambda: os.setpriority(os.PRIO_PGRP, 0, group_nice),
    "affinity_parent": lambda: os.sched_setaffinity(parent, cpus),
    "ptrace": raw("ptrace", 0),  # PTRACE_TRACEME
    "unshare": raw("unshare", 0x10000000),  # CLONE_NEWUSER
    "execve": lambda: os.execv("/bin/true", ["true"]),
}
"""


def test_seccomp_denies_what_a_host_never_needs_and_allows_its_own_process():
    unconfined = run(
        SECCOMP_ATTEMPTS
        + "report(**{name: outcome(attempt) for name, attempt in ATTEMPTS.items()})"
    )
    confined = run(
        SECCOMP_ATTEMPTS
        + "confine()\n"
        + "report(**{name: outcome(attempt) for name, attempt in "
        + "{**ATTEMPTS, **CONFINED_ONLY}.items()})"
    )
    # Not even its own priority: a root server's host could raise it (CAP_SYS_NICE).
    allowed = {"kill_self", "prlimit_self", "affinity_self"}
    acting_on_others = {"setpriority_parent", "setpriority_group", "affinity_parent"}
    assert set(confined) == {*unconfined, *acting_on_others, "ptrace", "unshare", "execve"}
    denied = {name: "EPERM" for name in confined if name not in allowed}
    denied["clone3"] = "ENOSYS"  # so that glibc falls back to clone, for threads only
    assert confined == {**denied, **dict.fromkeys(allowed, "ok")}
    # Unconfined, the same attempts succeed or fail otherwise: the filter decides.
    assert unconfined == {
        **dict.fromkeys(unconfined, "ok"),
        "io_uring_setup": "EFAULT",  # no parameters given
        "clone3": "EINVAL",
    }


def test_torch_with_threads_computes_the_same_numbers_confined():
    body = """
    single = compute(1)
    {confine}
    found = [single, compute(2)]
    done = []
    thread = threading.Thread(target=lambda: done.append(compute(1)))
    thread.start(); thread.join()
    report(numbers=found + done)
    """
    plain = run(body.format(confine=""))
    confined = run(body.format(confine="confine()"))
    assert confined["numbers"][0] == confined["numbers"][2] == plain["numbers"][0]
    assert confined["numbers"][1] == plain["numbers"][1]  # intra-op threads: clone allowed


def test_every_lesson_and_an_edit_run_confined_with_the_numbers_of_a_plain_run():
    body = """
    from app.engine.session import Session
    from app.lessons.registry import LESSONS, edited
    config = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
    printing = edited(LESSONS["optim"], LESSONS["optim"].source + "print(t)\\n")
    {confine}
    found = {}
    for lesson in [*LESSONS.values(), printing]:
        session = Session(id="s", lesson=lesson, config=config)
        session.step(by="end")
        state = session.state()
        session.seek(cursor=5)  # back: a replay
        key = f"edited {lesson.id}" if lesson.edited else lesson.id
        found[key] = [state["losses"], state["error"], session.cursor]
    report(**found)
    """
    confined = run(body.replace("{confine}", "confine()"))
    assert confined == run(body.replace("{confine}", ""))
    assert len(confined) == 11 and all(losses for losses, _, _ in confined.values())
    errors = {key: error["type"] for key, (_, error, _) in confined.items() if error}
    assert errors == {"inplace": "RuntimeError"}  # the lesson's own, on purpose


def test_confine_refuses_a_process_with_threads_and_a_channel_below_3():
    found = run(
        """
        from app.engine.sandbox import SandboxError, confine as confine_all
        def refusal(**kwargs):
            try:
                confine_all(**kwargs, cpu_s=1.0)
            except SandboxError as exc:
                return [exc.layer, exc.why]
        low = refusal(channel_fd=2)
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
        threaded = refusal(channel_fd=CHANNEL)
        stop.set()
        report(low=low, threaded=threaded, still_reads=outcome(lambda: open("/etc/passwd")))
        """,
        layers=(),
    )
    assert found["low"] == ["descriptors", "the channel is descriptor 2, not above 2"]
    assert found["threaded"] == ["seccomp", "the process has 2 threads; it must have one"]
    assert found["still_reads"] == "ok"  # nothing was applied


SELF_TEST = """
from app.engine.sandbox import layers as layers_module, selftest, self_test
{patch}
report(**self_test({timeout}))
"""


def self_test_report(patch: str = "", timeout: float = 10.0) -> dict[str, Any]:
    return run(SELF_TEST.format(patch=patch, timeout=timeout), layers=())


def test_self_test_proves_every_layer_here():
    report = self_test_report()
    assert report["in_force"] is True
    assert report["layers"] == dict.fromkeys(LAYERS)
    assert report["torch"] is None and report["landlock_abi"] >= 6
    assert 0 < report["confine_ms"] < report["ms"] < 5000


@pytest.mark.parametrize(
    ("patch", "layer", "why"),
    [
        ("layers_module.MIN_LANDLOCK_ABI = 99", "landlock", "not applied: the kernel's Landlock"),
        ("layers_module._seccomp = lambda pid: None", "seccomp", "a socket was allowed"),
        (
            "layers_module._descriptors = lambda fd, keep: None",
            "descriptors",
            "inherited descriptor",
        ),
        ("layers_module._landlock = lambda places: None", "landlock", "/etc/passwd was allowed"),
    ],
)
def test_self_test_names_a_layer_that_is_not_in_force(patch, layer, why):
    report = self_test_report(patch)
    assert report["in_force"] is False
    assert report["layers"][layer].startswith(why) or why in report["layers"][layer]
    if layer == "landlock" and "99" in patch:  # the layers after it are not applied
        assert report["layers"]["seccomp"] == "not applied: the landlock layer failed first"


def test_self_test_ends_a_child_that_hangs():
    started = time.monotonic()
    report = self_test_report("selftest._compute = lambda: __import__('time').sleep(60)", 1.0)
    assert time.monotonic() - started < 30
    assert report["in_force"] is False
    assert report["layers"]["descriptors"] == "the confined child did not finish in 1 s"


def test_the_zygote_reports_its_self_test_once(tmp_path, monkeypatch):
    hosts = Hosts(
        tmp_path / "hosts",
        caps={"hosts": 2, "bytes": 1 << 30, "cuda_hosts": 0},
        answer_timeout_s=30,
    )
    try:
        report = hosts.sandbox()
        assert report["in_force"] is True and report["layers"] == dict.fromkeys(LAYERS)
        monkeypatch.setattr(hosts, "_zygote", lambda request: pytest.fail("asked again"))
        assert hosts.sandbox() == report
    finally:
        hosts.close()
