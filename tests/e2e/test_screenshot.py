"""The screenshot of the explorer in docs/: taken mid-backward, checked on every run.

UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/e2e/test_screenshot.py
writes it to docs/explorer.png; without the variable it goes to a temporary folder.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Explorer

pytestmark = pytest.mark.e2e

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "explorer.png"
WIDTH, HEIGHT = 1440, 900


def test_a_screenshot_of_the_explorer_mid_backward(
    explorer: Explorer, page: Page, tmp_path: Path
) -> None:
    explorer.open("autograd", "")  # the lesson's default sizes
    for _ in range(2):
        explorer.press("Next iteration")
    while explorer.phase() != "backward":
        explorer.press("Next phase")
    for _ in range(4):
        explorer.press("Step")
    assert explorer.event().startswith("backward node")
    explorer.variable("w2").get_by_role("button").click()
    expect(page.get_by_test_id("detail").locator(".histogram rect")).to_have_count(32)
    page.mouse.move(0, 0)

    target = DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "explorer.png"
    page.screenshot(path=str(target))
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, HEIGHT)
