"""Where session records persist: SQLite by default, Redis to share them between replicas.

A session record is `{id, lesson, config, cursor, created, last_used}`: what it takes to
rebuild a session by replay. `app.engine.store` keeps the live sessions on top of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = [
    "BadRecord",
    "Records",
    "RedisRecords",
    "SQLiteRecords",
    "SessionRecord",
    "open_records",
]

_log = logging.getLogger(__name__)


class BadRecord(Exception):
    """A session's record cannot be read back: that session fails, no other."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"the record of session {session_id[:64]} is damaged and cannot be replayed; "
            "delete it (DELETE /api/sessions/{id}) and start a new session"
        )


@dataclass
class SessionRecord:
    id: str
    lesson: str
    config: dict[str, Any]
    cursor: int
    created: float
    last_used: float


def _record(session_id: str, fields: tuple[Any, ...]) -> SessionRecord:
    """A record from its stored fields (config as a JSON string); BadRecord if damaged."""
    try:
        id_, lesson, config, cursor, created, last_used = fields
        parsed = json.loads(config)
        if not isinstance(parsed, dict) or not isinstance(cursor, int):
            raise ValueError("not a record")
        return SessionRecord(id_, lesson, parsed, cursor, float(created), float(last_used))
    except (TypeError, ValueError):
        raise BadRecord(session_id) from None


class Records(Protocol):
    """Where session records persist; every method is safe to call from any thread."""

    def get(self, session_id: str) -> SessionRecord | None: ...

    def add(self, record: SessionRecord, *, limit: int) -> bool:
        """Insert `record` unless `limit` records exist already; say whether it was."""
        ...

    def touch(self, session_id: str, *, cursor: int, last_used: float) -> None: ...

    def delete(self, session_id: str) -> bool: ...

    def expire(self, *, before: float) -> list[str]:
        """Delete the records last used before `before`; return their ids."""
        ...

    def check(self) -> dict[str, Any]:
        """What /healthz reports of the store: ``kind``, ``set_aside`` and, when the
        records cannot be read now, ``error``."""
        ...

    def close(self) -> None: ...


def _move_aside(path: Path, error: BaseException) -> Path:
    """Rename a database that cannot be opened (and its WAL files) out of the way."""
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):  # another worker process moved it
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    _log.error("session store %s could not be opened (%s): moved it to %s", path, error, aside)
    return aside


