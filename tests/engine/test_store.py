"""The session store over session hosts: one process per live session, real processes.

Every test here starts real hosts (forked from one zygote for the module): what they
check is what the operating system does with them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.engine.gradcheck import GradcheckError
from app.engine.host import QUIET_S
from app.engine.hosts import CpuSpent, HostDied, ProgramStuck, SessionBusy
from app.engine.layout import structure
from app.engine.lookahead import AHEAD_MISSES
from app.engine.records import SQLiteRecords
from app.engine.session import Session
from app.engine.store import SessionStore, TooManySessions, UnknownSession
from app.lessons.config import Limits, resolve_config
from app.lessons.registry import edited, get_lesson
from app.settings import Settings

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
#: A run long enough to be stopped on its way (seconds on this machine).
LONG = {"N": 64, "D_in": 256, "H": 256, "D_out": 8, "iterations": 10000}
CAPS = {"hosts": 16, "bytes": 1 << 40, "cuda_hosts": 1}
ROOT = Path(__file__).resolve().parents[2]


def _in_thread(action) -> tuple[threading.Thread, list]:
    """Start ``action`` in a thread; the list gets what it returned or raised."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _create(store: SessionStore, lesson: str = "autograd", **overrides: object) -> dict:
    found = get_lesson(lesson)
    config = resolve_config(found, {**SMALL, **overrides}, limits=Limits(max_session_bytes=1 << 40))
    return store.create(lesson=found, config=config)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # NOTE: not "a zombie": a process shows as one once its main thread has ended, while
    # its other threads may still hold its sockets. Gone is reaped by the zygote.
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


def test_creating_a_session_starts_no_host_until_it_is_used(make_store):
    store = make_store()
    session_id = _create(store)["id"]
    assert not Path(store.hosts.path(session_id)).exists()
    store.state(session_id)
    assert Path(store.hosts.path(session_id)).exists()


def test_a_host_shows_what_the_session_in_this_process_shows(make_store):
    store = make_store()
    created = _create(store)
    session_id = created["id"]
    local = Session(id=session_id, lesson=get_lesson("autograd"), config=created["config"])
    try:
        assert created == {**local.state(), "interrupted": None}
        for by, count in (("event", 5), ("line", 3), ("phase", 2), ("iteration", 1)):
            local.step(by=by, count=count)
            assert store.step(session_id, by=by, count=count) == local.state()
        assert store.graph(session_id) == local.graph()
        local.seek(cursor=3)
        assert store.seek(session_id, cursor=3) == local.state()
    finally:
        local.close()
    assert store.ping(session_id)["pid"] != os.getpid()


def test_a_host_is_first_to_go_under_memory_pressure_and_bounded_in_address_space(
    make_store,
):
    store = make_store(memory_bytes=64 << 20, memory_margin_bytes=256 << 20)
    session_id = _create(store)["id"]
    pid = store.ping(session_id)["pid"]

    assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "1000"
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    (line,) = [line for line in limits if line.startswith("Max address space")]
    at_rest = int(line.split()[3]) - (64 << 20) - (256 << 20)  # what torch maps at rest
    assert 300 << 20 < at_rest < 1536 << 20, at_rest


def test_every_store_on_the_machine_reaches_the_one_host_of_a_session(make_store):
    first, second = make_store(), make_store()
    session_id = _create(first)["id"]
    first.step(session_id, by="event", count=7)

    assert second.state(session_id)["cursor"] == 7
    assert first.ping(session_id)["pid"] == second.ping(session_id)["pid"]


def test_the_record_follows_every_move(make_store, tmp_path):
    store = make_store()
    session_id = _create(store)["id"]
    store.step(session_id, by="event", count=4)
    store.seek(session_id, cursor=2)

    record = SQLiteRecords(tmp_path / "sessions.db").get(session_id)
    assert record is not None and record.cursor == 2


