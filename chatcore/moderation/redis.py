"""Moderation in Redis, shared by every chat process, beside the history.

Keys, under the history's prefix: ``admins`` (a set of user ids),
``roles:<room>`` (a hash of user id to role) and ``roles_of:<user>`` (a set
of rooms), ``restrict:<user>`` (a hash of ``"<kind> <room>"`` to the end
time, "" for none) and ``restricted`` (a set of the users who have such a
hash), ``bans`` (a hash of user id to the ban as JSON),
``slow`` (a hash of room to seconds), ``modlog`` (a sorted set of entries
scored by id) and ``modlog:last`` (the id counter).
"""

from __future__ import annotations

import json
import math
from typing import Any

import redis

from chatcore.history import HistoryError
from chatcore.moderation import LOG_MAX, MEMBER, Ban, LogEntry, Restriction

_LOG = """
local id = redis.call('INCR', KEYS[1])
local entry = string.gsub(ARGV[1], '"id":0', '"id":' .. id, 1)
redis.call('ZADD', KEYS[2], id, entry)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', id - tonumber(ARGV[2]))
return id
"""
SCAN_PAGE = 200  # log entries read per round trip while filtering by room


# KEYS[1]: the index of restricted users; ARGV[1]: the prefix of their
# hashes. Drops the users whose hash is gone; returns the others.
_RESTRICTED = """
local kept = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. user) == 1 then
    kept[#kept + 1] = user
  else
    redis.call('SREM', KEYS[1], user)
  end
end
return kept
"""


def _entry(raw: bytes) -> LogEntry:
    d = json.loads(raw)
    return LogEntry(
        d["id"], d["ts"], d["actor"], d["action"], d["room"], d["target"], d["detail"]
    )


