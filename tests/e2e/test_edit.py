"""Edit mode (issue 15): a learner's version of a lesson, run and stepped like the lesson.

Edit code opens the lesson in an editor; Run my version starts a session of the edit and
the page's views follow it: its changed lines are marked, the lesson's notes stay on the
lines it kept, what it prints shows in the output panel, Back to the lesson comes back. A
link carries the program in its fragment and runs it only when the reader clicks. The
server's refusals (403 where it runs no edited code, 422 for a syntax error) show beside
the editor, as text; keys typed in the editor never step the program.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect

from tests.conftest import ConsoleWatch, LiveServer
from tests.e2e.conftest import SMALL, Explorer, explorer_in, start_server
from tests.e2e.test_a11y import axe_violations, report

pytestmark = pytest.mark.e2e

#: The lines the learner's version changes in the autograd lesson: a ReLU in place of the
#: clamp, and a print after the loss (which shifts every later line by one).
CLAMP = "    y_pred = x.mm(w1).clamp(min=0).mm(w2)"
RELU = "    y_pred = x.mm(w1).relu().mm(w2)"
APPEND = "    losses.append(loss.item())"
PRINT = '    print(f"t={t} loss={loss.item():.1f} <b>bold</b>")'
BACKWARD = "    loss.backward()"
#: A program without the training loop (nor phase tags).
NO_LOOP = "import torch\n\nw = torch.ones(3, requires_grad=True)\nprint('no loop here')\n"
NOTE = '.note [data-field="note"]'
WINDOW = {"viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="module")
def lesson(server: LiveServer) -> dict[str, Any]:
    """The autograd lesson as the API gives it: source and notes."""
    answer = httpx.get(f"{server.url}/api/lessons/autograd", timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(scope="module")
def edited(lesson: dict[str, Any]) -> str:
    source = lesson["source"]
    assert CLAMP in source and APPEND in source
    return source.replace(CLAMP, RELU).replace(APPEND, f"{APPEND}\n{PRINT}")


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that runs no edited code."""
    live = start_server(tmp_path_factory, "no-code", AGX_ALLOW_CODE="false")
    yield live
    live.stop()


def pack(source: str) -> str:
    """The URL fragment that carries `source`: deflate-raw, base64url, no padding."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(source.encode()) + packer.flush()
    return "#source=" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def unpack(url: str) -> str:
    match = re.search(r"#source=([\w-]+)$", url)
    assert match, f"no #source= in {url}"
    packed = match.group(1) + "=" * (-len(match.group(1)) % 4)
    return zlib.decompress(base64.urlsafe_b64decode(packed), -15).decode()


def kept_lines(before: str, after: str) -> dict[int, int]:
    """Each line of `after` that is a line of `before` unchanged → its line in `before`."""
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    return {
        new + 1 + k: old + 1 + k
        for old, new, size in matcher.get_matching_blocks()
        for k in range(size)
    }


def editor(page: Page) -> Locator:
    return page.get_by_role("textbox", name=re.compile(r"^Python source"))


def editor_text(page: Page) -> str:
    """All the code in the editor (CodeMirror draws only the lines in sight)."""
    return page.evaluate(
        """async () => {
          const { EditorView } = await import("/static/vendor/codemirror/codemirror.js");
          const root = document.querySelector('[data-testid="editor-host"]').shadowRoot;
          return EditorView.findFromDOM(root.querySelector(".cm-editor")).state.doc.toString();
        }"""
    )


def type_program(page: Page, source: str) -> None:
    """Put `source` in the editor in place of what it holds, as typing would."""
    editor(page).focus()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(source)


def lines_of(page: Page, selector: str) -> dict[int, str]:
    """The listing's lines that match `selector` (e.g. `.changed`): number → code."""
    found = page.locator(f'[data-testid="code"] li{selector}')
    return {
        int(item.get_attribute("data-line") or 0): item.locator("code").inner_text()
        for item in found.all()
    }


def sessions_created(page: Page) -> list[dict[str, Any]]:
    """The bodies of the page's POST /api/sessions requests, as they are sent."""
    bodies: list[dict[str, Any]] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/sessions"):
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", seen)
    return bodies


def step_to(explorer: Explorer, code: str, limit: int = 40) -> None:
    """Step over lines until the line that runs next is `code`."""
    for _ in range(limit):
        if explorer.current_line.locator("code").inner_text() == code:
            return
        explorer.press("Step over line")
    raise AssertionError(f"never reached {code!r}")


