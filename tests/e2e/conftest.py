"""Fixtures of the browser tests: one live server per module, and the explorer page's
locators. The browser and its pages are fixtures of tests/conftest.py, shared with
tests/contract (one Playwright instance per test session)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import ConsoleWatch, LiveServer

__all__ = ["LESSON_IDS", "SMALL", "ConsoleWatch", "Explorer"]

#: Sizes that keep every lesson fast, as the URL's query string.
SMALL = "N=8&D_in=16&H=8&D_out=4&iterations=3"

#: The lessons in tutorial order, with their titles on the home page.
LESSON_IDS = (
    "numpy",
    "tensors",
    "autograd",
    "custom_function",
    "static_graph",
    "nn",
    "optim",
    "custom_module",
    "dynamic_net",
    "inplace",
)

expect.set_options(timeout=15_000)


def start_server(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> LiveServer:
    """A started live uvicorn on a data folder of its own, with AGX_ settings `env`.

    Two worker processes, as `make run` and the image start: the page's parallel
    requests reach both, which must show one session alike.
    """
    folder = tmp_path_factory.mktemp(name)
    variables = {"AGX_DATA_DIR": str(folder / "var"), "WEB_CONCURRENCY": "2", **env}
    live = LiveServer(env=variables, log_path=folder / "server.log")
    live.start()
    return live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live uvicorn for the tests of one module, on its own data folder."""
    live = start_server(tmp_path_factory, "e2e")
    yield live
    live.stop()


@contextmanager
def explorer_in(
    browser: Browser, server: LiveServer, console: ConsoleWatch, **context: Any
) -> Iterator[Explorer]:
    """An Explorer in a browser context of its own (`context`: Playwright's options, such
    as the viewport or colour scheme), closed after; its console must stay clean."""
    opened = browser.new_context(**context)
    page = opened.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    try:
        yield Explorer(page, server.url)
    finally:
        opened.close()
    assert not console.problems, "\n".join(console.problems)


class Explorer:
    """The explorer page and the locators its tests repeat (DESIGN.md §6 hooks)."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self, lesson: str, query: str = SMALL) -> Explorer:
        self.page.goto(f"{self.base_url}/lessons/{lesson}{'?' + query if query else ''}")
        self.wait()
        return self

    def wait(self) -> None:
        """Wait until no request of the page's controller is on its way."""
        expect(self.page.locator("main.explorer")).to_have_attribute("aria-busy", "false")

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def press(self, name: str) -> None:
        """Click a button and wait for the page to settle."""
        self.button(name).click()
        self.wait()

    def key(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.wait()

    @property
    def status(self) -> Locator:
        return self.page.get_by_test_id("status")

    def cursor(self) -> int:
        return int(self.status.get_attribute("data-cursor") or 0)

    def event(self) -> str:
        return self.status.locator('[data-field="event"]').inner_text()

    @property
    def current_line(self) -> Locator:
        return self.page.locator('[data-testid="code"] li[aria-current="step"]')

    def line_number(self) -> int:
        return int(self.current_line.get_attribute("data-line") or 0)

    @property
    def graph(self) -> Locator:
        return self.page.get_by_test_id("graph")

    def focus_id(self) -> str | None:
        focus = self.graph.locator("g.node.focus")
        return focus.get_attribute("id") if focus.count() else None

    @property
    def variables(self) -> Locator:
        return self.page.get_by_test_id("variables")

    def variable(self, name: str) -> Locator:
        return self.variables.locator(f'tr[data-name="{name}"]')

    def versions(self) -> dict[str, int]:
        rows = self.variables.locator("tr[data-name]")
        return {
            row.get_attribute("data-name") or "": int(row.get_attribute("data-version") or 0)
            for row in rows.all()
        }

    def phase(self) -> str:
        return self.page.locator('.code-panel [data-field="phase"]').inner_text()


@pytest.fixture
def explorer(page: Page, server: LiveServer) -> Explorer:
    return Explorer(page, server.url)
