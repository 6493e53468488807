"""Read positions in Redis, shared by every chat process on it.

Keys, under the history store's prefix: ``reads:pos:<user>`` (a hash: room
-> position) and ``reads:order:<user>`` (a sorted set: room -> when it last
moved, for the bound). ``advance`` is one Lua script: the maximum, the
bound and the time to live in one atomic step and one round trip, so two
processes moving one position at once keep the higher. Both keys expire
``KEEP_SECONDS`` after the user's last move.
"""

from __future__ import annotations

from typing import Any

import redis

from chatcore.history import StoreUnreachable
from chatcore.history.redis import DEFAULT_PREFIX
from chatcore.reads import KEEP_SECONDS, ROOMS_PER_USER_MAX

# KEYS: positions, order. ARGV: room, position, now, rooms max, ttl seconds.
# Returns 1 when the position moved, 0 when it was there already.
_ADVANCE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if current and current >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  for _, room in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('HDEL', KEYS[1], room)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


class RedisReads:
    """Read positions in Redis.

    Args:
        client: the history store's client (its pool is shared).
        prefix: the history store's key prefix.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = DEFAULT_PREFIX,
        rooms_per_user: int = ROOMS_PER_USER_MAX,
    ):
        self.client = client
        self._key = prefix + "reads:"
        self._rooms_max = rooms_per_user
        self._advance = client.register_script(_ADVANCE)

    def _keys(self, user_id: str) -> list[str]:
        return [self._key + "pos:" + user_id, self._key + "order:" + user_id]

    def _call(self, what: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnreachable(f"cannot {what}: {exc}") from None

    def position(self, user_id: str, room: str) -> int | None:
        found = self._call(
            "read a read position", self.client.hget, self._keys(user_id)[0], room
        )
        return int(found) if found is not None else None

    def advance(self, user_id: str, room: str, read: int, now: float) -> bool:
        moved = self._call(
            "move a read position",
            self._advance,
            keys=self._keys(user_id),
            args=[room, read, repr(now), self._rooms_max, KEEP_SECONDS],
        )
        return bool(moved)

    def forget(self, user_id: str, room: str) -> None:
        positions, order = self._keys(user_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(positions, room)
        pipe.zrem(order, room)
        self._call("forget a read position", pipe.execute)

    def flush(self) -> None:
        pass  # every change is written at once

    def purge(self, now: float) -> None:
        pass  # the keys expire by themselves
