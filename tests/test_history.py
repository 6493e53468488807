"""Contract tests of the history interface, run against every backend.

To test another backend, add a factory to ``BACKENDS``: it takes the retention
(messages kept per room), an empty directory of its own and the shared test
services (a real redis-server, started on first use), e.g.
``"sqlite": lambda keep, tmp, services: SqliteHistory(str(tmp / "chat.db"), keep)``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatcore.history import (
    Draft,
    HistoryStore,
    NameStore,
    StaleMessage,
    StoredMessage,
)
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import SqliteHistory, SqliteNames
from tests.redis_server import run_redis


class Services:
    """Servers the backends need, started once per test session on first use."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.stack = contextlib.ExitStack()
        self._redis_url: str | None = None

    def redis_url(self) -> str:
        if self._redis_url is None:
            server = self.stack.enter_context(run_redis(self.directory / "redis"))
            self._redis_url = server.url
        return self._redis_url


def redis_store(max_per_room: int, tmp: Path, services: Services) -> HistoryStore:
    from chatcore.history import redis as redis_history

    client = redis_history.connect(services.redis_url())
    # A prefix of its own: every store starts empty, as on a fresh server.
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    return redis_history.RedisHistory(client, max_per_room, prefix=prefix)


Factory = Callable[[int, Path, Services], HistoryStore]
MakeStore = Callable[..., HistoryStore]

BACKENDS: dict[str, Factory] = {
    "memory": lambda max_per_room, tmp, services: MemoryHistory(max_per_room),
    "sqlite": lambda max_per_room, tmp, services: SqliteHistory(
        str(tmp / "chat.db"), max_per_room
    ),
    "redis": redis_store,
}


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Shared servers for the backends, stopped at the end of the session."""
    started = Services(tmp_path_factory.mktemp("services"))
    with started.stack:
        yield started


@pytest.fixture(params=sorted(BACKENDS))
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, services: Services
) -> Iterator[MakeStore]:
    """Build stores of the parametrized backend; every one is closed afterwards."""
    opened: list[HistoryStore] = []

    def make(max_per_room: int = 1000) -> HistoryStore:
        directory = tmp_path / f"store{len(opened)}"
        directory.mkdir()
        store = BACKENDS[request.param](max_per_room, directory, services)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> HistoryStore:
    """A store of the parametrized backend, keeping 1000 messages per room."""
    return make_store()


def draft(
    room: str = "lobby", text: str = "hi", client_id: str | None = None, ts: int = 1
) -> Draft:
    return Draft(room, "u0123456789abcde", "alice", "#c0392b", text, ts, client_id)


def add(store: HistoryStore, *drafts: Draft) -> list[StoredMessage]:
    """Append messages and make them readable (stores that batch need a flush)."""
    stored = [store.append(d) for d in drafts]
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush()
    return stored


def fill(store: HistoryStore, room: str, count: int) -> None:
    add(store, *(draft(room, f"{room}-{n}") for n in range(1, count + 1)))


def ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


def test_ids_start_at_one_per_room(store: HistoryStore) -> None:
    """Ensure each room numbers its messages 1, 2, 3 independently."""
    rooms = ["a", "b", "a", "a", "b", "c"]
    stored = add(store, *(draft(room) for room in rooms))
    assert [(m.room, m.id) for m in stored] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("a", 3),
        ("b", 2),
        ("c", 1),
    ]
    assert (store.last_id("a"), store.last_id("b"), store.last_id("c")) == (3, 2, 1)


def test_last_id_of_unknown_room_is_zero(store: HistoryStore) -> None:
    """Ensure a room without messages has last_id 0."""
    assert store.last_id("nowhere") == 0


def test_append_keeps_every_field(store: HistoryStore) -> None:
    """Ensure a stored message carries the draft's fields and its new id."""
    given = Draft("dev", "u1", "Zoë", "#2980b9", "héllo <b> 😀", 1_700_000_000_123, "c")
    [stored] = add(store, given)
    assert stored == StoredMessage(
        1, "dev", "u1", "Zoë", "#2980b9", "héllo <b> 😀", 1_700_000_000_123, "c"
    )
    assert store.since("dev", 0, 10) == [stored]


