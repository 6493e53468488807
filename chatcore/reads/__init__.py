"""Read positions: how far each person has read each room, on every device.

A position is the highest message id a user has read in a room. It only
moves forward (``advance`` keeps the maximum), so two devices reading at
once, or a late frame, can never bring unread messages back.

Every backend (memory, SQLite, Redis) keeps at most ``ROOMS_PER_USER_MAX``
positions per user (the least recently moved ones go first) and forgets
positions untouched for ``KEEP_SECONDS`` (``purge``). The SQLite backend
batches its writes: ``advance`` keeps the new position in memory and
``flush``, called every ``FLUSH_EVERY`` seconds, writes all of them in one
transaction, so a read frame per second per person costs no commit of its
own.
"""

from __future__ import annotations

from typing import Any, Protocol

ROOMS_PER_USER_MAX = 200  # positions kept per user, the most recently moved
KEEP_SECONDS = 90 * 24 * 3600  # a position not moved for this long is purged
FLUSH_EVERY = 2.0  # seconds between the SQLite backend's batched writes


class ReadStore(Protocol):
    """Each user's read position per room.

    Every method raises HistoryError when the backend cannot be used.
    """

    def position(self, user_id: str, room: str) -> int | None:
        """The highest id ``user_id`` has read in ``room``; None if unknown."""

    def advance(self, user_id: str, room: str, read: int, now: float) -> bool:
        """Move the position to ``read`` if that is further; say whether it moved."""

    def forget(self, user_id: str, room: str) -> None:
        """Drop the position (the user left the room, or was removed from it)."""

    def flush(self) -> None:
        """Write what waits (only the SQLite backend batches)."""

    def purge(self, now: float) -> None:
        """Drop positions not moved for ``KEEP_SECONDS``."""


def open_reads(history: Any) -> ReadStore:
    """The read positions beside ``history``: in its Redis (client and
    prefix), its SQLite file (connection), or in memory."""
    module = type(history).__module__
    if module == "chatcore.history.redis":
        from chatcore.reads.redis import RedisReads

        return RedisReads(history.client, history.prefix)
    if module == "chatcore.history.sqlite":
        from chatcore.reads.sqlite import SqliteReads

        return SqliteReads(history.connection)
    from chatcore.reads.memory import MemoryReads

    return MemoryReads()
