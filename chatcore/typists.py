"""Typing indicators: who is typing in which room, until when. Pure.

An indicator is relayed once to the room's other members when it starts, and
once when it stops: the typist sends a message, says so, leaves, disconnects
or stays quiet for ``--typing-timeout`` seconds (docs/protocol.md, Typing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatcore import protocol
from chatcore.big_rooms import BigRooms
from chatcore.delivery import Delivery
from chatcore.fanout import Typing, Wire
from chatcore.rooms import Presence, Room
from chatcore.users import User


class Typists:
    """Starts, refreshes, stops and expires typing indicators.

    Args:
        presence: the rooms (each keeps its typists and their deadlines).
        publish: tells the other processes (a no-op for one process).
        origin: this process's id in what it publishes.
        clock: seconds since the epoch.
        timeout: seconds after which a quiet typist's indicator expires.
        big: big rooms, where typists are counted at the tick instead.
    """

    def __init__(
        self,
        presence: Presence,
        publish: Callable[[Any], None],
        origin: str,
        clock: Callable[[], float],
        timeout: float,
        big: BigRooms | None = None,
    ):
        self._big = big
        self._presence = presence
        self._publish = publish
        self._origin = origin
        self._clock = clock
        self._timeout = timeout

    def start(self, room: Room, user: User) -> list[Delivery]:
        """``user`` types in ``room``: tell the others, unless they know."""
        was_typing = user.id in room.typing
        room.typing[user.id] = self._clock() + self._timeout
        if was_typing:
            return []  # a refresh: the others already see the indicator
        return self._announce(room, user, True)

    def stop(self, room: Room, user: User | None, user_id: str) -> list[Delivery]:
        """``user_id`` stopped typing in ``room`` (nothing if they were not)."""
        if room.typing.pop(user_id, None) is None or user is None:
            return []
        return self._announce(room, user, False)

    def expire(self) -> list[Delivery]:
        """Clear the indicators of typists who went quiet."""
        now = self._clock()
        out: list[Delivery] = []
        for room in list(self._presence.rooms.values()):
            expired = [uid for uid, until in room.typing.items() if until <= now]
            for user_id in expired:
                out += self.stop(room, self._presence.users.get(user_id), user_id)
        return out

    def now_typing(self, room: Room, joiner: User) -> dict[str, list[Wire]]:
        """``typing`` for a snapshot: who is typing now, so that a newcomer
        sees the indicator at once (empty: no field)."""
        users = self._presence.users
        typing = [
            users[uid].to_wire()
            for uid in room.typing
            if uid != joiner.id and uid in users
        ]
        return {"typing": typing} if typing else {}

    def remote(self, event: Typing) -> list[Delivery]:
        """Another process's user started or stopped typing."""
        room = self._presence.rooms.get(event.room)
        if room is None:
            return []
        if room.big and self._big is not None:
            self._big.remote_typing(room, event.user["id"], event.active)
            return []
        local = self._presence.users.get(event.user["id"])
        targets = room.others(local)
        frame = protocol.encode(
            "typing", room=event.room, user=event.user, active=event.active
        )
        return [Delivery(targets, frame)] if targets else []

    def _announce(self, room: Room, user: User, active: bool) -> list[Delivery]:
        wire = user.to_wire()
        self._publish(Typing(self._origin, room.name, wire, active))
        if room.big and self._big is not None:
            self._big.changed(room)  # counted at the next tick
            return []
        frame = protocol.encode("typing", room=room.name, user=wire, active=active)
        return self._presence.to_others(room, user, frame)
