"""Every lesson, as a newcomer walks it: open it from the home page, step to the backward
pass, step through it, go to the next iteration and run to the end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import LESSON_IDS, Explorer

pytestmark = pytest.mark.e2e

#: Lessons whose backward pass is written out by hand: no autograd nodes to step through.
BY_HAND = {"numpy", "tensors"}


def open_from_home(page: Page, server: LiveServer, lesson: str) -> None:
    page.goto(f"{server.url}/")
    link = page.locator(f'a[href="/lessons/{lesson}"]')
    title = link.locator(".lesson-title").inner_text()
    link.click()
    expect(page).to_have_url(re.compile(rf"/lessons/{lesson}$"))
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator("main.explorer")).to_have_attribute("aria-busy", "false")
    expect(page.get_by_test_id("status")).to_have_attribute("data-cursor", "0")


def step_to_backward(explorer: Explorer) -> None:
    for _ in range(10):
        if explorer.phase() == "backward":
            return
        explorer.press("Next phase")
    pytest.fail(f"no backward phase after 10 × Next phase; at {explorer.phase()}")


def step_through_backward_nodes(explorer: Explorer) -> None:
    """Step event by event through the backward pass: the focus moves from node to node."""
    before = explorer.variables.inner_text()
    focused: list[str] = []
    grads_changed = False
    for _ in range(60):
        explorer.press("Step")
        if not explorer.event().startswith("backward node"):
            if focused:
                break
            continue
        node = explorer.graph.locator("g.node.focus")
        expect(node).to_have_count(1)
        expect(node).to_have_class(re.compile(r"\bexecuted\b"))
        focused.append(node.get_attribute("id") or "")
        grads_changed |= explorer.variables.locator("tr.changed td.hot").count() > 0
    assert len(focused) >= 4, focused
    assert len(set(focused)) == len(focused), f"the focus stayed on a node: {focused}"
    assert grads_changed, "no .grad changed while the backward nodes ran"
    assert explorer.variables.inner_text() != before


def step_over_backward_lines(explorer: Explorer) -> None:
    """Step line by line through a backward pass written by hand: gradients appear."""
    names = set(explorer.versions())
    while explorer.phase() == "backward":
        explorer.press("Step over line")
        expect(explorer.variables.locator("tr.changed").first).to_be_visible()
    assert {"grad_w1", "grad_w2"} <= set(explorer.versions()) - names


def run_the_captured_graph(explorer: Explorer) -> None:
    """Static graph: step over lines to the run of the captured graph, then run it once."""
    for _ in range(20):
        if "static_graph(w1, w2, x, y)" in explorer.current_line.inner_text():
            break
        explorer.press("Step over line")
    else:
        pytest.fail("never reached the line that runs the captured graph")
    expect(explorer.page.locator('[data-field="graph-kind"]')).to_have_text("static graph")
    nodes = explorer.graph.locator("g.node").count()
    explorer.press("Step over line")
    expect(explorer.variable("loss")).to_be_visible()
    expect(explorer.variable("w1")).to_have_class(re.compile(r"\bchanged\b"))
    assert explorer.graph.locator("g.node").count() == nodes, "the static graph changed"


@pytest.mark.parametrize("lesson", LESSON_IDS)
def test_a_newcomer_walks_through_the_lesson(
    page: Page, server: LiveServer, explorer: Explorer, lesson: str
) -> None:
    open_from_home(page, server, lesson)
    explorer.open(lesson)  # the same page with small sizes in its URL
    expect(explorer.current_line).to_have_count(1)

    if lesson == "static_graph":
        run_the_captured_graph(explorer)
    else:
        step_to_backward(explorer)
        expect(explorer.current_line).to_have_class(re.compile(r"\bphase-backward\b"))
        if lesson in BY_HAND:
            step_over_backward_lines(explorer)
        else:
            step_through_backward_nodes(explorer)

    explorer.press("Next iteration")
    expect(explorer.page.locator('.code-panel [data-field="iteration"]')).to_contain_text("t = 1")
    expect(explorer.page.get_by_test_id("losses")).to_have_attribute("data-count", "1")

    explorer.press("Run to end")
    expect(explorer.status).to_have_attribute("data-done", "true")
    expect(explorer.page.get_by_test_id("losses")).to_have_attribute("data-count", "3")
    expect(explorer.current_line).to_have_count(0)
    expect(explorer.page.get_by_test_id("error")).to_be_visible(visible=lesson == "inplace")
