"""History and name reservations kept in this process only: fast, gone on restart."""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque

from chatcore.history import Draft, StoredMessage

# How many (user, client_id) pairs are remembered for idempotent sends.
CLIENT_IDS_KEPT = 100_000


class MemoryHistory:
    """Keeps the newest ``max_per_room`` messages of each room in memory."""

    has_pending = False

    def __init__(self, max_per_room: int):
        self._max = max_per_room
        self._rooms: dict[str, deque[StoredMessage]] = {}
        self._last: dict[str, int] = {}
        self._by_client: OrderedDict[tuple[str, str], StoredMessage] = OrderedDict()
        self._epoch = secrets.token_hex(8)  # a new one on every start

    def append(self, draft: Draft) -> StoredMessage:
        next_id = self._last.get(draft.room, 0) + 1
        self._last[draft.room] = next_id
        stored = draft.with_id(next_id)
        room = self._rooms.get(draft.room)
        if room is None:
            room = self._rooms[draft.room] = deque(maxlen=self._max)
        room.append(stored)
        if stored.client_id is not None:
            self._by_client[(stored.user_id, stored.client_id)] = stored
            if len(self._by_client) > CLIENT_IDS_KEPT:
                self._by_client.popitem(last=False)
        return stored

    def flush(self) -> None:
        """Nothing to write: every message is stored as soon as it is appended."""

    def is_pending(self, message: StoredMessage) -> bool:
        return False

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        kept = self._rooms.get(room, ())
        if not kept:
            return []
        # Ids in a deque are consecutive, so the position is arithmetic.
        start = max(0, after_id + 1 - kept[0].id)
        return [kept[i] for i in range(start, min(len(kept), start + limit))]

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        kept = self._rooms.get(room, ())
        if not kept:
            return [], False
        end = len(kept) if before_id is None else before_id - kept[0].id
        end = max(0, min(len(kept), end))
        start = max(0, end - limit)
        return [kept[i] for i in range(start, end)], start > 0

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        return self._by_client.get((user_id, client_id))

    def last_id(self, room: str) -> int:
        return self._last.get(room, 0)

    def rooms(self) -> list[str]:
        return sorted(self._last)

    def epoch(self) -> str:
        return self._epoch

    def problem(self) -> str | None:
        return None

    def close(self) -> None:
        self._rooms.clear()


class MemoryNames:
    """Name reservations kept in this process only."""

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, float]] = {}

    def holder(self, name_key: str) -> tuple[str, float] | None:
        return self._names.get(name_key)

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        self._names[name_key] = (user_id, now)

    def release(self, name_key: str, user_id: str) -> None:
        if self._names.get(name_key, ("",))[0] == user_id:
            del self._names[name_key]
