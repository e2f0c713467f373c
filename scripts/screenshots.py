"""Screenshots of every lesson mid-backward, for docs/screenshots/ and the README.

    .venv/bin/python scripts/screenshots.py            # all lessons, 1440×900, light
    .venv/bin/python scripts/screenshots.py autograd   # some of them
    .venv/bin/python scripts/screenshots.py --dark     # the dark theme

It starts the app (uvicorn, a free loopback port, a throw-away data folder), opens each
lesson at its default config, goes to the backward phase with `Next phase` and takes
three `Step`s into it, as a learner would, then saves docs/screenshots/NN-<lesson>.png.
Chromium is Debian's (/usr/bin/chromium, or AGX_CHROMIUM).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("AGX_CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1440, 900


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGX_")}
    env["AGX_DATA_DIR"] = str(data)
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def settle(page: Page) -> None:
    expect(page.locator("main.explorer")).to_have_attribute("aria-busy", "false", timeout=60_000)


def press(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    settle(page)


def mid_backward(page: Page, lesson: str) -> str:
    """Go to the backward phase of the first iteration and three events into it."""
    phase = page.locator('.code-panel [data-field="phase"]')
    # The static graph has no backward phase of its own: its gradients are ops of the
    # captured graph, which runs whole on the loss line.
    wanted = "loss" if lesson == "static_graph" else "backward"
    for _ in range(12):
        if phase.inner_text() == wanted:
            break
        press(page, "Next phase")
    for _ in range(3):
        press(page, "Step")
    return page.get_by_test_id("status").locator('[data-field="event"]').inner_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson ids (default: all)")
    parser.add_argument("--dark", action="store_true", help="the dark colour scheme")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        server, url = start_server(Path(data))
        try:
            lessons = [lesson["id"] for lesson in httpx.get(f"{url}/api/lessons").json()]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": HEIGHT},
                    color_scheme="dark" if args.dark else "light",
                    reduced_motion="reduce",
                )
                page = context.new_page()
                for number, lesson in enumerate(lessons, start=1):
                    if args.lessons and lesson not in args.lessons:
                        continue
                    page.goto(f"{url}/lessons/{lesson}")
                    settle(page)
                    event = mid_backward(page, lesson)
                    page.mouse.move(0, 0)
                    page.wait_for_timeout(400)  # transitions, the chart
                    suffix = "-dark" if args.dark else ""
                    target = OUT / f"{number:02d}-{lesson}{suffix}.png"
                    page.screenshot(path=str(target))
                    print(f"{target.relative_to(ROOT)}: {event}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