def test_since_returns_oldest_after_id_in_order(store: HistoryStore) -> None:
    """Ensure since() gives the oldest ``limit`` messages above an id, in order."""
    fill(store, "lobby", 10)
    fill(store, "other", 3)
    assert ids(store.since("lobby", 0, 100)) == list(range(1, 11))
    assert ids(store.since("lobby", 3, 4)) == [4, 5, 6, 7]
    assert ids(store.since("lobby", 8, 100)) == [9, 10]
    assert [m.text for m in store.since("lobby", 8, 100)] == ["lobby-9", "lobby-10"]
    assert store.since("lobby", 10, 100) == []
    assert store.since("lobby", 99, 100) == []
    assert store.since("nowhere", 0, 100) == []


def test_before_pages_backwards(store: HistoryStore) -> None:
    """Ensure before() gives the newest ``limit`` below an id, oldest first."""
    fill(store, "lobby", 7)
    page, more = store.before("lobby", None, 3)
    assert (ids(page), more) == ([5, 6, 7], True)
    page, more = store.before("lobby", 5, 3)
    assert (ids(page), more) == ([2, 3, 4], True)
    page, more = store.before("lobby", 2, 3)
    assert (ids(page), more) == ([1], False)
    page, more = store.before("lobby", 1, 3)
    assert (ids(page), more) == ([], False)


def test_before_edges(store: HistoryStore) -> None:
    """Ensure before() handles exact fits, large limits and ids out of range."""
    fill(store, "lobby", 4)
    assert store.before("lobby", None, 4) == (store.since("lobby", 0, 4), False)
    assert ids(store.before("lobby", None, 100)[0]) == [1, 2, 3, 4]
    assert ids(store.before("lobby", 1000, 2)[0]) == [3, 4]
    assert store.before("lobby", 0, 10) == ([], False)
    assert store.before("nowhere", None, 10) == ([], False)


def test_reads_see_appended_messages_before_any_flush(store: HistoryStore) -> None:
    """Ensure since/before include messages appended but not yet flushed."""
    first = add(store, draft(text="one"))[0]
    second = store.append(draft(text="two"))
    third = store.append(draft(text="three"))
    assert ids(store.since("lobby", 0, 10)) == [1, 2, 3]
    assert ids(store.since("lobby", 1, 1)) == [2]
    assert store.before("lobby", None, 2) == ([second, third], True)
    assert store.before("lobby", 3, 10) == ([first, second], False)
    assert not store.is_pending(first)
    store.flush()
    assert not any(store.is_pending(m) for m in (first, second, third))
    assert ids(store.since("lobby", 0, 10)) == [1, 2, 3]


def test_retention_trims_oldest_and_ids_keep_counting(
    make_store: MakeStore,
) -> None:
    """Ensure only the newest max_per_room are kept and ids are never reused."""
    store = make_store(3)
    fill(store, "lobby", 5)
    fill(store, "other", 2)
    page, more = store.before("lobby", None, 10)
    assert (ids(page), more) == ([3, 4, 5], False)
    assert ids(store.since("lobby", 0, 10)) == [3, 4, 5]
    assert ids(store.since("lobby", 3, 10)) == [4, 5]
    assert store.before("lobby", 3, 10) == ([], False)
    assert store.last_id("lobby") == 5
    [next_one] = add(store, draft("lobby"))
    assert next_one.id == 6
    assert ids(store.before("lobby", None, 10)[0]) == [4, 5, 6]
    assert ids(store.since("other", 0, 10)) == [1, 2]  # other rooms untouched


