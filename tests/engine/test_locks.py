"""Per-session locks between processes: another process holding a session's lock keeps
this one out until it lets go or dies; other sessions are not held up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.engine.locks import HostLocks
from tests.conftest import ROOT

# A second process that takes one session's lock, says so, and holds it until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from app.engine.locks import HostLocks
locks = HostLocks(Path(sys.argv[1]))
with locks.hold(sys.argv[2], timeout_s=5):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold_elsewhere(path: Path, session_id: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), session_id],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


@pytest.fixture
def locks(tmp_path: Path):
    opened = HostLocks(tmp_path / "sessions.locks")
    yield opened
    opened.close()


def test_a_session_held_by_another_process_waits_and_others_do_not(locks, tmp_path):
    holder = _hold_elsewhere(tmp_path / "sessions.locks", "a" * 32)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError), locks.hold("a" * 32, timeout_s=0.3):
            pass
        assert 0.25 <= time.monotonic() - started < 2

        with locks.hold("b" * 32, timeout_s=0.3):
            pass  # another session is free
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)

    with locks.hold("a" * 32, timeout_s=1):
        pass  # let go


def test_a_killed_holder_leaves_the_session_free(locks, tmp_path):
    holder = _hold_elsewhere(tmp_path / "sessions.locks", "c" * 32)
    holder.kill()
    holder.wait(timeout=10)
    with locks.hold("c" * 32, timeout_s=1):
        pass
