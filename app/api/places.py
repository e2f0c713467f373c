"""Places for steps running at once, per client, shared by every worker process.

Place ``i`` of a client key is the file ``<folder>/<digest of the key>.<i>``, held by an
exclusive ``flock`` on it. Every worker process (and app) that shares the session hosts
shares their folder, so a client's steps count the same whichever process took them.
The kernel drops the locks of a process that dies, so a worker killed in the middle of
a step leaves no place taken; a place is unlinked when it is given back, so the folder
holds only the places in use (and those of crashed workers, until taken again).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Place", "StepPlaces"]

_RETRIES = 3  # a place given back between our open and our lock: try it again


@dataclass(frozen=True)
class Place:
    fd: int
    path: Path


class StepPlaces:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # The hosts' folder too, as Hosts makes it, whichever comes first (a parent made
        # by mkdir(parents=True) would get the umask's mode instead).
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)

    def _path(self, key: str, index: int) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.{index}"

    def take(self, key: str, cap: int) -> Place | None:
        """One of ``key``'s ``cap`` places, or None when all are held."""
        for index in range(cap):
            path = self._path(key, index)
            for _ in range(_RETRIES):
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    break  # held: the next place
                try:
                    current = os.stat(path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    current = False
                if current:
                    return Place(fd, path)
                os.close(fd)  # its holder unlinked it as it gave it back: open it anew
        return None

    @staticmethod
    def give_back(place: Place) -> None:
        # Unlinked while still locked, so that no one holds a file no longer in the folder.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(place.path)
        os.close(place.fd)

    def held(self, key: str, cap: int) -> int:
        """How many of ``key``'s first ``cap`` places are held now (by any process)."""
        count = 0
        for index in range(cap):
            path = self._path(key, index)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                count += 1
                os.close(fd)
            else:  # a place no one holds (its worker died): tidied away
                self.give_back(Place(fd, path))
        return count
