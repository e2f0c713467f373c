"""Escape attempts on time: operations that never return, and threads that outlive their
step. A step stops between events at its time limit; an operation that never reaches its
next event is ended by the watchdog after the limit and five seconds more (422), with the
host; nothing the program starts may go on using the CPU after its step."""

from __future__ import annotations

import time
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
        pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="the watchdog is a Python thread in the host: a C call that never "
            "releases the GIL starves it; the step answers 409 after the worker's "
            "answer timeout (39 s here) and the host spins until RLIMIT_CPU",
        ),
    ),
    stuck(
        "catastrophic regex backtracking (re is allowed)",
        "import re\nprint(re.match(r'(a+)+\\Z', 'a' * 64 + 'b'))\n",
        pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="as sum(range(10**12)): the regex engine holds the GIL, the "
            "watchdog thread never runs",
        ),
    ),
    stuck(
        "SIGSTOP its own host",
        "import torch\ntorch.os.kill(torch.os.getpid(), 19)\n",
        pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="a stopped host's watchdog is stopped with it: no answer until the "
            "worker's timeout (409), and the stopped host is never evicted (busy)",
        ),
    ),
    stuck(
        "the host's watchdog patched out, then an endless loop",
        "import torch\nsys = torch.sys\nhost = sys.modules['app.engine.host']\n"
        "class Frozen:\n"
        "    def __getattr__(self, name):\n        return getattr(sys.modules['time'], name)\n"
        "    def sleep(self, seconds):\n        sys.modules['threading'].Event().wait()\n"
        "host.time = Frozen()\nsys.settrace(None)\nexec('while True: pass')\n",
        pytest.mark.xfail(
            strict=True,
            raises=AssertionError,
            reason="the watchdog runs in the process it watches, whose memory the "
            "program may change: it stops, the host burns a core until RLIMIT_CPU "
            "(2 x AGX_SESSION_CPU_S + 30 s) and a busy host is never evicted",
        ),
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


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="a thread the program starts outlives its step: nothing stops it between "
    "requests (the watchdog looks only while a request waits), its CPU time is not "
    "charged to the session, and it runs until host_idle_s or RLIMIT_CPU",
)
def test_a_thread_left_running_after_the_step_burns_no_cpu(attempt: Escapes) -> None:
    source = (
        "import torch\nthreading = torch.sys.modules['threading']\n"
        "threading.Thread(target=exec, args=('while True: pass',), daemon=True).start()\n"
        "x = 1\n"
    )
    outcome = attempt.run(source)
    try:
        assert outcome.state["done"] and outcome.state["error"] is None
        host = psutil.Process(outcome.pid)
        before = sum(host.cpu_times()[:2])
        time.sleep(1.0)
        spent = sum(host.cpu_times()[:2]) - before
        assert spent < 0.2, f"the host used {spent:.2f} s of CPU in 1 s after its step ended"
    finally:
        attempt.api.store.hosts.kill(outcome.session_id)
    attempt.assert_contained(outcome)