def test_the_session_cap(make_store):
    store = make_store(max_sessions=2)
    _create(store)
    _create(store)

    with pytest.raises(TooManySessions, match="limit of 2 sessions") as refused:
        _create(store)
    assert refused.value.retry_after_s >= 1


def test_idle_sessions_expire_and_their_hosts_end(make_store, clock):
    store = make_store(ttl_s=100.0)
    session_id = _create(store)["id"]
    pid = store.ping(session_id)["pid"]
    clock.now += 101

    with pytest.raises(UnknownSession):
        store.state(session_id)
    assert _gone_within(pid, 1.0)


def test_delete_ends_the_host_at_once_even_in_a_long_step(make_store):
    store = make_store()
    session_id = _create(store, "optim", **LONG)["id"]
    pid = store.ping(session_id)["pid"]
    stepping, outcome = _in_thread(lambda: store.step(session_id, by="end", count=1))
    time.sleep(0.3)
    store.delete(session_id)

    assert _gone_within(pid, 1.0)
    stepping.join(5)
    assert [type(o) for o in outcome] == [HostDied]
    with pytest.raises(UnknownSession):
        store.state(session_id)


def test_a_host_that_dies_answers_once_then_the_session_is_replayed(make_store):
    store = make_store()
    session_id = _create(store)["id"]
    shown = store.step(session_id, by="event", count=9)
    pid = store.ping(session_id)["pid"]
    # Killed while it answers: the request in flight hears that it died.
    store2 = make_store(**{"step_time_s": 30.0})
    long_id = _create(store2, "optim", **LONG)["id"]
    long_pid = store2.ping(long_id)["pid"]
    stepping, outcome = _in_thread(lambda: store2.step(long_id, by="end", count=1))
    time.sleep(0.3)
    os.kill(long_pid, 9)
    stepping.join(5)
    assert [type(o) for o in outcome] == [HostDied]

    os.kill(pid, 9)
    assert _gone_within(pid, 1.0)
    assert store.state(session_id) == shown  # replayed to where the record says
    assert store.ping(session_id)["pid"] != pid


def test_cancel_stops_a_step_at_its_next_event(make_store):
    store = make_store()
    session_id = _create(store, "optim", **LONG)["id"]
    answers = []
    stepping = threading.Thread(
        target=lambda: answers.append(store.step(session_id, by="end", count=1))
    )
    stepping.start()
    time.sleep(0.5)
    cancelled = time.monotonic()
    store.cancel(session_id)
    stepping.join(5)
    took = time.monotonic() - cancelled

    (state,) = answers
    assert state["interrupted"] == {
        "reason": "cancelled",
        "remaining": None,
        "detail": "the step was cancelled",
    }
    assert not state["done"] and state["cursor"] > 0
    assert took < 1.0
    # Cancelled between two events: the session goes on from there as if never stopped.
    assert store.state(session_id)["cursor"] == state["cursor"]


def test_a_step_stops_at_its_time_limit_and_goes_on_where_it_stopped(make_store):
    store = make_store(step_time_s=0.2)
    session_id = _create(store, "optim", **{**LONG, "iterations": 2000})["id"]
    count = 10**6
    started = time.monotonic()
    state = store.step(session_id, by="event", count=count)
    took = time.monotonic() - started

    interrupted = state["interrupted"]
    assert interrupted["reason"] == "time" and took < 1.0
    assert interrupted["remaining"] == count - state["cursor"]
    again = store.step(session_id, by="event", count=interrupted["remaining"])
    assert again["cursor"] > state["cursor"]
    # The same cursor reached by a seek (never interrupted) shows the same state.
    other = _create(store, "optim", **{**LONG, "iterations": 2000})["id"]
    seeked = store.seek(other, cursor=again["cursor"])
    keys = ("cursor", "line", "event", "losses", "variables", "optimizer")
    assert {k: seeked[k] for k in keys} == {k: again[k] for k in keys}


