"""Direct messages: the ``dm`` frame, and how a direct conversation is shown.
Pure.

A direct conversation is a private room of kind ``dm`` (chatcore/directory):
chatcore/private_rooms.py guards it like any private room (only its members
join it, read it or see it listed), and refuses ``add`` and ``remove`` on it.
Its members are fixed when it is opened; its name is derived from them
(``identity.dm_room``), so ``dm`` with the same people finds the same room on
every process. Opening a new one joins the sender at once and tells every
other connection of every member, on every process, with ``room_added``.

See docs/protocol.md, "Direct messages".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatcore import identity, protocol
from chatcore.cluster import Cluster
from chatcore.delivery import ConnKey, Delivery
from chatcore.directory import DM, DirectoryRefusal, PrivateRoom, RoomDirectory
from chatcore.fanout import Added
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.rooms import Connection, Presence
from chatcore.users import User

JoinRoom = Callable[[Connection, str, int | None], list[Delivery]]
AccountName = Callable[[str], str | None]
# (room, user id, by, detail, skip): ``room_added`` to that user's
# connections here but ``skip`` (PrivateRooms.tell_added).
TellAdded = Callable[
    [str, str, dict[str, str], dict[str, Any], ConnKey | None], list[Delivery]
]


class DirectMessages:
    """Opens direct conversations and names their members.

    Args:
        directory: private rooms and their members.
        presence: who is connected here and on other processes (their names).
        cluster: how other processes hear of a new conversation.
        users: the hub's users by id (read only).
        account_name: the name of the account with a user id, None without
            one (or where nobody has accounts).
        join: the hub's own join (answered with its snapshot).
        tell_added: tells a user's connections here of a room of theirs.
        clock: seconds since the epoch.
        rooms_max: how many rooms one connection may be in (checked before a
            conversation is opened, so a refused join leaves none behind).
    """

    def __init__(
        self,
        directory: RoomDirectory,
        presence: Presence,
        cluster: Cluster,
        users: dict[str, User],
        account_name: AccountName,
        join: JoinRoom,
        tell_added: TellAdded,
        clock: Callable[[], float],
        rooms_max: int,
    ):
        self._directory = directory
        self._presence = presence
        self._cluster = cluster
        self._users = users
        self._account_name = account_name
        self._join = join
        self._tell_added = tell_added
        self._clock = clock
        self._rooms_max = rooms_max

    def open(self, conn: Connection, command: protocol.OpenDm) -> list[Delivery]:
        """``dm``: find or create the conversation of the sender and ``to``,
        and join it.

        Raises:
            ProtocolError: ``bad_request`` (nobody but the sender, too many
                people, a bound reached), ``no_such_user`` (an id nobody
                known here has).
            HistoryError: the directory could not be used.
        """
        me = conn.user
        others = [user_id for user_id in command.to if user_id != me.id]
        if not others:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "a direct conversation needs someone besides you",
                "dm",
            )
        if len(others) > protocol.DM_OTHERS_MAX:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a direct conversation can have at most {protocol.DM_OTHERS_MAX} "
                "people besides you",
                "dm",
            )
        room = identity.dm_room([me.id, *others])
        if room not in conn.rooms and len(conn.rooms) >= self._rooms_max:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a connection can be in at most {self._rooms_max} rooms",
                "dm",
            )
        found = self._directory.access(room, me.id)
        if found.member and found.room is not None and found.room.is_dm:
            # It exists: join it, even if the others are nowhere to be seen.
            return self._join(conn, room, None)
        members = {me.id: me.name}
        for user_id in others:
            name = self._name_now(user_id)
            if name is None:
                raise ProtocolError(
                    ErrorCode.NO_SUCH_USER,
                    "nobody with that user id is known here: they need to be "
                    "connected, or to have an account",
                    "dm",
                    user=user_id,
                )
            members[user_id] = name
        try:
            _, created = self._directory.open_dm(room, members, me.id, self._clock())
        except DirectoryRefusal as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "dm") from None
        out = self._join(conn, room, None)
        if created:
            by = me.to_wire()
            detail = {"kind": DM, "members": _wire(members)}
            for user_id in members:
                out += self._tell_added(room, user_id, by, detail, conn.key)
                self._cluster.publish(
                    Added(self._cluster.origin, room, user_id, by, detail)
                )
        return out

    def rooms_of(self, user_id: str) -> list[str]:
        """The direct conversations ``user_id`` is in, by room name (at most
        the directory's bound per user).

        Raises:
            HistoryError: the directory could not be read.
        """
        rooms = self._directory.rooms_of(user_id)
        return sorted(room for room in rooms if identity.is_dm_room(room))

    def snapshot_fields(self, private: PrivateRoom | None) -> dict[str, Any]:
        """What a join's snapshot says of a direct conversation: its ``kind``
        and ``members`` (their names now); nothing for any other room.

        Raises:
            HistoryError: the directory could not be read.
        """
        if private is None or not private.is_dm:
            return {}
        names = self._directory.dm_names(private.name)
        current = {
            user_id: self._name_now(user_id) or name for user_id, name in names.items()
        }
        return {"kind": DM, "members": _wire(current)}

    def _name_now(self, user_id: str) -> str | None:
        """The name ``user_id`` goes by now: connected here, connected to
        another process, or their account's; None if nobody knows them."""
        user = self._users.get(user_id)
        if user is not None:
            return user.name
        elsewhere = self._presence.remote_user(user_id)
        if elsewhere is not None:
            return str(elsewhere["name"])
        return self._account_name(user_id)


def _wire(members: dict[str, str]) -> list[dict[str, str]]:
    """Members as ``{id, name}`` objects, by name (then id: a stable order)."""
    return [
        {"id": user_id, "name": name}
        for user_id, name in sorted(members.items(), key=lambda m: (m[1], m[0]))
    ]
