"""The room directory in Redis, shared by every chat process on it.

Keys, under the history store's prefix: ``private:all`` (a set of private
room names), ``private:room:<room>`` (a hash: created, creator),
``private:members:<room>`` (a set of user ids), ``private:user:<user>`` (the
private rooms of a user) and ``private:creator:<user>`` (the rooms they
created). Changes are Lua scripts, so a check and its write are one atomic
step across processes; reads go to Redis every time (one round trip, no
cache), so a member added through one process may join through any other
at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from chatcore.directory import (
    MEMBERS_MAX,
    PRIVATE_ROOMS_MAX,
    ROOMS_PER_CREATOR_MAX,
    Access,
    DirectoryRefusal,
    PrivateRoom,
    RoomTaken,
    full_message,
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
    ):
        self.client = client
        self._key = prefix + "private:"
        self._members_max = members_max
        self._per_creator_max = per_creator_max
        self._rooms_max = rooms_max
        self._create = client.register_script(_CREATE)
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)

    def _call(self, what: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnreachable(f"cannot {what}: {exc}") from None

    def access(self, room: str, user_id: str | None) -> Access:
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self._key + "room:" + room, "created", "creator")
        if user_id is not None:
            pipe.sismember(self._key + "members:" + room, user_id)
        replies = self._call("read the room directory", pipe.execute)
        created, creator = replies[0]
        if created is None:
            return Access(None, False)
        private = PrivateRoom(room, float(created), creator.decode())
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
