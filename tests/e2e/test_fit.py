"""A page that fits (issue 14, item 4).

At 1440×900 and 1280×800 code, graph and variables are on screen together and nothing is
cut: no element runs out of a box that clips it unless that box scrolls, no text is cut
with an ellipsis, code lines wrap, the variables table fits its panel, names take at
most two lines. At 1024×768 and 820×1180 the same holds except that the side column may
wait below the code and the drawing. Every lesson is checked at its start, mid-forward,
mid-backward and end, at all four sizes. At 320 CSS px the page reflows without sideways
scrolling, the graph keeps a usable height and the help popover's Close is on screen.
The node card docks beside the drawing; the sticky controls never hide the focused
element.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import ConsoleWatch, LiveServer
from tests.e2e.conftest import LESSON_IDS, SMALL, Explorer, explorer_in

pytestmark = pytest.mark.e2e

#: Every lesson at its default sizes (the longest names and shapes), two iterations so
#: that Run to end is quick.
QUERY = "iterations=2"

#: Elements out of their clipping box, unless that box scrolls in that direction;
#: text cut with an ellipsis. The drawing of the graph pans and zooms: not counted.
CUT = """() => {
  const found = [];
  const scrolls = (style, axis) =>
    /(auto|scroll)/.test(axis === "x" ? style.overflowX : style.overflowY);
  const clips = (style) => style.overflowX !== "visible" || style.overflowY !== "visible";
  for (const element of document.querySelectorAll(".workspace *, .controls *")) {
    if (element.closest("svg, [hidden], .sr-only, details:not([open]) > :not(summary)")) continue;
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    const style = getComputedStyle(element);
    // The stepping buttons' labels, visually hidden on phones.
    if (style.position === "absolute" && element.closest(".controls .btn")) continue;
    if (style.textOverflow === "ellipsis" && element.scrollWidth > element.clientWidth + 1) {
      found.push(`${describe(element)} cut with an ellipsis`);
    }
    for (let parent = element.parentElement; parent !== document.body; parent = up(parent)) {
      const ps = getComputedStyle(parent);
      if (!clips(ps)) continue;
      const area = parent.getBoundingClientRect();
      const right = box.right - area.right > 1.5 && !scrolls(ps, "x");
      const left = area.left - box.left > 1.5 && !scrolls(ps, "x");
      const below = box.bottom - area.bottom > 1.5 && !scrolls(ps, "y");
      if (right || left || below) {
        const side = right ? "right" : left ? "left" : "bottom";
        found.push(`${describe(element)} runs out of ${describe(parent)} (${side})`);
      }
      break;
    }
  }
  return found;
  function up(e) {
    return e.parentElement;
  }
  function describe(e) {
    const cls = (e.getAttribute("class") ?? "").split(" ").filter(Boolean).slice(0, 2).join(".");
    const hook = e.dataset.testid ?? e.dataset.name ?? e.dataset.line ?? "";
    return `${e.tagName.toLowerCase()}${cls ? "." + cls : ""}${hook ? `[${hook}]` : ""}`;
  }
}"""

#: How each panel sits in the window: its box, and what of it scrolls sideways.
MEASURE = """() => {
  const box = (selector) => {
    const e = document.querySelector(selector);
    if (!e) return null;
    const r = e.getBoundingClientRect();
    return {
      top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
    };
  };
  const code = document.querySelector('[data-testid="code"]');
  const wrap = document.querySelector(".vars-panel .table-wrap");
  const rows = '[data-testid="variables"] tr[data-name] .var-name button';
  const names = [...document.querySelectorAll(rows)].map((b) => {
    const style = getComputedStyle(b);
    const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
    const lines = Math.round(b.getBoundingClientRect().height / line);
    return [b.textContent, lines];
  });
  return {
    width: innerWidth, height: innerHeight,
    pageOverflow: document.documentElement.scrollWidth - innerWidth,
    code: box('[data-testid="code"]'), graph: box('[data-testid="graph"]'),
    variables: box('[data-testid="variables"] thead'),
    firstRow: box('[data-testid="variables"] tr[data-name]'),
    codeOverflow: code.scrollWidth - code.clientWidth,
    tableOverflow: wrap.scrollWidth - wrap.clientWidth,
    names,
  };
}"""


#: Resolves once nothing moves: no (finite) transition or animation running for two
#: frames in a row. The drawing's glide to a focused node is a CSS transition started in
#: a frame after the focus, and the page's scroll to it comes in another.
SETTLED = """async () => {
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 20; i++) {
    await frames();
    const running = document.getAnimations().filter((a) =>
      a.playState === "running" && a.effect?.getTiming().iterations !== Infinity);
    if (!running.length) return;
    await Promise.all(running.map((a) => a.finished.catch(() => null)));
  }
}"""


def inside(box: dict[str, float] | None, page: dict[str, Any]) -> bool:
    return bool(
        box
        and box["height"] > 0
        and box["top"] >= -0.5
        and box["left"] >= -0.5
        and box["bottom"] <= page["height"] + 0.5
        and box["right"] <= page["width"] + 0.5
    )


def on_screen(box: dict[str, float] | None, page: dict[str, Any], least: float) -> bool:
    """At least `least` px of the box's height is in the window."""
    if not box:
        return False
    return min(box["bottom"], page["height"]) - max(box["top"], 0) >= least


