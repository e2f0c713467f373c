"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import psutil
import pytest

if TYPE_CHECKING:  # imported where used: a GPU host runs tests/engine without Playwright
    from playwright.sync_api import Browser, ConsoleMessage, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("AGX_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    # Apps made in this process (TestClient) share one zygote and its hosts' folder,
    # so each starts its session hosts in milliseconds; servers started as processes
    # (LiveServer) drop AGX_ variables and start their own, as `make run` does.
    if "AGX_HOST_DIR" not in os.environ:
        import tempfile

        os.environ["AGX_HOST_DIR"] = tempfile.mkdtemp(prefix="agx-hosts-")


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` to completion on a fresh event loop in its own thread.

    `asyncio.run` refuses to start in a thread whose loop is running, and Playwright's
    sync API keeps one running on the main thread for as long as its session-scoped
    browser lives, so async clients in tests always get a thread of their own.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


class LiveServer:
    """A real `uvicorn app.main:app` in a subprocess, on a free loopback port."""

    def __init__(self, *, env: Mapping[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # Inherited AGX_* variables would make the suite depend on the developer's shell.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AGX_")}
        self._env = {**inherited, **env}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 30.0) -> None:
        """Start the server and wait until GET /healthz answers 200."""
        command = [sys.executable, "-m", "uvicorn", "app.main:app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--timeout-graceful-shutdown", "5"]  # as `make run` and the image
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited with {self._process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {ready_timeout_s} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it lingers."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def process(self) -> psutil.Process:
        """The uvicorn process, to measure its memory or kill it."""
        if self._process is None:
            raise RuntimeError("the server has not been started")
        return psutil.Process(self._process.pid)

    def log(self) -> str:
        """Return what the server printed so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Give a factory `start(env=None) -> LiveServer` of started servers, stopped at teardown.

    Every server of one test shares `tmp_path / "var"` as AGX_DATA_DIR unless `env` says
    otherwise, so a restart test can stop one server and start another on the same data.
    """
    servers: list[LiveServer] = []

    def start(env: Mapping[str, str] | None = None) -> LiveServer:
        server_env = {"AGX_DATA_DIR": str(tmp_path / "var"), **(env or {})}
        server = LiveServer(env=server_env, log_path=tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}; install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield launched
        launched.close()


class ConsoleWatch:
    """Console errors and uncaught exceptions of a page; some may be declared expected."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.expected):
            self.problems.append(f"console error: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.problems.append(f"uncaught exception: {error}")

    def expect(self, pattern: str) -> None:
        """Tolerate console errors matching `pattern` (a regular expression)."""
        self.expected.append(re.compile(pattern))


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    """A fresh page (1440×900, light theme) that fails the test on console errors."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
    opened = context.new_page()
    opened.on("console", console.on_console)
    opened.on("pageerror", console.on_page_error)
    yield opened
    context.close()
    assert not console.problems, "\n".join(console.problems)
