"""A copy of a paused run in a forked process: how it answers and how it is reaped.

:meth:`app.engine.tracer.Run.copy` forks in the program's own thread; the child's
controller runs the work asked for and writes its answer (JSON) on a pipe with
:func:`answer_with`; the parent reads it with :func:`answer_of`, which also ends and
reaps the child. The child dies with the thread that forked it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CopyFailed", "CopyTimedOut", "answer_of", "answer_with", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


class CopyFailed(Exception):
    """A copy of a run could not be made, failed, or gave no answer in time."""


class CopyTimedOut(CopyFailed):
    """A copy gave no answer in time (it was ended)."""


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when the thread that forked it ends; end now if ``parent``
    has ended already (before the request took effect)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def answer_with(work: Callable[[], Any], writer: int) -> None:
    """In a copy: write ``{"ok": work()}`` (or the error it raised) to ``writer``, and
    end the process, without running anything the parent set up to run at exit."""
    code = 0
    try:
        answer: Any = {"ok": work()}
    except BaseException as exc:  # the answer says so; nothing else may run here
        answer, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    try:
        view = memoryview(json.dumps(answer, separators=(",", ":")).encode())
        while view:
            view = view[os.write(writer, view) :]
        os.close(writer)  # the end of the answer now, not once this process is torn down
    finally:
        os._exit(code)


def answer_of(pid: int, reader: int, timeout_s: float) -> Any:
    """The answer copy ``pid`` writes to ``reader`` within ``timeout_s`` (CopyFailed if
    none comes, or an error does); the copy is ended and reaped either way."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                raise CopyTimedOut(f"the copy gave no answer within {timeout_s:g} s")
            chunk = os.read(reader, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise CopyFailed("the copy ended without an answer") from None
    if "ok" not in answer:
        raise CopyFailed(f"the copy failed: {answer.get('error')}")
    return answer["ok"]