def test_an_edit_runs_and_steps_with_its_changes_marked_and_the_lessons_notes_kept(
    explorer: Explorer, page: Page, server: LiveServer, lesson: dict[str, Any], edited: str
) -> None:
    explorer.open("autograd")
    explorer.press("Edit code")
    expect(page.get_by_test_id("editor")).to_be_visible()
    expect(editor(page)).to_be_focused()
    expect(page.get_by_test_id("code")).to_be_hidden()
    assert editor_text(page) == lesson["source"]

    type_program(page, edited)
    with page.expect_response(lambda r: r.url.endswith("/api/sessions")) as created:
        explorer.press("Run my version")
    assert created.value.status == 201, created.value.text()
    state = created.value.json()
    assert state["edited"] is True
    expect(page.get_by_test_id("editor")).to_be_hidden()
    expect(explorer.button("Step")).to_be_focused()
    expect(page.locator("#code-heading")).to_have_text("autograd.py · your version")

    # The link carries the program, and the server runs that program.
    assert unpack(page.url) == edited
    source = httpx.get(f"{server.url}/api/sessions/{state['id']}/source", timeout=10).json()
    assert source["source"] == edited and source["edited"] is True

    # Changed lines: marked, and said in words; notes only on the lines the edit kept.
    kept = kept_lines(lesson["source"], edited)
    changed = lines_of(page, ".changed")
    assert sorted(changed.values()) == sorted([PRINT, RELU])
    assert set(changed) == set(range(1, len(edited.splitlines()) + 1)) - set(kept)
    for item in page.locator('[data-testid="code"] li.changed').all():
        expect(item.locator(".sr-only")).to_have_text(re.compile("changed"))
        mark = item.locator(".ln").evaluate("e => getComputedStyle(e, '::after').backgroundColor")
        assert mark not in ("", "transparent", "rgba(0, 0, 0, 0)")
    noted = {new for new, old in kept.items() if str(old) in lesson["notes"]}
    assert set(lines_of(page, ".has-note")) == noted
    assert not set(changed) & noted

    # Stepping: the edited line has no note; the lines after it keep the lesson's notes.
    explorer.press("Next iteration")
    step_to(explorer, RELU)
    expect(page.locator(NOTE)).to_have_text("You changed this line, so it has no note.")
    explorer.press("Step over line")
    expect(explorer.graph).to_contain_text("ReluBackward0")
    expect(explorer.graph).not_to_contain_text("ClampBackward")
    expect(explorer.variable("y_pred")).to_be_visible()
    step_to(explorer, BACKWARD)
    backward = lesson["source"].splitlines().index(BACKWARD) + 1
    expect(page.locator(NOTE)).to_have_text(lesson["notes"][str(backward)]["en"])

    # What it printed, as text (its HTML is not HTML here).
    output = page.get_by_test_id("output")
    expect(output).to_have_text(re.compile(r"^t=0 loss=[\d.]+ <b>bold</b>\s*$"))
    assert output.locator("b").count() == 0
    explorer.press("Next iteration")
    step_to(explorer, BACKWARD)
    two = r"^t=0 loss=[\d.]+ <b>bold</b>\s+t=1 loss=[\d.]+ <b>bold</b>\s*$"
    expect(output).to_have_text(re.compile(two))

    # Back to the lesson: a session of its own program, with the same config.
    requests = sessions_created(page)
    explorer.press("Back to the lesson")
    assert requests and "source" not in requests[-1] and requests[-1]["config"]["iterations"] == 3
    assert lines_of(page, ".changed") == {}
    expect(page.locator("#code-heading")).to_have_text("autograd.py")
    expect(output).to_be_hidden()
    expect(explorer.button("Back to the lesson")).to_be_hidden()
    expect(explorer.button("Edit code")).to_be_focused()
    assert "#" not in page.url and explorer.cursor() == 0

    # Back in history: the program this tab ran comes back without asking.
    page.go_back()
    explorer.wait()
    expect(page.locator('[data-testid="code"] li.changed')).to_have_count(2)
    expect(page.get_by_test_id("editor")).to_be_hidden()
    assert unpack(page.url) == edited


def open_link(explorer: Explorer, link: str) -> list[dict[str, Any]]:
    """Open ``link``; return the list that gets the sessions the page creates from now."""
    requests = sessions_created(explorer.page)
    explorer.page.goto(link)
    explorer.wait()
    return requests


