"""Moderation kept in this process only (``--db :memory:``)."""

from __future__ import annotations

from collections import deque
from typing import Any

from chatcore.moderation import (
    LOG_MAX,
    MEMBER,
    Ban,
    LogEntry,
    Restriction,
)


class MemoryModeration:
    """Roles, restrictions, bans, slow mode and the log in dictionaries."""

    def __init__(self) -> None:
        self._admins: set[str] = set()
        self._roles: dict[str, dict[str, str]] = {}  # room -> user id -> role
        self._restrictions: dict[tuple[str, str, str], Restriction] = {}
        self._bans: dict[str, Ban] = {}
        self._slow: dict[str, float] = {}
        self._log: deque[LogEntry] = deque(maxlen=LOG_MAX)  # oldest first
        self._next_id = 1

    def admins(self) -> set[str]:
        return set(self._admins)

    def set_admin(self, user_id: str, admin: bool) -> bool:
        if admin == (user_id in self._admins):
            return False
        if admin:
            self._admins.add(user_id)
        else:
            self._admins.discard(user_id)
        return True

    def roles(self, room: str) -> dict[str, str]:
        return dict(self._roles.get(room, {}))

    def rooms_of(self, user_id: str) -> list[str]:
        return sorted(room for room, roles in self._roles.items() if user_id in roles)

    def set_role(self, room: str, user_id: str, role: str) -> None:
        if role == MEMBER:
            roles = self._roles.get(room, {})
            roles.pop(user_id, None)
            if not roles:
                self._roles.pop(room, None)
            return
        self._roles.setdefault(room, {})[user_id] = role

    def restrictions(self, user_id: str, now: float) -> list[Restriction]:
        return [
            r
            for (_, uid, _), r in self._restrictions.items()
            if uid == user_id and r.active(now)
        ]

    def restricted(self, now: float) -> set[str]:
        return {r.user_id for r in self._restrictions.values() if r.active(now)}

    def restrict(self, restriction: Restriction, now: float) -> None:
        for key in [k for k, r in self._restrictions.items() if not r.active(now)]:
            del self._restrictions[key]
        r = restriction
        self._restrictions[(r.kind, r.user_id, r.room)] = r

    def lift(self, kind: str, user_id: str, room: str) -> bool:
        return self._restrictions.pop((kind, user_id, room), None) is not None

    def ban(self, ban: Ban) -> None:
        earlier = self._bans.get(ban.user_id)
        if earlier is not None:
            merged = tuple(dict.fromkeys(earlier.addresses + ban.addresses))
            ban = Ban(ban.user_id, ban.reason, ban.ts, merged)
        self._bans[ban.user_id] = ban

    def unban(self, user_id: str) -> bool:
        return self._bans.pop(user_id, None) is not None

    def banned(self, user_id: str) -> Ban | None:
        return self._bans.get(user_id)

    def bans(self) -> dict[str, Ban]:
        return dict(self._bans)

    def slow_modes(self) -> dict[str, float]:
        return dict(self._slow)

    def set_slow_mode(self, room: str, seconds: float) -> None:
        self._slow[room] = seconds

    def log(
        self,
        ts: float,
        actor: dict[str, str],
        action: str,
        room: str,
        target: dict[str, str],
        detail: dict[str, Any],
    ) -> LogEntry:
        entry = LogEntry(self._next_id, ts, actor, action, room, target, detail)
        self._next_id += 1
        self._log.append(entry)
        return entry

    def entries(
        self, before: int | None, limit: int, rooms: list[str] | None = None
    ) -> tuple[list[LogEntry], bool]:
        wanted = None if rooms is None else set(rooms)
        found: list[LogEntry] = []
        for entry in reversed(self._log):
            if before is not None and entry.id >= before:
                continue
            if wanted is not None and entry.room not in wanted:
                continue
            if len(found) == limit:
                return found, True
            found.append(entry)
        return found, False
