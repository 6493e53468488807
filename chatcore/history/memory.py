"""History kept in this process only: fast, bounded, gone on restart."""

from __future__ import annotations

from collections import deque

from chatcore.history import Draft, StoredMessage


class MemoryHistory:
    """Keeps the newest ``max_per_room`` messages of each room in memory."""

    def __init__(self, max_per_room: int):
        self._max = max_per_room
        self._rooms: dict[str, deque[StoredMessage]] = {}
        self._last: dict[str, int] = {}

    def append(self, draft: Draft) -> StoredMessage:
        next_id = self._last.get(draft.room, 0) + 1
        self._last[draft.room] = next_id
        stored = draft.with_id(next_id)
        room = self._rooms.get(draft.room)
        if room is None:
            room = self._rooms[draft.room] = deque(maxlen=self._max)
        room.append(stored)
        return stored

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

    def last_id(self, room: str) -> int:
        return self._last.get(room, 0)

    def close(self) -> None:
        self._rooms.clear()