@pytest.fixture
def sized(
    request: pytest.FixtureRequest, browser: Browser, server: LiveServer, console: ConsoleWatch
) -> Iterator[Explorer]:
    width, height = request.param
    options = {"viewport": {"width": width, "height": height}, "has_touch": width < 1000}
    with explorer_in(browser, server, console, **options) as explorer:
        yield explorer


def to_phase(explorer: Explorer, phase: str) -> bool:
    """Press Next phase until the page shows `phase` (False: the program ended first)."""
    for _ in range(12):
        if explorer.phase() == phase:
            return True
        if explorer.button("Next phase").is_disabled():
            return False
        explorer.press("Next phase")
    return explorer.phase() == phase


def stages(explorer: Explorer) -> Iterator[str]:
    """Walk the open lesson through its start, mid-forward, mid-backward and end."""
    yield "start"
    for phase in ("forward", "backward"):
        if to_phase(explorer, phase):
            for _ in range(3):
                explorer.press("Step")
            yield f"mid-{phase}"
    explorer.button("Run to end").click()
    explorer.page.wait_for_function(
        "() => document.querySelector('main.explorer').getAttribute('aria-busy') === 'false'"
        " && !document.querySelector('[data-testid=\"status\"]').dataset.running"
        " && document.querySelector('[data-testid=\"status\"]').dataset.done === 'true'",
        timeout=60_000,
    )
    yield "end"


def check_fit(explorer: Explorer, where: str, *, stepping: bool) -> None:
    page = explorer.page
    page.mouse.move(0, 0)
    sizes: dict[str, Any] = page.evaluate(MEASURE)
    where = f"{where} at {sizes['width']}×{sizes['height']}"
    assert sizes["pageOverflow"] <= 0, f"{where}: the page scrolls sideways"
    assert page.evaluate(CUT) == [], where
    assert sizes["codeOverflow"] <= 0, f"{where}: code lines run out of the code panel"
    assert sizes["tableOverflow"] <= 0, f"{where}: the variables table is wider than its panel"
    assert all(lines <= 2 for _, lines in sizes["names"]), (where, sizes["names"])
    # On screen together: the code and the drawing; from 1280 px wide, the variables'
    # header and first row too (narrower, the side column may wait below: scrolled to).
    assert on_screen(sizes["code"], sizes, 240), (where, sizes["code"])
    assert on_screen(sizes["graph"], sizes, 180), (where, sizes["graph"])
    if sizes["width"] >= 1280:
        assert inside(sizes["variables"], sizes), (where, sizes["variables"])
        if sizes["names"]:
            assert inside(sizes["firstRow"], sizes), (where, sizes["firstRow"])
    if stepping:
        expect(explorer.current_line).to_be_in_viewport()
    status = explorer.status.locator('[data-field="event"]')
    assert status.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), where


@pytest.mark.parametrize(
    "sized",
    [(1440, 900), (1280, 800), (1024, 768), (820, 1180)],
    indirect=True,
    ids=["1440x900", "1280x800", "1024x768", "820x1180"],
)
def test_every_lesson_fits_at_every_stage(sized: Explorer) -> None:
    seen = []
    for lesson in LESSON_IDS:
        sized.open(lesson, QUERY)
        for stage in stages(sized):
            check_fit(sized, f"{lesson} {stage}", stepping=stage != "end")
            seen.append(f"{lesson} {stage}")
    assert len(seen) >= 3 * len(LESSON_IDS), seen  # every lesson has a forward pass
    print(sized.page.viewport_size, len(seen), "page states fit")