def test_a_link_with_code_opens_the_editor_and_runs_nothing_until_the_click(
    browser: Browser, server: LiveServer, console: ConsoleWatch, edited: str
) -> None:
    link = f"{server.url}/lessons/autograd?{SMALL}&cursor=5{pack(edited)}"
    with explorer_in(browser, server, console, **WINDOW) as reader:
        page = reader.page
        requests = open_link(reader, link)
        expect(page.get_by_test_id("editor")).to_be_visible()
        expect(page.locator('[data-field="edit-notice"]')).to_have_text(
            re.compile(r"code that someone else wrote.*only when you press Run my version")
        )
        expect(reader.button("Run my version")).to_be_focused()
        assert editor_text(page) == edited
        expect(reader.status).to_contain_text("press Run my version")
        page.wait_for_timeout(500)
        assert requests == []

        reader.press("Run my version")
        assert len(requests) == 1 and requests[0]["source"] == edited
        expect(reader.status).to_have_attribute("data-cursor", "5")
        expect(page.locator('[data-testid="code"] li.changed')).to_have_count(2)
        expect(page.get_by_test_id("editor")).to_be_hidden()

        # A reload in this tab runs what this tab ran.
        page.reload()
        reader.wait()
        expect(reader.status).to_have_attribute("data-cursor", "5")
        expect(page.get_by_test_id("editor")).to_be_hidden()
        assert len(requests) == 2 and requests[1]["source"] == edited

    # Another reader: asked again; Cancel gives them the lesson's own program.
    with explorer_in(browser, server, console, **WINDOW) as other:
        page = other.page
        requests = open_link(other, link)
        expect(other.button("Run my version")).to_be_focused()
        assert requests == []
        other.press("Cancel")
        expect(page.get_by_test_id("editor")).to_be_hidden()
        assert len(requests) == 1 and "source" not in requests[0]
        assert "#" not in page.url
        assert lines_of(page, ".changed") == {}


def test_a_syntax_error_marks_its_line_and_a_programs_error_is_text(
    explorer: Explorer, page: Page, console: ConsoleWatch, lesson: dict[str, Any]
) -> None:
    console.expect(r"status of 422")
    explorer.open("autograd")
    explorer.press("Edit code")
    broken = lesson["source"].replace(BACKWARD, BACKWARD[:-1])  # "(" never closed
    type_program(page, broken)
    requests = sessions_created(page)
    with page.expect_response(lambda r: r.url.endswith("/api/sessions")) as answer:
        explorer.press("Run my version")
    assert answer.value.status == 422
    refusal = answer.value.json()
    line = refusal["line"]
    message = page.get_by_test_id("edit-error")
    expect(message).to_have_text(refusal["detail"])
    expect(page.get_by_test_id("editor")).to_be_visible()
    marked = page.get_by_test_id("editor").locator(".cm-line.cm-error-line")
    expect(marked).to_have_count(1)
    expect(marked).to_have_text(broken.splitlines()[line - 1])
    expect(page.get_by_test_id("editor").locator(".cm-activeLineGutter")).to_have_text(str(line))
    expect(editor(page)).to_be_focused()
    assert len(requests) == 1 and "#" not in page.url

    # A program's own exception: its message is shown as text, never as HTML.
    words = "<img src=x onerror=alert(1)> <b>bold</b>"
    raising = lesson["source"].replace(CLAMP, f"{CLAMP}\n    raise ValueError({words!r})")
    type_program(page, raising)
    explorer.press("Run my version")
    expect(message).to_be_hidden()
    explorer.press("Run to end")
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error.locator('[data-field="error-message"]')).to_have_text(words)
    assert error.locator("img, b").count() == 0


