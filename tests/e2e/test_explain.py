"""Explaining every step in the page: the ledger card of a backward node, checking a
gradient, scalars and frames, linked views, the in-place error's trail and the config
form's errors (DESIGN.md §5.1), each compared with what the API says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import SMALL, ConsoleWatch, Explorer

pytestmark = pytest.mark.e2e

#: The config of SMALL, for the API sessions the tests compare the page with.
SMALL_CONFIG = {name: int(value) for name, value in (part.split("=") for part in SMALL.split("&"))}


class Api:
    """The REST API of the server the page talks to, for the expected values."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.sessions: list[str] = []

    def state_at(self, lesson: str, cursor: int) -> dict[str, Any]:
        """The State at `cursor` of a fresh session of `lesson` (SMALL config)."""
        created = self.client.post("/api/sessions", json={"lesson": lesson, "config": SMALL_CONFIG})
        created.raise_for_status()
        session = created.json()["id"]
        self.sessions.append(session)
        answer = self.client.post(f"/api/sessions/{session}/seek", json={"cursor": cursor})
        answer.raise_for_status()
        return dict(answer.json())

    def graph(self, state: dict[str, Any]) -> dict[str, Any]:
        """The Graph of the session of `state`, at its cursor."""
        return dict(self.client.get(f"/api/sessions/{state['id']}/graph").json())

    def lesson(self, lesson: str) -> dict[str, Any]:
        return dict(self.client.get(f"/api/lessons/{lesson}").json())

    def close(self) -> None:
        for session in self.sessions:
            self.client.delete(f"/api/sessions/{session}")
        self.client.close()


