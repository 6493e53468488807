"""Private rooms: the ``create``, ``add`` and ``remove`` frames, and who may
join, read and post to a room. Pure.

A room is public unless the room directory (chatcore/directory) holds it.
A private room is invite-only: its members join it, read its history and
post to it; anyone else gets ``forbidden`` with a message that says no more
than that they are not a member. Members add people by display name, and
the creator removes them. Whoever is added hears of it on every connection
they have (``room_added``), on every process; whoever is removed leaves the
room everywhere. The directory is read through on every check, so an ``add``
on one process lets the person join through any other at once.

A direct conversation (chatcore/direct_messages.py) is a private room too,
guarded here like any other; nobody adds people to it or removes them, and
a name of its reserved form joins nothing until ``dm`` has opened it.

See docs/protocol.md, "Private rooms".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chatcore import identity, protocol
from chatcore.cluster import Cluster
from chatcore.delivery import ConnKey, Delivery
from chatcore.directory import (
    PRIVATE_ROOMS_MAX,
    Access,
    DirectoryRefusal,
    PrivateRoom,
    RoomDirectory,
    RoomTaken,
    visible,
)
from chatcore.fanout import Added, Removed
from chatcore.history import HistoryStore
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.rooms import Connection, Presence, Room
from chatcore.users import Names, User

NOT_A_MEMBER = "you are not a member of this room"
PUBLIC = Access(None, False)
PUBLIC_HERE_MAX = 10_000  # public rooms remembered as such

JoinRoom = Callable[[Connection, str, int | None], list[Delivery]]
LeaveRoom = Callable[[Connection, str], list[Delivery]]
OnCreated = Callable[[str, str], None]


class PrivateRooms:
    """Creates rooms, adds and removes members, and guards private rooms.

    Args:
        directory: private rooms and their members.
        names, presence, cluster: the hub's parts (who goes by a name, who
            is in a room here and elsewhere, how other processes hear).
        history: to tell whether a room has ever had a message.
        users, conns: the hub's users by id and connections by key (read only).
        join, leave: the hub's own join (answered with its snapshot) and leave.
        rooms_max: how many rooms one connection may be in (checked before a
            room is created, so a refused join leaves no room behind).
        clock: seconds since the epoch.
        on_created: called with (room, creator's user id) after a ``create``.
    """

    def __init__(
        self,
        directory: RoomDirectory,
        names: Names,
        presence: Presence,
        cluster: Cluster,
        history: HistoryStore,
        users: dict[str, User],
        conns: dict[ConnKey, Connection],
        join: JoinRoom,
        leave: LeaveRoom,
        clock: Callable[[], float],
        rooms_max: int,
        on_created: OnCreated | None = None,
    ):
        self._directory = directory
        self._names = names
        self._presence = presence
        self._cluster = cluster
        self._history = history
        self._users = users
        self._conns = conns
        self._join = join
        self._leave = leave
        self._clock = clock
        self._rooms_max = rooms_max
        self._on_created = on_created
        # Private rooms that have had a member here: a message to one of
        # them checks membership again (a removal may not have reached us).
        # Bounded: only names of private rooms, of which there are at most
        # PRIVATE_ROOMS_MAX.
        self._private_here: set[str] = set()
        # Rooms the directory called public while they had members here, with
        # the Room they had: a room in use cannot be made private (``create``
        # refuses it), so the answer holds while that Room lives, and a join
        # of a busy public room reads nothing. A room that empties here gets
        # a new Room when it fills again, and is looked up again.
        self._public_here: dict[str, Room] = {}

    # -- the checks ---------------------------------------------------------------

    def access(self, room: str, user_id: str | None) -> Access:
        """Whether ``room`` is private and ``user_id`` (None: nobody) a member.

        Raises:
            HistoryError: the directory could not be read.
        """
        return self._directory.access(room, user_id)

    def visible(self, rooms: Iterable[str], user_id: str | None) -> list[str]:
        """``rooms`` without the private ones ``user_id`` is not a member of.

        Raises:
            HistoryError: the directory could not be read.
        """
        return visible(self._directory, rooms, user_id)

    def check(self, user_id: str | None, room: str, ref: str) -> Access:
        """What ``user_id`` may do with ``room``.

        Raises:
            ProtocolError: ``forbidden``, the room is private and they are
                not a member.
        """
        here = self._presence.rooms.get(room)
        if here is not None and self._public_here.get(room) is here:
            return PUBLIC
        access = self._directory.access(room, user_id)
        if not access.allowed or (access.room is None and identity.is_dm_room(room)):
            # Only ``dm`` makes a room of that form (a join would make it public).
            raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER, ref, room=room)
        if access.room is not None and len(self._private_here) < PRIVATE_ROOMS_MAX:
            self._private_here.add(room)
        if access.room is None and here is not None:
            self._remember_public(room, here)
        return access

    def _remember_public(self, name: str, room: Room) -> None:
        """Note that ``room`` is public, within PUBLIC_HERE_MAX entries (the
        rooms gone from here are forgotten first)."""
        known = self._public_here
        if len(known) >= PUBLIC_HERE_MAX:
            rooms = self._presence.rooms
            for stale in [n for n, r in known.items() if rooms.get(n) is not r]:
                del known[stale]
            if len(known) >= PUBLIC_HERE_MAX:
                return
        known[name] = room

    def check_message(self, conn: Connection, room: str) -> list[Delivery]:
        """Before a message: a non-member of a private room is refused; one in
        the room but no longer a member leaves it (what it says would reach
        people who did not invite them).

        Returns:
            The deliveries of that leave (empty when the message may go).

        Raises:
            ProtocolError: ``forbidden``, not a member and not in the room.
        """
        if room in conn.rooms and room not in self._private_here:
            return []  # joined while public; rooms do not become private
        try:
            identity.check_room(room)
        except identity.InvalidName:
            return []  # refused later as a room the connection is not in
        access = self._directory.access(room, conn.user.id)
        if access.allowed:
            return []
        if room not in conn.rooms:
            raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER, "message", room=room)
        return self._kick(conn.user, room)

    # -- the frames ------------------------------------------------------------------

    def handle(
        self,
        conn: Connection,
        command: protocol.Create | protocol.Add | protocol.Remove,
    ) -> list[Delivery]:
        match command:
            case protocol.Create():
                return self._create(conn, command)
            case protocol.Add():
                return self._add(conn, command)
            case protocol.Remove():
                return self._remove(conn, command)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def _create(self, conn: Connection, command: protocol.Create) -> list[Delivery]:
        room = _valid_room(command.room, "create")
        if identity.is_dm_room(room):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"room names starting with '{identity.DM_PREFIX}' are direct "
                "conversations; open one with 'dm'",
                "create",
            )
        if len(conn.rooms) >= self._rooms_max:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a connection can be in at most {self._rooms_max} rooms",
                "create",
            )
        if self._exists(room):
            raise _taken(room)
        user = conn.user
        if command.private:
            try:
                self._directory.create(room, user.id, self._clock())
            except RoomTaken:
                raise _taken(room) from None
            except DirectoryRefusal as exc:
                raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "create") from None
        if self._on_created is not None:
            self._on_created(room, user.id)
        return self._join(conn, room, None)

    def _exists(self, room: str) -> bool:
        """Whether a room of that name is in use: it has members (here or on
        another process), has ever had a message, or is private."""
        return (
            self._presence.count(room) > 0
            or self._history.last_id(room) > 0
            or self._directory.access(room, None).room is not None
        )

    def _add(self, conn: Connection, command: protocol.Add) -> list[Delivery]:
        room = _valid_room(command.room, "add")
        if self._require_private_member(conn.user, room, "add").is_dm:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                "nobody can be added to a direct conversation; "
                "open a new one with everyone in it",
                "add",
                room=room,
            )
        try:
            name = identity.check_name(command.name)
        except identity.InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "add") from None
        user_id = self._names.holder(name)
        if user_id is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"nobody goes by the name '{name}' now; "
                "they need to be connected, or to have used that name recently",
                "add",
            )
        try:
            new = self._directory.add(room, user_id)
        except DirectoryRefusal as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "add") from None
        by = conn.user.to_wire()
        ack = protocol.encode("added", room=room, user={"id": user_id, "name": name})
        out = [Delivery((conn.key,), ack)]
        if new:
            out += self.tell_added(room, user_id, by)
            self._cluster.publish(Added(self._cluster.origin, room, user_id, by))
        return out

    def _remove(self, conn: Connection, command: protocol.Remove) -> list[Delivery]:
        room = _valid_room(command.room, "remove")
        private = self._require_private_member(conn.user, room, "remove")
        if private.is_dm:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                "nobody can be removed from a direct conversation; anyone may leave it",
                "remove",
                room=room,
            )
        if conn.user.id != private.creator:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                "only the room's creator can remove people",
                "remove",
            )
        if command.user == private.creator:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "the room's creator cannot be removed", "remove"
            )
        self._directory.remove(room, command.user)
        out = [
            Delivery(
                (conn.key,), protocol.encode("removed", room=room, user=command.user)
            )
        ]
        gone = self._users.get(command.user)
        if gone is not None:
            out += self._kick(gone, room)
        self._cluster.publish(Removed(self._cluster.origin, room, command.user))
        return out

    def _require_private_member(self, user: User, room: str, ref: str) -> PrivateRoom:
        access = self._directory.access(room, user.id)
        if access.room is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"'{room}' is not a private room: anyone may join it",
                ref,
            )
        if not access.member:
            raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER, ref, room=room)
        return access.room

    # -- what other processes say --------------------------------------------------

    def remote(self, event: Added | Removed) -> list[Delivery]:
        """Another process added or removed a member: tell their connections
        here, or take them out of the room here."""
        if event.origin == self._cluster.origin:
            return []
        if isinstance(event, Added):
            return self.tell_added(event.room, event.user_id, event.by, event.detail)
        user = self._users.get(event.user_id)
        return self._kick(user, event.room) if user is not None else []

    def tell_added(
        self,
        room: str,
        user_id: str,
        by: dict[str, str],
        detail: dict[str, Any] | None = None,
        skip: ConnKey | None = None,
    ) -> list[Delivery]:
        """``room_added`` to every connection of ``user_id`` here but ``skip``;
        ``detail``: more fields (a direct conversation's kind and members)."""
        user = self._users.get(user_id)
        targets = tuple(key for key in user.conns if key != skip) if user else ()
        if not targets:
            return []
        frame = protocol.encode("room_added", room=room, by=by, **(detail or {}))
        return [Delivery(targets, frame)]

    def _kick(self, user: User, room: str) -> list[Delivery]:
        """Take every connection of ``user`` here out of ``room``."""
        out: list[Delivery] = []
        left = protocol.encode("left", room=room, reason="removed")
        for key in list(user.conns):
            conn = self._conns.get(key)
            if conn is not None and room in conn.rooms:
                out += self._leave(conn, room)
                out.append(Delivery((key,), left))
        return out


def _valid_room(room: str, ref: str) -> str:
    try:
        return identity.check_room(room)
    except identity.InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), ref) from None


def _taken(room: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.ROOM_EXISTS,
        f"a room named '{room}' exists already; pick another name",
        "create",
    )
