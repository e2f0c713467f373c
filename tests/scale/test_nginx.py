"""nginx with the deployment's own configuration (deploy/nginx/agx.conf.template), in front
of small stand-in upstreams on loopback: its limits, its routing, its logs.

Each client binds its socket to its own loopback address (127.0.0.2, 127.0.0.3, ...), as
separate machines would reach nginx.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from deploy.cluster import Nginx, find_nginx

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed")


class _Echo(BaseHTTPRequestHandler):
    """Answers with the port it serves on and the headers nginx passed on; /hold waits
    until `release` is set (10 s at most), counting the requests held in `held`."""

    release = threading.Event()
    held = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/hold"):
            with _Echo.lock:
                _Echo.held += 1
            _Echo.release.wait(timeout=10)
        body = json.dumps(
            {
                "port": self.server.server_address[1],
                "xff": self.headers.get_all("X-Forwarded-For"),
                "path": self.path,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class _Upstreams:
    def __init__(self, count: int) -> None:
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Echo) for _ in range(count)]
        for server in self.servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addresses = [f"127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def front() -> Iterator[tuple[Nginx, _Upstreams]]:
    upstreams = _Upstreams(2)
    nginx = Nginx(upstreams.addresses)
    try:
        nginx.start()
        yield nginx, upstreams
    finally:
        nginx.stop()
        upstreams.close()


def _client(nginx: Nginx, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=nginx.url, transport=transport, timeout=30)


def test_the_client_address_replaces_any_forwarded_for_it_sends(front):
    nginx, _ = front
    with _client(nginx, "127.0.0.2") as client:
        answer = client.get("/api/lessons", headers={"X-Forwarded-For": "6.6.6.6"})

    assert answer.status_code == 200
    assert answer.json()["xff"] == ["127.0.0.2"]


def test_a_session_s_requests_land_on_one_upstream_and_sessions_spread(front):
    nginx, upstreams = front
    ids = [f"{n:032x}" for n in range(40)]
    with _client(nginx, "127.0.0.2") as client:
        owners = {
            session_id: {
                client.get(f"/api/sessions/{session_id}{tail}").json()["port"]
                for tail in ("", "/graph", "/tensors/w1", "")
            }
            for session_id in ids
        }

    assert all(len(ports) == 1 for ports in owners.values()), owners
    used = {port for ports in owners.values() for port in ports}
    assert used == {s.server_address[1] for s in upstreams.servers}


def test_the_access_log_shows_a_session_by_its_first_characters_only(front):
    nginx, _ = front
    session_id = "f00dfeed" + "1" * 24
    with _client(nginx, "127.0.0.2") as client:
        client.post(f"/api/sessions/{session_id}/step", json={})

    # nginx logs a request once its answer has gone: the line may come a moment later.
    deadline = time.monotonic() + 5
    while not nginx.access_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = nginx.access_log_path.read_text()
    (row,) = nginx.access_log()
    assert session_id not in text
    assert row[0] == "f00dfeed"
    assert row[3:6] == ["POST", "/api/sessions/f00dfeed~/step", "127.0.0.2"]


def test_a_flood_of_requests_from_one_address_gets_json_429s_and_another_address_does_not(front):
    nginx, _ = front
    with _client(nginx, "127.0.0.2") as flood, _client(nginx, "127.0.0.3") as other:
        # The creation rate: a burst of 60 at once, then 10 a second.
        codes = [flood.post("/api/sessions", json={}).status_code for _ in range(100)]
        refused = flood.post("/api/sessions", json={})
        calm = other.post("/api/sessions", json={})

    assert codes.count(200) >= 60
    assert codes.count(429) >= 20
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert "faster than this server accepts" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "1"
    assert calm.status_code == 200


def test_too_many_requests_in_progress_from_one_address_get_429_naming_it(front):
    nginx, _ = front
    _Echo.release.clear()
    _Echo.held = 0

    def hold(address: str) -> httpx.Response:
        with _client(nginx, address) as client:
            return client.get("/hold")

    with ThreadPoolExecutor(max_workers=80) as pool:
        # 64 in progress at once from one address; the next ones are refused at once.
        answers = [pool.submit(hold, "127.0.0.2") for _ in range(70)]
        deadline = time.monotonic() + 20
        while _Echo.held < 64 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # the rest are answered (refused) without waiting for the release
        refused = [a.result() for a in answers if a.done()]
        other = pool.submit(hold, "127.0.0.3")
        while _Echo.held < 65 and time.monotonic() < deadline:
            time.sleep(0.02)
        held = _Echo.held
        _Echo.release.set()
        codes = [a.result(timeout=20).status_code for a in answers]

    assert held == 65  # 64 from the first address, 1 from the other
    assert codes.count(200) == 64 and codes.count(429) == 6
    assert [a.status_code for a in refused] == [429] * 6
    assert "in progress at once" in refused[0].json()["detail"]
    assert other.result(timeout=20).status_code == 200


def test_headers_past_the_limit_answer_431_in_json(front):
    nginx, _ = front
    with _client(nginx, "127.0.0.2") as client:
        answer = client.get("/api/lessons", headers={"X-Big": "x" * 9000})

    assert answer.status_code == 431
    assert "headers are larger" in answer.json()["detail"]


def test_a_body_past_the_limit_answers_413_in_json(front):
    nginx, _ = front
    with _client(nginx, "127.0.0.2") as client:
        answer = client.post("/api/sessions", content=b"x" * 300_000)

    assert answer.status_code == 413
    assert "body is larger" in answer.json()["detail"]


def test_a_client_that_trickles_its_headers_is_cut_off(front):
    nginx, _ = front
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=30) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        data = raw.recv(4096)  # nginx closes (client_header_timeout) without an answer
        waited = time.monotonic() - started

    assert 5 < waited < 20
    assert data == b"" or b"408" in data


def test_upstreams_that_are_down_answer_502_in_json():
    upstreams = _Upstreams(1)
    nginx = Nginx(upstreams.addresses)
    upstreams.close()
    try:
        nginx.start()
        with _client(nginx, "127.0.0.2") as client:
            answer = client.get("/api/lessons")
    finally:
        nginx.stop()

    assert answer.status_code == 502
    assert "did not answer" in answer.json()["detail"]