def test_to_wire_shape(store: HistoryStore) -> None:
    """Ensure to_wire() is the message object of docs/protocol.md, without type."""
    [plain, tagged] = add(
        store, draft(text="one", ts=1_700_000_000_000), draft(client_id="c-9")
    )
    assert plain.to_wire() == {
        "id": 1,
        "room": "lobby",
        "user": {"id": "u0123456789abcde", "name": "alice", "color": "#c0392b"},
        "text": "one",
        "ts": 1_700_000_000_000,
    }
    assert list(plain.to_wire()) == ["id", "room", "user", "text", "ts"]
    wire = tagged.to_wire()
    assert wire["client_id"] == "c-9"
    assert "type" not in wire


def test_find_by_client_id(store: HistoryStore) -> None:
    """Ensure find() returns what a user sent with a client_id, and only that."""
    [first, _] = add(store, draft(client_id="c-1"), draft("other", client_id="c-2"))
    assert store.find("u0123456789abcde", "c-1") == first
    assert store.find("u0123456789abcde", "c-2") is not None
    assert store.find("u0123456789abcde", "c-3") is None
    assert store.find("someone-else", "c-1") is None


def test_rooms_lists_every_room_with_a_message(store: HistoryStore) -> None:
    """Ensure rooms() names each room that has had a message."""
    add(store, draft("b"), draft("a"), draft("b"))
    assert sorted(store.rooms()) == ["a", "b"]


def names_beside(store: HistoryStore) -> NameStore:
    """The name store of the same backend, on the same file or server."""
    if isinstance(store, SqliteHistory):
        return SqliteNames(store.connection)
    if isinstance(store, MemoryHistory):
        return MemoryNames()
    from chatcore.history import redis as redis_history

    assert isinstance(store, redis_history.RedisHistory)
    return redis_history.RedisNames(store.client, store.prefix)


def test_name_reservations(store: HistoryStore) -> None:
    """Ensure a name is held for one user, refreshed, and released only by them."""
    names = names_beside(store)
    assert names.holder("alice") is None
    names.hold("alice", "u1", 100.0)
    assert names.holder("alice") == ("u1", 100.0)
    names.hold("alice", "u1", 250.5)
    assert names.holder("alice") == ("u1", 250.5)
    names.release("alice", "u2")  # not theirs: nothing happens
    assert names.holder("alice") == ("u1", 250.5)
    names.release("alice", "u1")
    assert names.holder("alice") is None
    assert store.problem() is None


# -- edits and deletes ----------------------------------------------------------


def test_an_edit_takes_the_next_id_as_its_revision(store: HistoryStore) -> None:
    """Ensure an edit keeps the message's id, sets text, time and rev, and that
    the rev is the room's next id (the next message comes after it)."""
    [first, second] = add(store, draft(text="one"), draft(text="two"))
    edited = store.change(first, "one, fixed", 5_000)
    assert (edited.id, edited.text, edited.edited, edited.rev) == (
        1,
        "one, fixed",
        5_000,
        3,
    )
    assert not edited.deleted
    assert store.last_id("lobby") == 3
    assert store.get("lobby", 1) == edited
    assert store.get("lobby", 3) is None  # a revision id is no message
    [third] = add(store, draft(text="three"))
    assert third.id == 4
    page, _ = store.before("lobby", None, 10)
    assert page == [edited, second, third]


def test_since_returns_what_changed_after_an_id(store: HistoryStore) -> None:
    """Ensure since() gives messages new or changed after an id, each once,
    in its current state, ordered by its newest id."""
    fill(store, "lobby", 4)
    one = store.get("lobby", 1)
    assert one is not None
    once = store.change(one, "once", 10)  # rev 5
    [five] = add(store, draft(text="six"))  # id 6
    twice = store.change(once, "twice", 20)  # rev 7
    three = store.get("lobby", 3)
    assert three is not None
    gone = store.change(three, None, 30)  # rev 8
    assert [(m.id, m.newest_id) for m in store.since("lobby", 4, 10)] == [
        (6, 6),
        (1, 7),
        (3, 8),
    ]
    assert store.since("lobby", 4, 10)[1] == twice
    assert store.since("lobby", 6, 10) == [twice, gone]
    assert store.since("lobby", 7, 10) == [gone]
    assert store.since("lobby", 8, 10) == []
    assert ids(store.since("lobby", 0, 2)) == [2, 4]
    assert store.since("lobby", 0, 10)[-3:] == [five, twice, gone]