def test_a_session_that_used_its_cpu_time_steps_no_more_but_can_be_read(make_store):
    store = make_store(cpu_s=0.3)
    session_id = _create(store, "optim", **LONG)["id"]
    state = store.step(session_id, by="end", count=1)
    assert state["interrupted"]["detail"] == "the session used up its CPU time"

    with pytest.raises(CpuSpent, match=r"used its CPU time \(0.3 s of steps\)"):
        store.step(session_id, by="event", count=1)
    assert store.seek(session_id, cursor=3)["cursor"] == 3  # a replay is free


def test_requests_beyond_a_busy_sessions_queue_are_refused(make_store):
    store = make_store(queue=1)
    session_id = _create(store, "optim", **LONG)["id"]
    stepping, stepped = _in_thread(lambda: store.step(session_id, by="end", count=1))
    time.sleep(0.3)
    waiting, waited = _in_thread(lambda: store.state(session_id))
    time.sleep(0.2)
    try:
        with pytest.raises(SessionBusy, match="1 requests already wait"):
            store.state(session_id)
    finally:
        store.cancel(session_id)
    stepping.join(5.0)
    waiting.join(5.0)
    assert stepped[0]["interrupted"]["reason"] == "cancelled"
    assert waited[0]["cursor"] == stepped[0]["cursor"]


def test_one_sessions_long_step_does_not_slow_another(make_store):
    store = make_store()
    long_id = _create(store, "optim", **LONG)["id"]
    short_id = _create(store)["id"]
    stepping, stepped = _in_thread(lambda: store.step(long_id, by="end", count=1))
    time.sleep(0.2)
    try:
        for _ in range(10):
            started = time.monotonic()
            store.step(short_id, by="event", count=1)
            assert time.monotonic() - started < 1.0
        started = time.monotonic()
        _create(store)
        assert time.monotonic() - started < 1.0
    finally:
        store.cancel(long_id)
    stepping.join(5.0)
    assert stepped[0]["interrupted"]["reason"] == "cancelled"


def test_an_allocation_over_the_memory_budget_is_the_lessons_own_error(make_store):
    store = make_store(memory_bytes=64 << 20, memory_margin_bytes=256 << 20)
    big = {"N": 64, "D_in": 65536, "H": 2048, "D_out": 10, "iterations": 1}  # 512 MiB w1
    session_id = _create(store, "tensors", **big)["id"]
    state = store.step(session_id, by="end", count=1)

    assert state["done"] and state["error"] is not None
    assert "memory" in state["error"]["message"].lower()
    assert store.state(session_id)["error"] == state["error"]  # the host lives on


def test_hosts_over_the_cap_end_least_recently_used_first(make_store):
    store = make_store(caps={**CAPS, "hosts": 2})
    first, second = (_create(store)["id"] for _ in range(2))
    shown = store.step(first, by="event", count=6)
    first_pid = store.ping(first)["pid"]
    time.sleep(1.1)  # hosts used within the last second are never ended
    store.step(second, by="event", count=1)
    store.state(_create(store)["id"])  # a third host

    assert _gone_within(first_pid, 1.0)
    assert store.state(first) == shown  # replayed


def test_checkpoints_are_built_while_the_host_is_idle(make_store):
    store = make_store()
    # Long enough that a walk from the start always takes over CHECKPOINT_GAP_S (0.1 s):
    # 200 iterations, about 0.1 s here, sometimes built none when the pace measured came out fast.
    session_id = _create(store, iterations=500)["id"]
    end = store.step(session_id, by="end", count=1)["cursor"]
    # The host builds only once no request has come for QUIET_S: ask less often than that.
    deadline = time.monotonic() + 10
    while not store.ping(session_id)["checkpoints"] and time.monotonic() < deadline:
        time.sleep(10 * QUIET_S)
    checkpoints = store.ping(session_id)["checkpoints"]
    assert checkpoints and all(0 < c < end for c in checkpoints)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


