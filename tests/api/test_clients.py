"""Fair sharing between clients: browser tokens, per-browser and per-address session caps,
X-Forwarded-For from trusted proxies only, the cap on concurrent steps.

The in-process tests drive the app with TestClient (one address, "testclient"); the
ones marked slow run a real server and give each client its own loopback address by
binding its socket to 127.0.0.2, 127.0.0.3, ...
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.api.clients import COOKIE, ClientCaps, browser_key, client_address, parse_networks
from app.api.places import StepPlaces
from app.main import SessionIdFilter, short_hash
from app.settings import Settings
from tests.conftest import ROOT

SMALL: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
BODY = {"lesson": "autograd", "config": SMALL}


def _browser(api) -> str:
    """Load the home page as a browser does: the answer sets the token cookie."""
    response = api.get("/")
    assert response.status_code == 200
    return api.client.cookies[COOKIE]


def test_a_page_gives_the_browser_an_http_only_lax_token_and_the_api_does_not(make_api):
    api = make_api()

    api_answer = api.get("/api/lessons")
    page = api.get("/")

    assert "set-cookie" not in api_answer.headers
    cookie = page.headers["set-cookie"]
    assert re.match(rf"{COOKIE}=[0-9a-f]{{32}};", cookie)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    # A browser that has its token keeps it: no new cookie on the next page.
    assert "set-cookie" not in api.get("/").headers


def test_a_browser_past_its_cap_gets_429_naming_it_and_another_browser_does_not(make_api):
    api = make_api(max_sessions_per_browser=3, max_sessions_per_address=100)
    _browser(api)
    made = [api.post("/api/sessions", json=BODY).status_code for _ in range(3)]

    refused = api.post("/api/sessions", json=BODY)

    assert made == [201, 201, 201]
    assert refused.status_code == 429
    assert "browser cap" in refused.json()["detail"]
    assert "3 sessions" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    # Another browser at the same address, and a script without a token, still create.
    api.client.cookies.clear()
    assert api.post("/api/sessions", json=BODY).status_code == 201
    _browser(api)
    assert api.post("/api/sessions", json=BODY).status_code == 201


def test_deleting_a_session_gives_the_browser_its_place_back(make_api):
    api = make_api(max_sessions_per_browser=1)
    _browser(api)
    first = api.post("/api/sessions", json=BODY).json()
    assert api.post("/api/sessions", json=BODY).status_code == 429

    assert api.delete(f"/api/sessions/{first['id']}").status_code == 204

    assert api.post("/api/sessions", json=BODY).status_code == 201


def test_an_address_past_its_cap_gets_429_naming_the_address_cap(make_api):
    api = make_api(max_sessions_per_browser=2, max_sessions_per_address=3)
    for _ in range(3):
        api.client.cookies.clear()
        _browser(api)
        assert api.post("/api/sessions", json=BODY).status_code == 201

    api.client.cookies.clear()
    refused = api.post("/api/sessions", json=BODY)

    assert refused.status_code == 429
    assert "address cap" in refused.json()["detail"]
    assert "3 sessions" in refused.json()["detail"]


def test_the_server_cap_defaults_well_above_one_address_and_a_classroom_fits():
    settings = Settings()

    assert settings.max_sessions_per_browser == 8
    # A classroom of 40 browsers behind one NAT address, each with its own cap.
    assert settings.max_sessions_per_address >= 40 * settings.max_sessions_per_browser
    assert settings.max_sessions >= 4 * settings.max_sessions_per_address
    assert settings.max_steps_per_address > settings.max_steps_per_browser


def test_access_log_lines_carry_a_short_hash_not_the_session_id():
    session_id = "0123456789abcdef" * 2
    line = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", f"/api/sessions/{session_id}/step?x=1", "1.1", 200), None,
    )  # fmt: skip

    assert SessionIdFilter().filter(line)

    text = line.getMessage()
    assert session_id not in text
    assert re.search(r"/api/sessions/~[0-9a-f]{8}/step\?x=1", text)
    assert short_hash(session_id) != short_hash(session_id[::-1])


TRUSTED = parse_networks(["10.0.0.1", "10.1.0.0/16"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: its XFF is ignored
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own lie
        ("10.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # two proxies deep
        ("10.0.0.1", ["198.51.100.1", "10.1.2.3"], "198.51.100.1"),  # two headers
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["nonsense, 10.1.2.3"], "10.1.2.3"),
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_forwarded_for_counts_only_from_trusted_proxies(peer, forwarded, expected):
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_a_trusted_proxy_forwards_the_address_and_scheme_an_untrusted_one_cannot(make_api):
    api = make_api(trusted_proxies="10.0.0.0/8")
    spoof = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}

    page = api.get("/", headers=spoof)

    # TestClient's peer is "testclient", not a trusted proxy: nothing it says is believed.
    assert "Secure" not in page.headers["set-cookie"]


def _fake_app(gate: asyncio.Event, started: list[str]) -> Callable[..., Any]:
    async def app(scope, receive, send):
        started.append(scope["path"])
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _scope(path: str, address: str, cookie: str | None = None) -> dict[str, Any]:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers,
        "client": (address, 1234),
        "scheme": "http",
    }


def test_steps_running_at_once_are_capped_per_browser_and_per_address(tmp_path):
    places = StepPlaces(tmp_path / "steps")

    async def main() -> list[int]:
        gate = asyncio.Event()
        started: list[str] = []
        caps = ClientCaps(
            _fake_app(gate, started), steps_per_browser=2, steps_per_address=3, places=places
        )
        statuses: list[int] = []

        async def call(scope: dict[str, Any]) -> None:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await caps(scope, receive, send)

        one, two = "a" * 32, "b" * 32
        running = [
            asyncio.create_task(call(_scope("/api/sessions/s1/step", "192.0.2.1", one)))
            for _ in range(2)
        ]
        running.append(asyncio.create_task(call(_scope("/api/sessions/s2/seek", "192.0.2.1", two))))
        await asyncio.sleep(0.01)
        # Refused at once: browser one's third, the address's fourth (browser two).
        await call(_scope("/api/sessions/s1/step", "192.0.2.1", one))
        await call(_scope("/api/sessions/s2/step", "192.0.2.1", two))
        # Not capped: another address, and reads of the same browser.
        other = asyncio.create_task(call(_scope("/api/sessions/s3/step", "192.0.2.2")))
        read = asyncio.create_task(call({**_scope("/api/sessions/s1", "192.0.2.1", one)}))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(*running, other, read)
        # every finished step gave its place back, and no place file is left
        assert places.held(browser_key(one), 2) == places.held("ip:192.0.2.1", 3) == 0
        assert list(places.folder.iterdir()) == []
        # Once they finished, the browser steps again.
        await call(_scope("/api/sessions/s1/step", "192.0.2.1", one))
        return statuses

    statuses = asyncio.run(main())

    assert statuses[:2] == [429, 429]
    assert sorted(statuses[2:-1]) == [200] * 5
    assert statuses[-1] == 200


def test_a_step_past_the_cap_answers_429_naming_it(make_api):
    api = make_api(max_steps_per_browser=1)
    caps = api.app.middleware_stack
    while not isinstance(caps, ClientCaps):
        caps = caps.app
    _browser(api)
    session = api.post("/api/sessions", json=BODY).json()
    place = caps.places.take(_key(api), 1)  # a step of this browser is running
    assert place is not None

    refused = api.post(f"/api/sessions/{session['id']}/step", json={"by": "event"})
    caps.places.give_back(place)
    allowed = api.post(f"/api/sessions/{session['id']}/step", json={"by": "event"})

    assert refused.status_code == 429
    assert "browser step cap" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "1"
    assert allowed.status_code == 200


def _key(api) -> str:
    return browser_key(api.client.cookies[COOKIE])


_HOLD = """
import sys, time
from pathlib import Path
from app.api.places import StepPlaces
places = StepPlaces(Path(sys.argv[1]))
held = [places.take(sys.argv[2], 2) for _ in range(2)]
assert all(held)
print("held", flush=True)
time.sleep(600)
"""


def test_places_are_shared_by_processes_and_freed_when_one_dies(tmp_path):
    """Another worker's steps count (its places are flocks on shared files), and a worker
    killed in the middle of its steps leaves none of them taken."""
    places = StepPlaces(tmp_path / "hosts" / "steps")
    for folder in (places.folder, places.folder.parent):  # the hosts' folder is private
        assert folder.stat().st_mode & 0o777 == 0o700
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(places.folder), "ip:192.0.2.9"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        assert places.held("ip:192.0.2.9", 2) == 2
        assert places.take("ip:192.0.2.9", 2) is None  # the cap of 2 is reached
        mine = places.take("ip:192.0.2.10", 2)  # another client's places are its own
        assert mine is not None
        places.give_back(mine)
    finally:
        other.kill()
        other.wait()
    assert places.held("ip:192.0.2.9", 2) == 0  # the kernel dropped the dead one's locks
    place = places.take("ip:192.0.2.9", 2)
    assert place is not None
    places.give_back(place)
    assert list(places.folder.iterdir()) == []


# --- real processes, one loopback address per client ---------------------------------


def _client(server_url: str, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server_url, transport=transport, timeout=60)


@pytest.mark.slow
def test_a_hundred_creations_from_one_address_refuse_no_other(live_server):
    server = live_server({"AGX_MAX_SESSIONS_PER_ADDRESS": "40", "AGX_MAX_SESSIONS": "100"})
    with _client(server.url, "127.0.0.2") as flood, _client(server.url, "127.0.0.3") as other:
        answers = [flood.post("/api/sessions", json=BODY) for _ in range(100)]
        # ... and a browser of the flooding address, past its own cap too.
        flood.get("/")
        assert COOKIE in flood.cookies
        codes = [a.status_code for a in answers]
        made = other.post("/api/sessions", json=BODY)
        stepped = other.post(f"/api/sessions/{made.json()['id']}/step", json={"by": "event"})

    assert codes[:40] == [201] * 40
    assert set(codes[40:]) == {429}
    assert all("address cap" in a.json()["detail"] for a in answers[40:])
    assert made.status_code == 201, made.text
    assert stepped.status_code == 200
    # The access log names the session by its short hash only.
    log = server.log()
    assert f"/api/sessions/{short_hash(made.json()['id'])}/step" in log
    assert made.json()["id"] not in log


@pytest.mark.slow
def test_forwarded_for_is_believed_from_the_configured_proxy_only(live_server):
    # 127.0.0.2 plays the proxy; 127.0.0.3 is an ordinary client that lies.
    server = live_server({"AGX_TRUSTED_PROXIES": "127.0.0.2", "AGX_MAX_SESSIONS_PER_ADDRESS": "1"})
    with _client(server.url, "127.0.0.2") as proxy, _client(server.url, "127.0.0.3") as liar:
        via_proxy = [
            proxy.post("/api/sessions", json=BODY, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in (1, 2, 2)
        ]
        lies = [
            liar.post("/api/sessions", json=BODY, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in (3, 4)
        ]

    assert [r.status_code for r in via_proxy] == [201, 201, 429]
    assert [r.status_code for r in lies] == [201, 429]  # counted as 127.0.0.3 both times


@pytest.mark.slow
def test_a_browsers_step_cap_holds_across_worker_processes(live_server):
    """Two servers on one data folder, as two worker processes of one are: a browser
    with a step running in one gets 429 for a step sent to the other."""
    env = {"AGX_MAX_STEPS_PER_BROWSER": "1"}
    one, two = live_server(env), live_server(env)
    long_run = {"lesson": "custom_module", "config": {"iterations": 10000}}
    with httpx.Client(base_url=one.url, timeout=60) as first:
        first.get("/")
        token = first.cookies[COOKIE]
        made = first.post("/api/sessions", json=long_run)
        assert made.status_code == 201, made.text
        running = made.json()["id"]
        with httpx.Client(base_url=two.url, cookies={COOKIE: token}, timeout=60) as second:
            other = second.post("/api/sessions", json=BODY).json()["id"]
            with ThreadPoolExecutor(max_workers=1) as pool:
                long_step = pool.submit(
                    first.post, f"/api/sessions/{running}/step", json={"by": "end"}
                )
                time.sleep(1.0)  # it is running (a run of 10,000 iterations takes seconds)
                assert not long_step.done()
                refused = second.post(f"/api/sessions/{other}/step", json={"by": "event"})
                first.post(f"/api/sessions/{running}/cancel")
                assert long_step.result().status_code == 200
            after = second.post(f"/api/sessions/{other}/step", json={"by": "event"})

    assert refused.status_code == 429, refused.text
    assert "browser step cap" in refused.json()["detail"]
    assert after.status_code == 200, after.text
