"""Scale out on real processes: two replicas behind nginx, session records in Redis.

Every answer is compared with the same session run alone in this process (the engine's
`Session`, no server): the state a single process shows after the same moves. Runs
are deterministic on one build and device, so any replica must answer exactly that,
whether it holds the session live, holds an older live copy, or rebuilds it by replay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.engine.session import Session
from app.lessons.registry import get_lesson
from deploy.cluster import Cluster, Nginx

pytestmark = pytest.mark.slow

SMALL: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 6}
SESSIONS: list[tuple[str, dict[str, Any]]] = [
    ("autograd", {}),
    ("optim", {}),
    ("custom_module", {}),
    ("dynamic_net", {}),
    ("nn", {"zero_grad": False}),
    ("numpy", {}),
]
# A move is ("step", by, count) or ("back", events): a seek to that many events earlier.
# NOTE: the first move runs past setup's random draws in one request; see
# test_sessions_interleaved_through_setup_show_the_same_numbers_on_every_replica.
BEFORE_CRASH: list[tuple[Any, ...]] = [
    ("step", "iteration", 1),
    ("step", "line", 3),
    ("step", "event", 9),
]
AFTER_CRASH: list[tuple[Any, ...]] = [
    ("step", "phase", 2),
    ("back", 5),
    ("step", "iteration", 2),
    ("step", "end", 1),
]
RECORDS_INDEX = "agx:sessions"  # app.engine.records.RedisRecords' sorted set of ids


def alone(created: dict[str, Any], moves: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The states of `created`'s session run alone here: at the start, then after each move."""
    session = Session(
        id=created["id"], lesson=get_lesson(created["lesson"]), config=created["config"]
    )
    try:
        states = [_as_json(session.state())]
        for move in moves:
            if move[0] == "step":
                session.step(by=move[1], count=move[2])
            else:
                session.seek(cursor=session.cursor - move[1])
            states.append(_as_json(session.state()))
        return states
    finally:
        session.close()


def send(client: httpx.Client, base: str, move: tuple[Any, ...], cursor: int) -> httpx.Response:
    """Make `move` on the session at `base` (its URL), which is at `cursor`."""
    if move[0] == "step":
        return client.post(f"{base}/step", json={"by": move[1], "count": move[2]})
    return client.post(f"{base}/seek", json={"cursor": cursor - move[1]})


def routes(nginx: Nginx, since: int = 0) -> dict[str, set[str]]:
    """The replicas that answered each session's requests through nginx (from row `since`),
    by the session's tag in the log (the first 8 characters of its id; "-": no session).

    A request nginx passed on lists every replica it tried; the last one answered.
    """
    seen: dict[str, set[str]] = {}
    for tag, upstreams, *_ in nginx.access_log()[since:]:
        seen.setdefault(tag, set()).add(upstreams.split(",")[-1])
    return seen


def logged(nginx: Nginx) -> int:
    """How many requests nginx has logged, once the last answered one is in the log too.

    NOTE: nginx writes a request's line after it has sent the answer, so a client may
    read the log before the line of the request it just got an answer to.
    """
    count = len(nginx.access_log())
    while True:
        time.sleep(0.2)
        now = len(nginx.access_log())
        if now == count:
            return count
        count = now


def tag(session_id: str) -> str:
    return session_id[:8]