@pytest.mark.parametrize("lesson", ["autograd", "custom_module", "dynamic_net", "inplace"])
def test_a_look_ahead_on_a_copy_gives_the_structure_the_program_reaches(make_store, lesson):
    """The host forks its paused program (Run.copy) and runs the copy to the end of the
    iteration: what it finds is what the program itself reaches there, and the session
    stays where and as it was, with no process left behind."""
    store = make_store()
    session_id = _create(store, lesson)["id"]
    # Before its first step the program has not started: nothing to copy yet (the page
    # asks right away), and that gives up nothing for the steps that follow.
    assert store.graph_ahead(session_id)["ahead"] is None
    store.step(session_id, by="event", count=5)
    before = store.state(session_id)
    pid = store.ping(session_id)["pid"]

    ahead = store.graph_ahead(session_id)["ahead"]

    assert store.state(session_id) == before
    assert not _children(pid)
    assert store.graph_ahead(session_id)["ahead"] == ahead  # once per iteration
    assert ahead is not None and len(ahead["nodes"]) > 5
    reached = before
    while reached["iteration"] < 1 and not reached["done"]:
        reached = store.step(session_id, by="iteration", count=1)
    assert structure(store.graph(session_id)) == ahead


def test_a_look_ahead_never_replays_to_a_view_kept(make_store):
    """`Step back` after `Run to end` lands on a view the run kept: its graph view is
    answered from what is known, without a replay to bring the program there."""
    store = make_store()
    session_id = _create(store, iterations=200)["id"]
    # As the page runs to the end: by events, so the run keeps views on its way.
    end = store.step(session_id, by="event", count=10**6)["cursor"]
    store.seek(session_id, cursor=end - 1)
    before = store.ping(session_id)
    source = store.graph_ahead(session_id)
    assert source["graph"]["nodes"]
    after = store.ping(session_id)
    # A replay would have left the program at the end behind as a checkpoint.
    assert (after["replays"], after["checkpoints"]) == (before["replays"], before["checkpoints"])
    assert store.state(session_id)["cursor"] == end - 1


def test_a_program_too_slow_to_look_ahead_stops_looking_ahead(make_store):
    """No copy answers within 0.1 ms: after AHEAD_MISSES look-aheads in a row run out
    of time, the session looks ahead no more, and its graph is served all along."""
    store = make_store(lookahead_s=1e-4)
    session_id = _create(store, iterations=10)["id"]
    store.step(session_id, by="event", count=5)
    assert store.ping(session_id)["looks_ahead"]
    for _ in range(AHEAD_MISSES + 1):
        source = store.graph_ahead(session_id)
        assert source["ahead"] is None and source["graph"] == store.graph(session_id)
        store.step(session_id, by="iteration", count=1)
    assert not store.ping(session_id)["looks_ahead"]
    assert not _children(store.ping(session_id)["pid"])
    never = make_store(lookahead_s=0)
    session_id = _create(never)["id"]
    never.step(session_id, by="event", count=5)
    assert never.graph_ahead(session_id)["ahead"] is None
    assert not never.ping(session_id)["looks_ahead"]


def test_edited_programs_are_never_copied(make_store):
    """Fork is denied under the edited-code sandbox (and a copy of untrusted code is
    not wanted): such a session looks nothing ahead, and draws as before."""
    store = make_store()
    lesson = edited(get_lesson("autograd"), get_lesson("autograd").source)
    session_id = store.create(lesson=lesson, config=dict(SMALL))["id"]
    store.step(session_id, by="event", count=40)
    source = store.graph_ahead(session_id)
    assert source["ahead"] is None
    assert source["graph"] == store.graph(session_id) and source["graph"]["nodes"]