def test_typing_in_the_editor_never_steps_and_tab_leaves_it(explorer: Explorer, page: Page) -> None:
    explorer.open("autograd")
    explorer.press("Step")
    explorer.press("Step")
    explorer.press("Edit code")
    expect(editor(page)).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type("pner?e")
    for key in ("ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp", "Escape"):
        page.keyboard.press(key)
    explorer.wait()
    assert explorer.cursor() == 2
    assert not page.locator("#help").evaluate("e => e.matches(':popover-open')")
    expect(page.get_by_test_id("editor").locator(".cm-line", has_text="pner?e")).to_have_count(1)

    # Tab moves on (nothing traps it); Shift+Tab comes back.
    page.keyboard.press("Tab")
    expect(explorer.button("Run my version")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(editor(page)).to_be_focused()

    explorer.press("Cancel")
    expect(page.get_by_test_id("editor")).to_be_hidden()
    expect(explorer.button("Edit code")).to_be_focused()
    assert explorer.cursor() == 2 and lines_of(page, ".changed") == {}


def test_steps_an_edit_cannot_take_are_refused_in_words(
    explorer: Explorer, page: Page, console: ConsoleWatch
) -> None:
    console.expect(r"status of 409")
    explorer.open("autograd")
    explorer.press("Edit code")
    type_program(page, NO_LOOP)
    explorer.press("Run my version")
    explorer.press("Next iteration")
    expect(page.locator(".toast")).to_contain_text("no training loop")
    assert explorer.cursor() == 0
    explorer.press("Run to end")
    expect(page.get_by_test_id("output")).to_have_text(re.compile(r"^no loop here\s*$"))


def test_a_server_without_edited_code_says_why(
    browser: Browser, refusing_server: LiveServer, console: ConsoleWatch, lesson: dict[str, Any]
) -> None:
    console.expect(r"status of 403")
    expected = httpx.post(
        f"{refusing_server.url}/api/sessions",
        json={"lesson": "autograd", "config": {}, "source": lesson["source"]},
        timeout=10,
    )
    assert expected.status_code == 403
    with explorer_in(browser, refusing_server, console, **WINDOW) as reader:
        page = reader.page
        reader.open("autograd")
        reader.press("Edit code")  # reading is fine
        expect(editor(page)).to_be_focused()
        reader.press("Run my version")
        expect(page.get_by_test_id("edit-error")).to_have_text(expected.json()["detail"])
        expect(page.get_by_test_id("editor")).to_be_visible()
        assert "#" not in page.url
        expect(reader.button("Back to the lesson")).to_be_hidden()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_edit_mode_has_no_serious_axe_violation(
    browser: Browser, server: LiveServer, console: ConsoleWatch, edited: str, scheme: str
) -> None:
    options = {**WINDOW, "color_scheme": scheme}
    found: dict[str, list[dict[str, Any]]] = {}
    with explorer_in(browser, server, console, **options) as explorer:
        page = explorer.page
        page.goto(f"{server.url}/lessons/autograd?{SMALL}{pack(edited)}")
        explorer.wait()
        found["a link's code, not run"] = axe_violations(page)
        explorer.press("Run my version")
        explorer.press("Next iteration")
        step_to(explorer, BACKWARD)
        expect(page.get_by_test_id("output")).not_to_be_empty()
        found["an edit, stepped"] = axe_violations(page)
        page.get_by_role("button", name="中文").click()
        explorer.press("Edit code")
        expect(page.locator('[data-field="edit-hint"]')).to_have_attribute("lang", "zh")
        type_program(page, "x = (\n")
        console.expect(r"status of 422")
        explorer.press("Run my version")
        expect(page.get_by_test_id("edit-error")).to_be_visible()
        found["a syntax error"] = axe_violations(page)
    found = {state: v for state, v in found.items() if v}
    assert not found, report(found)


# Programs that hit the sandbox or a limit, the error the engine gives each (the panel
# shows the State's) and the words the error panel explains it with.
HITS = {
    "import": ("import os\n", "ImportError", "may import torch, numpy and standard modules"),
    "file": (
        "import torch\nf = torch.serialization.os.open('/etc/passwd', 0)\n",
        "PermissionError",
        "Edited code runs in a sandbox",
    ),
    "memory": (
        "import torch\nx = torch.empty(1 << 40)\n",
        "RuntimeError",
        "more memory than a session may use",
    ),
    "recursion": ("def f(n):\n    return f(n + 1)\n\nf(0)\n", "RecursionError", "more deeply"),
}


@pytest.mark.parametrize("hit", list(HITS))
def test_a_limit_or_the_sandbox_is_explained_in_words(
    explorer: Explorer, page: Page, server: LiveServer, hit: str
) -> None:
    source, kind, words = HITS[hit]
    page.goto(f"{server.url}/lessons/autograd?{SMALL}{pack(source)}")
    explorer.wait()
    explorer.press("Run my version")
    explorer.press("Run to end")
    error = page.get_by_test_id("error")
    expect(error.locator('[data-field="error-type"]')).to_have_text(kind)  # the State's
    expect(error.locator('[data-field="error-explain"]')).to_contain_text(words)
