"""Contract tests of the room directory, run against every backend (memory,
a SQLite file, a real redis-server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatcore.directory import (
    DirectoryRefusal,
    PrivateRoom,
    RoomDirectory,
    visible,
)
from chatcore.directory.memory import MemoryDirectory
from chatcore.directory.sqlite import SqliteDirectory
from chatcore.history.sqlite import SqliteHistory
from tests.test_history import Services, services  # noqa: F401 (a fixture)

Bounds = dict[str, int]


def sqlite_directory(tmp: Path, shared: Services, bounds: Bounds) -> RoomDirectory:
    history = SqliteHistory(str(tmp / f"chat-{uuid.uuid4().hex[:8]}.db"), 100)
    shared.stack.callback(history.close)
    return SqliteDirectory(history.connection, **bounds)


def redis_directory(tmp: Path, shared: Services, bounds: Bounds) -> RoomDirectory:
    from chatcore.directory.redis import RedisDirectory
    from chatcore.history.redis import connect

    client = connect(shared.redis_url())
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    return RedisDirectory(client, prefix, **bounds)


BACKENDS: dict[str, Callable[[Path, Services, Bounds], RoomDirectory]] = {
    "memory": lambda tmp, shared, bounds: MemoryDirectory(**bounds),
    "sqlite": sqlite_directory,
    "redis": redis_directory,
}
MakeDirectory = Callable[..., RoomDirectory]


@pytest.fixture(params=sorted(BACKENDS))
def make_directory(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    services: Services,  # noqa: F811
) -> Iterator[MakeDirectory]:
    def make(**bounds: int) -> RoomDirectory:
        return BACKENDS[request.param](tmp_path, services, bounds)

    yield make


@pytest.fixture
def directory(make_directory: MakeDirectory) -> RoomDirectory:
    return make_directory()


def test_a_room_is_public_until_created_private(directory: RoomDirectory) -> None:
    access = directory.access("lobby", "alice")
    assert access.room is None and not access.member and access.allowed
    assert directory.members("lobby") == set()
    assert directory.private_among(["lobby"]) == set()


def test_the_creator_is_the_first_member(directory: RoomDirectory) -> None:
    made = directory.create("secret", "alice", 1700000000.5)
    assert made == PrivateRoom("secret", 1700000000.5, "alice")
    mine = directory.access("secret", "alice")
    assert mine.room == made and mine.member and mine.allowed
    theirs = directory.access("secret", "bob")
    assert theirs.room == made and not theirs.member and not theirs.allowed
    nobody = directory.access("secret", None)
    assert not nobody.allowed
    assert directory.members("secret") == {"alice"}
    assert directory.rooms_of("alice") == {"secret"}
    assert directory.rooms_of("bob") == set()


def test_a_private_room_cannot_be_created_twice(directory: RoomDirectory) -> None:
    directory.create("secret", "alice", 1.0)
    with pytest.raises(DirectoryRefusal, match="exists already"):
        directory.create("secret", "bob", 2.0)
    assert directory.access("secret", "bob").room == PrivateRoom("secret", 1.0, "alice")


def test_members_are_added_and_removed(directory: RoomDirectory) -> None:
    directory.create("secret", "alice", 1.0)
    assert directory.add("secret", "bob") is True
    assert directory.add("secret", "bob") is False  # already one
    assert directory.access("secret", "bob").member
    assert directory.members("secret") == {"alice", "bob"}
    assert directory.rooms_of("bob") == {"secret"}
    assert directory.remove("secret", "bob") is True
    assert directory.remove("secret", "bob") is False
    assert not directory.access("secret", "bob").member
    assert directory.rooms_of("bob") == set()


def test_a_public_room_takes_no_members(directory: RoomDirectory) -> None:
    with pytest.raises(DirectoryRefusal, match="not private"):
        directory.add("lobby", "bob")
    assert directory.members("lobby") == set()
    assert directory.remove("lobby", "bob") is False


def test_bounds_refuse_what_is_past_them(make_directory: MakeDirectory) -> None:
    directory = make_directory(members_max=2, per_creator_max=2, rooms_max=3)
    directory.create("a", "alice", 1.0)
    directory.create("b", "alice", 1.0)
    with pytest.raises(DirectoryRefusal, match="2 private rooms"):
        directory.create("c", "alice", 1.0)
    directory.create("c", "bob", 1.0)
    with pytest.raises(DirectoryRefusal, match="no more private rooms"):
        directory.create("d", "carol", 1.0)
    assert directory.access("d", "carol").room is None  # nothing half made
    directory.add("a", "bob")
    with pytest.raises(DirectoryRefusal, match="at most 2 members"):
        directory.add("a", "carol")
    assert directory.members("a") == {"alice", "bob"}
    assert directory.rooms_of("carol") == set()


def test_listing_hides_private_rooms_from_non_members(
    directory: RoomDirectory,
) -> None:
    directory.create("secret", "alice", 1.0)
    directory.create("other", "carol", 1.0)
    rooms = ["lobby", "other", "secret", "zoo"]
    assert directory.private_among(rooms) == {"other", "secret"}
    assert visible(directory, rooms, "alice") == ["lobby", "secret", "zoo"]
    assert visible(directory, rooms, "bob") == ["lobby", "zoo"]
    assert visible(directory, rooms, None) == ["lobby", "zoo"]
    assert visible(directory, [], None) == []


def test_many_rooms_are_checked_at_once(directory: RoomDirectory) -> None:
    directory.create("r700", "alice", 1.0)
    rooms = [f"r{n}" for n in range(1200)]  # more than one SQL parameter list
    assert directory.private_among(rooms) == {"r700"}


def test_two_directories_on_one_store_see_each_other(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    services: Services,  # noqa: F811
) -> None:
    """Across processes (Redis): an add through one is a member through the other."""
    from chatcore.directory.redis import RedisDirectory
    from chatcore.history.redis import connect

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    one = RedisDirectory(connect(services.redis_url()), prefix)
    two = RedisDirectory(connect(services.redis_url()), prefix)
    one.create("secret", "alice", 1.0)
    one.add("secret", "bob")
    assert two.access("secret", "bob").member
    with pytest.raises(DirectoryRefusal):
        two.create("secret", "carol", 2.0)
    two.remove("secret", "bob")
    assert not one.access("secret", "bob").member


# -- direct conversations -------------------------------------------------------

ANN_BEN = {"ann": "Ann", "ben": "Ben"}


def test_a_direct_conversation_is_created_once_then_found(
    directory: RoomDirectory,
) -> None:
    made, created = directory.open_dm("@ab", ANN_BEN, "ann", 10.0)
    assert created and made == PrivateRoom("@ab", 10.0, "ann", "dm") and made.is_dm
    again, created = directory.open_dm("@ab", {"ben": "B", "ann": "A"}, "ben", 20.0)
    assert not created and again == made
    assert directory.members("@ab") == {"ann", "ben"}
    assert directory.dm_names("@ab") == ANN_BEN  # the names at opening
    assert directory.access("@ab", "ben").member
    assert not directory.access("@ab", "carl").allowed
    assert directory.rooms_of("ben") == {"@ab"}
    assert directory.private_among(["@ab", "lobby"]) == {"@ab"}


def test_a_private_room_is_not_a_direct_conversation(directory: RoomDirectory) -> None:
    directory.create("secret", "ann", 1.0)
    assert directory.access("secret", "ann").room == PrivateRoom("secret", 1.0, "ann")
    assert directory.dm_names("secret") == {}
    with pytest.raises(DirectoryRefusal, match="not this conversation"):
        directory.open_dm("secret", ANN_BEN, "ann", 2.0)
    directory.open_dm("@ab", ANN_BEN, "ann", 2.0)
    with pytest.raises(DirectoryRefusal, match="not this conversation"):
        directory.open_dm("@ab", {**ANN_BEN, "carl": "Carl"}, "ann", 2.0)
    assert directory.members("@ab") == {"ann", "ben"}


def test_direct_conversations_are_bounded(make_directory: MakeDirectory) -> None:
    directory = make_directory(dm_per_hour=2, dm_max=3, per_creator_max=1)
    directory.open_dm("@1", {"ann": "Ann", "ben": "Ben"}, "ann", 1000.0)
    directory.open_dm("@2", {"ann": "Ann", "carl": "Carl"}, "ann", 1001.0)
    with pytest.raises(DirectoryRefusal, match="2 direct conversations in the last"):
        directory.open_dm("@3", {"ann": "Ann", "dora": "Dora"}, "ann", 1002.0)
    assert directory.access("@3", "ann").room is None  # nothing half made
    # Conversations do not count as private rooms created, nor the reverse.
    directory.create("secret", "ann", 1003.0)
    # An hour later the opener may open more, until a member has too many.
    directory.open_dm("@3", {"ann": "Ann", "dora": "Dora"}, "ann", 4601.0)
    with pytest.raises(DirectoryRefusal, match="Ann is in 3 direct conversations"):
        directory.open_dm("@4", {"eve": "Eve", "ann": "Ann"}, "eve", 4602.0)
    assert directory.rooms_of("eve") == set()
    # Finding one that exists is never refused.
    assert directory.open_dm("@1", {"ann": "A", "ben": "B"}, "ann", 4603.0)[1] is False


def test_a_conversation_opened_through_one_process_is_found_through_another(
    services: Services,  # noqa: F811
) -> None:
    from chatcore.directory.redis import RedisDirectory
    from chatcore.history.redis import connect

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    one = RedisDirectory(connect(services.redis_url()), prefix)
    two = RedisDirectory(connect(services.redis_url()), prefix)
    made, created = one.open_dm("@ab", ANN_BEN, "ann", 1.0)
    assert created
    assert two.open_dm("@ab", ANN_BEN, "ben", 2.0) == (made, False)
    assert two.access("@ab", "ben").room == made
    assert two.dm_names("@ab") == ANN_BEN
