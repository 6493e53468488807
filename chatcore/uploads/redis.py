"""Upload metadata in Redis, shared by every chat process on it.

Keys, under the history's prefix then ``uploads:`` (``chat:uploads:`` by
default): ``u:<id>`` (a hash: ``json``, the upload; ``user``, ``room``,
``cost``; ``message``: "" unused, "0" claimed, else the message's id),
``used`` (a hash: user -> bytes of quota), ``unused`` (a sorted set: id by
creation time), ``room:<room>`` (a sorted set: id by message id) and
``rooms`` (the rooms with attached uploads), ``secret`` (the token key).
The quota check and its write, a claim, and a removal are Lua scripts: one
atomic step across processes.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import redis

from chatcore.history import HistoryError
from chatcore.history.redis import DEFAULT_PREFIX
from chatcore.uploads import CLAIMED, QuotaExceeded, Upload

# KEYS: u:<id>, used, unused. ARGV: json, user, room, cost, quota, id, created.
_ADD = """
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if used + tonumber(ARGV[4]) > tonumber(ARGV[5]) then return {0, used} end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'user', ARGV[2], 'room', ARGV[3],
  'cost', ARGV[4], 'message', '')
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[6])
return {1, used}
"""
# KEYS: u:<id>. ARGV: user, room.
_CLAIM = """
local v = redis.call('HMGET', KEYS[1], 'json', 'message', 'user', 'room')
if not v[1] or v[2] ~= '' or v[3] ~= ARGV[1] or v[4] ~= ARGV[2] then
  return false
end
redis.call('HSET', KEYS[1], 'message', '0')
return v[1]
"""
# KEYS: u:<id>, unused, room:<room>, rooms. ARGV: id, message id, room.
_BIND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'message', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[3])
return 1
"""
# KEYS: u:<id>, used, unused, rooms. ARGV: id, the prefix of room:<room>.
_REMOVE = """
local v = redis.call('HMGET', KEYS[1], 'json', 'message', 'user', 'room', 'cost')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
if redis.call('HINCRBY', KEYS[2], v[3], -tonumber(v[5])) <= 0 then
  redis.call('HDEL', KEYS[2], v[3])
end
redis.call('ZREM', KEYS[3], ARGV[1])
local room = ARGV[2] .. v[4]
redis.call('ZREM', room, ARGV[1])
if redis.call('EXISTS', room) == 0 then redis.call('SREM', KEYS[4], v[4]) end
return {v[1], v[2]}
"""


def _upload(raw: Any, message: Any) -> Upload:
    state = message.decode() if isinstance(message, bytes) else str(message or "")
    return Upload.from_json(raw).bound(int(state) if state else None)


class RedisUploads:
    """Uploads in Redis.

    Args:
        client: the history store's client.
        prefix: the history store's prefix; keys go under ``<prefix>uploads:``.
    """

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX):
        self._client = client
        self._base = prefix + "uploads:"
        self._add = client.register_script(_ADD)
        self._claim = client.register_script(_CLAIM)
        self._bind = client.register_script(_BIND)
        self._remove = client.register_script(_REMOVE)
        self._secret: bytes | None = None

    def _key(self, upload_id: str) -> str:
        return f"{self._base}u:{upload_id}"

    def _call(self, what: str, operation: Any) -> Any:
        try:
            return operation()
        except redis.RedisError as exc:
            raise HistoryError(f"cannot {what} in Redis: {exc}") from None

    def add(self, upload: Upload, quota: int) -> None:
        stored = dataclasses.replace(upload, message_id=None)
        added, used = self._call(
            "store an upload",
            lambda: self._add(
                keys=[self._key(upload.id), self._base + "used", self._base + "unused"],
                args=[
                    stored.to_json(),
                    upload.user_id,
                    upload.room,
                    upload.cost,
                    quota,
                    upload.id,
                    upload.created,
                ],
            ),
        )
        if not added:
            raise QuotaExceeded(int(used))

    def get(self, upload_id: str) -> Upload | None:
        raw, message = self._call(
            "read an upload",
            lambda: self._client.hmget(self._key(upload_id), "json", "message"),
        )
        return _upload(raw, message) if raw else None

    def claim(self, upload_id: str, user_id: str, room: str) -> Upload | None:
        raw = self._call(
            "claim an upload",
            lambda: self._claim(keys=[self._key(upload_id)], args=[user_id, room]),
        )
        return _upload(raw, "") if raw else None

    def bind(self, upload_id: str, room: str, message_id: int) -> None:
        self._call(
            "attach an upload",
            lambda: self._bind(
                keys=[
                    self._key(upload_id),
                    self._base + "unused",
                    f"{self._base}room:{room}",
                    self._base + "rooms",
                ],
                args=[upload_id, message_id, room],
            ),
        )

    def release(self, upload_id: str) -> None:
        # Only a claim ("0") goes back to unused; a bound upload stays bound.
        key = self._key(upload_id)
        self._call(
            "release an upload",
            lambda: self._client.eval(
                "if redis.call('HGET', KEYS[1], 'message') == ARGV[1] then "
                "redis.call('HSET', KEYS[1], 'message', '') end",
                1,
                key,
                str(CLAIMED),
            ),
        )

    def remove(self, upload_id: str) -> Upload | None:
        found = self._call(
            "remove an upload",
            lambda: self._remove(
                keys=[
                    self._key(upload_id),
                    self._base + "used",
                    self._base + "unused",
                    self._base + "rooms",
                ],
                args=[upload_id, self._base + "room:"],
            ),
        )
        return _upload(found[0], found[1]) if found else None

    def _many(self, ids: list[Any]) -> list[Upload]:
        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for upload_id in ids:
                name = upload_id.decode() if isinstance(upload_id, bytes) else upload_id
                pipe.hmget(self._key(name), "json", "message")
            return pipe.execute()

        rows = self._call("read uploads", read) if ids else []
        return [_upload(raw, message) for raw, message in rows if raw]

    def unused_before(self, created: float, limit: int) -> list[Upload]:
        ids = self._call(
            "read uploads",
            lambda: self._client.zrangebyscore(
                self._base + "unused", "-inf", f"({created}", start=0, num=limit
            ),
        )
        return self._many(ids)

    def attached_rooms(self) -> list[str]:
        rooms = self._call(
            "read uploads", lambda: self._client.smembers(self._base + "rooms")
        )
        return sorted(r.decode() if isinstance(r, bytes) else r for r in rooms)

    def attached_up_to(self, room: str, message_id: int, limit: int) -> list[Upload]:
        ids = self._call(
            "read uploads",
            lambda: self._client.zrangebyscore(
                f"{self._base}room:{room}", 1, message_id, start=0, num=limit
            ),
        )
        return self._many(ids)

    def used(self, user_id: str) -> int:
        used = self._call(
            "read uploads", lambda: self._client.hget(self._base + "used", user_id)
        )
        return int(used or 0)

    def secret(self) -> bytes:
        if self._secret is None:
            key = self._base + "secret"
            fresh = secrets.token_hex(32)

            def shared() -> Any:
                self._client.set(key, fresh, nx=True)
                return self._client.get(key)

            value = self._call("read the upload key", shared)
            self._secret = value if isinstance(value, bytes) else str(value).encode()
        return self._secret
