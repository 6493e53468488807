"""Events from other chat processes, merged into this one's presence. Pure.

With several processes on one fan-out, each tells the others when its users
join or leave a room, change name or type. Here those events become presence
frames for this process's members: ``join`` when a user becomes a member
anywhere, ``leave`` when they are gone everywhere, a rename shown once per
room (and applied to the user's own tabs here, through the one
``Names.rename``), typing relayed.
"""

from __future__ import annotations

from collections.abc import Callable

from chatcore import protocol
from chatcore.big_rooms import BigRooms
from chatcore.cluster import Cluster
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import (
    Event,
    Gone,
    Join,
    Leave,
    Moderated,
    Nick,
    Published,
    Typing,
    Wire,
)
from chatcore.moderating import with_role
from chatcore.rooms import Connection, Presence
from chatcore.typists import Typists
from chatcore.users import Names, User


def renamed(user: User, previous: str) -> Delivery:
    """``renamed`` for every connection of a user who changed name."""
    frame = protocol.encode("renamed", user=user.to_wire(), previous=previous)
    return Delivery(tuple(user.conns), frame)


class RemoteEvents:
    """Turns the other processes' events into deliveries for this one.

    Args:
        presence, names, typists, cluster: the hub's parts.
        users: this process's users by id; conns: its connections by key
            (the hub's, read only).
        moderated: applies another process's moderation action here.
        roles: a room's roles (user id -> owner | moderator), shown on joins.
        big: big rooms, where joins and leaves are counted at the tick.
    """

    def __init__(
        self,
        presence: Presence,
        names: Names,
        typists: Typists,
        cluster: Cluster,
        users: dict[str, User],
        conns: dict[ConnKey, Connection],
        moderated: Callable[[Moderated], list[Delivery]] = lambda event: [],
        roles: Callable[[str], dict[str, str]] = lambda room: {},
        big: BigRooms | None = None,
    ):
        self._big = big
        self._presence = presence
        self._names = names
        self._typists = typists
        self._cluster = cluster
        self._users = users
        self._conns = conns
        self._moderated = moderated
        self._roles = roles

    def deliver(self, event: Event) -> list[Delivery]:
        """An event arrived from the subscription: what to send to whom here.

        A stored message goes to every local member of its room (its sender's
        echo included) unless it was delivered already; other processes'
        membership and typing changes are merged into presence. This
        process's own membership events are ignored: it acted on them when
        they happened.
        """
        cluster = self._cluster
        if isinstance(event, Published):
            return cluster.deliver(event)
        if event.origin == cluster.origin:
            return []
        match event:
            case Join():
                return self._join(event.origin, event.room, event.user)
            case Leave():
                return self._leave(event.origin, event.room, event.user_id)
            case Nick():
                return self._nick(event)
            case Typing():
                return self._typists.remote(event)
            case Gone():
                return self.replace(event.origin, {})
            case Moderated():
                return self._moderated(event)
        return []  # Sync: the edge re-reads that process's members

    def replace(
        self, origin: str, members: dict[str, dict[str, Wire]]
    ) -> list[Delivery]:
        """Set everything known of process ``origin``'s members at once (after
        reading its list, or ``{}`` once it is gone); join and leave events go
        out for the differences."""
        out: list[Delivery] = []
        for name, users in list(self._presence.remote.items()):
            for user_id, origins in list(users.items()):
                if origin in origins and user_id not in members.get(name, {}):
                    out += self._leave(origin, name, user_id)
        for name, users in members.items():
            for wire in users.values():
                out += self._join(origin, name, wire)
        return out

    def _join(self, origin: str, room_name: str, wire: Wire) -> list[Delivery]:
        presence = self._presence
        new = presence.remote_join(origin, room_name, wire)
        room = presence.rooms.get(room_name)
        if not new or room is None:
            return []
        if self._big is not None and self._big.is_big(room):
            self._big.changed(room)
            return []
        joiner = with_role(wire, self._roles(room_name).get(wire["id"]))
        return [Delivery(room.targets, presence.event(room, "join", joiner))]

    def _leave(self, origin: str, room_name: str, user_id: str) -> list[Delivery]:
        presence = self._presence
        gone = presence.remote_leave(origin, room_name, user_id)
        room = presence.rooms.get(room_name)
        if gone is None or room is None:
            return []
        if room.big and self._big is not None:
            self._big.remote_gone(room, user_id)
            return []
        return [Delivery(room.targets, presence.event(room, "leave", gone))]

    def _nick(self, event: Nick) -> list[Delivery]:
        """Another process renamed a user: every process shows the new name,
        and a user with tabs here too is renamed here as well."""
        presence = self._presence
        user_id, new = event.user["id"], event.user
        before = {
            name: presence.shown_as(name, user_id)
            for name in presence.rooms
            if presence.is_member(name, user_id)
        }
        presence.remote_rename(new)
        if self._big is not None:
            self._big.renamed()
        out: list[Delivery] = []
        local = self._users.get(user_id)
        if local is not None and local.name != new["name"]:
            self._names.rename(local, new["name"], reserve=False)
            out.append(renamed(local, event.previous))
            rooms = tuple(room.name for room in presence.rooms_of(local, self._conns))
            self._cluster.publish(
                Nick(self._cluster.origin, local.to_wire(), event.previous, rooms)
            )
        for name, shown in before.items():
            room = presence.rooms.get(name)
            if room is None or shown["name"] == new["name"]:
                continue
            frame = presence.event(room, "nick", new, previous=shown["name"])
            targets = room.others(local)
            if targets:
                out.append(Delivery(targets, frame))
        return out
