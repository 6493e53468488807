"""The room directory: which rooms are private, and who belongs to them.

A room is public unless the directory holds it: today's rooms (made by a
first ``join``) need no row and stay public. A private room has a name, a
creation time and a creator, and a set of members (user ids); only members
may join it, read its history or see it listed anywhere.

A direct conversation (kind ``dm``) is a private room whose members are set
once, when it is opened (``open_dm``), and never change: it has no owner,
nobody is added or removed. Its name comes from its members
(``identity.dm_room``), so opening it again, on any process, finds it.

Every backend (memory, SQLite, Redis) reads through: nothing is cached in a
process, so a member added on one process may join on another at once. The
reads are one indexed SQLite lookup or one Redis round trip per join.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

MEMBERS_MAX = 1_000  # members of one private room
ROOMS_PER_CREATOR_MAX = 100  # private rooms one user may create
PRIVATE_ROOMS_MAX = 100_000  # private rooms in one directory
DM_PER_HOUR = 60  # direct conversations one user may open in an hour
DM_ROOMS_MAX = 500  # direct conversations one user may be in
HOUR = 3600.0

PRIVATE, DM = "private", "dm"  # the kinds of private room


class DirectoryRefusal(ValueError):
    """A change the directory will not make (the room exists, a bound is
    reached); the message says why and may be shown to the user."""


class RoomTaken(DirectoryRefusal):
    """A private room of that name exists already."""


@dataclass(frozen=True, slots=True)
class PrivateRoom:
    name: str
    created: float  # seconds since the epoch
    creator: str  # user id (of a direct conversation: who opened it)
    kind: str = PRIVATE  # or DM

    @property
    def is_dm(self) -> bool:
        return self.kind == DM


@dataclass(frozen=True, slots=True)
class Access:
    """What one user may do with one room."""

    room: PrivateRoom | None  # None: the room is public
    member: bool  # of the private room (always False for a public one)

    @property
    def allowed(self) -> bool:
        return self.room is None or self.member


def check_bounds(
    created: int, total: int, per_creator_max: int, rooms_max: int
) -> None:
    """Refuse a new private room past either bound."""
    if created >= per_creator_max:
        raise DirectoryRefusal(
            f"you have created {per_creator_max} private rooms, the most allowed"
        )
    if total >= rooms_max:
        raise DirectoryRefusal("no more private rooms can be created on this server")


def check_dm_bounds(
    opened_last_hour: int,
    per_hour: int,
    conversations: dict[str, int],
    members: dict[str, str],
    dm_max: int,
    total: int,
    rooms_max: int,
) -> None:
    """Refuse a new direct conversation past any bound: the opener's rate,
    any member's count of conversations (by user id), the directory's size."""
    if opened_last_hour >= per_hour:
        raise DirectoryRefusal(dm_rate_message(per_hour))
    for user_id, count in conversations.items():
        if count >= dm_max:
            raise DirectoryRefusal(dm_full_message(members.get(user_id, ""), dm_max))
    if total >= rooms_max:
        raise DirectoryRefusal("no more private rooms can be created on this server")


def dm_rate_message(per_hour: int) -> str:
    return (
        f"you have opened {per_hour} direct conversations in the last hour, "
        "the most allowed; try again later"
    )


def dm_full_message(name: str, dm_max: int) -> str:
    return f"{name or 'someone'} is in {dm_max} direct conversations, the most allowed"


def not_this_conversation(room: str) -> DirectoryRefusal:
    """The name of a direct conversation is held by another room (a hash
    collision, or a room made before this form was reserved)."""
    return DirectoryRefusal(f"the room '{room}' is not this conversation")


def full_message(members_max: int) -> str:
    return f"a private room can have at most {members_max} members"


class RoomDirectory(Protocol):
    """Private rooms and their members.

    Every method raises HistoryError when the backend cannot be used.
    """

    def access(self, room: str, user_id: str | None) -> Access:
        """Whether ``room`` is private and ``user_id`` (None: nobody) is a member."""

    def create(self, room: str, creator: str, now: float) -> PrivateRoom:
        """Make ``room`` private with ``creator`` as its first member.

        Raises:
            DirectoryRefusal: the room is private already, or the creator or
                the directory has as many private rooms as allowed.
        """

    def open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        """Find the direct conversation ``room``, or create it with exactly
        ``members`` (user id -> display name now, the opener among them).

        Returns:
            The room, and whether it was created by this call.

        Raises:
            DirectoryRefusal: creating it would pass a bound (the opener's
                conversations this hour, a member's conversations, the
                directory's rooms), or ``room`` is another room.
        """

    def dm_names(self, room: str) -> dict[str, str]:
        """A direct conversation's members (user id -> the name they had when
        it was opened); empty for any other room."""

    def add(self, room: str, user_id: str) -> bool:
        """Make ``user_id`` a member; False if they were one already.

        Raises:
            DirectoryRefusal: the room is not private, or is full.
        """

    def remove(self, room: str, user_id: str) -> bool:
        """Drop a member; False if they were not one."""

    def members(self, room: str) -> set[str]:
        """The members of a private room by user id (empty for a public one)."""

    def private_among(self, rooms: Iterable[str]) -> set[str]:
        """Which of ``rooms`` are private."""

    def rooms_of(self, user_id: str) -> set[str]:
        """The private rooms ``user_id`` is a member of."""


def visible(
    directory: RoomDirectory, rooms: Iterable[str], user_id: str | None
) -> list[str]:
    """``rooms`` without the private ones ``user_id`` (None: nobody) is not in,
    in the order given."""
    rooms = list(rooms)
    hidden = directory.private_among(rooms)
    if hidden and user_id is not None:
        hidden -= directory.rooms_of(user_id)
    return [room for room in rooms if room not in hidden]


class PublicOnly:
    """A directory that holds nothing: every room is public, and none can be
    made private (for a hub built without a store of its own, in tests)."""

    def access(self, room: str, user_id: str | None) -> Access:
        return Access(None, False)

    def create(self, room: str, creator: str, now: float) -> PrivateRoom:
        raise DirectoryRefusal("this server keeps no private rooms")

    def open_dm(
        self, room: str, members: dict[str, str], opener: str, now: float
    ) -> tuple[PrivateRoom, bool]:
        raise DirectoryRefusal("this server keeps no direct conversations")

    def dm_names(self, room: str) -> dict[str, str]:
        return {}

    def add(self, room: str, user_id: str) -> bool:
        raise DirectoryRefusal(f"the room '{room}' is not private")

    def remove(self, room: str, user_id: str) -> bool:
        return False

    def members(self, room: str) -> set[str]:
        return set()

    def private_among(self, rooms: Iterable[str]) -> set[str]:
        return set()

    def rooms_of(self, user_id: str) -> set[str]:
        return set()


def open_directory(
    history: Any, dm_per_hour: int = DM_PER_HOUR, dm_max: int = DM_ROOMS_MAX
) -> RoomDirectory:
    """The directory that lives beside ``history``, in the same store: the
    SQLite file, the Redis database (same client, same prefix), or memory.
    ``dm_per_hour`` and ``dm_max`` bound direct conversations per user."""
    module = type(history).__module__
    bounds = {"dm_per_hour": dm_per_hour, "dm_max": dm_max}
    if module == "chatcore.history.sqlite":
        from chatcore.directory.sqlite import SqliteDirectory

        return SqliteDirectory(history.connection, **bounds)
    if module == "chatcore.history.redis":
        from chatcore.directory.redis import RedisDirectory

        return RedisDirectory(history.client, history.prefix, **bounds)
    from chatcore.directory.memory import MemoryDirectory

    return MemoryDirectory(**bounds)
