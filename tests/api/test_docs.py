"""/docs runs vendored, pinned Swagger UI under a CSP that holds; /redoc leads there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.api.docs import SWAGGER_UI_VERSION

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"


@pytest.mark.parametrize(
    ("folder", "version", "files", "stamp"),
    [
        (
            "swagger-ui",
            SWAGGER_UI_VERSION,
            ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"],
            'PACKAGE_VERSION:"{}"',
        ),
    ],
)
def test_the_vendored_assets_are_the_pinned_version_with_their_licence(
    folder, version, files, stamp
):
    readme = (VENDOR / folder / "README.md").read_text()

    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "an exact version, never a range"
    assert f"@{version}`" in readme and f" {version} " in readme.splitlines()[0] + " "
    for name in files:
        assert (VENDOR / folder / name).stat().st_size > 0, name
    # The bundle itself says which version it is.
    bundle = (VENDOR / folder / files[0]).read_text(errors="replace")
    assert stamp.format(version) in bundle


def test_the_page_names_the_pinned_version_and_redoc_leads_there(api):
    assert f"swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}" in api.get("/docs").text
    moved = api.get("/redoc", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/docs"


@pytest.mark.e2e
def test_the_docs_render_in_chromium_without_console_errors(live_server, page):
    server = live_server()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((server.url, "data:", "blob:"))
            else outside.append(request.url)
        ),
    )
    ready = ".swagger-ui .info"

    page.goto(server.url + "/docs")
    page.wait_for_selector(ready, timeout=30_000)

    assert "Autograd Explorer" in page.inner_text(ready)
    assert outside == []