class SQLiteRecords:
    """Records in one SQLite file (WAL mode, so several server processes can share it).

    A file that is not a sound database (truncated, garbage, a folder in its place) is
    moved aside when opened, with one log line saying where, and a new one is started:
    the sessions it held are lost, the server is not. ``set_aside`` says where it went.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.path = path
        self.set_aside: Path | None = None
        try:
            self._db = self._open(path)
        except (sqlite3.DatabaseError, OSError) as error:
            self.set_aside = _move_aside(path, error)
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        if not path.exists():  # created readable by its owner only
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NOTE: NORMAL syncs at checkpoints only: a power cut may lose the last steps'
            # cursors, never corrupt the file; a process crash loses nothing.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, lesson TEXT NOT NULL,"
                " config TEXT NOT NULL, cursor INTEGER NOT NULL, created REAL NOT NULL,"
                " last_used REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions (last_used)")
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def check(self) -> dict[str, Any]:
        aside = str(self.set_aside) if self.set_aside is not None else None
        try:
            with self._lock:
                self._db.execute("SELECT count(*) FROM sessions").fetchone()
        except sqlite3.Error as error:
            return {"kind": "sqlite", "set_aside": aside, "error": str(error)[:200]}
        return {"kind": "sqlite", "set_aside": aside}

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, lesson, config, cursor, created, last_used FROM sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
        if row is None:
            return None
        return _record(session_id, tuple(row))

    def add(self, record: SessionRecord, *, limit: int) -> bool:
        with self._lock:
            # IMMEDIATE takes the write lock before counting, so processes cannot overshoot.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = self._db.execute("SELECT count(*) FROM sessions").fetchone()
                if count >= limit:
                    return False
                self._db.execute(
                    "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.lesson,
                        json.dumps(record.config),
                        record.cursor,
                        record.created,
                        record.last_used,
                    ),
                )
                return True
            finally:
                self._db.execute("COMMIT")

    def touch(self, session_id: str, *, cursor: int, last_used: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET cursor = ?, last_used = ? WHERE id = ?",
                (cursor, last_used, session_id),
            )

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def expire(self, *, before: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "DELETE FROM sessions WHERE last_used < ? RETURNING id", (before,)
            ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# KEYS: index, record; ARGV: limit, now, expired-before, id, record JSON, ttl seconds,
# record key prefix. Expired ones are dropped first, so they do not count against the cap.
_ADD = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
for _, id in ipairs(expired) do redis.call('DEL', ARGV[7] .. id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
return 1
"""
# KEYS: index, record; ARGV: id, cursor, last_used, ttl seconds.
_TOUCH = """
local raw = redis.call('GET', KEYS[2])
if not raw then return 0 end
local record = cjson.decode(raw)
record['cursor'] = tonumber(ARGV[2])
record['last_used'] = tonumber(ARGV[3])
redis.call('SET', KEYS[2], cjson.encode(record), 'EX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


class RedisRecords:
    """Records in Redis, shared by replicas: one JSON string per session, expiring by TTL,
    and a sorted set of ids by last use that counts them for the cap."""

    def __init__(self, url: str, *, ttl_s: float, prefix: str = "agx:") -> None:
        import redis

        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._ttl = max(1, math.ceil(ttl_s))
        self._index = f"{prefix}sessions"
        self._prefix = f"{prefix}session:"
        self._add = self._client.register_script(_ADD)
        self._touch = self._client.register_script(_TOUCH)

    def get(self, session_id: str) -> SessionRecord | None:
        raw = self._client.get(self._prefix + session_id)
        if raw is None:
            return None
        try:
            fields = json.loads(str(raw))
            order = ("id", "lesson", "config", "cursor", "created", "last_used")
            values = tuple(fields[name] for name in order)
        except (ValueError, KeyError, TypeError):
            raise BadRecord(session_id) from None
        return _record(session_id, values)

    def check(self) -> dict[str, Any]:
        import redis

        try:
            self._client.ping()
        except redis.RedisError as error:
            return {"kind": "redis", "set_aside": None, "error": str(error)[:200]}
        return {"kind": "redis", "set_aside": None}

    def add(self, record: SessionRecord, *, limit: int) -> bool:
        # NOTE: cjson turns integral floats into integers, so config goes in as a JSON
        # string of its own: a learning_rate of 1.0 must come back as 1.0, not 1.
        raw = json.dumps({**record.__dict__, "config": json.dumps(record.config)})
        keys = [self._index, self._prefix + record.id]
        args: list[str | int | float] = [
            limit,
            record.last_used,
            record.last_used - self._ttl,
            record.id,
            raw,
            self._ttl,
            self._prefix,
        ]
        return bool(self._add(keys=keys, args=args))

    def touch(self, session_id: str, *, cursor: int, last_used: float) -> None:
        keys = [self._index, self._prefix + session_id]
        self._touch(keys=keys, args=[session_id, cursor, last_used, self._ttl])

    def delete(self, session_id: str) -> bool:
        pipe = self._client.pipeline()
        pipe.delete(self._prefix + session_id)
        pipe.zrem(self._index, session_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    def expire(self, *, before: float) -> list[str]:
        ids = [str(i) for i in self._client.zrangebyscore(self._index, "-inf", f"({before}")]
        if ids:
            pipe = self._client.pipeline()
            pipe.zrem(self._index, *ids)
            pipe.delete(*(self._prefix + i for i in ids))
            pipe.execute()
        return ids

    def close(self) -> None:
        self._client.close()


def open_records(url: str | None, *, data_dir: Path, ttl_s: float) -> Records:
    """Open the record store `url` names: Redis for redis URLs, else SQLite in `data_dir`."""
    parts = urlsplit(url or "")
    if parts.scheme in ("redis", "rediss", "unix"):
        assert url is not None
        return RedisRecords(url, ttl_s=ttl_s)
    path = Path(parts.path) if parts.scheme == "sqlite" and parts.path else Path("sessions.db")
    return SQLiteRecords(data_dir / path)
