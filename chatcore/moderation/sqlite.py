"""Moderation in the history's SQLite file (tables of migration "roles and
moderation"), through the history store's connection: one file, one writer.

Every write is small and rare (a moderator's action), so it is committed at
once, not batched with the messages.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from chatcore.history import HistoryError
from chatcore.moderation import LOG_MAX, MEMBER, Ban, LogEntry, Restriction


class SqliteModeration:
    """Roles, restrictions, bans, slow mode and the log in SQLite.

    Args:
        db: an open connection in autocommit mode (``isolation_level=None``).
    """

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read moderation data: {exc}") from None

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> int:
        """Run ``statements`` in one transaction; return the rows the last changed."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                changed = 0
                for sql, params in statements:
                    changed = self._db.execute(sql, params).rowcount
            return changed
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot write moderation data: {exc}") from None

    def admins(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT user_id FROM admins")}

    def set_admin(self, user_id: str, admin: bool) -> bool:
        if admin:
            sql = "INSERT INTO admins (user_id) VALUES (?) ON CONFLICT DO NOTHING"
        else:
            sql = "DELETE FROM admins WHERE user_id = ?"
        return self._write((sql, (user_id,))) > 0

    def roles(self, room: str) -> dict[str, str]:
        rows = self._rows(
            "SELECT user_id, role FROM room_roles WHERE room = ?", (room,)
        )
        return dict(rows)  # type: ignore[arg-type]

    def rooms_of(self, user_id: str) -> list[str]:
        rows = self._rows(
            "SELECT room FROM room_roles WHERE user_id = ? ORDER BY room", (user_id,)
        )
        return [row[0] for row in rows]

    def set_role(self, room: str, user_id: str, role: str) -> None:
        if role == MEMBER:
            self._write(
                (
                    "DELETE FROM room_roles WHERE room = ? AND user_id = ?",
                    (room, user_id),
                )
            )
            return
        self._write(
            (
                "INSERT INTO room_roles (room, user_id, role) VALUES (?, ?, ?) "
                "ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role",
                (room, user_id, role),
            )
        )

    def restrictions(self, user_id: str, now: float) -> list[Restriction]:
        rows = self._rows(
            "SELECT kind, user_id, room, until FROM restrictions "
            "WHERE user_id = ? AND (until IS NULL OR until > ?)",
            (user_id, now),
        )
        return [Restriction(*row) for row in rows]

    def restricted(self, now: float) -> set[str]:
        rows = self._rows(
            "SELECT DISTINCT user_id FROM restrictions "
            "WHERE until IS NULL OR until > ?",
            (now,),
        )
        return {row[0] for row in rows}

    def restrict(self, restriction: Restriction, now: float) -> None:
        r = restriction
        self._write(
            ("DELETE FROM restrictions WHERE until <= ?", (now,)),
            (
                "INSERT INTO restrictions (kind, user_id, room, until) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, kind, room) "
                "DO UPDATE SET until = excluded.until",
                (r.kind, r.user_id, r.room, r.until),
            ),
        )

    def lift(self, kind: str, user_id: str, room: str) -> bool:
        sql = "DELETE FROM restrictions WHERE kind = ? AND user_id = ? AND room = ?"
        return self._write((sql, (kind, user_id, room))) > 0

    def ban(self, ban: Ban) -> None:
        earlier = self.banned(ban.user_id)
        addresses = ban.addresses
        if earlier is not None:
            addresses = tuple(dict.fromkeys(earlier.addresses + addresses))
        self._write(
            (
                "INSERT INTO bans (user_id, reason, ts, addresses) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, "
                "ts = excluded.ts, addresses = excluded.addresses",
                (ban.user_id, ban.reason, ban.ts, json.dumps(list(addresses))),
            )
        )

    def unban(self, user_id: str) -> bool:
        return self._write(("DELETE FROM bans WHERE user_id = ?", (user_id,))) > 0

    def banned(self, user_id: str) -> Ban | None:
        rows = self._rows(
            "SELECT user_id, reason, ts, addresses FROM bans WHERE user_id = ?",
            (user_id,),
        )
        if not rows:
            return None
        uid, reason, ts, addresses = rows[0]
        return Ban(uid, reason, ts, tuple(json.loads(addresses)))

    def bans(self) -> dict[str, Ban]:
        rows = self._rows("SELECT user_id, reason, ts, addresses FROM bans")
        return {
            uid: Ban(uid, reason, ts, tuple(json.loads(addresses)))
            for uid, reason, ts, addresses in rows
        }

    def slow_modes(self) -> dict[str, float]:
        return dict(self._rows("SELECT room, seconds FROM slow_modes"))  # type: ignore[arg-type]

    def set_slow_mode(self, room: str, seconds: float) -> None:
        self._write(
            (
                "INSERT INTO slow_modes (room, seconds) VALUES (?, ?) "
                "ON CONFLICT (room) DO UPDATE SET seconds = excluded.seconds",
                (room, seconds),
            )
        )

    def log(
        self,
        ts: float,
        actor: dict[str, str],
        action: str,
        room: str,
        target: dict[str, str],
        detail: dict[str, Any],
    ) -> LogEntry:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                cursor = self._db.execute(
                    "INSERT INTO moderation_log "
                    "(ts, actor, action, room, target, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        ts,
                        json.dumps(actor),
                        action,
                        room,
                        json.dumps(target),
                        json.dumps(detail),
                    ),
                )
                entry_id = int(cursor.lastrowid or 0)
                self._db.execute(
                    "DELETE FROM moderation_log WHERE id <= ?", (entry_id - LOG_MAX,)
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot write the moderation log: {exc}") from None
        return LogEntry(entry_id, ts, actor, action, room, target, detail)

    def entries(
        self, before: int | None, limit: int, rooms: list[str] | None = None
    ) -> tuple[list[LogEntry], bool]:
        where, params = ["id < ?"], [before if before is not None else 2**62]
        if rooms is not None:
            if not rooms:
                return [], False
            where.append(f"room IN ({', '.join('?' * len(rooms))})")
            params += rooms
        rows = self._rows(
            "SELECT id, ts, actor, action, room, target, detail FROM moderation_log "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit + 1),
        )
        found = [
            LogEntry(
                row[0],
                row[1],
                json.loads(row[2]),
                row[3],
                row[4],
                json.loads(row[5]),
                json.loads(row[6]),
            )
            for row in rows[:limit]
        ]
        return found, len(rows) > limit
