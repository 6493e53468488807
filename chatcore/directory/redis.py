"""The room directory in Redis, shared by every chat process on it.

Keys, under the history store's prefix: ``private:all`` (a set of private
room names), ``private:room:<room>`` (a hash: created, creator),
``private:members:<room>`` (a set of user ids), ``private:user:<user>`` (the
private rooms of a user) and ``private:creator:<user>`` (the rooms they
created). A direct conversation's hash also has ``kind`` = ``dm``; beside it
``dm:names:<room>`` (a hash: user id -> name when it was opened),
``dm:user:<user>`` (a user's conversations) and ``dm:opened:<user>`` (a
sorted set of the conversations they opened, by time, kept for an hour).

Changes are Lua scripts, so a check and its write are one atomic
step across processes; reads go to Redis every time (one round trip, no
cache), so a member added through one process may join through any other
at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from chatcore.directory import (
    DM,
    DM_PER_HOUR,
    DM_ROOMS_MAX,
    MEMBERS_MAX,
    PRIVATE_ROOMS_MAX,
    ROOMS_PER_CREATOR_MAX,
    Access,
    DirectoryRefusal,
    PrivateRoom,
    RoomTaken,
    dm_full_message,
    dm_rate_message,
    full_message,
    not_this_conversation,
)
from chatcore.history import StoreUnreachable
from chatcore.history.redis import DEFAULT_PREFIX

# KEYS: all, room hash, members, creator's rooms, creator's memberships.
# ARGV: room, creator, now, per-creator max, rooms max.
_CREATE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'exists' end
if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[4]) then return 'creator' end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[5]) then return 'total' end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'created', ARGV[3], 'creator', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return 'ok'
"""
# KEYS: all, room hash, members, names, the opener's openings, then for each
# member their memberships and their conversations.
# ARGV: room, opener, now, per hour, dm max, rooms max, n, n ids, n names.
# 3600: HOUR, the window of the opener's rate.
_OPEN_DM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {'exists'} end
local now, n = tonumber(ARGV[3]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 3600)
if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[4]) then return {'rate'} end
for i = 1, n do
  if redis.call('SCARD', KEYS[5 + 2 * i]) >= tonumber(ARGV[5]) then
    return {'full', ARGV[7 + i]}
  end
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[6]) then return {'total'} end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'created', ARGV[3], 'creator', ARGV[2], 'kind', 'dm')
for i = 1, n do
  redis.call('SADD', KEYS[3], ARGV[7 + i])
  redis.call('HSET', KEYS[4], ARGV[7 + i], ARGV[7 + n + i])
  redis.call('SADD', KEYS[4 + 2 * i], ARGV[1])
  redis.call('SADD', KEYS[5 + 2 * i], ARGV[1])
end
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('EXPIRE', KEYS[5], 3600)
return {'ok'}
"""
# KEYS: all, members, the user's memberships. ARGV: room, user, members max.
_ADD = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 'public' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 'member' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 'ok'
"""
# KEYS: members, the user's memberships. ARGV: room, user.
_REMOVE = """
local gone = redis.call('SREM', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
return gone
"""


