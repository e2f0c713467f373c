"""The page and the server's limits on a step: a step the server stops at its time limit
goes on where it stopped, Cancel reaches the server, and a shared link heavier than the
lesson's defaults runs only once the reader asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import SMALL, Explorer, start_server

pytestmark = pytest.mark.e2e

SMALL_CONFIG = {name: int(value) for name, value in (part.split("=") for part in SMALL.split("&"))}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose steps stop after 50 ms (State.interrupted)."""
    live = start_server(tmp_path_factory, "limits", AGX_STEP_TIME_S="0.05")
    yield live
    live.stop()


def _requests(page: Page, kind: str) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if kind in request.url else None)
    return seen


def test_a_step_stopped_at_its_time_limit_goes_on_to_where_it_was_going(
    explorer: Explorer, page: Page, server: LiveServer
) -> None:
    steps = _requests(page, "/step")
    explorer.open("autograd", "N=8&D_in=16&H=8&D_out=4&iterations=1500")
    explorer.press("Run to end")  # chunks of steps, some of them stopped early
    expect(explorer.status).to_have_attribute("data-done", "true")
    ended = explorer.cursor()

    with httpx.Client(base_url=server.url, timeout=60) as api:
        made = api.post(
            "/api/sessions",
            json={"lesson": "autograd", "config": {**SMALL_CONFIG, "iterations": 1500}},
        )
        path = f"/api/sessions/{made.json()['id']}"
        state = api.post(f"{path}/step", json={"by": "end"}).json()
        interrupted = 0
        while state["interrupted"]:
            interrupted += 1
            state = api.post(f"{path}/step", json={"by": "end"}).json()
    assert interrupted > 0, "the server never stopped a step at 50 ms: the test proves nothing"
    assert state["done"] and ended == state["cursor"]
    assert len(steps) > 2


def test_cancel_stops_the_step_in_flight_on_the_server(explorer: Explorer, page: Page) -> None:
    cancels = _requests(page, "/cancel")
    explorer.open("autograd", "N=8&D_in=16&H=8&D_out=4&iterations=10000")
    explorer.button("Run to end").click()
    progress = page.get_by_test_id("progress")
    expect(progress.locator("progress")).not_to_have_attribute("value", "0")
    progress.get_by_role("button", name="Cancel").click()
    explorer.wait()

    expect(explorer.status).to_have_attribute("data-done", "false")
    assert [request.method for request in cancels] == ["POST"]


def test_a_link_ten_times_heavier_than_the_defaults_runs_only_after_a_click(
    explorer: Explorer, page: Page
) -> None:
    created = _requests(page, "/api/sessions")
    page.goto(f"{explorer.base_url}/lessons/autograd?D_in=4000&H=400")
    expect(explorer.status).to_contain_text("D_in 4000, H 400")
    expect(page.get_by_test_id("config")).to_have_attribute("open", "")
    assert not [r for r in created if r.method == "POST"], "the heavy link ran by itself"

    page.get_by_test_id("config").get_by_role("button", name="Apply").click()
    explorer.wait()
    expect(explorer.status).to_have_attribute("data-cursor", "0")
    assert [r.method for r in created if r.method == "POST"][:1] == ["POST"]
    assert explorer.variables.count() == 1  # the explorer runs: its panels are there