@pytest.mark.parametrize(
    ("lesson", "tensor"),
    [("tensors", "w1"), ("autograd", "w2"), ("custom_module", "model.linear1.weight")],
)
def test_a_gradient_check_runs_on_a_copy_and_answers_as_in_process(make_store, lesson, tensor):
    """The host checks on a copy of its program (Run.copy): the same answer as a
    session in this process, refusals included, with the session left as it was."""
    store = make_store()
    session_id = _create(store, lesson)["id"]
    found = get_lesson(lesson)
    config = resolve_config(found, SMALL, limits=Limits(max_session_bytes=1 << 40))
    local = Session(id="local", lesson=found, config=config)
    try:
        local.step(by="iteration", count=2)
        store.step(session_id, by="iteration", count=2)
        with pytest.raises(GradcheckError) as early:
            store.gradcheck(session_id, tensor, [0, 0])
        assert early.value.status == 409
        while store.state(session_id)["phase"] != "update":
            store.step(session_id, by="line", count=1)
            local.step(by="line")
        before = store.state(session_id)
        pid = store.ping(session_id)["pid"]
        index = [n // 2 for n in before["variables"][tensor]["shape"]]

        checked = store.gradcheck(session_id, tensor, index)

        expected = local.gradcheck(tensor, index)
        assert checked.keys() == expected.keys()
        for key in ("analytic", "numeric"):
            assert checked[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-9), key
        assert checked["iteration"] == expected["iteration"] == 1
        assert store.state(session_id) == before and not _children(pid)
        with pytest.raises(KeyError):
            store.gradcheck(session_id, "nope", [0])
        with pytest.raises(GradcheckError) as outside:
            store.gradcheck(session_id, tensor, [10**6, 0])
        assert outside.value.status == 422 and "not an element" in str(outside.value)
    finally:
        local.close()


def test_the_hosts_end_with_the_processes_that_use_them(tmp_path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from app.engine.hosts import Hosts
        from app.engine.records import SQLiteRecords
        from app.engine.store import HostLimits, SessionStore
        from app.lessons.registry import get_lesson
        from app.settings import Settings
        hosts = Hosts(Path({str(tmp_path / "hosts")!r}), caps={CAPS!r}, answer_timeout_s=60)
        store = SessionStore(SQLiteRecords(Path({str(tmp_path / "s.db")!r})), hosts,
                             limits=HostLimits.of(Settings()), max_sessions=4, ttl_s=100)
        from app.lessons.config import Limits, resolve_config
        lesson = get_lesson("autograd")
        config = resolve_config(lesson, {SMALL!r}, limits=Limits())
        session = store.create(lesson=lesson, config=config)
        print(store.ping(session["id"])["pid"])
        """
    )
    # NOTE: the zygote keeps the script's stderr: read its stdout only.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=120
    )
    host = int(done.stdout.split()[-1])

    assert _gone_within(host, 2.0)
    deadline = time.monotonic() + 2.0
    while (tmp_path / "hosts" / "zygote.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "hosts" / "zygote.sock").exists()


def test_a_host_of_edited_code_that_hides_it_took_a_request_is_ended_from_outside(
    make_store,
):
    # The program silences its host's "started" notice and stops its watchdog, then
    # never returns: the worker still ends the host once its answer is late.
    store = make_store(step_time_s=1.0)
    store.hosts._answer_timeout_s = 4.0
    source = (
        "import torch\nsys = torch.sys\nhost = sys.modules['app.engine.host']\n"
        "wire = sys.modules['app.engine.wire']\n"
        "class Quiet:\n"
        "    read = staticmethod(wire.read)\n"
        "    def write(self, conn, message):\n"
        "        if message != {'started': True}:\n"
        "            wire.write(conn, message)\n"
        "class Frozen:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(sys.modules['time'], name)\n"
        "    def sleep(self, seconds):\n"
        "        sys.modules['threading'].Event().wait()\n"
        "host.wire, host.time = Quiet(), Frozen()\n"
        "x = 1\n"
        "sys.settrace(None)\n"
        "exec('while True: pass')\n"
    )
    lesson = edited(get_lesson("autograd"), source)
    session_id = store.create(lesson=lesson, config=dict(lesson.defaults))["id"]
    before = store.step(session_id, by="line", count=1)
    while before["line"] != 17:  # the line before the loop: the host is rigged
        before = store.step(session_id, by="line", count=1)
    assert before["error"] is None
    pid = store.ping(session_id)["pid"]
    started = time.monotonic()
    with pytest.raises(ProgramStuck, match="did not answer for 4 s"):
        store.step(session_id, by="end", count=1)
    assert time.monotonic() - started < 4.0 + 2.0
    assert _gone_within(pid, 1.0)
    assert store.state(session_id)["cursor"] == before["cursor"]  # replayed, a new host


def _thread_nices(pid: int) -> dict[int, int]:
    """The nice value of each thread of process ``pid`` (Linux: nice is per thread)."""
    return {
        int(tid): os.getpriority(os.PRIO_PROCESS, int(tid))
        for tid in os.listdir(f"/proc/{pid}/task")
    }


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values: Linux")
def test_a_long_step_runs_in_the_background_and_reads_stay_in_front(make_store):
    store = make_store(checkpoints=0)
    long_run = _create(store, "custom_module", iterations=5000)["id"]
    short = _create(store, "custom_module", iterations=5000)["id"]
    store.step(short, by="event", count=40)  # a few ms: single steps
    store.step(long_run, by="event", count=100_000)  # over a second, not to the end
    lowered, kept = (_thread_nices(store.ping(s)["pid"]) for s in (long_run, short))

    assert lowered[store.ping(long_run)["pid"]] == 0  # the main thread, answering reads
    assert max(lowered.values()) == Settings().background_nice == 10  # the program's
    assert set(kept.values()) == {0}
    # The next step raises the program's thread back where the OS lets a thread raise
    # its priority (privileges, or RLIMIT_NICE as compose sets it): single steps run in
    # front again. Elsewhere it stays lowered, and steps go on.
    store.step(long_run, by="event", count=1)
    expected = {0} if _may_raise_priority() else {0, 10}
    assert set(_thread_nices(store.ping(long_run)["pid"]).values()) == expected


def _may_raise_priority() -> bool:
    """Can a thread of this process, lowered to nice 1, go back to nice 0?"""
    outcome: list[bool] = []

    def probe() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, 1)
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return outcome[0]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values: Linux")
@pytest.mark.skipif(os.geteuid() != 0, reason="sets a limit, then gives up root")
@pytest.mark.parametrize("limit", [20, 0])
def test_an_unprivileged_thread_goes_back_to_the_front_as_far_as_rlimit_nice_allows(limit):
    """Without privileges, raising a thread's priority again takes RLIMIT_NICE (the
    compose file sets 20: back to nice 0); without it the thread stays lowered, and
    the step runs on."""
    script = textwrap.dedent(
        f"""
        import os, resource, sys, threading
        from app.engine.stops import Stop, to_background
        try:
            resource.setrlimit(resource.RLIMIT_NICE, ({limit}, {limit}))
        except ValueError:  # no CAP_SYS_RESOURCE (a container's root)
            print("cannot set the limit")
            sys.exit(0)
        os.setgid(65534)
        os.setuid(65534)
        seen = []

        def program():
            to_background(10)
            seen.append(os.getpriority(os.PRIO_PROCESS, 0))
            Stop(foreground_nice=0).begin()
            seen.append(os.getpriority(os.PRIO_PROCESS, 0))

        thread = threading.Thread(target=program)
        thread.start()
        thread.join()
        print(seen)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "cannot set the limit":
        pytest.skip("this machine's RLIMIT_NICE hard limit cannot be raised")
    assert done.stdout.split() == (["[10,", "0]"] if limit == 20 else ["[10,", "10]"])


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values: Linux")
def test_background_nice_zero_leaves_long_steps_in_front(make_store):
    store = make_store(checkpoints=0, background_nice=0)
    session = _create(store, "custom_module", iterations=1000)["id"]
    store.step(session, by="end", count=1)
    assert set(_thread_nices(store.ping(session)["pid"]).values()) == {0}
