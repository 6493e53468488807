"""The room directory kept in this process only (``--db :memory:``)."""

from __future__ import annotations

from collections.abc import Iterable

from chatcore.directory import (
    DM,
    DM_PER_HOUR,
    DM_ROOMS_MAX,
    HOUR,
    MEMBERS_MAX,
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


class MemoryDirectory:
    """Private rooms and members in dicts, bounded like every backend."""

    def __init__(
        self,
        members_max: int = MEMBERS_MAX,
        per_creator_max: int = ROOMS_PER_CREATOR_MAX,
        rooms_max: int = PRIVATE_ROOMS_MAX,
        dm_per_hour: int = DM_PER_HOUR,
        dm_max: int = DM_ROOMS_MAX,
    ):
        self._members_max = members_max
        self._per_creator_max = per_creator_max
        self._rooms_max = rooms_max
        self._dm_per_hour = dm_per_hour
        self._dm_max = dm_max
        self._dm_names: dict[str, dict[str, str]] = {}  # room -> id -> name
        self._dms_of: dict[str, int] = {}  # user id -> their conversations
        # user id -> when they opened conversations, in the last hour only
        # (at most dm_per_hour times each).
        self._opened: dict[str, list[float]] = {}
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

    def open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        found = self._rooms.get(room)
        if found is not None:
            if not found.is_dm or self._members[room] != set(members):
                raise not_this_conversation(room)
            return found, False
        opened = [t for t in self._opened.get(opener, ()) if t > now - HOUR]
        check_dm_bounds(
            len(opened),
            self._dm_per_hour,
            {user_id: self._dms_of.get(user_id, 0) for user_id in members},
            members,
            self._dm_max,
            len(self._rooms),
            self._rooms_max,
        )
        private = self._rooms[room] = PrivateRoom(room, now, opener, DM)
        self._members[room] = set(members)
        self._dm_names[room] = dict(members)
        for user_id in members:
            self._of.setdefault(user_id, set()).add(room)
            self._dms_of[user_id] = self._dms_of.get(user_id, 0) + 1
        self._opened[opener] = [*opened, now]
        return private, True

    def dm_names(self, room: str) -> dict[str, str]:
        return dict(self._dm_names.get(room, {}))

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
