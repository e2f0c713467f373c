"""Where session records persist: SQLite by default, Redis to share them between replicas.

A session record is `{id, lesson, config, cursor, created, last_used}`: what it takes to
rebuild a session by replay. `app.engine.store` keeps the live sessions on top of them.

A record may also name the client that created it (`address`, `browser`: opaque keys the
API derives from the client's address and its browser token), so that `add` can hold
each client to its own cap (`Quota`) in the same atomic step as the server-wide one.
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
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = [
    "QUOTA",
    "BadRecord",
    "ClientCapReached",
    "Quota",
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
    # The client that created the session (keys, never the raw token): None for records
    # written before clients were counted, and for sessions made without a Quota.
    address: str | None = None
    browser: str | None = None
    # When the session's host made the move that set `cursor` (its clock): a touch with
    # an older stamp (a worker slow to write what an earlier move answered) keeps the
    # cursor, and a host follows a record stamped after its own last move (another
    # replica moved the session).
    moved: float = 0.0
    # A learner's edit of the lesson's program, run in its place (None: the lesson's own).
    source: str | None = None


@dataclass(frozen=True)
class Quota:
    """Who is creating a session and the caps that hold for them.

    `browser` is None for a client that sent no browser token: only its address counts.
    """

    address: str
    browser: str | None
    address_limit: int
    browser_limit: int


class ClientCapReached(Exception):
    """A client holds as many sessions as its cap allows (`cap`: "browser" or "address")."""

    def __init__(self, cap: str, limit: int) -> None:
        self.cap = cap
        self.limit = limit
        whose = (
            "this browser already holds its limit of"
            if cap == "browser"
            else "your network address already holds its limit of"
        )
        super().__init__(
            f"{whose} {limit} sessions ({cap} cap); delete sessions you no longer need "
            "(DELETE /api/sessions/{id}, or close their tabs) or wait for idle ones to expire"
        )


# NOTE: the quota of the request being served. The create route sets it around
# SessionStore.create, and `add` falls back on it for a record that names no client: the
# store need not know about clients for them to be counted, atomically, where the record
# is written (same thread, or a copied context).
QUOTA: ContextVar[Quota | None] = ContextVar("agx_quota", default=None)


def _with_quota(record: SessionRecord, quota: Quota | None) -> tuple[SessionRecord, Quota | None]:
    quota = quota if quota is not None else QUOTA.get()
    if quota is not None and record.address is None:
        record = replace(record, address=quota.address, browser=quota.browser)
    return record, quota


def _record(session_id: str, fields: tuple[Any, ...]) -> SessionRecord:
    """A record from its stored fields (config as a JSON string); BadRecord if damaged."""
    try:
        id_, lesson, config, cursor, created, last_used, *rest = fields
        address, browser, moved, source = [*rest, None, None, None, None][:4]
        parsed = json.loads(config)
        if not isinstance(parsed, dict) or not isinstance(cursor, int):
            raise ValueError("not a record")
        if source is not None and not isinstance(source, str):
            raise ValueError("not a source")
        if not all(key is None or isinstance(key, str) for key in (address, browser)):
            raise ValueError("not a client key")
        return SessionRecord(
            id_,
            lesson,
            parsed,
            cursor,
            float(created),
            float(last_used),
            address,
            browser,
            float(moved or 0.0),
            source,
        )
    except (TypeError, ValueError):
        raise BadRecord(session_id) from None


class Records(Protocol):
    """Where session records persist; every method is safe to call from any thread."""

    def get(self, session_id: str) -> SessionRecord | None: ...

    def add(self, record: SessionRecord, *, limit: int, quota: Quota | None = None) -> bool:
        """Insert `record` unless `limit` records exist already; say whether it was.

        With a `quota` (by default the context's `QUOTA`), the record is stamped with its
        client's keys and `ClientCapReached` is raised, nothing written, when the browser
        or the address already holds its cap.
        """
        ...

    def count(self, *, address: str | None = None, browser: str | None = None) -> int:
        """How many records name this client key (both given: records matching both)."""
        ...

    def touch(
        self, session_id: str, *, cursor: int, last_used: float, moved: float | None = None
    ) -> None:
        """Mark the session used at `last_used` and at `cursor` (given `moved`, the stamp
        of the move that set it: only if no later move's stamp is there)."""
        ...

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
                " last_used REAL NOT NULL, address TEXT, browser TEXT, moved REAL, source TEXT)"
            )
            # Migration: databases written before clients were counted lack the two
            # client columns; their records count against no client.
            columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
            for column in ("address", "browser"):
                if column not in columns:
                    db.execute(f"ALTER TABLE sessions ADD COLUMN {column} TEXT")
            if "moved" not in columns:  # and before moves were stamped
                db.execute("ALTER TABLE sessions ADD COLUMN moved REAL")
            if "source" not in columns:  # and before edited code
                db.execute("ALTER TABLE sessions ADD COLUMN source TEXT")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions (last_used)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_address ON sessions (address)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_browser ON sessions (browser)")
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
                "SELECT id, lesson, config, cursor, created, last_used, address, browser,"
                " moved, source FROM sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
        if row is None:
            return None
        return _record(session_id, tuple(row))

    def add(self, record: SessionRecord, *, limit: int, quota: Quota | None = None) -> bool:
        record, quota = _with_quota(record, quota)
        with self._lock:
            # IMMEDIATE takes the write lock before counting, so processes cannot overshoot.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if quota is not None:
                    self._check_quota(quota)
                (count,) = self._db.execute("SELECT count(*) FROM sessions").fetchone()
                if count >= limit:
                    return False
                self._db.execute(
                    "INSERT INTO sessions (id, lesson, config, cursor, created, last_used,"
                    " address, browser, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.lesson,
                        json.dumps(record.config),
                        record.cursor,
                        record.created,
                        record.last_used,
                        record.address,
                        record.browser,
                        record.source,
                    ),
                )
                return True
            finally:
                self._db.execute("COMMIT")

    def _check_quota(self, quota: Quota) -> None:
        # The browser's own cap first: it is the one its user can do something about.
        if quota.browser is not None and self._count(browser=quota.browser) >= quota.browser_limit:
            raise ClientCapReached("browser", quota.browser_limit)
        if self._count(address=quota.address) >= quota.address_limit:
            raise ClientCapReached("address", quota.address_limit)

    def count(self, *, address: str | None = None, browser: str | None = None) -> int:
        with self._lock:
            return self._count(address=address, browser=browser)

    def _count(self, *, address: str | None = None, browser: str | None = None) -> int:
        where = [f"{name} = ?" for name, key in (("address", address), ("browser", browser)) if key]
        if not where:
            raise ValueError("count needs an address or a browser key")
        keys = [key for key in (address, browser) if key]
        query = "SELECT count(*) FROM sessions WHERE " + " AND ".join(where)
        (found,) = self._db.execute(query, keys).fetchone()
        return int(found)

    def touch(
        self, session_id: str, *, cursor: int, last_used: float, moved: float | None = None
    ) -> None:
        with self._lock:
            if moved is None:
                self._db.execute(
                    "UPDATE sessions SET cursor = ?, last_used = ? WHERE id = ?",
                    (cursor, last_used, session_id),
                )
                return
            self._db.execute(
                "UPDATE sessions SET last_used = ?,"
                " cursor = CASE WHEN COALESCE(moved, 0) <= ? THEN ? ELSE cursor END,"
                " moved = MAX(COALESCE(moved, 0), ?) WHERE id = ?",
                (last_used, moved, cursor, moved, session_id),
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


# Every session in Redis has a record (a JSON string expiring by TTL) and a place in the
# index (a sorted set of ids by last use, which counts them for the cap); one created with
# a quota also has a place in its address's and its browser's sorted sets, kept at the
# same score, so that an entry past the TTL is stale in all of them alike.
#
# KEYS: index, record, address set, browser set; ARGV: limit, now, expired-before, id,
# record JSON, ttl seconds, record key prefix, address limit, browser limit (a limit of
# -1: that key does not count). Expired ones are dropped first, so they do not count
# against any cap. Returns 1 (added), 0 (server cap), -1 (browser cap), -2 (address cap).
_ADD = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
for _, id in ipairs(expired) do redis.call('DEL', ARGV[7] .. id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local address_limit = tonumber(ARGV[8])
local browser_limit = tonumber(ARGV[9])
if browser_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[3])
  if redis.call('ZCARD', KEYS[4]) >= browser_limit then return -1 end
end
if address_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[3])
  if redis.call('ZCARD', KEYS[3]) >= address_limit then return -2 end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
