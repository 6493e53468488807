"""The room directory in the history's SQLite file (tables ``private_rooms``
and ``room_members``, added by a migration of chatcore/history/sqlite.py).

Reads go to the file every time (no cache): a primary-key lookup costs a few
microseconds, and the file is the only truth.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from chatcore.directory import (
    DM,
    DM_PER_HOUR,
    DM_ROOMS_MAX,
    HOUR,
    MEMBERS_MAX,
    PRIVATE,
    PRIVATE_ROOMS_MAX,
    ROOMS_PER_CREATOR_MAX,
    Access,
    DirectoryRefusal,
    PrivateRoom,
    RoomTaken,
    check_bounds,
    check_dm_bounds,
    full_message,
    not_this_conversation,
)
from chatcore.history import HistoryError

# SQLite's default cap on bound parameters is 999 in old builds: stay below.
_IN_CHUNK = 500


class SqliteDirectory:
    """Private rooms in SQLite.

    Args:
        db: the history store's connection (one file, one writer), in
            autocommit mode; each change is written at once.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        members_max: int = MEMBERS_MAX,
        per_creator_max: int = ROOMS_PER_CREATOR_MAX,
        rooms_max: int = PRIVATE_ROOMS_MAX,
        dm_per_hour: int = DM_PER_HOUR,
        dm_max: int = DM_ROOMS_MAX,
    ):
        self._db = db
        self._members_max = members_max
        self._per_creator_max = per_creator_max
        self._rooms_max = rooms_max
        self._dm_per_hour = dm_per_hour
        self._dm_max = dm_max

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the room directory: {exc}") from None

    def _room(self, room: str) -> PrivateRoom | None:
        rows = self._rows(
            "SELECT name, created, creator, kind FROM private_rooms WHERE name = ?",
            (room,),
        )
        return PrivateRoom(*rows[0]) if rows else None

    def access(self, room: str, user_id: str | None) -> Access:
        private = self._room(room)
        if private is None or user_id is None:
            return Access(private, False)
        rows = self._rows(
            "SELECT 1 FROM room_members WHERE room = ? AND user_id = ?",
            (room, user_id),
        )
        return Access(private, bool(rows))

    def create(self, room: str, creator: str, now: float) -> PrivateRoom:
        # One transaction: the checks and both rows, or nothing.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._create(room, creator, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot create a private room: {exc}") from None
        return PrivateRoom(room, now, creator)

    def _create(self, room: str, creator: str, now: float) -> None:
        db = self._db
        if db.execute("SELECT 1 FROM private_rooms WHERE name = ?", (room,)).fetchone():
            raise RoomTaken(f"the room '{room}' exists already")
        created = db.execute(
            "SELECT COUNT(*) FROM private_rooms WHERE creator = ? AND kind = ?",
            (creator, PRIVATE),
        ).fetchone()[0]
        total = db.execute("SELECT COUNT(*) FROM private_rooms").fetchone()[0]
        check_bounds(created, total, self._per_creator_max, self._rooms_max)
        db.execute(
            "INSERT INTO private_rooms (name, created, creator) VALUES (?, ?, ?)",
            (room, now, creator),
        )
        db.execute(
            "INSERT INTO room_members (room, user_id) VALUES (?, ?)", (room, creator)
        )

    def open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                opened = self._open_dm(room, members, opener, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open a direct conversation: {exc}") from None
        return opened

    def _open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        db = self._db
        found = self._room(room)
        if found is not None:
            if not found.is_dm or self.members(room) != set(members):
                raise not_this_conversation(room)
            return found, False
        opened = db.execute(
            "SELECT COUNT(*) FROM private_rooms "
            "WHERE creator = ? AND kind = ? AND created > ?",
            (opener, DM, now - HOUR),
        ).fetchone()[0]
        conversations = {
            user_id: db.execute(
                "SELECT COUNT(*) FROM room_members m "
                "JOIN private_rooms p ON p.name = m.room "
                "WHERE m.user_id = ? AND p.kind = ?",
                (user_id, DM),
            ).fetchone()[0]
            for user_id in members
        }
        total = db.execute("SELECT COUNT(*) FROM private_rooms").fetchone()[0]
        check_dm_bounds(
            opened,
            self._dm_per_hour,
            conversations,
            members,
            self._dm_max,
            total,
            self._rooms_max,
        )
        db.execute(
            "INSERT INTO private_rooms (name, created, creator, kind) "
            "VALUES (?, ?, ?, ?)",
            (room, now, opener, DM),
        )
        db.executemany(
            "INSERT INTO room_members (room, user_id, name) VALUES (?, ?, ?)",
            [(room, user_id, name) for user_id, name in members.items()],
        )
        return PrivateRoom(room, now, opener, DM), True

    def dm_names(self, room: str) -> dict[str, str]:
        rows = self._rows(
            "SELECT m.user_id, m.name FROM room_members m "
            "JOIN private_rooms p ON p.name = m.room "
            "WHERE m.room = ? AND p.kind = ?",
            (room, DM),
        )
        return dict(rows)

    def add(self, room: str, user_id: str) -> bool:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                added = self._add(room, user_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot add a member: {exc}") from None
        return added

    def _add(self, room: str, user_id: str) -> bool:
        db = self._db
        if not db.execute(
            "SELECT 1 FROM private_rooms WHERE name = ?", (room,)
        ).fetchone():
            raise DirectoryRefusal(f"the room '{room}' is not private")
        if db.execute(
            "SELECT 1 FROM room_members WHERE room = ? AND user_id = ?",
            (room, user_id),
        ).fetchone():
            return False
        count = db.execute(
            "SELECT COUNT(*) FROM room_members WHERE room = ?", (room,)
        ).fetchone()[0]
        if count >= self._members_max:
            raise DirectoryRefusal(full_message(self._members_max))
        db.execute(
            "INSERT INTO room_members (room, user_id) VALUES (?, ?)", (room, user_id)
        )
        return True

    def remove(self, room: str, user_id: str) -> bool:
        try:
            cursor = self._db.execute(
                "DELETE FROM room_members WHERE room = ? AND user_id = ?",
                (room, user_id),
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot remove a member: {exc}") from None
        return cursor.rowcount > 0

    def members(self, room: str) -> set[str]:
        rows = self._rows("SELECT user_id FROM room_members WHERE room = ?", (room,))
        return {row[0] for row in rows}

    def private_among(self, rooms: Iterable[str]) -> set[str]:
        rooms = list(rooms)
        found: set[str] = set()
        for start in range(0, len(rooms), _IN_CHUNK):
            chunk = rooms[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT name FROM private_rooms WHERE name IN ({marks})", tuple(chunk)
            )
            found.update(row[0] for row in rows)
        return found

    def rooms_of(self, user_id: str) -> set[str]:
        rows = self._rows("SELECT room FROM room_members WHERE user_id = ?", (user_id,))
        return {row[0] for row in rows}
