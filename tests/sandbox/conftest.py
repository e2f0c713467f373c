"""The escape suite's app: one server that runs edited code, the things an escape would
touch (a secret in its environment, its settings and its data folder, another session's
host, listening sockets), and the checks that none of them was touched."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import httpx
import psutil
import pytest

from app.settings import Settings
from tests.api.conftest import SMALL, Api

ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_hex(6)
# Three secrets an escape would read: the server's environment, its settings, a data file.
ENV_SECRET = f"agxsecret-env-{TOKEN}"
SETTINGS_SECRET = f"agxsecret-settings-{TOKEN}"
FILE_SECRET = f"agxsecret-file-{TOKEN}"
SECRETS = (ENV_SECRET, SETTINGS_SECRET, FILE_SECRET)
#: A signal an escape may send to the server (this process): harmless, and noticed here.
SERVER_SIGNAL = signal.SIGUSR1
#: An edited program's steps: a second over the time limit, five more to the watchdog.
STEP_TIME_S = 1.0
STUCK_AFTER_S = STEP_TIME_S + 5.0
MAX_EVENTS = 20_000
_LIVE = (psutil.STATUS_RUNNING, psutil.STATUS_SLEEPING, psutil.STATUS_DISK_SLEEP)


@dataclass
class Outcome:
    """How the server answered the step that ran an attempt (to its end)."""

    session_id: str
    pid: int  # the session's host before the step
    status: int
    body: Any
    text: str
    seconds: float
    answered: bool = True  # False: no answer came in time (the host was then ended here)

    @property
    def state(self) -> dict[str, Any]:
        assert self.status == 200, self.text
        state: dict[str, Any] = self.body
        return state

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] | None = self.state["error"]
        assert error is not None, f"the program ran without an error: {self.text[:2000]}"
        return error

    @property
    def output(self) -> str:
        output: str = self.state["output"]
        return output


class Escapes:
    """The shared app, what the attempts' sources may name (`ctx`), and the checks."""

    def __init__(self, api: Api, folder: Path) -> None:
        self.api = api
        data = api.settings.data_dir
        self.secret_file = data / "secret.txt"
        self.secret_file.write_text(FILE_SECRET)
        self.secret_file.chmod(0o600)
        self.tcp = _listening(socket.AF_INET, ("127.0.0.1", 0))
        self.unix = _listening(socket.AF_UNIX, str(folder / "canary.sock"))
        self.signals: list[int] = []
        signal.signal(SERVER_SIGNAL, lambda number, _: self.signals.append(number))
        victim = api.create()
        self.victim_id = victim["id"]
        self.victim_cursor = api.step(self.victim_id, "event", 5)["cursor"]
        self.victim_pid = api.store.ping(self.victim_id)["pid"]
        self.zygote_pid = _zygote_of(self.victim_pid)
        mark = f"agx-escape-{TOKEN}"
        self.ctx = {
            "app_main": str(ROOT / "app" / "main.py"),
            "data_dir": str(data),
            "db": str(data / "sessions.db"),
            "secret_file": str(self.secret_file),
            "server_pid": str(os.getpid()),
            "server_signal": str(int(SERVER_SIGNAL)),
            "victim_pid": str(self.victim_pid),
            "victim_sock": api.store.hosts.path(self.victim_id),
            "zygote_sock": str(api.store.hosts.folder / "zygote.sock"),
            "unix_canary": str(folder / "canary.sock"),
            "port": str(self.tcp.getsockname()[1]),
            "mark": mark,
            "tmp_canary": f"/tmp/{mark}",
            "data_canary": str(data / mark),
            "shm_canary": f"/dev/shm/{mark}",
        }
        # Where an escape would leave a file (a program's cwd is the checkout: the zygote's).
        self.canaries = [Path(f"/tmp/{mark}"), data / mark, ROOT / mark, Path(f"/dev/shm/{mark}")]
        self.canaries += [path.with_name(path.name + ".npy") for path in self.canaries]
        self._victim = self._victim_now()
        self._server = _fingerprint(os.getpid())
        self._zygote = _fingerprint(self.zygote_pid)
        self.sessions: list[str] = []

    # -- running attempts ----------------------------------------------------

    def create(self, source: str) -> tuple[str, int]:
        """Create a session of ``source`` (``$names`` from `ctx` filled in); return its
        id and its host's process id."""
        body = {"lesson": "autograd", "config": SMALL, "source": self.fill(source)}
        created = self.api.post("/api/sessions", json=body)
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        self.sessions.append(session_id)
        return session_id, self.api.store.ping(session_id)["pid"]

    def run(self, source: str) -> Outcome:
        """Run ``source`` to its end (or its first answer that is not a State)."""
        session_id, pid = self.create(source)
        started = time.monotonic()
        while True:
            response = self._step(session_id)
            if response.status_code != 200 or not response.json()["interrupted"]:
                break
            assert time.monotonic() - started < 30, "the program runs on and on"
        return _outcome(session_id, pid, response, time.monotonic() - started)

    def run_stuck(self, source: str, *, wait_s: float) -> Outcome:
        """Step ``source`` to its end and wait ``wait_s`` for the answer; with none by
        then, end its host (what the watchdog should have done) and say so."""
        session_id, pid = self.create(source)
        answers: list[httpx.Response] = []
        stepping = threading.Thread(target=lambda: answers.append(self._step(session_id)))
        started = time.monotonic()
        stepping.start()
        stepping.join(wait_s)
        answered = not stepping.is_alive()
        if not answered:
            self.api.store.hosts.kill(session_id)
            stepping.join(60)
        outcome = _outcome(session_id, pid, answers[0], time.monotonic() - started)
        outcome.answered = answered
        return outcome

    def fill(self, text: str) -> str:
        return Template(text).substitute(self.ctx)

    def forget(self) -> None:
        """Delete the sessions the test made (their hosts end)."""
        sessions, self.sessions = self.sessions, []
        for session_id in sessions:
            self.api.delete(f"/api/sessions/{session_id}")

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()

    def _step(self, session_id: str) -> httpx.Response:
        return self.api.post(f"/api/sessions/{session_id}/step", json={"by": "end", "count": 1})

    # -- checks ------------------------------------------------------------------

    def assert_contained(self, outcome: Outcome) -> None:
        """Nothing outside the attempt's own host changed, nothing secret came back, and
        the server still serves."""
        for secret in SECRETS:
            assert secret not in outcome.text, f"a secret came back: {outcome.text[:2000]}"
        left = [path for path in self.canaries if os.path.lexists(path)]
        for path in left:
            path.unlink()
        assert not left, f"the program created {left}"
        assert self.secret_file.read_text() == FILE_SECRET
        assert stat.S_IMODE(self.secret_file.stat().st_mode) == 0o600
        assert Path(self.ctx["db"]).is_file()
        for listener in (self.tcp, self.unix):
            with pytest.raises(BlockingIOError):
                listener.accept()[0].close()  # a connection would mean the program got out
        assert not self.signals, f"the server received signals {self.signals}"
        assert _fingerprint(os.getpid()) == self._server
        assert _fingerprint(self.zygote_pid) == self._zygote
        assert self._victim_now() == self._victim
        self.assert_healthy()

    def assert_healthy(self) -> None:
        """/healthz answers 200 and allows edited code; a fresh lesson session steps."""
        health = self.api.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["edited_code"]["allowed"] is True, health.json()["edited_code"]
        fresh = self.api.create()
        assert self.api.step(fresh["id"], "event", 3)["cursor"] == 3
        assert self.api.delete(f"/api/sessions/{fresh['id']}").status_code == 204

    def assert_host_gone(self, pid: int) -> None:
        """The host ``pid`` has ended (the zygote reaps it within a tick)."""
        deadline = time.monotonic() + 5
        while _running(pid):
            assert time.monotonic() < deadline, f"host {pid} still runs"
            time.sleep(0.05)

    def _victim_now(self) -> dict[str, Any]:
        state = self.api.state(self.victim_id)
        pid = self.api.store.ping(self.victim_id)["pid"]
        return {"pid": pid, "cursor": state["cursor"], **_fingerprint(pid)}