def _as_json(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


def test_any_replica_serves_any_session_through_a_crash_and_a_redis_restart(
    cluster: Cluster, http: httpx.Client
):
    sessions = f"{cluster.url}/api/sessions"  # through nginx
    created = [
        http.post(sessions, json={"lesson": lesson, "config": {**SMALL, **extra}})
        for lesson, extra in SESSIONS
    ]
    assert [response.status_code for response in created] == [201] * len(SESSIONS)
    moves = BEFORE_CRASH + AFTER_CRASH
    expected = {state["id"]: alone(state, moves) for state in (r.json() for r in created)}
    ids = list(expected)
    assert [response.json() for response in created] == [expected[i][0] for i in ids]

    def play(first: int, last: int) -> None:
        """Make moves first..last (1-based) through nginx, every session in turn."""
        for k in range(first, last + 1):
            for session_id in ids:
                before = expected[session_id][k - 1]["cursor"]
                answer = send(http, f"{sessions}/{session_id}", moves[k - 1], before)
                assert answer.status_code == 200, answer.text
                assert answer.json() == expected[session_id][k], (session_id, moves[k - 1])

    def every_replica_answers(k: int) -> None:
        for replica in cluster.replicas:
            for session_id in ids:
                answer = http.get(f"{replica.url}/api/sessions/{session_id}")
                assert answer.status_code == 200, answer.text
                assert answer.json() == expected[session_id][k], (replica.name, session_id)

    play(1, 1)
    # Asked directly, the replica nginx does not route a session to has never run it:
    # it finds the record in Redis and rebuilds the session by replay.
    every_replica_answers(1)
    play(2, 2)
    # Now that replica holds a live copy one move behind the record: it must seek to the
    # record's cursor, not answer its stale state.
    every_replica_answers(2)
    play(3, len(BEFORE_CRASH))

    # Creating a session has no key and goes round-robin; a session's requests stick.
    created_on = routes(cluster.nginx).pop("-")
    owners = routes(cluster.nginx)
    assert created_on == {replica.address for replica in cluster.replicas}
    assert len({tag(i) for i in ids}) == len(ids)
    assert all(len(owners[tag(session_id)]) == 1 for session_id in ids), owners
    victim = next(r for r in cluster.replicas if {r.address} == owners[tag(ids[0])])
    survivor = next(r for r in cluster.replicas if r is not victim)
    crashed_at = logged(cluster.nginx)

    victim.kill()
    # The survivor takes the victim's sessions (its copies are a move behind), the same
    # numbers continue, and no request fails.
    play(len(BEFORE_CRASH) + 1, len(moves))
    after = routes(cluster.nginx, since=crashed_at)
    assert set(after) == {tag(i) for i in ids}
    assert all(upstreams == {survivor.address} for upstreams in after.values()), after
    final = {session_id: states[-1] for session_id, states in expected.items()}
    assert all(state["done"] for state in final.values())
    with cluster.redis.client() as redis:
        assert set(redis.zrange(RECORDS_INDEX, 0, -1)) == set(ids)

    # Redis runs with its append-only file on (as compose runs it): restarted, it still
    # has every record.
    with cluster.redis.client() as redis:
        assert redis.info("persistence")["aof_enabled"]
    cluster.redis.stop()
    cluster.redis.start()
    with cluster.redis.client() as redis:
        assert set(redis.zrange(RECORDS_INDEX, 0, -1)) == set(ids)
    for session_id in ids:
        answer = http.get(f"{sessions}/{session_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == final[session_id]

    # The crashed replica comes back with nothing in memory and rebuilds each session
    # from the restored records.
    victim.start()
    for session_id in ids:
        answer = http.get(f"{victim.url}/api/sessions/{session_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == final[session_id]


def test_sessions_interleaved_through_setup_show_the_same_numbers_on_every_replica(
    cluster: Cluster, http: httpx.Client
):
    first, second = cluster.replicas
    ids = [
        http.post(
            f"{first.url}/api/sessions",
            json={"lesson": "autograd", "config": {**SMALL, "seed": seed}},
        ).json()["id"]
        for seed in (0, 1)
    ]
    # One event at a time, taking turns: both runs are paused inside their setup.
    for _ in range(12):
        for session_id in ids:
            step = {"by": "event", "count": 1}
            http.post(f"{first.url}/api/sessions/{session_id}/step", json=step)
    on_first = [
        http.post(f"{first.url}/api/sessions/{i}/step", json={"by": "end"}).json() for i in ids
    ]
    on_second = [http.get(f"{second.url}/api/sessions/{i}").json() for i in ids]

    assert on_second == on_first