@pytest.fixture
def api(server: LiveServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()


def ledger_card(page: Page) -> Locator:
    return page.get_by_test_id("ledger")


def step_into_backward(explorer: Explorer) -> None:
    """Go to the first backward node event of the first iteration."""
    for _ in range(10):
        if explorer.phase() == "backward":
            break
        explorer.press("Next phase")
    for _ in range(10):
        if explorer.event().startswith("backward node"):
            return
        explorer.press("Step")
    pytest.fail(f"no backward node event; at {explorer.event()}")


def step_until(explorer: Explorer, button: str, found: Locator, limit: int = 40) -> None:
    """Press `button` until `found` is on the page."""
    for _ in range(limit):
        if found.count():
            return
        explorer.press(button)
    pytest.fail(f"nothing matched after {limit} × {button}")


def test_the_ledger_card_shows_the_apis_ledger_at_every_backward_node(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("autograd")
    step_into_backward(explorer)
    card = ledger_card(page)
    notes = api.lesson("autograd")["node_notes"]
    seen: set[str] = set()
    while explorer.event().startswith("backward node"):
        state = api.state_at("autograd", explorer.cursor())
        ledger = state["event"]["ledger"]
        nodes = {node["id"]: node for node in api.graph(state)["nodes"]}
        expect(card).to_have_attribute("data-node", ledger["node_id"])
        expect(card.locator('[data-field="ledger-from"]')).to_have_text("current event")
        expect(card.locator('[data-field="rule"] .rule-text')).to_have_text(ledger["rule"]["en"])
        expect(card.locator('[data-field="example"] .example-text')).to_have_text(
            ledger["example"]["text"]
        )
        expect(card.locator('[data-field="node-note"]')).to_have_text(notes[ledger["name"]]["en"])

        arrived = card.locator('[data-field="arrived"] figure.grad').first
        first = ledger["grad_outputs"][0]
        expect(arrived).to_contain_text("×".join(map(str, first["shape"])))
        cell = arrived.locator("td").first  # element [0, 0] (or [0], or the scalar)
        assert float(cell.get_attribute("title") or "nan") == first["preview"][0][0]

        sent = [g for g in ledger["grad_inputs"] if g is not None]
        receivers = card.locator('[data-field="sent"] [data-field="to"]')
        expect(receivers).to_have_count(len(sent))
        for shown, grad in zip(receivers.all(), sent, strict=True):
            expect(shown).to_have_attribute("data-node", grad["to"])
            expect(shown).to_contain_text(nodes[grad["to"]]["name"].split("::")[-1])
        if ledger["accumulate"]:
            expect(card.locator('[data-field="accumulate"]')).to_contain_text(".grad after")
        seen.add(ledger["name"])
        explorer.press("Step")

    assert {"MmBackward0", "ClampBackward1", "torch::autograd::AccumulateGrad"} <= seen
    expect(card.locator('[data-field="ledger-from"]')).to_be_hidden()


def test_the_ledger_speaks_the_notes_language_and_follows_a_selected_node(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("autograd")
    step_into_backward(explorer)
    for _ in range(2):
        explorer.press("Step")
    state = api.state_at("autograd", explorer.cursor())
    ledger = state["event"]["ledger"]
    card = ledger_card(page)
    page.get_by_role("button", name="中文").click()
    expect(card.locator('[data-field="rule"] .rule-text')).to_have_text(ledger["rule"]["zh"])
    note = api.lesson("autograd")["node_notes"][ledger["name"]]["zh"]
    expect(card.locator('[data-field="node-note"]')).to_have_text(note)
    page.get_by_role("button", name="English").click()

    # A node backward ran before this one: its graph ledger replaces the event's.
    graph = api.graph(state)
    earlier = next(n for n in graph["nodes"] if n["name"] == "SumBackward0" and n.get("ledger"))
    explorer.graph.locator(f'g.node[id="{earlier["id"]}"]').click()
    expect(card).to_have_attribute("data-node", earlier["id"])
    expect(card.locator('[data-field="ledger-from"]')).to_have_text("selected node")
    expect(card.locator('[data-field="rule"] .rule-text')).to_have_text(
        earlier["ledger"]["rule"]["en"]
    )
    explorer.press("Step")  # a step shows the new current event's ledger again
    expect(card.locator('[data-field="ledger-from"]')).to_have_text("current event")


def test_a_custom_functions_rule_is_its_backward_source_linked_to_the_code(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("custom_function")
    step_into_backward(explorer)
    card = ledger_card(page)
    for _ in range(20):
        if card.locator(".ledger-source").count():
            break
        explorer.press("Step")
    ledger = api.state_at("custom_function", explorer.cursor())["event"]["ledger"]
    first, last = ledger["source_lines"]
    lines = card.locator(".ledger-source button")
    expect(lines).to_have_count(last - first + 1)
    expect(lines.first).to_contain_text("def backward")
    expect(page.locator('[data-testid="code"] li.mark-source')).to_have_count(last - first + 1)
    lines.last.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f'[data-testid="code"] li[data-line="{last}"]')).to_have_class(
        re.compile(r"\bmark-linked\b")
    )


def test_shared_layer_uses_are_listed_with_their_sum(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("dynamic_net")
    step_into_backward(explorer)
    card = ledger_card(page)
    step_until(explorer, "Step", card.locator('[data-field="contributions"]'))
    ledger = api.state_at("dynamic_net", explorer.cursor())["event"]["ledger"]
    uses = card.locator('[data-field="contributions"] figure.grad')
    expect(uses).to_have_count(len(ledger["contributions"]) + 1)  # and their sum
    expect(card.locator('[data-field="contributions"] h4')).to_contain_text(
        f"{len(ledger['contributions'])} uses"
    )


def open_gradient(explorer: Explorer, page: Page, name: str) -> Locator:
    explorer.variable(name).get_by_role("button").click()
    detail = page.get_by_test_id("detail")
    detail.get_by_role("button", name=f"Show {name}.grad").click()
    expect(detail.locator("h2")).to_have_text(f"{name}.grad")
    return detail


def test_check_this_gradient_agrees_with_a_numerical_derivative(
    explorer: Explorer, page: Page
) -> None:
    explorer.open("autograd")
    while explorer.phase() != "update":
        explorer.press("Next phase")
    cursor = explorer.cursor()
    detail = open_gradient(explorer, page, "w1")
    cells = detail.locator("button.cell")
    expect(cells).to_have_count(64)

    cells.first.focus()
    page.keyboard.press("ArrowRight")  # moves within the grid, not the program
    expect(detail.locator('button.cell[data-index="0,1"]')).to_be_focused()
    page.keyboard.press("Enter")
    explorer.wait()
    result = detail.locator('[data-field="gradcheck"]')
    expect(result).to_have_attribute("data-state", "agree")
    expect(result.locator("h4")).to_contain_text("w1[0, 1]")
    rel_error = float(
        result.locator('[data-field="check-rel-error"]').get_attribute("data-value") or 1
    )
    assert rel_error < 1e-3
    analytic = float(
        result.locator('[data-field="check-analytic"]').get_attribute("data-value") or 0
    )
    numeric = float(result.locator('[data-field="check-numeric"]').get_attribute("data-value") or 0)
    assert analytic == pytest.approx(numeric, rel=1e-3)
    assert explorer.cursor() == cursor, "checking a gradient moved the program"

    detail.locator('button.cell[data-index="2,3"]').click()
    explorer.wait()
    expect(result.locator("h4")).to_contain_text("w1[2, 3]")


def test_a_check_that_cannot_run_now_says_why(
    explorer: Explorer, page: Page, console: ConsoleWatch
) -> None:
    console.expect(r"status of 409")
    explorer.open("autograd")
    for _ in range(2):
        explorer.press("Next iteration")  # iteration 1, before its backward: w1.grad is old
    detail = open_gradient(explorer, page, "w1")
    detail.locator('button.cell[data-index="0,0"]').click()
    explorer.wait()
    result = detail.locator('[data-field="gradcheck"]')
    expect(result).to_have_attribute("data-state", "refused")
    expect(result.locator('[data-field="check-refusal"]')).to_contain_text("backward")


def test_scalars_show_max_abs_diff_at_the_numpy_lessons_end(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("numpy")
    explorer.press("Run to end")
    state = api.state_at("numpy", explorer.cursor())
    scalars = page.get_by_test_id("scalars")
    expect(scalars.locator('tr[data-name="max_abs_diff"]')).to_be_visible()
    expect(scalars.locator('tr[data-name="t"] td')).to_have_text(f"{state['scalars']['t']:g}")
    shown = page.locator('[data-field="max-abs-diff"]')
    expect(shown).to_be_visible()
    value = float((shown.text_content() or "").replace("\u2212", "-"))
    assert value == pytest.approx(state["scalars"]["max_abs_diff"], rel=1e-4)
    expect(page.locator('[data-field="proof"]')).to_contain_text("autograd")
    # Not a tensor: no row of the variables table.
    expect(explorer.variable("max_abs_diff")).to_have_count(0)


def test_frames_show_depth_inside_dynamic_net_forward(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("dynamic_net")
    explorer.press("Next iteration")
    frame = explorer.variables.locator('tbody[data-frame="DynamicNet.forward"]')
    step_until(explorer, "Step over line", frame.locator('tr[data-local="depth"]'))
    state = api.state_at("dynamic_net", explorer.cursor())
    inner = state["frames"][-1]
    assert inner["function"] == "DynamicNet.forward"
    expect(frame.locator("tr.frame-head")).to_contain_text(f"line {inner['line']}")
    expect(frame.locator('tr[data-local="depth"] td')).to_have_text(
        f"= {int(inner['scalars']['depth'])}"
    )
    # Its tensor locals sit in the frame, apart from the globals.
    for name in inner["variables"]:
        expect(frame.locator(f'tr[data-name="{name}"]')).to_have_count(1)
    globals_ = explorer.variables.locator('tbody[data-frame="globals"]')
    expect(globals_.locator("tr.frame-head")).to_contain_text("Global frame")
    expect(globals_.locator('tr[data-name="model.middle_linear.weight"]')).to_have_count(1)
    expect(globals_.locator('tr[data-local="depth"]')).to_have_count(0)


def test_the_inplace_error_names_the_stale_tensor_and_finds_where_it_changed(
    explorer: Explorer, page: Page
) -> None:
    explorer.open("inplace")
    explorer.press("Run to end")
    panel = page.get_by_test_id("error")
    failing = panel.locator('[data-field="failing-line"]')
    expect(failing).to_contain_text("b.sum().backward()")
    line = int(failing.locator("button").get_attribute("data-goto-line") or 0)
    expect(page.locator(f'[data-testid="code"] li[data-line="{line}"]')).to_have_class(
        re.compile(r"\bmark-failed\b")
    )
    stale = panel.locator('[data-field="stale"]')
    expect(stale).to_contain_text("SigmoidBackward0")
    expect(stale.locator("code").first).to_have_text("b")
    expect(stale).to_contain_text("version 0")
    expect(stale).to_contain_text("version 1")
    expect(
        explorer.graph.locator(f'g.node.stale[id="{stale.get_attribute("data-node")}"]')
    ).to_have_count(1)

    end = explorer.cursor()
    panel.get_by_role("button", name="Show where it changed").click()
    explorer.wait()
    assert explorer.cursor() < end
    assert re.search(r"forward op \S*mul_", explorer.event()), explorer.event()
    expect(explorer.current_line).to_contain_text("b.mul_(2)")
    expect(explorer.variable("b")).to_have_attribute("data-version", "1")
    expect(panel).to_be_hidden()
    explorer.press("Step back")
    expect(explorer.variable("b")).to_have_attribute("data-version", "0")


def test_views_are_linked_node_to_line_and_variable_to_nodes(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("autograd")
    step_into_backward(explorer)
    graph = api.graph(api.state_at("autograd", explorer.cursor()))
    code = page.get_by_test_id("code")

    made = next(n for n in graph["nodes"] if n["name"] == "ClampBackward1")
    explorer.graph.locator(f'g.node[id="{made["id"]}"]').hover()
    expect(code.locator("li.mark-linked")).to_have_count(1)
    expect(code.locator("li.mark-linked")).to_have_attribute("data-line", str(made["line"]))
    page.mouse.move(5, 880)
    expect(code.locator("li.mark-linked")).to_have_count(0)

    made_there = {n["id"] for n in graph["nodes"] if n.get("line") == made["line"]}
    code.locator(f'li[data-line="{made["line"]}"]').hover()
    linked = explorer.graph.locator("g.node.linked")
    expect(linked).to_have_count(len(made_there))
    assert {g.get_attribute("id") for g in linked.all()} == made_there

    holding = {n["id"] for n in graph["nodes"] if "y_pred" in (n.get("tensors") or [])}
    assert holding
    explorer.variable("y_pred").get_by_role("button").click()
    explorer.wait()
    page.mouse.move(5, 880)
    expect(linked).to_have_count(len(holding))
    assert {g.get_attribute("id") for g in linked.all()} == holding

    output = next(n for n in graph["nodes"] if n["id"] in holding and n["kind"] == "function")
    explorer.graph.locator(f'g.node[id="{output["id"]}"]').focus()  # the keyboard links too
    expect(code.locator("li.mark-linked")).to_have_attribute("data-line", str(output["line"]))
    expect(explorer.variable("y_pred")).to_have_class(re.compile(r"\blinked\b"))


def test_the_config_form_marks_every_bad_field_at_once(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd", "N=0&D_in=16&H=8&D_out=4&iterations=3&learning_rate=5")
    for name in ("N", "learning_rate"):
        expect(page.locator(f"#err-{name}")).to_contain_text(name)
        expect(page.locator(f"#cfg-{name}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cfg-N")).to_be_focused()

    page.locator("#cfg-N").fill("8")
    page.locator("#cfg-learning_rate").fill("1e-6")
    page.locator("#cfg-H").fill("0")
    page.locator("#cfg-D_out").fill("-2")
    page.get_by_role("button", name="Apply").click()
    explorer.wait()
    for name in ("H", "D_out"):
        expect(page.locator(f"#err-{name}")).to_contain_text(name)
        expect(page.locator(f"#cfg-{name}")).to_have_attribute("aria-invalid", "true")
    for name in ("N", "learning_rate"):
        expect(page.locator(f"#err-{name}")).to_be_hidden()
        expect(page.locator(f"#cfg-{name}")).not_to_have_attribute("aria-invalid", "true")


def test_a_refused_apply_leaves_the_summary_on_the_running_config(
    explorer: Explorer, page: Page
) -> None:
    explorer.open("autograd")
    summary = page.locator('.config-panel [data-field="config-summary"]')
    expect(summary).to_contain_text("N=8 · D_in=16 · H=8 · D_out=4")
    running = summary.inner_text()
    page.locator(".config-panel summary").click()
    page.locator("#cfg-N").fill("0")
    page.locator("#cfg-H").fill("5000000")
    page.get_by_role("button", name="Apply").click()
    explorer.wait()
    for name in ("N", "H"):  # every refused field is marked next to itself
        expect(page.locator(f"#err-{name}")).to_contain_text(name)
        expect(page.locator(f"#cfg-{name}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cfg-N")).to_have_value("0")  # kept in the form, to fix
    expect(summary).to_have_text(running)  # the session still runs the old config
    explorer.press("Step")
    expect(explorer.status).to_have_attribute("data-cursor", "1")
    expect(summary).to_have_text(running)
    expect(page.locator("#cfg-N")).to_have_value("0")
    expect(page.locator("#cfg-N")).to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="Defaults").click()  # filled in, not applied
    expect(page.locator("#cfg-N")).to_have_value("64")
    expect(summary).to_have_text(running)


def test_new_text_is_at_least_11_px(explorer: Explorer, page: Page) -> None:
    explorer.open("dynamic_net")
    step_into_backward(explorer)
    step_until(explorer, "Step", ledger_card(page).locator('[data-field="contributions"]'))
    smallest = page.evaluate(
        """() => {
          const roots = document.querySelectorAll('[data-testid="ledger"], .vars-panel');
          let least = Infinity;
          for (const root of roots) {
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            while (walker.nextNode()) {
              const element = walker.currentNode.parentElement;
              if (!walker.currentNode.textContent.trim() || !element.checkVisibility()) continue;
              least = Math.min(least, parseFloat(getComputedStyle(element).fontSize));
            }
          }
          return least;
        }"""
    )
    assert smallest >= 11, smallest


def test_any_element_beyond_the_grid_can_be_looked_up(
    explorer: Explorer, page: Page, api: Api
) -> None:
    explorer.open("autograd")
    step_into_backward(explorer)
    card = ledger_card(page)
    found = card.locator('[data-field="sent"] form.lookup')
    step_until(explorer, "Step", found)  # MmBackward0 of x.mm(w1): grad_w1 is 16 × 8
    state = api.state_at("autograd", explorer.cursor())
    ledger = state["event"]["ledger"]
    form = found.first
    k = int(form.get_attribute("data-k") or "0")
    shape = ledger["grad_inputs"][k]["shape"]
    last = [n - 1 for n in shape]
    for field, value in zip(form.locator("input").all(), last, strict=True):
        field.fill(str(value))
    form.get_by_role("button", name="Look up").click()
    expected = api.client.get(
        f"/api/sessions/{state['id']}/graph/nodes/{ledger['node_id']}/grad",
        params={"side": "inputs", "k": k, "index": last},
    ).json()["value"]
    expect(form.locator("output")).not_to_have_text("…")
    shown = float((form.locator("output").text_content() or "nan").replace("−", "-"))
    assert shown == pytest.approx(expected, rel=1e-5)
