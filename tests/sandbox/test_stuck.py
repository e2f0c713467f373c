"""Escape attempts on time: operations that never return, and threads that outlive their
step. A step stops between events at its time limit; an operation that never reaches its
next event is ended by the watchdog after the limit and five seconds more (422), with the
host; nothing the program starts may go on using the CPU after its step."""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from tests.sandbox.conftest import STUCK_AFTER_S, Escapes, Outcome
from tests.sandbox.expect import host_alive

pytestmark = pytest.mark.timeout(120)


def stuck(name: str, source: str, *marks: Any) -> Any:
    return pytest.param(source, id=name, marks=marks)


STUCK = [
    stuck("time.sleep(3600)", "import time\nx = 1\ntime.sleep(3600)\n"),
    stuck(
        "tracing switched off, then an endless loop",
        "import torch\ntorch.sys.settrace(None)\nwhile True:\n    pass\n",
    ),
    stuck(
        "an endless loop that swallows EventLimit",
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass\n",
    ),
    stuck(
        "an exception whose __str__ never returns",
        "class E(Exception):\n    def __str__(self):\n        while True:\n            pass\n"
        "raise E()\n",
    ),
    stuck(
        "sum(range(10**12)) holds the GIL",
        "print(sum(range(10**12)))\n",
    ),
    stuck(
        "catastrophic regex backtracking (re is allowed)",
        "import re\nprint(re.match(r'(a+)+\\Z', 'a' * 64 + 'b'))\n",
    ),
    stuck(
        "SIGSTOP its own host",
        "import torch\ntorch.os.kill(torch.os.getpid(), 19)\n",
    ),
    stuck(
        "the host's watchdog patched out, then an endless loop",
        "import torch\nsys = torch.sys\nhost = sys.modules['app.engine.host']\n"
        "class Frozen:\n"
        "    def __getattr__(self, name):\n        return getattr(sys.modules['time'], name)\n"
        "    def sleep(self, seconds):\n        sys.modules['threading'].Event().wait()\n"
        "host.time = Frozen()\nsys.settrace(None)\nexec('while True: pass')\n",
    ),
]


@pytest.mark.parametrize("source", STUCK)
def test_an_operation_that_never_returns_ends_its_host(attempt: Escapes, source: str) -> None:
    outcome = attempt.run_stuck(source, wait_s=STUCK_AFTER_S + 4)
    try:
        assert outcome.answered, (
            f"no answer {outcome.seconds:.0f} s after the step began: the host runs on "
            f"(ended by the test; it answered {outcome.status}: {outcome.text[:300]})"
        )
        assert outcome.status == 422, outcome.text
        detail = outcome.body["detail"]
        assert f"ran for over {STUCK_AFTER_S:g} s without reaching its next line" in detail
        attempt.assert_host_gone(outcome.pid)
        after = attempt.api.state(outcome.session_id)  # a new host, where the step began
        assert (after["cursor"], after["done"]) == (0, False)
    finally:
        attempt.api.store.hosts.kill(outcome.session_id)
    attempt.assert_contained(outcome)


def test_a_slow_endless_loop_is_interrupted_at_the_step_time_limit(attempt: Escapes) -> None:
    session_id, pid = attempt.create("import time\nwhile True:\n    time.sleep(0.05)\n")
    response = attempt.api.post(f"/api/sessions/{session_id}/step", json={"by": "end", "count": 1})
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["interrupted"]["reason"] == "time" and state["cursor"] > 0
    assert attempt.api.post(f"/api/sessions/{session_id}/cancel").status_code == 202
    outcome = Outcome(session_id, pid, 200, state, response.text, 0.0)
    host_alive(outcome, attempt)
    attempt.assert_contained(outcome)


def test_a_thread_left_running_after_the_step_ends_its_host(attempt: Escapes) -> None:
    # An idle host of edited code checks every IDLE_CHECK_S that nothing of its program
    # runs; a thread left burning the CPU ends the host (the session replays when used).
    source = (
        "import torch\nthreading = torch.sys.modules['threading']\n"
        "threading.Thread(target=exec, args=('while True: pass',), daemon=True).start()\n"
        "x = 1\n"
    )
    outcome = attempt.run(source)
    try:
        assert outcome.state["done"] and outcome.state["error"] is None
        host = psutil.Process(outcome.pid)
        gone, _ = psutil.wait_procs([host], timeout=1.5)  # IDLE_CHECK_S and a margin
        assert gone, "the host still runs 1.5 s after its step ended"
        after = attempt.api.state(outcome.session_id)  # replayed in a new host
        assert after["cursor"] == outcome.state["cursor"] and after["done"]
    finally:
        attempt.api.store.hosts.kill(outcome.session_id)
    attempt.assert_contained(outcome)
