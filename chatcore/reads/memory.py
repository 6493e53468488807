"""Read positions kept in this process only (``--db :memory:``)."""

from __future__ import annotations

from collections import OrderedDict

from chatcore.reads import KEEP_SECONDS, ROOMS_PER_USER_MAX

USERS_MAX = 100_000  # users with positions; the least recently active go first


class MemoryReads:
    """Positions in ordered dicts: users and each user's rooms in the order
    they last moved, so the bounds drop the stalest first."""

    def __init__(
        self, rooms_per_user: int = ROOMS_PER_USER_MAX, users_max: int = USERS_MAX
    ):
        self._rooms_max = rooms_per_user
        self._users_max = users_max
        # user id -> room -> (position, when it last moved)
        self._users: OrderedDict[str, OrderedDict[str, tuple[int, float]]] = (
            OrderedDict()
        )

    def position(self, user_id: str, room: str) -> int | None:
        found = self._users.get(user_id, {}).get(room)
        return found[0] if found is not None else None

    def advance(self, user_id: str, room: str, read: int, now: float) -> bool:
        rooms = self._users.get(user_id)
        if rooms is None:
            rooms = self._users[user_id] = OrderedDict()
            if len(self._users) > self._users_max:
                self._users.popitem(last=False)
        current = rooms.get(room)
        if current is not None and current[0] >= read:
            return False
        rooms[room] = (read, now)
        rooms.move_to_end(room)
        self._users.move_to_end(user_id)
        if len(rooms) > self._rooms_max:
            rooms.popitem(last=False)
        return True

    def forget(self, user_id: str, room: str) -> None:
        rooms = self._users.get(user_id)
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del self._users[user_id]

    def flush(self) -> None:
        pass

    def purge(self, now: float) -> None:
        cutoff = now - KEEP_SECONDS
        for user_id in list(self._users):
            rooms = self._users[user_id]
            for room, (_, moved) in list(rooms.items()):
                if moved < cutoff:
                    del rooms[room]
            if not rooms:
                del self._users[user_id]