for i, limit in ipairs({address_limit, browser_limit}) do
  if limit >= 0 then
    redis.call('ZADD', KEYS[2 + i], ARGV[2], ARGV[4])
    redis.call('EXPIRE', KEYS[2 + i], ARGV[6])
  end
end
return 1
"""
# KEYS: index, record; ARGV: id, cursor, last_used, ttl seconds, client set prefix,
# the move's stamp ('' for none: the cursor is set whatever the record's stamp).
_TOUCH = """
local raw = redis.call('GET', KEYS[2])
if not raw then return 0 end
local record = cjson.decode(raw)
if ARGV[6] == '' then
  record['cursor'] = tonumber(ARGV[2])
else
  local moved = tonumber(ARGV[6])
  local stamped = tonumber(record['moved']) or 0
  if stamped <= moved then
    record['cursor'] = tonumber(ARGV[2])
    record['moved'] = moved
  end
end
record['last_used'] = tonumber(ARGV[3])
redis.call('SET', KEYS[2], cjson.encode(record), 'EX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
for _, kind in ipairs({'address', 'browser'}) do
  local key = record[kind]
  if type(key) == 'string' then
    local set = ARGV[5] .. kind .. ':' .. key
    redis.call('ZADD', set, 'XX', ARGV[3], ARGV[1])
    redis.call('EXPIRE', set, ARGV[4])
  end
end
return 1
"""
# KEYS: index; ARGV: client set prefix, record key prefix, ids... Deletes each session's
# record and its places in the index and its client sets; returns how many records existed.
_DELETE = """
local deleted = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('GET', ARGV[2] .. id)
  if raw then
    deleted = deleted + 1
    local ok, record = pcall(cjson.decode, raw)
    if ok and type(record) == 'table' then
      for _, kind in ipairs({'address', 'browser'}) do
        if type(record[kind]) == 'string' then
          redis.call('ZREM', ARGV[1] .. kind .. ':' .. record[kind], id)
        end
      end
    end
    redis.call('DEL', ARGV[2] .. id)
  end
  redis.call('ZREM', KEYS[1], id)
end
return deleted
"""


class RedisRecords:
    """Records in Redis, shared by replicas: one JSON string per session, expiring by TTL,
    a sorted set of ids by last use that counts them for the cap, and one such set per
    client key that counts a client's sessions."""

    def __init__(self, url: str, *, ttl_s: float, prefix: str = "agx:") -> None:
        import redis

        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._ttl = max(1, math.ceil(ttl_s))
        self._index = f"{prefix}sessions"
        self._prefix = f"{prefix}session:"
        self._clients = f"{prefix}client:"
        self._add = self._client.register_script(_ADD)
        self._touch = self._client.register_script(_TOUCH)
        self._delete = self._client.register_script(_DELETE)

    def get(self, session_id: str) -> SessionRecord | None:
        raw = self._client.get(self._prefix + session_id)
        if raw is None:
            return None
        try:
            fields = json.loads(str(raw))
            order = ("id", "lesson", "config", "cursor", "created", "last_used")
            values = tuple(fields[name] for name in order)
            values += tuple(fields.get(name) for name in ("address", "browser", "moved", "source"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadRecord(session_id) from None
        return _record(session_id, values)

    def check(self) -> dict[str, Any]:
        import redis

        try:
            self._client.ping()
        except redis.RedisError as error:
            return {"kind": "redis", "set_aside": None, "error": str(error)[:200]}
        return {"kind": "redis", "set_aside": None}

    def _set(self, kind: str, key: str | None) -> str:
        return f"{self._clients}{kind}:{key or ''}"

    def add(self, record: SessionRecord, *, limit: int, quota: Quota | None = None) -> bool:
        record, quota = _with_quota(record, quota)
        # NOTE: cjson turns integral floats into integers, so config goes in as a JSON
        # string of its own: a learning_rate of 1.0 must come back as 1.0, not 1.
        raw = json.dumps({**record.__dict__, "config": json.dumps(record.config)})
        keys = [
            self._index,
            self._prefix + record.id,
            self._set("address", record.address),
            self._set("browser", record.browser),
        ]
        address_limit = quota.address_limit if quota is not None else -1
        browser_limit = quota.browser_limit if quota and quota.browser else -1
        args: list[str | int | float] = [
            limit,
            record.last_used,
            record.last_used - self._ttl,
            record.id,
            raw,
            self._ttl,
            self._prefix,
            address_limit if record.address else -1,
            browser_limit if record.browser else -1,
        ]
        verdict = int(self._add(keys=keys, args=args))
        if verdict == -1:
            raise ClientCapReached("browser", browser_limit)
        if verdict == -2:
            raise ClientCapReached("address", address_limit)
        return verdict == 1

    def count(self, *, address: str | None = None, browser: str | None = None) -> int:
        if not (address or browser):
            raise ValueError("count needs an address or a browser key")
        fresh = f"({time.time() - self._ttl}"
        found: set[str] | None = None
        for kind, key in (("address", address), ("browser", browser)):
            if key:
                ids = {
                    str(i) for i in self._client.zrangebyscore(self._set(kind, key), fresh, "+inf")
                }
                found = ids if found is None else found & ids
        return len(found or ())

    def touch(
        self, session_id: str, *, cursor: int, last_used: float, moved: float | None = None
    ) -> None:
        keys = [self._index, self._prefix + session_id]
        stamp = "" if moved is None else repr(moved)
        args: list[str | int | float] = [
            session_id,
            cursor,
            last_used,
            self._ttl,
            self._clients,
            stamp,
        ]
        self._touch(keys=keys, args=args)

    def delete(self, session_id: str) -> bool:
        return bool(
            self._delete(keys=[self._index], args=[self._clients, self._prefix, session_id])
        )

    def expire(self, *, before: float) -> list[str]:
        ids = [str(i) for i in self._client.zrangebyscore(self._index, "-inf", f"({before}")]
        if ids:
            self._delete(keys=[self._index], args=[self._clients, self._prefix, *ids])
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