def _outcome(session_id: str, pid: int, response: httpx.Response, seconds: float) -> Outcome:
    return Outcome(session_id, pid, response.status_code, response.json(), response.text, seconds)


def _zygote_of(pid: int) -> int:
    """The zygote whose host ``pid`` is (its family's head, app.engine.family, between):
    the first of its forebears started as one (a fork keeps its parent's command line)."""
    process = psutil.Process(pid)
    while (parent := process.parent()) and "app.engine.zygote" in " ".join(parent.cmdline()):
        process = parent
    assert process.pid != pid, f"{pid} is no zygote's host"
    return process.pid


def _listening(family: socket.AddressFamily, address: Any) -> socket.socket:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(8)
    listener.setblocking(False)
    return listener


def _fingerprint(pid: int) -> dict[str, Any]:
    """What a program that reached process ``pid`` could have changed."""
    process = psutil.Process(pid)
    return {
        "live": process.status() in _LIVE,
        "nice": process.nice(),
        "ionice": tuple(process.ionice()),
        "affinity": process.cpu_affinity(),
        "limits": [
            process.rlimit(which)
            for which in (psutil.RLIMIT_NOFILE, psutil.RLIMIT_AS, psutil.RLIMIT_CPU)
        ],
    }


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="package")
def escapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Escapes]:
    """One app for the whole suite, with its own zygote: started after the secret is in
    this process's environment, so a zygote that kept it would hand it on."""
    folder = tmp_path_factory.mktemp("escapes")
    settings = Settings(
        data_dir=folder / "var",
        host_dir=folder / "hosts",
        allow_code=True,
        step_time_s=STEP_TIME_S,
        code_max_events=MAX_EVENTS,
        max_session_bytes=256 << 20,
        host_memory_margin_bytes=512 << 20,
        max_sessions_per_browser=10_000,
        max_sessions_per_address=10_000,
        cors_origins=[f"https://{SETTINGS_SECRET}.example"],
    )
    previous = signal.getsignal(SERVER_SIGNAL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGX_SECRET_FOR_TEST", ENV_SECRET)
        api = Api(settings)
        with api.client:
            escapes = Escapes(api, folder)
            try:
                yield escapes
            finally:
                escapes.close()
                signal.signal(SERVER_SIGNAL, previous)
        # This suite's zygote serves its folder only: end it (and with it every host).
        with contextlib.suppress(ProcessLookupError):
            os.kill(escapes.zygote_pid, signal.SIGTERM)


@pytest.fixture
def attempt(escapes: Escapes) -> Iterator[Escapes]:
    """The suite's app for one test; the sessions it made are deleted after it."""
    yield escapes
    escapes.forget()
