"""Session records: the same behaviour from SQLite and from Redis (when redis-server exists)."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import time
from dataclasses import replace

import pytest

from app.engine.records import (
    QUOTA,
    ClientCapReached,
    Quota,
    RedisRecords,
    SessionRecord,
    SQLiteRecords,
    open_records,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    client.close()
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "redis"])
def records(request, tmp_path):
    if request.param == "sqlite":
        store = SQLiteRecords(tmp_path / "var" / "sessions.db")
    else:
        store = RedisRecords(
            request.getfixturevalue("redis_url"), ttl_s=60, prefix=f"t{time.time_ns()}:"
        )
    yield store
    store.close()


def _record(session_id: str = "a" * 32, last_used: float = 1000.0) -> SessionRecord:
    config = {"N": 8, "learning_rate": 1.0, "device": "cpu", "zero_grad": False, "seed": 2**32 - 1}
    return SessionRecord(session_id, "autograd", config, 0, last_used, last_used)


def test_add_then_get_round_trips_exactly(records):
    record = _record()

    assert records.add(record, limit=10)
    found = records.get(record.id)

    assert found == record
    assert type(found.config["learning_rate"]) is float  # 1.0 stays a float, not 1


def test_an_edited_sessions_source_round_trips_exactly(records):
    source = "import torch\nprint('é 中文 \\u2028', \"quotes\")\n" * 50
    record = replace(_record(), source=source)

    assert records.add(record, limit=10)
    records.touch(record.id, cursor=7, last_used=1001.0, moved=5.0)

    found = records.get(record.id)
    assert found is not None and found.source == source and found.cursor == 7
    assert records.get(record.id) == replace(record, cursor=7, last_used=1001.0, moved=5.0)


def test_get_unknown_is_none(records):
    assert records.get("missing") is None


def test_add_refuses_past_the_limit(records):
    assert records.add(_record("a"), limit=2)
    assert records.add(_record("b"), limit=2)

    assert not records.add(_record("c"), limit=2)
    assert records.get("c") is None


def test_touch_updates_cursor_and_last_use(records):
    records.add(_record(), limit=10)

    records.touch("a" * 32, cursor=41, last_used=1234.5)

    found = records.get("a" * 32)
    assert found is not None and (found.cursor, found.last_used) == (41, 1234.5)


def test_a_touch_stamped_before_the_records_move_keeps_its_cursor(records):
    records.add(_record(), limit=10)
    records.touch("a" * 32, cursor=6, last_used=100.0, moved=50.0)  # move 6, written first
    records.touch("a" * 32, cursor=5, last_used=101.0, moved=40.0)  # move 5, written late

    found = records.get("a" * 32)
    assert found is not None
    assert (found.cursor, found.moved, found.last_used) == (6, 50.0, 101.0)
    records.touch("a" * 32, cursor=2, last_used=102.0, moved=60.0)  # a later move back
    found = records.get("a" * 32)
    assert found is not None and (found.cursor, found.moved) == (2, 60.0)


def test_touch_of_a_deleted_record_does_not_bring_it_back(records):
    records.add(_record(), limit=10)
    records.delete("a" * 32)

    records.touch("a" * 32, cursor=3, last_used=2000.0)

    assert records.get("a" * 32) is None


def test_delete_says_whether_there_was_a_record(records):
    records.add(_record(), limit=10)

    assert records.delete("a" * 32) is True
    assert records.delete("a" * 32) is False


def test_expire_deletes_the_idle_ones_and_frees_their_places(records):
    records.add(_record("old", last_used=time.time()), limit=2)
    records.add(_record("new", last_used=time.time()), limit=2)
    records.touch("old", cursor=5, last_used=time.time() - 100)

    gone = records.expire(before=time.time() - 50)

    assert gone == ["old"]
    assert records.get("old") is None and records.get("new") is not None
    assert records.add(_record("third"), limit=2)


def test_add_drops_expired_records_to_make_room(records):
    records.add(_record("old", last_used=time.time()), limit=1)
    records.touch("old", cursor=5, last_used=time.time() - 10_000)
    records.expire(before=0)  # nothing that old

    added = records.add(_record("new", last_used=time.time()), limit=1)

    if isinstance(records, RedisRecords):  # Redis drops them on the way
        assert added and records.get("old") is None
    else:  # SQLite waits for expire()
        assert not added
        assert records.expire(before=time.time() - 60) == ["old"]


def _quota(address: str = "a:10.0.0.1", browser: str | None = "t:one", **limits: int) -> Quota:
    caps = {"address_limit": 4, "browser_limit": 2, **limits}
    return Quota(address=address, browser=browser, **caps)


def _now(session_id: str) -> SessionRecord:
    return _record(session_id, last_used=time.time())


def test_a_browser_past_its_cap_is_refused_naming_the_browser_cap(records):
    assert records.add(_now("a"), limit=100, quota=_quota())
    assert records.add(_now("b"), limit=100, quota=_quota())

    with pytest.raises(ClientCapReached) as refused:
        records.add(_now("c"), limit=100, quota=_quota())

    assert (refused.value.cap, refused.value.limit) == ("browser", 2)
    assert "browser" in str(refused.value) and "2 sessions" in str(refused.value)
    assert records.get("c") is None
    assert records.count(browser="t:one") == 2 and records.count(address="a:10.0.0.1") == 2
    assert records.get("a").browser == "t:one" and records.get("a").address == "a:10.0.0.1"


def test_browsers_behind_one_address_share_its_larger_cap_and_others_are_untouched(records):
    for index, browser in enumerate(["t:one", "t:one", "t:two", None]):
        assert records.add(_now(f"s{index}"), limit=100, quota=_quota(browser=browser))

    with pytest.raises(ClientCapReached) as refused:
        records.add(_now("s4"), limit=100, quota=_quota(browser="t:three"))
    assert refused.value.cap == "address" and "address" in str(refused.value)
    # Another address, and the same browser token from there, still get theirs.
    assert records.add(_now("s5"), limit=100, quota=_quota(address="a:10.0.0.2", browser=None))
    assert records.count(address="a:10.0.0.1") == 4
    assert records.count(address="a:10.0.0.2") == 1


def test_the_server_cap_still_holds_for_clients_under_theirs(records):
    assert records.add(_now("a"), limit=1, quota=_quota())

    assert not records.add(_now("b"), limit=1, quota=_quota(address="a:other", browser=None))


def test_add_takes_the_quota_of_its_context(records):
    token = QUOTA.set(_quota(browser_limit=1))
    try:
        assert records.add(_now("a"), limit=100)
        with pytest.raises(ClientCapReached):
            records.add(_now("b"), limit=100)
    finally:
        QUOTA.reset(token)

    assert records.add(_now("c"), limit=100)  # no quota: no client counted
    assert records.get("c").address is None
    assert records.count(browser="t:one") == 1


def test_deleting_or_expiring_a_session_gives_its_client_the_place_back(records):
    quota = _quota(browser_limit=1, address_limit=1)
    assert records.add(_now("a"), limit=100, quota=quota)
    records.delete("a")
    assert records.add(_now("b"), limit=100, quota=quota)
    records.touch("b", cursor=3, last_used=time.time() - 1000)
    assert records.expire(before=time.time() - 500) == ["b"]

    assert records.add(_now("c"), limit=100, quota=quota)
    assert records.count(browser="t:one") == 1


def test_a_touched_session_keeps_counting_for_its_client(records):
    quota = _quota(browser_limit=1)
    assert records.add(_record("a", last_used=time.time() - 50), limit=100, quota=quota)
    records.touch("a", cursor=1, last_used=time.time())

    with pytest.raises(ClientCapReached):
        records.add(_now("b"), limit=100, quota=quota)


def test_a_database_from_before_client_counting_is_migrated(tmp_path):
    path = tmp_path / "sessions.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, lesson TEXT NOT NULL, config TEXT NOT NULL,"
        " cursor INTEGER NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL)"
    )
    old.execute("INSERT INTO sessions VALUES ('old', 'autograd', '{}', 7, 1.0, 2.0)")
    old.commit()
    old.close()

    records = SQLiteRecords(path)
    try:
        assert records.set_aside is None
        assert records.get("old") == SessionRecord("old", "autograd", {}, 7, 1.0, 2.0)
        assert records.add(_now("new"), limit=10, quota=_quota())
        assert records.get("new").browser == "t:one"
        assert records.count(address="a:10.0.0.1") == 1
    finally:
        records.close()


def test_a_redis_record_from_before_client_counting_is_read(redis_url):
    import json

    import redis

    records = RedisRecords(redis_url, ttl_s=60, prefix=f"old{time.time_ns()}:")
    client = redis.Redis.from_url(redis_url)
    try:
        fields = {"id": "old", "lesson": "autograd", "config": "{}", "cursor": 7}
        fields |= {"created": 1.0, "last_used": 2.0}
        client.set(records._prefix + "old", json.dumps(fields))
        records.touch("old", cursor=8, last_used=3.0)

        assert records.get("old") == SessionRecord("old", "autograd", {}, 8, 1.0, 3.0)
        assert records.delete("old")
    finally:
        client.close()
        records.close()


def test_sqlite_uses_wal_and_survives_reopening(tmp_path):
    path = tmp_path / "deep" / "folder" / "sessions.db"
    first = SQLiteRecords(path)
    first.add(_record(), limit=10)
    first.touch("a" * 32, cursor=7, last_used=1001.0)
    first.close()

    second = SQLiteRecords(path)

    assert second.get("a" * 32).cursor == 7
    assert second._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    second.close()


def test_open_records_picks_the_backend_from_the_url(tmp_path, redis_url):
    sqlite = open_records(None, data_dir=tmp_path, ttl_s=60)
    redis = open_records(redis_url, data_dir=tmp_path, ttl_s=60)

    assert isinstance(sqlite, SQLiteRecords) and (tmp_path / "sessions.db").exists()
    assert isinstance(redis, RedisRecords)
    sqlite.close()
    redis.close()


def _sound_database(path) -> bytes:
    """The bytes of a database with enough records to span several pages."""
    records = SQLiteRecords(path)
    for i in range(300):
        records.add(SessionRecord(f"s{i:04d}", "autograd", {"N": i}, i, 1.0, 2.0), limit=1000)
    records.close()
    data = path.read_bytes()
    for suffix in ("", "-wal", "-shm"):
        (path.parent / f"{path.name}{suffix}").unlink(missing_ok=True)
    return data


def _corrupt(kind: str, path, sound: bytes) -> None:
    if kind == "truncated":
        path.write_bytes(sound[:100])
    elif kind == "garbage header":
        path.write_bytes(b"\x13\x37" * 64 + sound[128:])
    elif kind == "garbage in the middle":
        middle = len(sound) // 2
        path.write_bytes(sound[:middle] + b"\xff" * 8192 + sound[middle + 8192 :])
    else:  # a directory where the file should be
        path.mkdir()
        (path / "x").write_text("x")


@pytest.mark.parametrize(
    "kind", ["truncated", "garbage header", "garbage in the middle", "a directory"]
)
def test_a_database_that_cannot_be_opened_is_set_aside(tmp_path, caplog, kind: str) -> None:
    sound = _sound_database(tmp_path / "sound.db")
    path = tmp_path / "sessions.db"
    _corrupt(kind, path, sound)
    with caplog.at_level("ERROR", logger="app.engine.records"):
        records = SQLiteRecords(path)
    try:
        assert records.set_aside is not None and records.set_aside.exists()
        assert records.set_aside.parent == path.parent
        assert records.check() == {"kind": "sqlite", "set_aside": str(records.set_aside)}
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and str(records.set_aside) in errors[0].getMessage()
        # A fresh store works.
        assert records.add(SessionRecord("new", "nn", {}, 0, 1.0, 1.0), limit=10)
        assert records.get("new") is not None
    finally:
        records.close()


def test_a_sound_database_is_kept_and_created_for_its_owner_only(tmp_path) -> None:
    path = tmp_path / "sessions.db"
    records = SQLiteRecords(path)
    records.add(SessionRecord("a", "nn", {"N": 2}, 3, 1.0, 1.0), limit=10)
    records.close()
    assert path.stat().st_mode & 0o777 == 0o600
    again = SQLiteRecords(path)
    try:
        assert again.set_aside is None
        assert again.get("a") == SessionRecord("a", "nn", {"N": 2}, 3, 1.0, 1.0)
    finally:
        again.close()


def test_a_damaged_record_fails_its_own_session_only(tmp_path) -> None:
    from app.engine.records import BadRecord

    records = SQLiteRecords(tmp_path / "sessions.db")
    try:
        records.add(SessionRecord("good", "nn", {}, 0, 1.0, 1.0), limit=10)
        records.add(SessionRecord("bad", "nn", {}, 0, 1.0, 1.0), limit=10)
        records._db.execute("UPDATE sessions SET config = '{broken' WHERE id = 'bad'")
        with pytest.raises(BadRecord, match="bad"):
            records.get("bad")
        assert records.get("good") is not None
        assert records.delete("bad")
    finally:
        records.close()