class RedisModeration:
    """Roles, restrictions, bans, slow mode and the log in Redis.

    Args:
        client: the history store's client (its pool is shared).
        prefix: the history store's key prefix.
    """

    def __init__(self, client: redis.Redis, prefix: str):
        self._restricted = client.register_script(_RESTRICTED)
        self.client = client
        self.prefix = prefix
        self._log = client.register_script(_LOG)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except redis.RedisError as exc:
            raise HistoryError(f"cannot {what} in Redis: {exc}") from None

    def admins(self) -> set[str]:
        found = self._call("read the admins", self.client.smembers, self._key("admins"))
        return {uid.decode() for uid in found}

    def set_admin(self, user_id: str, admin: bool) -> bool:
        change = self.client.sadd if admin else self.client.srem
        return bool(
            self._call("change the admins", change, self._key("admins"), user_id)
        )

    def roles(self, room: str) -> dict[str, str]:
        found = self._call("read roles", self.client.hgetall, self._key("roles", room))
        return {uid.decode(): role.decode() for uid, role in found.items()}

    def rooms_of(self, user_id: str) -> list[str]:
        found = self._call(
            "read roles", self.client.smembers, self._key("roles_of", user_id)
        )
        return sorted(room.decode() for room in found)

    def set_role(self, room: str, user_id: str, role: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        if role == MEMBER:
            pipe.hdel(self._key("roles", room), user_id)
            pipe.srem(self._key("roles_of", user_id), room)
        else:
            pipe.hset(self._key("roles", room), user_id, role)
            pipe.sadd(self._key("roles_of", user_id), room)
        self._call("write a role", pipe.execute)

    def restrictions(self, user_id: str, now: float) -> list[Restriction]:
        found = self._call(
            "read restrictions", self.client.hgetall, self._key("restrict", user_id)
        )
        out = []
        for field, until in found.items():
            kind, _, room = field.decode().partition(" ")
            r = Restriction(kind, user_id, room, float(until) if until else None)
            if r.active(now):
                out.append(r)
        return out

    def restricted(self, now: float) -> set[str]:
        # The index keeps a user whose hash expired (their last timed
        # restriction ended) until a read drops them, in one atomic step
        # with the check, so a restriction written meanwhile stays indexed.
        found = self._call(
            "read the restricted",
            self._restricted,
            [self._key("restricted")],
            [self._key("restrict", "")],
        )
        return {user_id.decode() for user_id in found}

    def restrict(self, restriction: Restriction, now: float) -> None:
        r = restriction
        key = self._key("restrict", r.user_id)
        found = self._call("read restrictions", self.client.hgetall, key)
        expired = [f for f, until in found.items() if until and float(until) <= now]
        field = f"{r.kind} {r.room}".encode()
        kept = {f: u for f, u in found.items() if f not in expired and f != field}
        kept[field] = b"" if r.until is None else repr(r.until).encode()
        pipe = self.client.pipeline(transaction=True)
        if expired:
            pipe.hdel(key, *expired)
        pipe.hset(key, field, kept[field])
        pipe.sadd(self._key("restricted"), r.user_id)
        if all(kept.values()):
            # Every one timed: the whole hash goes when the last one ends.
            last = max(float(u) for u in kept.values())
            pipe.expire(key, max(1, math.ceil(last - now)))
        else:
            pipe.persist(key)
        self._call("write a restriction", pipe.execute)

    def lift(self, kind: str, user_id: str, room: str) -> bool:
        key = self._key("restrict", user_id)
        return bool(
            self._call("lift a restriction", self.client.hdel, key, f"{kind} {room}")
        )

    def ban(self, ban: Ban) -> None:
        earlier = self.banned(ban.user_id)
        addresses = ban.addresses
        if earlier is not None:
            addresses = tuple(dict.fromkeys(earlier.addresses + addresses))
        value = json.dumps([ban.reason, ban.ts, list(addresses)])
        self._call(
            "write a ban", self.client.hset, self._key("bans"), ban.user_id, value
        )

    def unban(self, user_id: str) -> bool:
        return bool(
            self._call("lift a ban", self.client.hdel, self._key("bans"), user_id)
        )

    def banned(self, user_id: str) -> Ban | None:
        raw = self._call("read a ban", self.client.hget, self._key("bans"), user_id)
        if raw is None:
            return None
        reason, ts, addresses = json.loads(raw)
        return Ban(user_id, reason, ts, tuple(addresses))

    def bans(self) -> dict[str, Ban]:
        found = self._call("read bans", self.client.hgetall, self._key("bans"))
        bans = {}
        for uid, raw in found.items():
            reason, ts, addresses = json.loads(raw)
            bans[uid.decode()] = Ban(uid.decode(), reason, ts, tuple(addresses))
        return bans

    def slow_modes(self) -> dict[str, float]:
        found = self._call("read slow mode", self.client.hgetall, self._key("slow"))
        return {room.decode(): float(s) for room, s in found.items()}

    def set_slow_mode(self, room: str, seconds: float) -> None:
        self._call(
            "write slow mode", self.client.hset, self._key("slow"), room, repr(seconds)
        )

    def log(
        self,
        ts: float,
        actor: dict[str, str],
        action: str,
        room: str,
        target: dict[str, str],
        detail: dict[str, Any],
    ) -> LogEntry:
        entry = LogEntry(0, ts, actor, action, room, target, detail)
        raw = json.dumps(
            {
                "id": 0,
                "ts": ts,
                "actor": actor,
                "action": action,
                "room": room,
                "target": target,
                "detail": detail,
            },
            separators=(",", ":"),
        )
        keys = [self._key("modlog", "last"), self._key("modlog")]
        entry_id = self._call(
            "write the moderation log", self._log, keys, [raw, LOG_MAX]
        )
        return LogEntry(int(entry_id), *_fields(entry))

    def entries(
        self, before: int | None, limit: int, rooms: list[str] | None = None
    ) -> tuple[list[LogEntry], bool]:
        if rooms is not None and not rooms:
            return [], False
        wanted = None if rooms is None else set(rooms)
        high = "+inf" if before is None else f"({before}"
        found: list[LogEntry] = []
        while True:
            page = self._call(
                "read the moderation log",
                self.client.zrevrangebyscore,
                self._key("modlog"),
                high,
                "-inf",
                0,
                SCAN_PAGE,
            )
            for raw in page:
                entry = _entry(raw)
                if wanted is not None and entry.room not in wanted:
                    continue
                if len(found) == limit:
                    return found, True
                found.append(entry)
            if len(page) < SCAN_PAGE:
                return found, False
            high = f"({_entry(page[-1]).id}"


def _fields(entry: LogEntry) -> tuple[Any, ...]:
    return (entry.ts, entry.actor, entry.action, entry.room, entry.target, entry.detail)
