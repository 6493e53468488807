"""The moderation store contract, on every backend: memory, SQLite, Redis."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.history.redis import connect
from chatcore.history.sqlite import migrate
from chatcore.moderation import LOG_MAX, Ban, ModerationStore, Restriction
from chatcore.moderation.memory import MemoryModeration
from chatcore.moderation.redis import RedisModeration
from chatcore.moderation.sqlite import SqliteModeration
from tests.redis_server import REDIS_SERVER, run_redis

NOW = 1_700_000_000.0
ANN = {"id": "u-ann", "name": "Ann"}
BOB = {"id": "u-bob", "name": "Bob"}


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModerationStore]:
    if request.param == "memory":
        yield MemoryModeration()
    elif request.param == "sqlite":
        db = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
        migrate(db)
        yield SqliteModeration(db)
        db.close()
    else:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        with run_redis(tmp_path / "redis") as server:
            client = connect(server.url)
            yield RedisModeration(client, "chat:")
            client.close()


def test_admins_are_added_once_and_removed(store: ModerationStore) -> None:
    """Ensure set_admin reports a change only when there is one."""
    assert store.admins() == set()
    assert store.set_admin("u-ann", True)
    assert not store.set_admin("u-ann", True)
    assert store.admins() == {"u-ann"}
    assert store.set_admin("u-ann", False)
    assert not store.set_admin("u-ann", False)
    assert store.admins() == set()


def test_roles_per_room_and_per_user(store: ModerationStore) -> None:
    """Ensure roles are kept per room, listed per user, and removed by member."""
    store.set_role("lobby", "u-ann", "owner")
    store.set_role("lobby", "u-bob", "moderator")
    store.set_role("dev", "u-bob", "moderator")
    assert store.roles("lobby") == {"u-ann": "owner", "u-bob": "moderator"}
    assert store.rooms_of("u-bob") == ["dev", "lobby"]
    store.set_role("lobby", "u-bob", "member")
    assert store.roles("lobby") == {"u-ann": "owner"}
    assert store.rooms_of("u-bob") == ["dev"]
    assert store.roles("nowhere") == {}


def test_restrictions_expire_replace_and_lift(store: ModerationStore) -> None:
    """Ensure a mute or kick holds until its time, a second replaces the
    first, lift removes it, and expired ones are dropped on the next write."""
    store.restrict(Restriction("mute", "u-bob", "lobby", NOW + 60), NOW)
    store.restrict(Restriction("mute", "u-bob", "", None), NOW)
    store.restrict(Restriction("kick", "u-bob", "dev", NOW + 10), NOW)
    found = sorted(store.restrictions("u-bob", NOW), key=lambda r: (r.kind, r.room))
    assert found == [
        Restriction("kick", "u-bob", "dev", NOW + 10),
        Restriction("mute", "u-bob", "", None),
        Restriction("mute", "u-bob", "lobby", NOW + 60),
    ]
    assert [r.kind for r in store.restrictions("u-bob", NOW + 30)] == ["mute"] * 2
    store.restrict(Restriction("mute", "u-bob", "lobby", NOW + 5), NOW)
    assert Restriction("mute", "u-bob", "lobby", NOW + 5) in store.restrictions(
        "u-bob", NOW
    )
    assert store.lift("mute", "u-bob", "")
    assert not store.lift("mute", "u-bob", "")
    assert store.restrictions("u-ann", NOW) == []


def test_restricted_names_everyone_with_a_restriction(store: ModerationStore) -> None:
    """Ensure restricted() names every user with a mute or a kick in force
    (the hub's one read that spares a read per user) and forgets a user
    whose restrictions were lifted."""
    assert store.restricted(NOW) == set()
    store.restrict(Restriction("mute", "u-bob", "lobby", None), NOW)
    store.restrict(Restriction("kick", "u-cat", "", NOW + 10), NOW)
    store.restrict(Restriction("mute", "u-dan", "", None), NOW)
    assert store.restricted(NOW) == {"u-bob", "u-cat", "u-dan"}
    assert store.lift("mute", "u-bob", "lobby")
    assert store.restricted(NOW) == {"u-cat", "u-dan"}
    # An ended one may still be named (a superset is allowed), never a lifted one.
    assert store.restricted(NOW + 20) <= {"u-cat", "u-dan"}
    assert "u-dan" in store.restricted(NOW + 20)


def test_bans_merge_addresses_and_unban(store: ModerationStore) -> None:
    """Ensure a ban keeps its addresses (a second one adds to them) until unban."""
    store.ban(Ban("u-bob", "spam", NOW, ("10.0.0.1",)))
    store.ban(Ban("u-bob", "spam again", NOW + 1, ("10.0.0.2",)))
    ban = store.banned("u-bob")
    assert ban is not None and ban.reason == "spam again"
    assert set(ban.addresses) == {"10.0.0.1", "10.0.0.2"}
    assert store.bans() == {"u-bob": ban}
    assert store.unban("u-bob")
    assert not store.unban("u-bob")
    assert store.banned("u-bob") is None
    assert store.bans() == {}


def test_slow_modes_are_kept_zero_included(store: ModerationStore) -> None:
    """Ensure runtime slow mode is kept per room, 0 (off) included."""
    store.set_slow_mode("lobby", 30)
    store.set_slow_mode("dev", 0)
    assert store.slow_modes() == {"lobby": 30, "dev": 0}


def test_log_pages_newest_first_filtered_by_room(store: ModerationStore) -> None:
    """Ensure the log numbers entries, pages back with ``before``, and keeps
    only the given rooms' entries when asked."""
    for n in range(5):
        room = "lobby" if n % 2 == 0 else "dev"
        entry = store.log(NOW + n, ANN, "mute", room, BOB, {"seconds": n + 1})
        assert entry.id == n + 1
    page, more = store.entries(None, 2)
    assert [e.id for e in page] == [5, 4] and more
    page, more = store.entries(4, 10)
    assert [e.id for e in page] == [3, 2, 1] and not more
    page, more = store.entries(None, 2, ["lobby"])
    assert [e.id for e in page] == [5, 3] and more
    assert page[0].to_wire() == {
        "id": 5,
        "ts": int((NOW + 4) * 1000),
        "actor": ANN,
        "action": "mute",
        "room": "lobby",
        "target": BOB,
        "detail": {"seconds": 5},
    }
    assert store.entries(None, 5, []) == ([], False)


def test_log_keeps_only_the_newest(store: ModerationStore) -> None:
    """Ensure the log is bounded: past LOG_MAX entries the oldest go."""
    for n in range(LOG_MAX + 3):
        store.log(NOW, ANN, "slow", "lobby", {}, {"seconds": n})
    newest, more = store.entries(None, 1)
    assert newest[0].id == LOG_MAX + 3 and more
    oldest, more = store.entries(6, 100)
    assert [e.id for e in oldest] == [5, 4] and not more


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_restrictions_expire_with_the_last_timed_one(
    store: RedisModeration,
) -> None:
    """Ensure Redis drops a user's restrictions key once every one has ended
    (a key per user restricted once would otherwise stay for ever)."""
    key = "chat:restrict:u-bob"
    now = time.time()
    store.restrict(Restriction("mute", "u-bob", "lobby", now + 100), now)
    store.restrict(Restriction("kick", "u-bob", "dev", now + 50), now)
    assert 90 <= store.client.ttl(key) <= 101
    store.restrict(Restriction("mute", "u-bob", "", None), now)
    assert store.client.ttl(key) == -1  # one lasts until lifted: no expiry


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_forgets_a_restricted_user_whose_key_expired(
    store: RedisModeration,
) -> None:
    """Ensure Redis's index of restricted users drops one whose restrictions
    key expired (so it does not grow with everyone ever muted)."""
    now = time.time()
    store.restrict(Restriction("mute", "u-bob", "lobby", now + 60), now)
    store.restrict(Restriction("mute", "u-cat", "lobby", now + 60), now)
    store.client.delete("chat:restrict:u-bob")  # as its expiry would
    assert store.restricted(now) == {"u-cat"}
    assert store.client.smembers("chat:restricted") == {b"u-cat"}
