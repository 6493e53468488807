"""Big rooms: counts instead of member lists past ``--presence-max``. Pure.

A room with at most ``--presence-max`` members behaves as docs/protocol.md
says for every room: the joiner's snapshot lists everyone, the others get a
``join``, ``leave`` or ``typing`` frame each. Past that, each of those is
O(members) work for every join, so a room of n members cost O(n²). A big
room instead sends:

- the joiner a snapshot with the count and a first page of members (the
  joiner, then the room's owner and moderators, then the earliest joiners);
- everyone, once per tick and only if something changed, one ``presence``
  ``count`` frame with the member and typist counts (exact when built);
- the rest of the list on request, a page at a time, by name (``members``).

A room becomes big the first time its count passes the limit, and stays big
until its last member here has left.
"""

from __future__ import annotations

import heapq
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from chatcore import protocol
from chatcore.delivery import Delivery
from chatcore.fanout import Wire
from chatcore.rooms import Presence, Room
from chatcore.users import User

FIRST_PAGE_MAX = 50  # members listed in a big room's snapshot, at most
# A big room's count frames go to at most this many connections a second:
# a room of 10,000 here hears its count once a second, not at every tick.
COUNT_PUSHES_PER_SECOND = 10_000


@lru_cache(maxsize=16384)
def name_order(name: str) -> str:
    """How members are ordered and searched: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


class BigRooms:
    """Decides which rooms are big, builds their snapshots' first pages,
    their coalesced count frames and their member pages.

    Args:
        presence: every room's members, here and on other processes.
        presence_max: members above which a room is big.
        clock: seconds (any origin).
    """

    def __init__(
        self, presence: Presence, presence_max: int, clock: Callable[[], float]
    ):
        self._presence = presence
        self._max = presence_max
        self._clock = clock
        # Big rooms whose counts changed since their last count frame, in order.
        self._changed: dict[str, None] = {}
        # room -> when its next count frame may go out (see COUNT_PUSHES_PER_SECOND)
        self._due: dict[str, float] = {}
        # room -> its first page, cached (dropped when someone on it leaves or
        # anyone changes name, made again when the roles change)
        self._pages: dict[str, _FirstPage] = {}
        # room -> users on other processes typing there (big rooms here only).
        self._remote_typists: dict[str, set[str]] = {}

    def is_big(self, room: Room) -> bool:
        """Whether ``room`` is big now; one that just became big has its
        first ``count`` frame (with ``big: true``) sent at the next tick."""
        if not room.big and self._presence.count(room.name) > self._max:
            room.big = True
            self._changed[room.name] = None
        return room.big

    def changed(self, room: Room) -> None:
        """A big room's members or typists changed: count it at the next tick."""
        self._changed[room.name] = None

    def remote_typing(self, room: Room, user_id: str, active: bool) -> None:
        """A user on another process started or stopped typing in ``room``."""
        typists = self._remote_typists.setdefault(room.name, set())
        if active:
            typists.add(user_id)
        else:
            typists.discard(user_id)
        self.changed(room)

    def remote_gone(self, room: Room, user_id: str) -> None:
        """A user on another process left ``room`` everywhere."""
        self._remote_typists.get(room.name, set()).discard(user_id)
        self.left(room, user_id)

    def tick(self) -> list[Delivery]:
        """One ``count`` frame for each big room that changed since its last
        one, to all its connections here; a room of n connections waits at
        least n / COUNT_PUSHES_PER_SECOND seconds between two."""
        rooms = self._presence.rooms
        now = self._clock()
        out: list[Delivery] = []
        for name in list(self._changed):
            room = rooms.get(name)
            if room is not None and room.big and now < self._due.get(name, now):
                continue  # counted again once its turn comes
            del self._changed[name]
            if room is None:
                self._remote_typists.pop(name, None)
                self._due.pop(name, None)
                self._pages.pop(name, None)
            elif room.big:
                out.append(Delivery(room.targets, self.count_frame(room)))
                self._due[name] = now + len(room.conns) / COUNT_PUSHES_PER_SECOND
        return out

    def count_frame(self, room: Room) -> str:
        return protocol.encode(
            "presence",
            room=room.name,
            event="count",
            count=self._presence.count(room.name),
            big=True,
            typists=self.typists(room),
        )

    def typists(self, room: Room) -> int:
        """People typing in ``room`` now, on every process."""
        remote = self._remote_typists.get(room.name, ())
        return len(room.typing) + sum(1 for uid in remote if uid not in room.typing)

    def snapshot(
        self, room: Room, joiner: User, roles: dict[str, str]
    ) -> dict[str, Any]:
        """A big room's snapshot fields: ``users`` (a first page: the joiner,
        the owner and moderators, then in join order), ``members_more``,
        ``big`` and ``typists``; as much work for a room of ten thousand as
        for one of a hundred, and less again while the page is cached."""
        limit = min(FIRST_PAGE_MAX, self._max)
        page = self._pages.get(room.name)
        if page is None or page.roles is not roles or len(page.wires) < limit:
            page = _FirstPage(roles, self._first_page(room, roles, limit))
            self._pages[room.name] = page
        others = (wire for uid, wire in page.wires.items() if uid != joiner.id)
        users = [self._wire(room, joiner.id, roles), *islice(others, limit - 1)]
        return {
            "users": users,
            "members_more": self._presence.count(room.name) > len(users),
            "big": True,
            "typists": self.typists(room),
        }

    def left(self, room: Room, user_id: str) -> None:
        """``user_id`` left ``room`` here or everywhere: counted at the next
        tick (which forgets the room if it is empty here now), and shown on
        no cached first page."""
        page = self._pages.get(room.name)
        if page is not None and user_id in page.wires:
            del self._pages[room.name]
        self.changed(room)

    def renamed(self) -> None:
        """Someone changed name: the cached first pages may show the old one."""
        self._pages.clear()

    def _first_page(
        self, room: Room, roles: dict[str, str], limit: int
    ) -> dict[str, Any]:
        """The owner and moderators, then the earliest members, ``limit`` in
        all (one more than a snapshot shows besides its joiner, who may be
        one of them); reads at most ``limit`` plus the roles' members."""
        presence = self._presence
        name = room.name
        chosen: dict[str, None] = {}
        for user_id in roles:
            if len(chosen) >= limit:
                break
            if presence.is_member(name, user_id):
                chosen[user_id] = None
        earliest = (*islice(room.members, limit + len(chosen)),)
        remote = presence.remote.get(name, {})
        for user_id in (*earliest, *islice(remote, limit + len(chosen))):
            if len(chosen) >= limit:
                break
            chosen.setdefault(user_id, None)
        return {user_id: self._wire(room, user_id, roles) for user_id in chosen}

    def page(
        self,
        room_name: str,
        after: str | None,
        query: str | None,
        limit: int,
        roles: dict[str, str],
    ) -> tuple[list[Wire], str | None]:
        """Up to ``limit`` members of a room, in name order, after the cursor
        ``after`` (a page's ``next``), whose names start with ``query``
        (ignoring case); and the cursor of the next page, if there is one.

        One pass over the members: O(members) per request, which is why a
        connection may ask only a few times a second.
        """
        start = tuple(after.rpartition("\n")[::2]) if after else None
        prefix = name_order(query) if query else ""
        keyed = (
            (order, user_id)
            for user_id, order in self._ordered(room_name)
            if order.startswith(prefix) and (start is None or (order, user_id) > start)
        )
        rows = heapq.nsmallest(limit + 1, keyed)
        more = len(rows) > limit
        rows = rows[:limit]
        presence = self._presence
        members = [
            _with_role(presence.shown_as(room_name, uid), roles.get(uid))
            for _, uid in rows
        ]
        following = f"{rows[-1][0]}\n{rows[-1][1]}" if more else None
        return members, following

    def _ordered(self, room_name: str) -> Iterator[tuple[str, str]]:
        """Every member of a room as (user id, name order), once each."""
        presence = self._presence
        room = presence.rooms.get(room_name)
        local = room.members if room is not None else {}
        users = presence.users
        for user_id in local:
            yield user_id, name_order(users[user_id].name)
        for user_id, origins in presence.remote.get(room_name, {}).items():
            if user_id not in local:
                yield user_id, name_order(next(iter(origins.values()))["name"])

    def _wire(self, room: Room, user_id: str, roles: dict[str, str]) -> Any:
        role = roles.get(user_id)
        user = self._presence.users.get(user_id)
        if role is None and user is not None and user_id in room.members:
            return user.to_wire_encoded()
        return _with_role(self._presence.shown_as(room.name, user_id), role)


@dataclass(slots=True)
class _FirstPage:
    """A big room's first page without its joiner, kept between joins."""

    roles: dict[str, str]  # the roles it was made with (new ones: made again)
    wires: dict[str, Any]  # user id -> as shown, in the page's order


def _with_role(wire: Wire, role: str | None) -> Wire:
    return {**wire, "role": role} if role else wire
