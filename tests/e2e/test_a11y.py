"""Accessibility of the pages (issue 14, item 9).

axe-core (pinned, vendored under tests/e2e/vendor/axe-core, never served by the app) runs
its WCAG 2.x A and AA rules in Chromium, in light and dark, on the home page and the
explorer in the states a learner meets; no serious or critical violation may remain.
Then what axe cannot see: the focus kept or handed back when rows re-render and details
close, single-key shortcuts that can be switched off, arrows that scroll a focused scroll
area instead of stepping, keyboard focus that looks unlike the current-event marker, the
graph as text (checked against the API's graph), the loss chart's numbers as a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ConsoleWatch, LiveServer
from tests.e2e.conftest import LESSON_IDS, SMALL, Explorer, explorer_in

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SMALL_CONFIG = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}

#: Cursors of the autograd lesson at SMALL sizes (tests/e2e/test_explorer.py uses them too).
MID_BACKWARD = 25
AFTER_BACKWARD = 31


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical violations of the WCAG 2.x A/AA rules on the page as it is."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (no inline script, no
        # eval) does not apply, and nothing of axe is served by the app.
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, {
            runOnly: { type: "tag", values: tags }, resultTypes: ["violations"],
          });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => `${n.target.join(" ")}: `
              + n.failureSummary.split("\\n").slice(1).join(" ").slice(0, 160)),
          }));
        }""",
        TAGS,
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def report(violations: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for state, found in violations.items():
        for v in found:
            lines.append(f"{state}: {v['id']} ({v['impact']}) on {len(v['nodes'])} elements")
            lines.extend(f"    {node}" for node in v["nodes"][:5])
    return "\n".join(lines)


@pytest.fixture(params=["light", "dark"])
def themed(
    request: pytest.FixtureRequest, browser: Browser, server: LiveServer, console: ConsoleWatch
) -> Iterator[Explorer]:
    options = {"viewport": {"width": 1440, "height": 900}, "color_scheme": request.param}
    with explorer_in(browser, server, console, **options) as explorer:
        yield explorer


def test_no_serious_axe_violation_in_any_state(themed: Explorer) -> None:
    explorer, page = themed, themed.page
    found: dict[str, list[dict[str, Any]]] = {}

    def check(state: str) -> None:
        found[state] = axe_violations(page)

    page.goto(f"{explorer.base_url}/")
    check("home")
    explorer.open("autograd")
    check("explorer at start")
    explorer.open("autograd", f"{SMALL}&cursor={MID_BACKWARD}")
    assert explorer.event().startswith("backward node")
    check("mid-backward")
    explorer.press("Run to end")
    expect(explorer.status).to_have_attribute("data-done", "true")
    check("after Run to end")

    explorer.open("autograd", f"{SMALL}&cursor={AFTER_BACKWARD}")
    explorer.variable("w1").get_by_role("button").click()
    expect(page.get_by_test_id("detail").locator(".heatmap")).to_be_visible()
    check("tensor detail")
    explorer.graph.locator("g.node.kind-function").first.click()
    expect(page.get_by_test_id("node-info")).to_be_visible()
    check("node details")
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(page.locator("#help")).to_be_visible()
    check("help")
    page.keyboard.press("Escape")

    explorer.open("autograd", "N=0&D_in=16&H=8&D_out=4&iterations=3")
    config = page.get_by_test_id("config")
    if not config.evaluate("details => details.open"):  # a refused config opens the form
        config.locator("summary").click()
    expect(page.locator("#err-N")).to_be_visible()
    check("invalid config")

    explorer.open("inplace")
    explorer.press("Run to end")
    expect(page.get_by_test_id("error")).to_be_visible()
    check("in-place lesson's end")

    assert not any(found.values()), report(found)


def test_no_serious_axe_violation_in_any_lesson_mid_backward(themed: Explorer) -> None:
    """Every lesson's own panels (ledgers, frames, the static graph, the manual gradients
    of the NumPy lessons) three events into its first backward phase."""
    explorer, page = themed, themed.page
    found: dict[str, list[dict[str, Any]]] = {}
    for lesson in LESSON_IDS:
        explorer.open(lesson)
        # The static graph has no backward phase of its own: its gradients are ops of the
        # captured graph, which runs whole on the loss line.
        wanted = "loss" if lesson == "static_graph" else "backward"
        for _ in range(12):
            if explorer.phase() == wanted:
                break
            explorer.press("Next phase")
        assert explorer.phase() == wanted, lesson
        for _ in range(3):
            explorer.press("Step")
        found[lesson] = axe_violations(page)
    assert not any(found.values()), report(found)


# Beyond axe: the keyboard.


def settle_keys(page: Page) -> None:
    """Start with the focus on nothing in particular (a click on the page's margin)."""
    page.locator("body").click(position={"x": 3, "y": 3})


def active(page: Page) -> str:
    """What has the focus, in terms that survive a repaint."""
    return str(
        page.evaluate(
            """() => {
              const e = document.activeElement;
              if (!e || e === document.body) return "body";
              const row = e.closest("tr[data-name]");
              if (row) return `row:${row.dataset.name}:${e.tagName.toLowerCase()}`;
              const node = e.closest("g.node");
              if (node) return `node:${node.id}`;
              const name = e.getAttribute("aria-label") ?? e.textContent.trim().slice(0, 30);
              return `${e.tagName.toLowerCase()}:${name}`;
            }"""
        )
    )


def test_the_focus_stays_on_a_variable_row_while_the_program_steps(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("autograd", f"{SMALL}&cursor={AFTER_BACKWARD}")
    explorer.variable("w1").get_by_role("button").focus()
    assert active(page) == "row:w1:button"
    cursor = explorer.cursor()
    explorer.key("n")  # a shortcut while a row has the focus: every row is rebuilt
    assert explorer.cursor() > cursor
    assert active(page) == "row:w1:button"
    explorer.press("Step")  # a click moves the focus to the button, as it should
    page.keyboard.press("Shift+Tab")
    assert active(page) != "body"


def test_closing_details_hands_the_focus_back(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("autograd", f"{SMALL}&cursor={AFTER_BACKWARD}")
    row = explorer.variable("w2").get_by_role("button")
    row.focus()
    page.keyboard.press("Enter")
    detail = page.get_by_test_id("detail")
    expect(detail.locator(".heatmap")).to_be_visible()
    detail.get_by_role("button", name="Close tensor details").focus()
    page.keyboard.press("Enter")
    expect(detail).to_be_hidden()
    assert active(page) == "row:w2:button"

    # Escape inside the details closes them the same way.
    page.keyboard.press("Enter")
    expect(detail.locator(".heatmap")).to_be_visible()
    detail.locator("button").first.focus()
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert active(page) == "row:w2:button"

    node = explorer.graph.locator("g.node.kind-function").first
    node_id = node.get_attribute("id")
    node.focus()
    page.keyboard.press("Enter")
    info = page.get_by_test_id("node-info")
    expect(info).to_be_visible()
    info.get_by_role("button", name="Close node details").focus()
    page.keyboard.press("Enter")
    expect(info).to_be_hidden()
    assert active(page) == f"node:{node_id}"

    page.keyboard.press("Enter")
    expect(info).to_be_visible()
    info.get_by_role("button", name="Close node details").focus()
    page.keyboard.press("Escape")
    expect(info).to_be_hidden()
    assert active(page) == f"node:{node_id}"


def test_a_graph_node_keeps_the_focus_across_steps(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("autograd", f"{SMALL}&cursor={MID_BACKWARD}")
    node = explorer.graph.locator("g.node.focus")
    node_id = node.get_attribute("id")
    node.focus()
    explorer.key("ArrowRight")  # Step: the graph is redrawn, the node is still in it
    assert explorer.cursor() == MID_BACKWARD + 1
    expect(explorer.graph.locator(f'g.node[id="{node_id}"]')).to_have_count(1)
    assert active(page) == f"node:{node_id}"


def test_keyboard_focus_and_the_current_event_look_different(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("autograd", f"{SMALL}&cursor={MID_BACKWARD}")
    node = explorer.graph.locator("g.node.focus")  # the current event

    def outline() -> str:
        return str(node.evaluate("g => getComputedStyle(g).outlineStyle"))

    assert outline() == "none"
    settle_keys(page)
    for _ in range(200):  # Tab to it, as a keyboard user would
        page.keyboard.press("Tab")
        if active(page) == f"node:{node.get_attribute('id')}":
            break
    else:
        pytest.fail("Tab never reached the current node")
    assert outline() not in ("none", "")

    line = explorer.current_line
    code = page.get_by_test_id("code")
    code.focus()
    code_outline = code.evaluate("e => getComputedStyle(e).outlineStyle")
    line_style = line.evaluate(
        "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).backgroundColor]"
    )
    assert code_outline not in ("none", "") and line_style[0] == "none"
    assert line_style[1] not in ("rgba(0, 0, 0, 0)", "transparent")


def test_arrow_keys_scroll_a_focused_code_listing_instead_of_stepping(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("dynamic_net", "")
    code = page.get_by_test_id("code")
    code.evaluate("e => { e.scrollTop = 0; }")
    code.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    explorer.wait()
    assert explorer.cursor() == 0
    expect(code).to_be_focused()
    # Chromium animates a keyboard scroll: wait for it (it never comes if the keys stepped).
    page.wait_for_function(
        "() => document.querySelector('[data-testid=code]').scrollTop > 0", timeout=3000
    )
    settle_keys(page)
    explorer.key("ArrowRight")  # with the focus elsewhere the arrows step
    assert explorer.cursor() == 1


def test_single_key_shortcuts_can_be_switched_off(explorer: Explorer) -> None:
    page = explorer.page
    explorer.open("autograd")
    step = explorer.button("Step")
    expect(step).to_have_attribute("aria-keyshortcuts", "ArrowRight")
    page.get_by_role("button", name="Keyboard shortcuts").click()
    toggle = page.get_by_role("checkbox", name="Single-key shortcuts on")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    page.keyboard.press("Escape")
    settle_keys(page)
    for key in ("ArrowRight", "n", "e", "p", "?"):
        page.keyboard.press(key)
    explorer.wait()
    assert explorer.cursor() == 0
    expect(page.locator("#help")).to_be_hidden()
    expect(step).not_to_have_attribute("aria-keyshortcuts", re.compile("."))
    expect(step.locator("kbd")).to_be_hidden()
    step.click()  # the buttons still work
    explorer.wait()
    assert explorer.cursor() == 1

    page.reload()  # remembered
    explorer.wait()
    settle_keys(page)
    page.keyboard.press("n")
    explorer.wait()
    assert explorer.cursor() == 1
    page.get_by_role("button", name="Keyboard shortcuts").click()
    page.get_by_role("checkbox", name="Single-key shortcuts on").check()
    page.keyboard.press("Escape")
    settle_keys(page)
    explorer.key("ArrowRight")
    assert explorer.cursor() == 2
    expect(step).to_have_attribute("aria-keyshortcuts", "ArrowRight")


def test_the_status_is_one_atomic_announcement_and_main_is_not_left_busy(
    explorer: Explorer,
) -> None:
    explorer.open("autograd")
    status = explorer.status
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_attribute("aria-atomic", "true")
    explorer.press("Step")
    expect(explorer.page.locator("main")).to_have_attribute("aria-busy", "false")
    expect(status).to_contain_text(f"line {explorer.line_number()} runs next")


def test_the_status_says_which_variables_a_step_changed(explorer: Explorer, api: Api) -> None:
    """The announcement names what the engine changed: compared here from two API states."""
    session = api.start("autograd")
    try:
        step = f"/api/sessions/{session}/step"
        before = api.client.post(step, json={"by": "iteration", "count": 2}).json()
        after = api.client.post(step, json={"by": "line", "count": 1}).json()
    finally:
        api.client.delete(f"/api/sessions/{session}")
    changed = sorted(
        name
        for name, t in after["variables"].items()
        if name not in before["variables"]
        or any(
            before["variables"][name].get(key) != t.get(key)
            for key in ("version", "stats", "grad", "grad_fn")
        )
    )
    assert changed, "the update line changes y_pred"
    explorer.open("autograd")
    explorer.press("Next iteration")
    explorer.press("Next iteration")
    explorer.press("Step over line")
    assert explorer.cursor() == after["cursor"]
    said = explorer.status.locator('[data-field="changes"]').inner_text()
    assert said.startswith("; changed: "), said
    named = sorted(part.split(" (")[0] for part in said.removeprefix("; changed: ").split("; "))
    assert named == changed[:5] or named[:5] == changed[:5], (said, changed)


# The graph as text, against the API's graph.


class Api:
    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60)

    def start(self, lesson: str) -> str:
        body = {"lesson": lesson, "config": SMALL_CONFIG}
        return str(self.client.post("/api/sessions", json=body).json()["id"])

    def graph_at(self, lesson: str, cursor: int) -> dict[str, Any]:
        session = self.start(lesson)
        try:
            seek = self.client.post(f"/api/sessions/{session}/seek", json={"cursor": cursor})
            seek.raise_for_status()
            return dict(self.client.get(f"/api/sessions/{session}/graph").json())
        finally:
            self.client.delete(f"/api/sessions/{session}")

    def losses(self, lesson: str) -> list[float | None]:
        session = self.start(lesson)
        try:
            body = {"by": "event", "count": 100000}
            state = self.client.post(f"/api/sessions/{session}/step", json=body).json()
            return list(state["losses"])
        finally:
            self.client.delete(f"/api/sessions/{session}")


@pytest.fixture
def api(server: LiveServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.client.close()


@pytest.mark.parametrize(("lesson", "cursor"), [("autograd", MID_BACKWARD), ("static_graph", 60)])
def test_the_graph_as_text_names_every_node_and_edge(
    explorer: Explorer, api: Api, lesson: str, cursor: int
) -> None:
    page = explorer.page
    explorer.open(lesson, f"{SMALL}&cursor={cursor}")
    graph = api.graph_at(lesson, cursor)
    assert graph["nodes"], graph
    toggle = page.get_by_role("button", name="As text")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    text = page.get_by_test_id("graph-text")
    expect(text).to_be_visible()
    expect(text).to_be_focused()
    items = text.locator("li[data-node]")
    expect(items).to_have_count(len(graph["nodes"]))
    by_id = {node["id"]: node for node in graph["nodes"]}
    name: Callable[[dict[str, Any]], str] = lambda n: n["name"].replace("torch::autograd::", "")  # noqa: E731
    expect(text.locator(".gt-summary")).to_contain_text(
        f"{len(graph['nodes'])} nodes, {len(graph['edges'])} edges"
    )
    for item in items.all():
        node = by_id[item.get_attribute("data-node") or ""]
        words = item.inner_text()
        assert words.startswith(name(node)), (words, node["name"])
        if node["kind"] == "leaf":
            assert "leaf tensor" in words
        if node["kind"] == "function" and graph["kind"] == "autograd":
            ran = node["executed"]
            freed = ran and not node.get("ledger") and not node["id"].startswith("acc:")
            expected = (
                "run by an earlier backward (freed)"
                if freed
                else "executed by backward"
                if node["executed"]
                else "not executed yet"
            )
            assert expected in words, (words, node)
        assert ("current event" in words) == (node["id"] == graph.get("focus")), words
        if any(s["stale"] for s in node.get("saved", [])):
            assert "modified in place" in words
        # Every edge at both of its ends, in the direction the gradient flows.
        for edge in graph["edges"]:
            if edge["target"] == node["id"] and graph["kind"] == "autograd":
                sent = words.lower().split("sends gradients to")[1]
                assert name(by_id[edge["source"]]).split(" ")[0].lower() in sent, words
            if edge["source"] == node["id"] and graph["kind"] == "autograd":
                assert "gets its gradient from" in words.lower(), words
    # The drawing is out of the keyboard's reach while the text is shown; Escape goes back.
    assert explorer.graph.evaluate("g => g.inert")
    page.keyboard.press("Escape")
    expect(text).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-pressed", "false")


def test_the_loss_chart_has_its_numbers_in_a_table(explorer: Explorer, api: Api) -> None:
    page = explorer.page
    explorer.open("autograd")
    explorer.press("Run to end")
    losses = api.losses("autograd")
    assert len(losses) == SMALL_CONFIG["iterations"]
    page.get_by_text("Loss values as a table").click()
    rows = page.get_by_test_id("loss-table").locator("tbody tr")
    expect(rows).to_have_count(len(losses))
    for t, (row, loss) in enumerate(zip(rows.all(), losses, strict=True)):
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == str(t)
        assert loss is not None
        shown = float(cells[1].replace("−", "-"))
        assert math.isclose(shown, loss, rel_tol=1e-5), (cells, loss)
