"""Body cap (413, chunked too), JSON only (415), trusted hosts, CORS, security headers."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from fastapi import FastAPI

from app.api.middleware import CSP, SECURITY_HEADERS


def _chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_body_over_the_cap_is_413(make_api):
    api = make_api(max_body_bytes=1024)
    body = json.dumps({"lesson": "autograd", "config": {"pad": "x" * 2000}})

    response = api.post("/api/sessions", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]


def test_chunked_body_over_the_cap_is_413(make_api):
    api = make_api(max_body_bytes=1024)
    body = json.dumps({"lesson": "autograd", "config": {"pad": "x" * 5000}}).encode()

    response = api.post(
        "/api/sessions", content=_chunks(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]


def test_chunked_body_under_the_cap_goes_through(make_api):
    api = make_api(max_body_bytes=4096)
    body = json.dumps({"lesson": "autograd", "config": {"N": 8, "D_in": 16}}).encode()

    response = api.post(
        "/api/sessions", content=_chunks(body, 7), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201
    assert response.json()["config"]["D_in"] == 16


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_non_json_body_is_415(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}

    response = api.post("/api/sessions", content=b'{"lesson": "nn"}', headers=headers)

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_json_with_charset_and_vendor_json_are_accepted(api):
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = api.post(
            "/api/sessions",
            content=json.dumps({"lesson": "autograd", "config": {"N": 8}}),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 201, content_type


def test_untrusted_host_is_400_in_json(make_api):
    api = make_api(allowed_hosts=["explorer.example"])

    refused = api.get("/api/lessons")
    allowed = api.get("/api/lessons", headers={"Host": "explorer.example"})

    assert refused.status_code == 400
    assert "AGX_ALLOWED_HOSTS" in refused.json()["detail"]
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert allowed.status_code == 200


def test_cors_only_for_configured_origins(make_api):
    plain = make_api()
    cors = make_api(cors_origins=["https://notebook.example"])
    preflight = {
        "Origin": "https://notebook.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    assert (
        "access-control-allow-origin"
        not in plain.get("/api/lessons", headers={"Origin": "https://notebook.example"}).headers
    )
    answer = cors.client.options("/api/sessions", headers=preflight)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://notebook.example"
    other = cors.get("/api/lessons", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def _boom() -> None:
    raise RuntimeError("a bug")


def test_security_headers_on_every_response(api):
    app = api.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/boom", _boom)
    session_id = api.create()["id"]
    api.step(session_id, "line", 8)
    s = f"/api/sessions/{session_id}"
    responses = [
        api.get("/healthz"),
        api.get("/api/lessons"),
        api.get("/api/devices"),
        api.get(s),
        api.get(f"{s}/graph"),
        api.get(f"{s}/graph.svg"),
        api.get(f"{s}/graph.dot"),
        api.get(f"{s}/tensors/w1"),
        api.post(f"{s}/step", json={"by": "event"}),
        api.post(f"{s}/seek", json={"cursor": 2}),
        api.get("/openapi.json"),
        api.get("/api/lessons/unknown"),  # 404
        api.get("/nowhere"),  # 404 without a route
        api.client.put("/api/lessons"),  # 405
        api.post(f"{s}/step", json={"by": 1}),  # 422
        api.post(f"{s}/step", content=b"x", headers={"Content-Type": "text/plain"}),  # 415
        api.post(f"{s}/step", content=b"x" * 70_000, headers={"Content-Type": "application/json"}),
        api.get("/boom"),  # 500
        api.delete(s),  # 204
    ]

    statuses = {response.status_code for response in responses}
    assert {200, 204, 404, 405, 413, 415, 422, 500} <= statuses
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)
        if response.status_code >= 400:
            assert isinstance(response.json()["detail"], str)


def test_unexpected_errors_are_500_with_a_json_sentence(api):
    app = api.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/boom", _boom)

    response = api.get("/boom")

    assert response.status_code == 500
    assert "a bug" not in response.text
    assert "server failed" in response.json()["detail"]


def test_the_docs_page_loads_nothing_from_elsewhere_and_allows_its_inline_script_by_hash(api):
    response = api.get("/docs")

    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert csp != CSP
    assert "http" not in csp, "no other origin: Swagger UI and ReDoc are vendored"
    for url in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert url.startswith("/static/vendor/"), url
        assert api.get(url).status_code == 200, url
    assert "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    for script in re.findall(r"<script>(.*?)</script>", response.text, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
    assert response.headers["X-Content-Type-Options"] == "nosniff"