class RedisDirectory:
    """Private rooms in Redis.

    Args:
        client: the history store's client (its pool is shared).
        prefix: the history store's key prefix.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = DEFAULT_PREFIX,
        members_max: int = MEMBERS_MAX,
        per_creator_max: int = ROOMS_PER_CREATOR_MAX,
        rooms_max: int = PRIVATE_ROOMS_MAX,
        dm_per_hour: int = DM_PER_HOUR,
        dm_max: int = DM_ROOMS_MAX,
    ):
        self.client = client
        self._key = prefix + "private:"
        self._dm_key = prefix + "dm:"
        self._members_max = members_max
        self._per_creator_max = per_creator_max
        self._rooms_max = rooms_max
        self._dm_per_hour = dm_per_hour
        self._dm_max = dm_max
        self._create = client.register_script(_CREATE)
        self._open_dm = client.register_script(_OPEN_DM)
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)

    def _call(self, what: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnreachable(f"cannot {what}: {exc}") from None

    def access(self, room: str, user_id: str | None) -> Access:
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self._key + "room:" + room, "created", "creator", "kind")
        if user_id is not None:
            pipe.sismember(self._key + "members:" + room, user_id)
        replies = self._call("read the room directory", pipe.execute)
        created, creator, kind = replies[0]
        if created is None:
            return Access(None, False)
        private = PrivateRoom(
            room, float(created), creator.decode(), kind.decode() if kind else "private"
        )
        return Access(private, bool(replies[1]) if user_id is not None else False)

    def create(self, room: str, creator: str, now: float) -> PrivateRoom:
        keys = [
            self._key + "all",
            self._key + "room:" + room,
            self._key + "members:" + room,
            self._key + "creator:" + creator,
            self._key + "user:" + creator,
        ]
        args = [room, creator, repr(now), self._per_creator_max, self._rooms_max]
        outcome = self._call(
            "create a private room", self._create, keys=keys, args=args
        ).decode()
        if outcome == "exists":
            raise RoomTaken(f"the room '{room}' exists already")
        if outcome == "creator":
            raise DirectoryRefusal(
                f"you have created {self._per_creator_max} private rooms, "
                "the most allowed"
            )
        if outcome == "total":
            raise DirectoryRefusal(
                "no more private rooms can be created on this server"
            )
        return PrivateRoom(room, now, creator)

    def open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        ids = list(members)
        keys = [
            self._key + "all",
            self._key + "room:" + room,
            self._key + "members:" + room,
            self._dm_key + "names:" + room,
            self._dm_key + "opened:" + opener,
        ]
        for user_id in ids:
            keys += [self._key + "user:" + user_id, self._dm_key + "user:" + user_id]
        args = [
            room,
            opener,
            repr(now),
            self._dm_per_hour,
            self._dm_max,
            self._rooms_max,
            len(ids),
            *ids,
            *(members[user_id] for user_id in ids),
        ]
        outcome = self._call(
            "open a direct conversation", self._open_dm, keys=keys, args=args
        )
        match outcome[0].decode():
            case "exists":
                found = self.access(room, opener).room
                if found is None or not found.is_dm or self.members(room) != set(ids):
                    raise not_this_conversation(room)
                return found, False
            case "rate":
                raise DirectoryRefusal(dm_rate_message(self._dm_per_hour))
            case "full":
                name = members.get(outcome[1].decode(), "")
                raise DirectoryRefusal(dm_full_message(name, self._dm_max))
            case "total":
                raise DirectoryRefusal(
                    "no more private rooms can be created on this server"
                )
        return PrivateRoom(room, now, opener, DM), True

    def dm_names(self, room: str) -> dict[str, str]:
        found = self._call(
            "read the room directory",
            self.client.hgetall,
            self._dm_key + "names:" + room,
        )
        return {user_id.decode(): name.decode() for user_id, name in found.items()}

    def add(self, room: str, user_id: str) -> bool:
        keys = [
            self._key + "all",
            self._key + "members:" + room,
            self._key + "user:" + user_id,
        ]
        outcome = self._call(
            "add a member",
            self._add,
            keys=keys,
            args=[room, user_id, self._members_max],
        ).decode()
        if outcome == "public":
            raise DirectoryRefusal(f"the room '{room}' is not private")
        if outcome == "full":
            raise DirectoryRefusal(full_message(self._members_max))
        return outcome == "ok"

    def remove(self, room: str, user_id: str) -> bool:
        keys = [self._key + "members:" + room, self._key + "user:" + user_id]
        gone = self._call(
            "remove a member", self._remove, keys=keys, args=[room, user_id]
        )
        return bool(gone)

    def members(self, room: str) -> set[str]:
        found = self._call(
            "read the room directory",
            self.client.smembers,
            self._key + "members:" + room,
        )
        return {user_id.decode() for user_id in found}

    def private_among(self, rooms: Iterable[str]) -> set[str]:
        rooms = list(rooms)
        if not rooms:
            return set()
        flags = self._call(
            "read the room directory",
            self.client.smismember,
            self._key + "all",
            rooms,
        )
        return {room for room, flag in zip(rooms, flags, strict=True) if flag}

    def rooms_of(self, user_id: str) -> set[str]:
        found = self._call(
            "read the room directory",
            self.client.smembers,
            self._key + "user:" + user_id,
        )
        return {room.decode() for room in found}
