"""Bad input against the real stack: every case is a 4xx whose detail a user can act on.

Each case is one request a careless or hostile client could send. The answer must have
the expected status, be JSON with a `detail` that is a sentence (not a stack trace, not
a bare "Bad Request") naming what to change, carry the security headers, and leave the
server healthy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.badinput.conftest import GOOD_ORIGIN

pytestmark = pytest.mark.slow

SMALL = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
JSON = {"Content-Type": "application/json"}
EVIL = "https://evil.example"
CAP = 65536
# Answers that say nothing a user can act on.
GENERIC = {
    "bad request",
    "not found",
    "method not allowed",
    "internal server error",
    "there was an error parsing the body",
    "invalid host header",
    "disallowed cors origin",
    "disallowed cors method",
    "disallowed cors headers",
    "field required",
}


def create(config: dict[str, Any], lesson: str = "autograd") -> dict[str, Any]:
    return {"method": "POST", "path": "/api/sessions", "json": {"lesson": lesson, "config": config}}


def raw(path: str, text: str | bytes, method: str = "POST", **extra: Any) -> dict[str, Any]:
    """A request whose body is sent as written (NaN, 1e999, broken JSON, any bytes)."""
    return {"method": method, "path": path, "content": text, "headers": {**JSON, **extra}}


def config_text(field: str, literal: str, lesson: str = "autograd") -> dict[str, Any]:
    return raw("/api/sessions", f'{{"lesson": "{lesson}", "config": {{"{field}": {literal}}}}}')


def step(body: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/api/sessions/{sid}/step", "json": body}


def seek(body: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/api/sessions/{sid}/seek", "json": body}


def get(path: str, **headers: str) -> dict[str, Any]:
    return {"method": "GET", "path": path, "headers": headers}


def preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, Any]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return {"method": "OPTIONS", "path": "/api/sessions", "headers": asked}


def chunked(data: bytes, size: int = 4096):
    for start in range(0, len(data), size):
        yield data[start : start + size]


OVERSIZED = json.dumps({"lesson": "autograd", "config": {"pad": "x" * (CAP + 1000)}}).encode()
LONG = "a" * 5000

# (request, expected status or statuses, words the detail must contain)
CASES = [
    # -- sizes
    pytest.param(create({"N": 0}), 422, ["N", "between 1 and"], id="N-zero"),
    pytest.param(create({"N": -1}), 422, ["N", "got -1"], id="N-negative"),
    pytest.param(create({"D_in": 65537}), 422, ["D_in", "65536"], id="D_in-over-max-dim"),
    pytest.param(create({"H": 10**30}), 422, ["H", "very large integer"], id="H-huge"),
    pytest.param(create({"N": 1.5}), 422, ["N", "integer", "1.5"], id="N-fraction"),
    pytest.param(create({"N": 8.0}), 422, ["N", "integer"], id="N-float-8.0"),
    pytest.param(create({"D_out": "8"}), 422, ["D_out", "integer"], id="D_out-string"),
    pytest.param(create({"N": None}), 422, ["N", "null"], id="N-null"),
    pytest.param(create({"H": True}), 422, ["H", "true"], id="H-boolean"),
    pytest.param(create({"N": [8]}), 422, ["N", "a list"], id="N-list"),
    pytest.param(
        create({"N": 65536, "D_in": 65536}), 422, ["memory", "budget", "lower"], id="over-memory"
    ),
    pytest.param(
        create({"N": 65536, "D_in": 1000, "H": 1000, "iterations": 10000}),
        422,
        ["multiply-adds", "budget", "iterations"],
        id="over-work-budget",
    ),
    pytest.param(create({"iterations": 0}), 422, ["iterations", "between 1"], id="iterations-0"),
    pytest.param(create({"iterations": 10001}), 422, ["iterations", "10000"], id="iterations-over"),
    # -- learning rates, momentum, zero_grad (raw JSON where Python's json would refuse)
    pytest.param(config_text("learning_rate", "NaN"), 422, ["learning_rate", "NaN"], id="lr-NaN"),
    pytest.param(
        config_text("learning_rate", "Infinity"), 422, ["learning_rate", "Infinity"], id="lr-inf"
    ),
    pytest.param(
        config_text("learning_rate", "-Infinity"), 422, ["learning_rate"], id="lr-minus-inf"
    ),
    pytest.param(config_text("learning_rate", "1e999"), 422, ["learning_rate"], id="lr-1e999"),
    pytest.param(
        config_text("learning_rate", "-1e-3"),
        422,
        ["learning_rate", "greater than 0"],
        id="lr-negative",
    ),
    pytest.param(
        config_text("learning_rate", "0"), 422, ["learning_rate", "greater than 0"], id="lr-zero"
    ),
    pytest.param(
        config_text("learning_rate", "2"), 422, ["learning_rate", "at most 1"], id="lr-over-1"
    ),
    pytest.param(
        config_text("learning_rate", '"1e-3"'), 422, ["learning_rate", "number"], id="lr-string"
    ),
    pytest.param(
        config_text("momentum", "1", lesson="dynamic_net"),
        422,
        ["momentum", "less than 1"],
        id="momentum-1",
    ),
    pytest.param(
        config_text("momentum", "-0.1", lesson="dynamic_net"),
        422,
        ["momentum"],
        id="momentum-negative",
    ),
    pytest.param(
        config_text("momentum", "0.5"),
        422,
        ["momentum", "not a setting of the autograd"],
        id="momentum-elsewhere",
    ),
    pytest.param(
        config_text("zero_grad", '"false"'),
        422,
        ["zero_grad", "true or false"],
        id="zero_grad-string",
    ),
    pytest.param(
        config_text("zero_grad", "true", lesson="numpy"),
        422,
        ["zero_grad", "numpy"],
        id="zero_grad-numpy",
    ),
    # -- devices
    pytest.param(
        create({"device": "cuda:99"}), 422, ["device", "cuda:99", "cpu"], id="device-cuda-99"
    ),
    pytest.param(create({"device": "tpu"}), 422, ["device", "tpu"], id="device-tpu"),
    pytest.param(create({"device": "CPU"}), 422, ["device", "CPU"], id="device-upper-case"),
    pytest.param(create({"device": ""}), 422, ["device"], id="device-empty"),
    pytest.param(create({"device": 0}), 422, ["device"], id="device-number"),
    pytest.param(create({"device": "cpu\u0000"}), 422, ["device"], id="device-nul"),
    pytest.param(create({"device": "cpu; rm -rf /"}), 422, ["device"], id="device-shell"),
    # -- seeds
    pytest.param(
        create({"seed": -1}), 422, ["seed", "between 0 and 4294967295"], id="seed-negative"
    ),
    pytest.param(create({"seed": 2**32}), 422, ["seed", "4294967296"], id="seed-2-32"),
    pytest.param(create({"seed": 2**64}), 422, ["seed"], id="seed-2-64"),
    pytest.param(create({"seed": 1.0}), 422, ["seed", "integer"], id="seed-float"),
    # -- unknown and missing fields, wrong shapes
    pytest.param(create({"pad": 1}), 422, ["pad", "not a config field"], id="config-unknown"),
    pytest.param(
        create({"__class__": 1}), 422, ["__class__", "not a config field"], id="config-dunder"
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": "nn", "extra": 1}},
        422,
        ["extra", "not a field"],
        id="body-unknown-field",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"config": {}}},
        422,
        ["lesson", "required"],
        id="lesson-missing",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": 5}},
        422,
        ["lesson", "lesson id"],
        id="lesson-number",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": "../../etc/passwd"}},
        404,
        ["no lesson", "autograd"],
        id="lesson-traversal",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": "__builtins__"}},
        404,
        ["no lesson"],
        id="lesson-dunder",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": LONG}},
        404,
        ["no lesson"],
        id="lesson-overlong",
    ),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "json": {"lesson": "nn", "config": [1]}},
        422,
        ["config", "JSON object"],
        id="config-list",
    ),
    # -- step and seek bodies
    pytest.param(step({"by": "bogus"}), 422, ["by", "event, line"], id="step-by-unknown"),
    pytest.param(step({"by": None}), 422, ["by"], id="step-by-null"),
    pytest.param(step({"count": 1}), 422, ["by", "required"], id="step-by-missing"),
    pytest.param(
        step({"by": "event", "count": 0}),
        422,
        ["count", "between 1 and 1000000"],
        id="step-count-0",
    ),
    pytest.param(
        step({"by": "event", "count": 10**7}), 422, ["count", "1000000"], id="step-count-1e7"
    ),
    pytest.param(step({"by": "event", "count": -1}), 422, ["count"], id="step-count-negative"),
    pytest.param(
        step({"by": "event", "count": "1"}), 422, ["count", "integer"], id="step-count-string"
    ),
    pytest.param(
        step({"by": "event", "count": 1.5}), 422, ["count", "integer"], id="step-count-fraction"
    ),
    pytest.param(step({"by": "event", "count": True}), 422, ["count"], id="step-count-boolean"),
    pytest.param(
        step({"by": "event", "at": 3}), 422, ["at", "not a field"], id="step-unknown-field"
    ),
    pytest.param(step(["event"]), 422, ["JSON object"], id="step-body-list"),
    pytest.param(seek({"cursor": -1}), 422, ["cursor", "at least 0"], id="seek-negative"),
    pytest.param(seek({"cursor": "3"}), 422, ["cursor", "integer"], id="seek-string"),
    pytest.param(seek({"cursor": None}), 422, ["cursor"], id="seek-null"),
    pytest.param(seek({"cursor": 1e3}), 422, ["cursor", "integer"], id="seek-float"),
    pytest.param(seek({}), 422, ["cursor", "required"], id="seek-missing"),
    # -- session ids and tensor names
    pytest.param(
        get("/api/sessions/..%2F..%2Fetc%2Fpasswd"),
        404,
        ["nothing is served"],
        id="session-traversal",
    ),
    pytest.param(get("/api/sessions/" + LONG), 404, ["no session", "…"], id="session-overlong"),
    pytest.param(
        get("/api/sessions/__class__"),
        404,
        ["no session", "POST /api/sessions"],
        id="session-dunder",
    ),
    pytest.param(get("/api/sessions/%00"), 404, ["no session"], id="session-nul"),
    pytest.param(
        {"method": "POST", "path": "/api/sessions/nope/step", "json": {"by": "event"}},
        404,
        ["no session"],
        id="step-unknown-session",
    ),
    pytest.param(
        {"method": "DELETE", "path": "/api/sessions/__init__"},
        404,
        ["no session"],
        id="delete-unknown",
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/__class__"),
        404,
        ["no tensor", "variables"],
        id="tensor-dunder",
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/__builtins__"), 404, ["no tensor"], id="tensor-builtins"
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/w1.__dict__"), 404, ["no tensor"], id="tensor-attribute"
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/x.grad"), 404, ["no tensor", ".grad"], id="tensor-no-grad"
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/..%2F..%2Fetc%2Fpasswd"),
        404,
        ["nothing is served"],
        id="tensor-traversal",
    ),
    pytest.param(
        get("/api/sessions/{sid}/tensors/" + LONG), 404, ["no tensor"], id="tensor-overlong"
    ),
    pytest.param(
        get("/api/lessons/..%2F..%2Fapp%2Fsettings"),
        404,
        ["nothing is served"],
        id="lesson-path-traversal",
    ),
    pytest.param(get("/api/lessons/registry"), 404, ["no lesson"], id="lesson-module-name"),
    pytest.param(
        get("/api/sessions/{sid}/graph.dot?style=bogus"), 422, ["style", "torchviz"], id="dot-style"
    ),
    # -- broken, deep, huge and non-JSON bodies
    pytest.param(raw("/api/sessions", '{"lesson": '), 422, ["not valid JSON"], id="json-broken"),
    pytest.param(
        raw("/api/sessions", "{'lesson': 'nn'}"), 422, ["not valid JSON"], id="json-single-quotes"
    ),
    pytest.param(raw("/api/sessions", ""), 422, ["missing", "JSON object"], id="json-empty"),
    pytest.param(raw("/api/sessions", "null"), 422, ["JSON object"], id="json-null"),
    pytest.param(raw("/api/sessions", b'{"lesson": "\xff"}'), 422, ["UTF-8"], id="json-not-utf8"),
    pytest.param(
        raw("/api/sessions", "[" * 100_000 + "]" * 100_000),
        413,
        [str(CAP), "bytes"],
        id="json-nested-100k",
    ),
    pytest.param(
        raw("/api/sessions", "[" * 30_000 + "]" * 30_000),
        (400, 413, 422),
        ["nested"],
        id="json-nested-30k",
    ),
    pytest.param(
        raw("/api/sessions", '{"lesson": "nn", "config": ' + '{"a": ' * 5000 + "1" + "}" * 5001),
        (400, 413, 422),
        ["nested"],
        id="json-nested-objects",
    ),
    pytest.param(config_text("N", "9" * 5000), (400, 413, 422), ["digits"], id="json-5000-digits"),
    pytest.param(raw("/api/sessions", OVERSIZED), 413, [str(CAP), "bytes"], id="json-oversized"),
    pytest.param(
        {"method": "POST", "path": "/api/sessions", "content": chunked(OVERSIZED), "headers": JSON},
        413,
        [str(CAP), "bytes"],
        id="json-oversized-chunked",
    ),
    pytest.param(
        raw("/api/sessions", '{"lesson": "nn"}', **{"Content-Type": "text/plain"}),
        415,
        ["application/json", "text/plain"],
        id="content-type-text",
    ),
    pytest.param(
        raw("/api/sessions", "lesson=nn", **{"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        ["application/json"],
        id="content-type-form",
    ),
    # -- hosts and origins
    pytest.param(
        get("/api/lessons", Host="evil.example"), 400, ["Host", "AGX_ALLOWED_HOSTS"], id="host-evil"
    ),
    pytest.param(
        get("/api/lessons", Host="127.0.0.1.evil.example"), 400, ["Host"], id="host-suffix"
    ),
    pytest.param(get("/healthz", Host="a" * 5000), 400, ["Host"], id="host-overlong"),
    pytest.param(
        {
            "method": "POST",
            "path": "/api/sessions",
            "json": {"lesson": "nn"},
            "headers": {"Host": "evil.example"},
        },
        400,
        ["Host"],
        id="host-evil-post",
    ),
    pytest.param(preflight(EVIL), 400, ["origin", "AGX_CORS_ORIGINS"], id="origin-preflight-evil"),
    pytest.param(preflight("null"), 400, ["origin"], id="origin-preflight-null"),
    pytest.param(
        preflight(GOOD_ORIGIN, method="PUT"), 400, ["method"], id="origin-preflight-method"
    ),
    pytest.param(
        preflight(GOOD_ORIGIN, headers="X-Evil"), 400, ["header"], id="origin-preflight-header"
    ),
    pytest.param(
        raw("/api/sessions", '{"lesson": "nn"}', Origin=EVIL, **{"Content-Type": "text/plain"}),
        415,
        ["application/json"],
        id="origin-simple-post",
    ),
    # -- methods and paths
    pytest.param(
        {"method": "PUT", "path": "/api/sessions", "json": {}},
        405,
        ["PUT", "POST"],
        id="method-put",
    ),
    pytest.param(get("/api/nothing-here"), 404, ["nothing is served", "/docs"], id="path-unknown"),
]


def _is_sentence(detail: str) -> bool:
    """Whether `detail` reads as advice: several words, no trace, nothing generic."""
    text = detail.strip().lower().rstrip(".")
    return (
        len(text.split()) >= 4
        and len(detail) <= 600
        and text not in GENERIC
        and "traceback" not in text
        and " object at 0x" not in text
        and "<class " not in text
    )


@pytest.mark.parametrize(("request_", "expected", "words"), CASES)
def test_bad_input_gets_a_4xx_with_a_detail_to_act_on(
    client, session_id, request_, expected, words
):
    request = dict(request_)
    request["url"] = request.pop("path").replace("{sid}", session_id)

    response = client.request(**request)

    statuses = expected if isinstance(expected, tuple) else (expected,)
    assert response.status_code in statuses, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    detail = response.json()["detail"]
    assert isinstance(detail, str) and _is_sentence(detail), detail
    for word in words:
        assert word.lower() in detail.lower(), (word, detail)
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert client.get("/healthz").status_code == 200


def test_a_cross_site_request_from_an_unknown_origin_gets_no_cors_grant(client):
    response = client.get("/api/lessons", headers={"Origin": EVIL})
    granted = client.get("/api/lessons", headers={"Origin": GOOD_ORIGIN})

    assert "access-control-allow-origin" not in response.headers
    assert granted.headers["access-control-allow-origin"] == GOOD_ORIGIN


def test_the_suite_has_forty_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 40


def test_after_all_the_bad_input_a_normal_session_still_works(client):
    created = client.post("/api/sessions", json={"lesson": "optim", "config": SMALL})
    base = f"/api/sessions/{created.json()['id']}"
    stepped = client.post(f"{base}/step", json={"by": "iteration", "count": 2})
    svg = client.get(f"{base}/graph.svg")
    tensor = client.get(f"{base}/tensors/model.0.weight")
    ended = client.post(f"{base}/step", json={"by": "end"})
    deleted = client.delete(base)

    assert created.status_code == 201
    assert stepped.status_code == 200 and stepped.json()["iteration"] == 1
    assert svg.status_code == 200 and "<svg" in svg.text
    assert tensor.status_code == 200
    assert ended.status_code == 200 and len(ended.json()["losses"]) == SMALL["iterations"]
    assert deleted.status_code == 204
    assert client.get("/healthz").json()["status"] == "ok"
