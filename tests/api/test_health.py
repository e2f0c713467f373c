"""GET /healthz reports Graphviz and the devices, and fails loudly without Graphviz."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import health
from app.main import create_app


@pytest.fixture
def client():
    health._dot_version.cache_clear()
    yield TestClient(create_app())
    health._dot_version.cache_clear()


def test_health_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["graphviz"].startswith("dot - graphviz version")
    assert body["devices"][0]["id"] == "cpu"


def test_health_unavailable_without_graphviz(client, monkeypatch):
    monkeypatch.setenv("PATH", "")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["graphviz"] is None


def test_a_corrupt_session_database_is_set_aside_and_reported(make_api, tmp_path) -> None:
    folder = tmp_path / "var"
    folder.mkdir()
    (folder / "sessions.db").write_bytes(b"not a database at all" * 100)
    api = make_api()
    health = api.client.get("/healthz").json()
    assert health["store"]["kind"] == "sqlite"
    aside = health["store"]["set_aside"]
    assert aside and aside.startswith(str(folder / "sessions.db.broken-"))
    assert (folder / aside.rsplit("/", 1)[1]).read_bytes().startswith(b"not a database")
    created = api.client.post("/api/sessions", json={"lesson": "autograd", "config": {}})
    assert created.status_code == 201


def test_a_damaged_record_answers_for_its_session_only(api) -> None:
    good = api.client.post("/api/sessions", json={"lesson": "autograd", "config": {}}).json()
    bad = api.client.post("/api/sessions", json={"lesson": "nn", "config": {}}).json()
    api.store._records._db.execute(  # type: ignore[attr-defined]
        "UPDATE sessions SET config = '{broken' WHERE id = ?", (bad["id"],)
    )
    api.store.hosts.kill(bad["id"])  # as if its host had ended: a restart reads it back
    answer = api.client.get(f"/api/sessions/{bad['id']}")
    assert answer.status_code == 409 and bad["id"] in answer.json()["detail"]
    assert api.client.get(f"/api/sessions/{good['id']}").status_code == 200
    assert api.client.delete(f"/api/sessions/{bad['id']}").status_code == 204
    assert api.client.get("/healthz").json()["status"] == "ok"


def test_a_store_that_cannot_be_read_makes_the_replica_unfit(api) -> None:
    api.store._records._db.close()  # type: ignore[attr-defined]  # as if the file went bad
    health = api.client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable" and health.json()["store"]["error"]


def test_health_reports_the_sandbox_in_force_and_edited_code_off_by_default(api) -> None:
    edited = api.get("/healthz").json()["edited_code"]
    assert edited["in_force"] is True and edited["torch"] is None
    assert edited["layers"] == dict.fromkeys(("descriptors", "rlimits", "landlock", "seccomp"))
    assert edited["landlock_abi"] >= 6 and 0 < edited["confine_ms"] < edited["ms"]
    # The test client's server is "testserver", not a loopback address.
    assert edited["allowed"] is False and "AGX_ALLOW_CODE" in edited["reason"]


def test_edited_code_is_on_by_default_for_a_loopback_server_without_proxies(make_api) -> None:
    local = make_api().get("http://127.0.0.1/healthz").json()["edited_code"]
    assert local["allowed"] is True and local["reason"] is None
    proxied = make_api(trusted_proxies=["10.0.0.2"]).get("http://127.0.0.1/healthz")
    assert proxied.json()["edited_code"]["allowed"] is False
    off = make_api(allow_code=False).get("http://[::1]/healthz").json()["edited_code"]
    assert off == {**local, "allowed": False, "reason": off["reason"]}
    assert off["reason"] == "edited code is off on this server (AGX_ALLOW_CODE)"


def test_a_layer_not_in_force_keeps_edited_code_off_and_is_named(make_api) -> None:
    api = make_api(allow_code=True)
    assert api.get("/healthz").json()["edited_code"]["allowed"] is True
    why = "libseccomp cannot be loaded (Unable to find libseccomp)"
    report = api.store.hosts.sandbox()
    api.store.hosts._sandbox = {  # type: ignore[attr-defined]  # as if the zygote said so
        **report,
        "in_force": False,
        "layers": {**report["layers"], "seccomp": why},
    }
    health = api.get("/healthz")
    assert health.status_code == 200  # the server runs lessons all the same
    reason = health.json()["edited_code"]["reason"]
    assert (
        reason == f"edited code needs every sandbox layer, and seccomp is not in force here: {why}"
    )
    body = {"lesson": "autograd", "config": {}, "source": "x = 1\n"}
    refused = api.post("/api/sessions", json=body)
    assert refused.status_code == 403 and refused.json()["detail"] == reason


def test_health_without_session_hosts_reports_the_sandbox_unknown(client) -> None:
    response = client.get("/healthz")  # no lifespan: no store, no zygote
    assert response.status_code == 200
    edited = response.json()["edited_code"]
    assert edited["in_force"] is False and edited["allowed"] is False
    assert "could not be asked" in edited["layers"]["seccomp"]
