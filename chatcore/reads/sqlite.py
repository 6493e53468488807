"""Read positions in the history's SQLite file (table ``read_positions``,
added by a migration of chatcore/history/sqlite.py).

Writes are batched: ``advance`` keeps the new position in memory (reads see
it at once) and ``flush`` writes every waiting one in one transaction. The
server calls ``flush`` every ``FLUSH_EVERY`` seconds and on shutdown, so a
busy chat costs one small commit per interval, however many people read; a
process killed meanwhile forgets at most that interval's reading.
"""

from __future__ import annotations

import logging
import sqlite3

from chatcore.history import HistoryError
from chatcore.reads import KEEP_SECONDS, ROOMS_PER_USER_MAX

log = logging.getLogger(__name__)

# Positions waiting for a write that keeps failing (a full disk): past this
# many, a failed batch is dropped rather than kept in memory without bound.
PENDING_MAX = 50_000

_UPSERT = (
    "INSERT INTO read_positions (user_id, room, last_read, updated) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, room) DO UPDATE SET "
    "last_read = max(last_read, excluded.last_read), updated = excluded.updated"
)
_TRIM = (
    "DELETE FROM read_positions WHERE user_id = ? AND room NOT IN ("
    "SELECT room FROM read_positions WHERE user_id = ? "
    "ORDER BY updated DESC LIMIT ?)"
)


class SqliteReads:
    """Read positions in SQLite.

    Args:
        db: the history store's connection (one file, one writer), in
            autocommit mode.
    """

    def __init__(
        self, db: sqlite3.Connection, rooms_per_user: int = ROOMS_PER_USER_MAX
    ):
        self._db = db
        self._rooms_max = rooms_per_user
        # (user id, room) -> (position, when it moved): written by ``flush``
        self._pending: dict[tuple[str, str], tuple[int, float]] = {}
        # Users with a new row in the batch: only they can pass the bound.
        self._grown: set[str] = set()

    @property
    def pending(self) -> int:
        """Positions waiting for the next ``flush``."""
        return len(self._pending)

    def position(self, user_id: str, room: str) -> int | None:
        waiting = self._pending.get((user_id, room))
        if waiting is not None:
            return waiting[0]  # never below the stored one: advance checked
        try:
            row = self._db.execute(
                "SELECT last_read FROM read_positions WHERE user_id = ? AND room = ?",
                (user_id, room),
            ).fetchone()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read a read position: {exc}") from None
        return row[0] if row else None

    def advance(self, user_id: str, room: str, read: int, now: float) -> bool:
        current = self.position(user_id, room)
        if current is not None and current >= read:
            return False
        self._pending[(user_id, room)] = (read, now)
        if current is None:
            self._grown.add(user_id)
        return True

    def forget(self, user_id: str, room: str) -> None:
        self._pending.pop((user_id, room), None)
        try:
            self._db.execute(
                "DELETE FROM read_positions WHERE user_id = ? AND room = ?",
                (user_id, room),
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot forget a read position: {exc}") from None

    def flush(self) -> None:
        """Write every waiting position in one transaction, and keep each
        user who read at most ``rooms_per_user`` positions.

        Raises:
            HistoryError: the write failed; the positions wait for the next
                flush (unless too many wait already: then they are dropped).
        """
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        grown, self._grown = self._grown, set()
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    _UPSERT,
                    [
                        (user_id, room, read, moved)
                        for (user_id, room), (read, moved) in batch.items()
                    ],
                )
                self._db.executemany(
                    _TRIM, [(user_id, user_id, self._rooms_max) for user_id in grown]
                )
        except sqlite3.Error as exc:
            if len(batch) + len(self._pending) <= PENDING_MAX:
                # Keep them for the next try; newer positions win.
                self._pending = batch | self._pending
                self._grown |= grown
            else:
                log.warning(
                    "dropped %d read positions that cannot be written", len(batch)
                )
            raise HistoryError(
                f"cannot write {len(batch)} read positions: {exc}"
            ) from None

    def purge(self, now: float) -> None:
        try:
            self._db.execute(
                "DELETE FROM read_positions WHERE updated < ?", (now - KEEP_SECONDS,)
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot purge read positions: {exc}") from None
