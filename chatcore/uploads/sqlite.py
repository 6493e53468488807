"""Upload metadata in the history's SQLite file (its ``uploads`` table).

One process owns the file, so the quota check and the insert run in one
transaction of this connection. The token key is this process's own: a
restart signs new tokens, and the page asks for a new one when refused.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from chatcore.history import HistoryError
from chatcore.uploads import CLAIMED, QuotaExceeded, Upload

_COLUMNS = (
    "id, user_id, room, name, size, type, image, width, height, thumb_type, "
    "cost, created, message_id"
)


def _upload(row: tuple[Any, ...]) -> Upload:
    *head, image, width, height, thumb_type, cost, created, message_id = row
    return Upload(
        *head, bool(image), width, height, thumb_type, cost, created, message_id
    )


class SqliteUploads:
    """Uploads in SQLite.

    Args:
        db: the history store's connection (one file, one writer).
    """

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self._secret = secrets.token_bytes(32)

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read uploads: {exc}") from None

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            with self._db:
                return self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot write uploads: {exc}") from None

    def add(self, upload: Upload, quota: int) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                used = self._used(upload.user_id)
                if used + upload.cost > quota:
                    raise QuotaExceeded(used)
                self._db.execute(
                    f"INSERT INTO uploads ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        upload.id,
                        upload.user_id,
                        upload.room,
                        upload.name,
                        upload.size,
                        upload.type,
                        upload.image,
                        upload.width,
                        upload.height,
                        upload.thumb_type,
                        upload.cost,
                        upload.created,
                        upload.message_id,
                    ),
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot store an upload: {exc}") from None

    def get(self, upload_id: str) -> Upload | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", (upload_id,))
        return _upload(rows[0]) if rows else None

    def claim(self, upload_id: str, user_id: str, room: str) -> Upload | None:
        taken = self._write(
            "UPDATE uploads SET message_id = ? WHERE id = ? AND user_id = ? "
            "AND room = ? AND message_id IS NULL",
            (CLAIMED, upload_id, user_id, room),
        )
        found = self.get(upload_id) if taken else None
        return found.bound(None) if found is not None else None

    def bind(self, upload_id: str, room: str, message_id: int) -> None:
        self._write(
            "UPDATE uploads SET message_id = ? WHERE id = ?", (message_id, upload_id)
        )

    def release(self, upload_id: str) -> None:
        self._write(
            "UPDATE uploads SET message_id = NULL WHERE id = ? AND message_id = ?",
            (upload_id, CLAIMED),
        )

    def remove(self, upload_id: str) -> Upload | None:
        upload = self.get(upload_id)
        if upload is not None:
            self._write("DELETE FROM uploads WHERE id = ?", (upload_id,))
        return upload

    def unused_before(self, created: float, limit: int) -> list[Upload]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM uploads WHERE created < ? "
            "AND (message_id IS NULL OR message_id = ?) LIMIT ?",
            (created, CLAIMED, limit),
        )
        return [_upload(row) for row in rows]

    def attached_rooms(self) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT room FROM uploads WHERE message_id > ?", (CLAIMED,)
        )
        return sorted(row[0] for row in rows)

    def attached_up_to(self, room: str, message_id: int, limit: int) -> list[Upload]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM uploads WHERE room = ? AND message_id > ? "
            "AND message_id <= ? LIMIT ?",
            (room, CLAIMED, message_id, limit),
        )
        return [_upload(row) for row in rows]

    def _used(self, user_id: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(cost), 0) FROM uploads WHERE user_id = ?", (user_id,)
        ).fetchone()
        return int(row[0])

    def used(self, user_id: str) -> int:
        try:
            return self._used(user_id)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read uploads: {exc}") from None

    def secret(self) -> bytes:
        return self._secret