@pytest.mark.parametrize("sized", [(1440, 900), (820, 1180)], indirect=True, ids=["1440", "820"])
def test_the_node_card_docks_beside_the_drawing(sized: Explorer) -> None:
    explorer, page = sized, sized.page
    explorer.open("autograd", f"{SMALL}&cursor=25")
    node = explorer.graph.locator("g.node.focus")
    node_id = node.get_attribute("id")
    if (page.viewport_size or {}).get("width", 1440) < 1000:
        node.tap()
    else:
        node.click()
    card = page.get_by_test_id("node-info")
    expect(card).to_be_visible()
    page.wait_for_timeout(300)  # the drawing refits to its smaller box
    view = explorer.graph.bounding_box()
    box = card.bounding_box()
    shown = explorer.graph.locator(f'g.node[id="{node_id}"]').bounding_box()
    assert view and box and shown
    overlap_x = min(view["x"] + view["width"], box["x"] + box["width"]) - max(view["x"], box["x"])
    overlap_y = min(view["y"] + view["height"], box["y"] + box["height"]) - max(view["y"], box["y"])
    assert overlap_x <= 0 or overlap_y <= 0, (view, box)  # docked: they do not overlap
    assert view["height"] >= 150, view
    centre = (shown["x"] + shown["width"] / 2, shown["y"] + shown["height"] / 2)
    assert view["x"] <= centre[0] <= view["x"] + view["width"], (centre, view)
    assert view["y"] <= centre[1] <= view["y"] + view["height"], (centre, view)


@pytest.mark.parametrize("sized", [(320, 640)], indirect=True, ids=["320"])
def test_the_page_reflows_at_320_px(sized: Explorer) -> None:
    explorer, page = sized, sized.page
    explorer.open("autograd", f"{SMALL}&cursor=25")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    for name in ("Step", "Step over line", "Next phase", "Next iteration", "Run to end"):
        expect(explorer.button(name)).to_be_visible()
    graph = explorer.graph.bounding_box()
    assert graph and graph["height"] >= 240 and graph["width"] >= 240, graph
    explorer.graph.scroll_into_view_if_needed()
    expect(explorer.graph.locator("g.node.focus")).to_be_visible()
    explorer.button("Step").tap()
    explorer.wait()
    assert explorer.cursor() == 26
    page.evaluate("scrollTo(0, 0)")
    page.get_by_role("button", name="Keyboard shortcuts").tap()
    close = page.locator("#help").get_by_role("button", name="Close")
    close.scroll_into_view_if_needed()
    expect(close).to_be_in_viewport(ratio=1)
    close.tap()
    expect(page.locator("#help")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


@pytest.mark.parametrize("sized", [(320, 640), (820, 1180)], indirect=True, ids=["320", "820"])
def test_the_sticky_controls_never_hide_the_focused_element(sized: Explorer) -> None:
    explorer, page = sized, sized.page
    explorer.open("autograd", f"{SMALL}&cursor=25")
    page.locator("main").focus()
    hidden = []
    seen = 0
    for _ in range(45):
        page.keyboard.press("Tab")
        page.evaluate(SETTLED)  # after the browser's scroll and any glide of the drawing
        overlap = page.evaluate(
            """() => {
              const e = document.activeElement;
              const bar = document.querySelector(".controls");
              if (!e || e === document.body || bar.contains(e)) return null;
              if (e.closest(".popover")) return null;
              const b = bar.getBoundingClientRect();
              // What shows of it: its box within the boxes that clip it.
              let { top, bottom, left, right } = e.getBoundingClientRect();
              for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
                const s = getComputedStyle(p);
                if (s.overflowX === "visible" && s.overflowY === "visible") continue;
                const a = p.getBoundingClientRect();
                top = Math.max(top, a.top); bottom = Math.min(bottom, a.bottom);
                left = Math.max(left, a.left); right = Math.min(right, a.right);
              }
              if (bottom <= top || right <= left) return null;  // panned out of the drawing
              const under = top < b.bottom - 1 && bottom > b.top + 1 && b.top <= 1;
              return [e.tagName + "." + (e.getAttribute("class") ?? ""), under];
            }"""
        )
        if overlap is None:
            continue
        seen += 1
        if overlap[1]:
            hidden.append(overlap[0])
    assert seen > 20
    assert hidden == []
