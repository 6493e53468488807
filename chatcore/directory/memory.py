"""The room directory kept in this process only (``--db :memory:``)."""

from __future__ import annotations

from collections.abc import Iterable

from chatcore.directory import (
    MEMBERS_MAX,
    PRIVATE_ROOMS_MAX,
    ROOMS_PER_CREATOR_MAX,
    Access,
    DirectoryRefusal,
    PrivateRoom,
    RoomTaken,
    check_bounds,
    full_message,
)


class MemoryDirectory:
    """Private rooms and members in dicts, bounded like every backend."""

    def __init__(
        self,
        members_max: int = MEMBERS_MAX,
        per_creator_max: int = ROOMS_PER_CREATOR_MAX,
        rooms_max: int = PRIVATE_ROOMS_MAX,
    ):
        self._members_max = members_max
        self._per_creator_max = per_creator_max
        self._rooms_max = rooms_max
        self._rooms: dict[str, PrivateRoom] = {}
        self._members: dict[str, set[str]] = {}
        self._of: dict[str, set[str]] = {}  # user id -> their private rooms
        self._created: dict[str, int] = {}  # creator -> rooms created

    def access(self, room: str, user_id: str | None) -> Access:
        private = self._rooms.get(room)
        if private is None:
            return Access(None, False)
        return Access(private, user_id in self._members[room])

    def create(self, room: str, creator: str, now: float) -> PrivateRoom:
        if room in self._rooms:
            raise RoomTaken(f"the room '{room}' exists already")
        check_bounds(
            self._created.get(creator, 0),
            len(self._rooms),
            self._per_creator_max,
            self._rooms_max,
        )
        private = self._rooms[room] = PrivateRoom(room, now, creator)
        self._members[room] = {creator}
        self._of.setdefault(creator, set()).add(room)
        self._created[creator] = self._created.get(creator, 0) + 1
        return private

    def add(self, room: str, user_id: str) -> bool:
        members = self._members.get(room)
        if members is None:
            raise DirectoryRefusal(f"the room '{room}' is not private")
        if user_id in members:
            return False
        if len(members) >= self._members_max:
            raise DirectoryRefusal(full_message(self._members_max))
        members.add(user_id)
        self._of.setdefault(user_id, set()).add(room)
        return True

    def remove(self, room: str, user_id: str) -> bool:
        members = self._members.get(room)
        if members is None or user_id not in members:
            return False
        members.discard(user_id)
        rooms = self._of[user_id]
        rooms.discard(room)
        if not rooms:
            del self._of[user_id]
        return True

    def members(self, room: str) -> set[str]:
        return set(self._members.get(room, ()))

    def private_among(self, rooms: Iterable[str]) -> set[str]:
        return {room for room in rooms if room in self._rooms}

    def rooms_of(self, user_id: str) -> set[str]:
        return set(self._of.get(user_id, ()))
