"""The explorer's own behaviour: URL round trip, keyboard, validation, panels, layout."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import LESSON_IDS, SMALL, ConsoleWatch, Explorer

pytestmark = pytest.mark.e2e


def test_the_home_page_lists_every_lesson_in_tutorial_order(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/")
    links = page.locator(".lesson-list a")
    hrefs = [link.get_attribute("href") for link in links.all()]
    assert hrefs == [f"/lessons/{lesson}" for lesson in LESSON_IDS]
    expect(links.first.locator(".lesson-summary")).not_to_be_empty()
    expect(page.locator(".lead")).to_contain_text("autograd graph")


def test_an_unknown_lesson_is_a_404_page_with_links(
    page: Page, server: LiveServer, console: ConsoleWatch
) -> None:
    console.expect(r"status of 404")
    response = page.goto(f"{server.url}/lessons/no_such_lesson")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_contain_text("no_such_lesson")
    expect(page.locator('a[href="/lessons/autograd"]')).to_be_visible()


def test_the_url_holds_lesson_config_and_cursor(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd")
    for _ in range(5):
        explorer.press("Step")
    expect(page).to_have_url(re.compile(r"[?&]cursor=5\b"))
    assert re.search(r"[?&]D_in=16\b", page.url) and re.search(r"[?&]iterations=3\b", page.url)
    view = (explorer.line_number(), explorer.versions(), explorer.event())

    page.reload()
    explorer.wait()
    expect(explorer.status).to_have_attribute("data-cursor", "5")
    assert (explorer.line_number(), explorer.versions(), explorer.event()) == view
    expect(page.locator("#cfg-D_in")).to_have_value("16")

    shared = Explorer(page.context.new_page(), explorer.base_url)  # a link opened elsewhere
    shared.page.goto(page.url)
    shared.wait()
    expect(shared.status).to_have_attribute("data-cursor", "5")
    assert (shared.line_number(), shared.versions(), shared.event()) == view

    # A new config is a new history entry; Back returns to the old config at its cursor.
    page.locator(".config-panel summary").click()
    page.locator("#cfg-H").fill("6")
    page.get_by_role("button", name="Apply").click()
    explorer.wait()
    expect(page).to_have_url(re.compile(r"[?&]H=6\b"))
    expect(explorer.status).to_have_attribute("data-cursor", "0")
    page.go_back()
    explorer.wait()
    expect(page).to_have_url(re.compile(r"[?&]cursor=5\b"))
    expect(explorer.status).to_have_attribute("data-cursor", "5")
    expect(page.locator("#cfg-H")).to_have_value("8")
    assert (explorer.line_number(), explorer.versions(), explorer.event()) == view
    page.go_forward()
    explorer.wait()
    expect(explorer.status).to_have_attribute("data-cursor", "0")
    expect(page.locator("#cfg-H")).to_have_value("6")


def test_steps_replace_the_history_entry_so_back_leaves_the_lesson(
    page: Page, server: LiveServer
) -> None:
    page.goto(f"{server.url}/")
    page.locator('.lesson-list a[href="/lessons/autograd"]').click()
    explorer = Explorer(page, server.url)
    explorer.wait()
    for _ in range(5):
        explorer.press("Step")
    expect(page).to_have_url(re.compile(r"/lessons/autograd\?cursor=5$"))
    explorer.press("Run to end")
    expect(explorer.status).to_have_attribute("data-done", "true")
    assert f"cursor={explorer.cursor()}" in page.url  # the URL still holds the cursor

    page.go_back()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator(".lesson-list")).to_be_visible()


def test_a_link_into_the_backward_pass_shows_the_focused_node(explorer: Explorer) -> None:
    explorer.open("autograd", f"{SMALL}&cursor=25")
    expect(explorer.status).to_have_attribute("data-cursor", "25")
    assert explorer.event().startswith("backward node")
    expect(explorer.graph.locator("g.node.focus")).to_have_count(1)


def test_the_keyboard_shortcuts_drive_the_stepping(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd")
    page.locator("body").click(position={"x": 5, "y": 880})

    explorer.key("ArrowRight")
    expect(explorer.status).to_have_attribute("data-cursor", "1")
    first_line = explorer.line_number()
    explorer.key("ArrowDown")
    assert explorer.line_number() > first_line
    explorer.key("n")
    expect(page.locator('.code-panel [data-field="iteration"]')).to_contain_text("t = 0")
    at_loop = explorer.cursor()
    explorer.key("ArrowLeft")
    expect(explorer.status).to_have_attribute("data-cursor", str(at_loop - 1))
    explorer.key("p")
    assert explorer.cursor() > at_loop - 1
    explorer.key("e")
    expect(explorer.status).to_have_attribute("data-done", "true")
    explorer.key("r")
    expect(explorer.status).to_have_attribute("data-cursor", "0")

    explorer.key("?")
    help_box = page.locator("#help")
    expect(help_box).to_be_visible()
    for key in ("→", "↓", "←", "n", "e", "r"):
        expect(help_box.locator("kbd", has_text=re.compile(f"^{key}$")).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()


def test_the_buttons_are_reachable_with_tab_and_show_focus(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd")
    page.locator("main").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Step":
            break
    else:
        pytest.fail("Tab never reached the Step button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    explorer.wait()
    expect(explorer.status).to_have_attribute("data-cursor", "1")


def test_a_bad_config_in_the_url_shows_the_api_message_next_to_the_field(
    explorer: Explorer, page: Page
) -> None:
    # The form checks its values with POST /api/lessons/{id}/config (a 200 either
    # way), so a refused config logs no failed request: no console error is allowed.
    explorer.open("autograd", "N=0&D_in=16&H=8&D_out=4&iterations=3")
    message = page.locator("#err-N")
    expect(message).to_be_visible()
    expect(message).to_contain_text(re.compile(r"^N\b"))
    expect(page.locator("#cfg-N")).to_have_attribute("aria-invalid", "true")

    page.locator("#cfg-N").fill("8")
    page.locator("#cfg-D_in").fill("0")
    page.get_by_role("button", name="Apply").click()
    explorer.wait()
    expect(page.locator("#err-D_in")).to_contain_text("D_in")
    expect(message).to_be_hidden()

    page.locator("#cfg-D_in").fill("16")
    page.get_by_role("button", name="Apply").click()
    explorer.wait()
    expect(page.locator("#err-D_in")).to_be_hidden()
    expect(explorer.status).to_have_attribute("data-cursor", "0")
    expect(page).to_have_url(re.compile(r"[?&]N=8\b"))


def test_the_inplace_error_is_explained_with_version_counters(explorer: Explorer) -> None:
    explorer.open("inplace")
    explorer.press("Run to end")
    panel = explorer.page.get_by_test_id("error")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("RuntimeError")
    expect(panel).to_contain_text("modified by an inplace operation")
    expect(panel).to_contain_text("version counter")
    expect(panel).to_contain_text("saved at version 0")
    # The explanation is folded, so the variables stay in sight; it opens on a click.
    explain = panel.locator('[data-field="error-explain"]')
    expect(explain.get_by_text("version counter")).to_be_hidden()
    explain.get_by_text("What does this mean?").click()
    expect(explain.get_by_text("version counter")).to_be_visible()
    expect(explorer.graph.locator("g.node.stale").first).to_be_visible()
    expect(explorer.variable("b")).to_have_attribute("data-version", "1")


def test_rows_and_nodes_open_their_details(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd", f"{SMALL}&cursor=25")  # MmBackward0 of the first backward
    explorer.variable("w1").get_by_role("button").click()
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(detail.locator("h2")).to_have_text("w1")
    expect(detail.locator(".histogram rect")).to_have_count(32)
    expect(detail.locator(".heatmap tr")).to_have_count(8)
    expect(detail).to_contain_text("norm")

    explorer.press("Step")  # the open detail follows the steps
    expect(detail.locator("h2")).to_have_text("w1")

    focus = explorer.graph.locator("g.node.focus")
    name = (focus.locator("title").text_content() or "").splitlines()[0]
    focus.click()
    info = page.get_by_test_id("node-info")
    expect(info).to_be_visible()
    expect(info.locator("h3")).to_contain_text(name)
    expect(info).to_contain_text("Gradients")
    expect(focus).to_have_class(re.compile(r"\bselected\b"))

    node = explorer.graph.locator("g.node.kind-function", has_text="MmBackward0").first
    node.click()
    expect(info.locator("h3")).to_have_text("MmBackward0")
    expect(info).to_contain_text("Saved for backward")
    expect(info).to_contain_text("version saved")


def test_the_variables_mark_what_changed_and_versions_bump(explorer: Explorer) -> None:
    explorer.open("autograd")
    explorer.press("Next iteration")
    explorer.press("Next iteration")  # the first update ran: w1 -= ... bumps its version
    expect(explorer.variable("w1")).to_have_attribute("data-version", "1")
    explorer.press("Step over line")  # y_pred = x.mm(w1).clamp(min=0).mm(w2)
    expect(explorer.variable("y_pred")).to_have_class(re.compile(r"\bchanged\b"))
    expect(explorer.variable("y_pred").locator(".hot")).not_to_have_count(0)
    unchanged = explorer.variables.locator("tr:not(.changed)[data-name]")
    expect(unchanged.first).to_be_visible()


def test_run_to_end_shows_progress_and_can_be_cancelled(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd", "N=8&D_in=16&H=8&D_out=4&iterations=10000")
    explorer.button("Run to end").click()
    progress = page.get_by_test_id("progress")
    expect(progress).to_be_visible()
    expect(progress.locator("progress")).not_to_have_attribute("value", "0")
    expect(progress).to_contain_text("of 10 000")
    progress.get_by_role("button", name="Cancel").click()
    explorer.wait()
    expect(progress).to_be_hidden()
    expect(explorer.status).to_have_attribute("data-done", "false")
    assert explorer.cursor() > 0
    expect(explorer.button("Step")).to_be_focused()


def test_the_note_language_is_remembered(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd", f"{SMALL}&cursor=30")
    note = page.locator('.note [data-field="note"]')
    english = note.inner_text()
    page.get_by_role("button", name="中文").click()
    expect(note).to_have_attribute("lang", "zh")
    assert note.inner_text() != english
    page.reload()
    explorer.wait()
    expect(note).to_have_attribute("lang", "zh")
    page.get_by_role("button", name="English").click()
    expect(note).to_have_text(english)


def _platform_fonts(page: Page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew the text of `selector` with, and how many glyphs each."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


def test_chinese_is_drawn_with_the_bundled_font(explorer: Explorer, page: Page) -> None:
    """Without a CJK font on the machine (Debian's Chromium here has none), Chinese is
    drawn from static/fonts/ (Noto Sans CJK SC), not as the boxes of a Latin font."""
    explorer.open("autograd", f"{SMALL}&cursor=30")
    page.get_by_role("button", name="中文").click()
    note = page.locator('.note [data-field="note"]')
    expect(note).to_have_attribute("lang", "zh")
    family = page.evaluate(
        """async () => {
          await document.fonts.ready;
          const face = [...document.fonts].find((f) => f.family.includes("Noto Sans SC"));
          return face && face.status === "loaded"
            && document.fonts.check(`16px ${face.family}`, "链式法则") ? face.family : null;
        }"""
    )
    assert family, "the bundled font did not load"
    cjk = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
    chinese = len(cjk.findall(note.inner_text()))
    assert chinese > 10
    assert _platform_fonts(page, '.note [data-field="note"]').get("Noto Sans CJK SC") == chinese
    # The button of the first paint too, laid out before the font had loaded.
    assert _platform_fonts(page, 'button[data-lang="zh"]') == {"Noto Sans CJK SC": 2}


def test_the_loss_chart_switches_to_a_log_scale(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd")
    explorer.press("Run to end")
    chart = page.get_by_test_id("losses")
    expect(chart.locator("canvas")).to_have_count(1)
    page.get_by_role("button", name="Log").click()
    expect(page.get_by_role("button", name="Log")).to_have_attribute("aria-pressed", "true")
    expect(chart.locator("canvas")).to_have_count(1)


@pytest.mark.parametrize(("width", "height", "scheme"), [(1024, 768, "light"), (820, 1180, "dark")])
def test_the_explorer_fits_a_small_laptop_and_a_tablet(
    browser: Browser,
    server: LiveServer,
    console: ConsoleWatch,
    width: int,
    height: int,
    scheme: str,
) -> None:
    tablet = width < 1000
    context = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme, has_touch=tablet
    )
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    explorer = Explorer(page, server.url).open("autograd", f"{SMALL}&cursor=25")
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
    for name in ("Step", "Step over line", "Next phase", "Next iteration", "Run to end"):
        expect(explorer.button(name)).to_be_in_viewport()
    expect(explorer.graph.locator("g.node.focus")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = sum(int(v) for v in re.findall(r"\d+", background)[:3]) < 200
    assert dark == (scheme == "dark"), background
    node = explorer.graph.locator("g.node.focus")
    if tablet:
        node.tap()
        explorer.button("Step").tap()
    else:
        node.click()
        explorer.button("Step").click()
    expect(page.get_by_test_id("node-info")).to_be_visible()
    explorer.wait()
    expect(explorer.status).to_have_attribute("data-cursor", "26")
    context.close()


def test_a_gradient_opens_from_its_tensor(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd", f"{SMALL}&cursor=31")  # backward has run: w1.grad is filled
    explorer.variable("w1").get_by_role("button").click()
    detail = page.get_by_test_id("detail")
    detail.get_by_role("button", name="Show w1.grad").click()
    expect(detail.locator("h2")).to_have_text("w1.grad")
    expect(detail.locator(".histogram rect")).to_have_count(32)
    expect(explorer.variable("w1").locator("td").last).not_to_have_text("–")


@pytest.mark.parametrize("lesson", ["nn", "custom_function"])
def test_step_back_after_a_jump_shows_what_stepping_showed(explorer: Explorer, lesson: str) -> None:
    """A jump (link, replay on either worker process), then `Step back`: each view is the
    one `Step` showed at that cursor, graph node ids and focus included."""

    def view() -> tuple[int, int, dict[str, int], str, str | None, list[str]]:
        ids = explorer.graph.locator("g.node").evaluate_all("gs => gs.map(g => g.id).sort()")
        return (
            explorer.cursor(),
            explorer.line_number(),
            explorer.versions(),
            explorer.event(),
            explorer.focus_id(),
            ids,
        )

    explorer.open(lesson, f"{SMALL}&cursor=30")
    backward = [view()]
    for _ in range(6):
        explorer.press("Step back")
        backward.append(view())
    assert [v[0] for v in backward] == list(range(30, 23, -1))

    explorer.open(lesson, f"{SMALL}&cursor=20")
    forward = {}
    for _ in range(10):
        explorer.press("Step")
        forward[explorer.cursor()] = view()
    for seen in backward:
        assert forward[seen[0]] == seen, f"cursor {seen[0]}"
