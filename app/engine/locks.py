"""Per-session locks shared by every process of one host (uvicorn's worker processes).

Threads of one process are serialised per session by the store's own locks; these add
the same between processes, so that several workers (`WEB_CONCURRENCY`) on one data
folder never run two requests of one session at once. Replicas on other hosts are kept
apart by routing instead (nginx hashes the session id; see README, Scaling out).

Each session id maps to one byte of a lock file, locked with POSIX record locks
(`fcntl.lockf`): the kernel releases them when a process dies, so a killed worker never
leaves a session locked.
"""

from __future__ import annotations

import fcntl
import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HostLocks"]

_RETRY_S = 0.002


class HostLocks:
    """Exclusive per-session locks over the processes that open the same file.

    NOTE: POSIX record locks belong to a process, not a thread: callers must serialise
    their own threads per session first (the store does). Two ids whose CRC-32 collide
    share a byte, which only makes them wait for each other across processes.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Closing any descriptor of the file would drop every lock this process holds on
        # it, so the store keeps this one open for its whole life.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def hold(self, session_id: str, timeout_s: float) -> Iterator[None]:
        """Hold `session_id`'s lock; raise TimeoutError if another process keeps it."""
        offset = zlib.crc32(session_id.encode("utf-8", "surrogatepass"))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                break
            except OSError:  # EAGAIN or EACCES: held by another process
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"session {session_id!r} is locked") from None
                time.sleep(_RETRY_S)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def close(self) -> None:
        os.close(self._fd)
