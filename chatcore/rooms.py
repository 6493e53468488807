"""Rooms and who is in them: this process's connections and, with several
processes, the members the others told us about. Pure.

A member is a user, not a connection: a user with two tabs in a room, or with
tabs on two processes, is one member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatcore import protocol
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import Wire
from chatcore.limits import TokenBucket
from chatcore.users import User


@dataclass(eq=False, slots=True)
class Connection:
    key: ConnKey
    user: User
    rooms: list[str]
    messages: TokenBucket  # message frames
    typing: TokenBucket  # typing frames
    frames: TokenBucket  # every frame
    strikes: TokenBucket  # refused frames tolerated before closing with 1008
    members: TokenBucket  # ``members`` pages (each reads the whole member list)


@dataclass(eq=False, slots=True)
class Room:
    name: str
    # in join order (a dict used as an ordered set)
    conns: dict[ConnKey, None] = field(default_factory=dict)
    # user id -> how many of that user's connections are in the room
    members: dict[str, int] = field(default_factory=dict)
    # user id -> time (seconds) at which the typing indicator expires
    typing: dict[str, float] = field(default_factory=dict)
    # Past ``--presence-max`` members: counts instead of lists (big_rooms.py);
    # stays so until the room is empty here.
    big: bool = False
    _targets: tuple[ConnKey, ...] | None = None

    @property
    def targets(self) -> tuple[ConnKey, ...]:
        # Cached: a broadcast to a big room should not rebuild the tuple.
        if self._targets is None:
            self._targets = tuple(self.conns)
        return self._targets

    def targets_from(self, first: ConnKey | None) -> tuple[ConnKey, ...]:
        """Every connection, starting at ``first`` (a sender gets its echo, the
        acknowledgement, before the room's other thousand frames go out)."""
        targets = self.targets
        if first is None or first not in self.conns:
            return targets
        at = targets.index(first)
        return targets[at:] + targets[:at]

    def others(self, user: User | None) -> tuple[ConnKey, ...]:
        """The room's connections that are not ``user``'s (all of them for a
        user with no connection here)."""
        if user is None:
            return self.targets
        return tuple(k for k in self.conns if k not in user.conns)

    def add(self, conn: Connection) -> bool:
        """Add a connection; return True if its user is a new member."""
        self.conns[conn.key] = None
        self._targets = None
        count = self.members.get(conn.user.id, 0)
        self.members[conn.user.id] = count + 1
        return count == 0

    def discard(self, conn: Connection) -> bool:
        """Remove a connection; return True if its user is no longer a member."""
        self.conns.pop(conn.key, None)
        self._targets = None
        count = self.members.get(conn.user.id, 0) - 1
        if count > 0:
            self.members[conn.user.id] = count
            return False
        self.members.pop(conn.user.id, None)
        return True


class Presence:
    """Every room with a member here, and every member of those rooms.

    Args:
        users: this process's users by id (shared with the hub, read only).
    """

    def __init__(self, users: dict[str, User]):
        self.users = users
        self.rooms: dict[str, Room] = {}
        # Members on other processes: room -> user id -> origin -> user.
        self.remote: dict[str, dict[str, dict[str, Wire]]] = {}
        # room -> members both here and elsewhere, so that a count needs no
        # loop over the members (absent: none).
        self._overlap: dict[str, int] = {}

    # -- this process's members ---------------------------------------------

    def enter(self, conn: Connection, room_name: str) -> tuple[Room, bool, bool]:
        """Put a connection in a room (created if new); return the room,
        whether its user became a member here, and whether they are new to
        it everywhere."""
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = Room(room_name)
        if conn.key in room.conns:
            return room, False, False
        conn.rooms.append(room_name)
        new_here = room.add(conn)
        remote = self.is_remote_member(room_name, conn.user.id)
        if new_here and remote:
            self._shift_overlap(room_name, 1)
        return room, new_here, new_here and not remote

    def exit(self, conn: Connection, room_name: str) -> tuple[Room, bool, bool]:
        """Take a connection out of a room; return the room, whether its user
        stopped being a member here, and whether they are gone everywhere."""
        room = self.rooms[room_name]
        conn.rooms.remove(room_name)
        gone_here = room.discard(conn)
        if not room.conns:
            del self.rooms[room_name]
        remote = self.is_remote_member(room_name, conn.user.id)
        if gone_here and remote:
            self._shift_overlap(room_name, -1)
        return room, gone_here, gone_here and not remote

    def rooms_of(self, user: User, conns: dict[ConnKey, Connection]) -> list[Room]:
        """The rooms where any of ``user``'s connections here is."""
        names: dict[str, None] = {}
        for key in user.conns:
            names.update(dict.fromkeys(conns[key].rooms))
        return [self.rooms[name] for name in names]

    def local_members(self) -> dict[str, dict[str, Wire]]:
        return {
            name: {uid: self.users[uid].to_wire() for uid in room.members}
            for name, room in self.rooms.items()
        }

    # -- every process's members --------------------------------------------

    def is_remote_member(self, room_name: str, user_id: str) -> bool:
        return bool(self.remote.get(room_name, {}).get(user_id))

    def is_member(self, room_name: str, user_id: str) -> bool:
        room = self.rooms.get(room_name)
        local = room is not None and user_id in room.members
        return local or self.is_remote_member(room_name, user_id)

    def count(self, room_name: str) -> int:
        """Users in a room, on every process (a user's tabs count once)."""
        room = self.rooms.get(room_name)
        local = len(room.members) if room is not None else 0
        remote = len(self.remote.get(room_name, ()))
        return local + remote - self._overlap.get(room_name, 0)

    def _shift_overlap(self, room_name: str, by: int) -> None:
        overlap = self._overlap.get(room_name, 0) + by
        if overlap:
            self._overlap[room_name] = overlap
        else:
            self._overlap.pop(room_name, None)

    def _is_local_member(self, room_name: str, user_id: str) -> bool:
        room = self.rooms.get(room_name)
        return room is not None and user_id in room.members

    def wires(self, room: Room, roles: dict[str, str] | None = None) -> list[Any]:
        """The room's users for a snapshot, local ones pre-encoded; those
        with a role in ``roles`` (user id -> role) have it as ``role``."""
        users = self.users
        wires: list[Any] = [users[uid].to_wire_encoded() for uid in room.members]
        for user_id, origins in self.remote.get(room.name, {}).items():
            if user_id not in room.members:
                wires.append(next(iter(origins.values())))
        if roles:
            ids = [*room.members] + [
                uid for uid in self.remote.get(room.name, {}) if uid not in room.members
            ]
            wires = [
                {**self.shown_as(room.name, uid), "role": roles[uid]}
                if uid in roles
                else wire
                for uid, wire in zip(ids, wires, strict=True)
            ]
        return wires

    def shown_as(self, room_name: str, user_id: str) -> Wire:
        """How a member of a room is shown there now."""
        room = self.rooms.get(room_name)
        if room is not None and user_id in room.members:
            return self.users[user_id].to_wire()
        return next(iter(self.remote[room_name][user_id].values()))

    def remote_user(self, user_id: str) -> Wire | None:
        """A user connected to another process, as it shows them."""
        for users in self.remote.values():
            origins = users.get(user_id)
            if origins:
                return next(iter(origins.values()))
        return None

    def remote_origins(self) -> set[str]:
        return {
            origin
            for members in self.remote.values()
            for origins in members.values()
            for origin in origins
        }

    def remote_join(self, origin: str, room_name: str, wire: Wire) -> bool:
        """Another process's user entered a room; say whether that made them
        a new member of it."""
        user_id = wire["id"]
        was_member = self.is_member(room_name, user_id)
        users = self.remote.setdefault(room_name, {})
        if user_id not in users and self._is_local_member(room_name, user_id):
            self._shift_overlap(room_name, 1)
        users.setdefault(user_id, {})[origin] = wire
        return not was_member

    def remote_leave(self, origin: str, room_name: str, user_id: str) -> Wire | None:
        """Another process's user left a room: the user as shown, if that made
        them leave it everywhere, else None."""
        users = self.remote.get(room_name, {})
        origins = users.get(user_id, {})
        wire = origins.pop(origin, None)
        if wire is None:
            return None
        if not origins:
            del users[user_id]
            if not users:
                del self.remote[room_name]
            if self._is_local_member(room_name, user_id):
                self._shift_overlap(room_name, -1)
        return None if self.is_member(room_name, user_id) else wire

    def remote_rename(self, wire: Wire) -> None:
        """Another process renamed a user: show the new name wherever they are."""
        for users in self.remote.values():
            origins = users.get(wire["id"], {})
            for origin in origins:
                origins[origin] = wire

    # -- frames ----------------------------------------------------------------

    def event(self, room: Room, event: str, user: User | Wire, **extra: Any) -> str:
        """A ``presence`` frame for a change in ``room``, with the count now."""
        return protocol.encode(
            "presence",
            room=room.name,
            event=event,
            user=user.to_wire() if isinstance(user, User) else user,
            count=self.count(room.name),
            **extra,
        )

    def to_others(self, room: Room, user: User, text: str) -> list[Delivery]:
        """``text`` for everyone in ``room`` but ``user``'s own connections."""
        targets = room.others(user)
        return [Delivery(targets, text)] if targets else []