def test_a_delete_leaves_a_tombstone_without_text(store: HistoryStore) -> None:
    """Ensure a deleted message keeps id, user and time but has no text, in
    every read, and cannot be changed again from its old state."""
    [message] = add(store, draft(text="secret plans", client_id="c-1", ts=77))
    tombstone = store.change(message, None, 99)
    assert tombstone.deleted
    assert (tombstone.id, tombstone.ts, tombstone.user_id, tombstone.text) == (
        1,
        77,
        "u0123456789abcde",
        "",
    )
    assert tombstone.edited is None
    assert store.get("lobby", 1) == tombstone
    assert store.before("lobby", None, 10) == ([tombstone], False)
    assert store.since("lobby", 0, 10) == [tombstone]
    assert store.find("u0123456789abcde", "c-1") == tombstone
    assert tombstone.to_wire()["deleted"] is True
    with pytest.raises(StaleMessage):
        store.change(message, "again", 100)


def test_a_change_from_an_old_state_is_stale(store: HistoryStore) -> None:
    """Ensure a change based on a state that is no longer current is refused
    and changes nothing."""
    [message] = add(store, draft(text="one"))
    edited = store.change(message, "two", 5)
    with pytest.raises(StaleMessage):
        store.change(message, "three", 6)
    assert store.get("lobby", 1) == edited
    assert store.last_id("lobby") == 2
    never = StoredMessage(9, "lobby", "u1", "a", "#000000", "x", 1)
    with pytest.raises(StaleMessage):
        store.change(never, "y", 7)


def test_changes_count_towards_retention(make_store: MakeStore) -> None:
    """Ensure retention keeps the messages among the newest max ids, revisions
    included, and a trimmed message can neither be read nor changed."""
    store = make_store(3)
    fill(store, "lobby", 3)
    three = store.get("lobby", 3)
    assert three is not None
    edited = store.change(three, "three!", 1)  # rev 4: ids 2..4 are kept
    assert store.get("lobby", 1) is None
    assert store.before("lobby", None, 10) == ([store.get("lobby", 2), edited], False)
    store.change(edited, "three!!", 2)  # rev 5: ids 3..5
    assert ids(store.before("lobby", None, 10)[0]) == [3]
    assert ids(store.since("lobby", 0, 10)) == [3]
    two = StoredMessage(
        2, "lobby", "u0123456789abcde", "alice", "#c0392b", "lobby-2", 1
    )
    with pytest.raises(StaleMessage):
        store.change(two, "late", 3)


def test_a_message_changed_before_its_flush(store: HistoryStore) -> None:
    """Ensure a message changed while it still waits for a flush is stored
    in its changed state."""
    message = store.append(draft(text="typo"))
    edited = store.change(message, "fixed", 5)
    assert store.get("lobby", 1) == edited
    store.flush()
    assert store.get("lobby", 1) == edited
    assert store.since("lobby", 0, 10) == [edited]
    assert store.last_id("lobby") == 2
    [next_one] = add(store, draft(text="next"))
    assert next_one.id == 3


def test_after_reads_forwards_in_id_order(store: HistoryStore) -> None:
    """Ensure after() gives the oldest messages above an id in id order,
    changed ones in their current state at their own place."""
    fill(store, "lobby", 5)
    one = store.get("lobby", 2)
    assert one is not None
    edited = store.change(one, "two!", 9)  # rev 6
    add(store, draft(text="seven"))  # id 7
    assert ids(store.after("lobby", 0, 100)) == [1, 2, 3, 4, 5, 7]
    assert store.after("lobby", 1, 2) == [edited, store.get("lobby", 3)]
    assert ids(store.after("lobby", 2, 3)) == [3, 4, 5]
    assert ids(store.after("lobby", 5, 3)) == [7]
    assert store.after("lobby", 7, 3) == []
    pending = store.append(draft(text="eight"))
    assert store.after("lobby", 5, 3)[-1] == pending
