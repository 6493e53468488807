"""The AccountStore contract, run on every backend: memory, SQLite and Redis."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import identity
from chatcore.accounts import (
    INVITES_OPEN_MAX,
    SESSIONS_PER_ACCOUNT,
    AccountStore,
    Invite,
    InviteGone,
    NameTaken,
    TooManyInvites,
    digest,
    make_session,
    new_secret,
)
from chatcore.accounts.memory import MemoryAccounts
from chatcore.accounts.sqlite import SqliteAccounts
from chatcore.history.sqlite import migrate
from tests.redis_server import run_redis

NOW = 1_800_000_000.0


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountStore]:
    if request.param == "memory":
        yield MemoryAccounts()
    elif request.param == "sqlite":
        db = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
        migrate(db)
        yield SqliteAccounts(db)
        db.close()
    else:
        from chatcore.accounts.redis import RedisAccounts
        from chatcore.history.redis import connect

        with run_redis(tmp_path / "redis") as server:
            client = connect(server.url)
            yield RedisAccounts(client)
            client.close()


def create(store: AccountStore, name: str, account_id: str, admin: bool = False):
    return store.create(
        name, identity.name_key(name), NOW, admin=admin, account_id=account_id
    )


def test_names_are_unique_by_look(store: AccountStore) -> None:
    """Ensure a name like another account's (case, Cyrillic look-alike) is refused,
    and creating an existing id returns it unchanged."""
    alice = create(store, "Alice", "a1")
    assert (alice.name, alice.admin) == ("Alice", False)
    with pytest.raises(NameTaken):
        create(store, "\u0410lice", "a2")  # Cyrillic А
    with pytest.raises(NameTaken):
        create(store, "ALICE", "a3")
    assert create(store, "Whatever", "a1") == alice
    assert store.count() == 1
    assert store.holder(identity.name_key("alice")) == alice
    assert store.account("a2") is None


def test_rename_moves_the_name_key(store: AccountStore) -> None:
    """Ensure a rename frees the old name and takes the new one, for good,
    and is refused when another account has a like name."""
    create(store, "Alice", "a1")
    create(store, "Bob", "b1")
    with pytest.raises(NameTaken):
        store.rename("a1", "BOB", identity.name_key("BOB"))
    store.rename("a1", "Alicia", identity.name_key("Alicia"))
    account = store.account("a1")
    assert account is not None and account.name == "Alicia"
    assert store.holder(identity.name_key("alice")) is None
    create(store, "Alice", "c1")  # free again
    store.rename("a1", "ALICIA", identity.name_key("ALICIA"))  # own name: fine


def test_invite_is_used_up_and_expires(store: AccountStore) -> None:
    """Ensure an invite creates accounts up to its uses, never after expiry,
    and a taken name leaves the invite unused."""
    token = digest(new_secret())
    store.add_invite(token, Invite(2, NOW + 100, admin=True), NOW)
    create(store, "Taken", "t1")
    with pytest.raises(NameTaken):
        store.redeem(token, "taken", identity.name_key("taken"), NOW, "x1")
    assert store.invite(token, NOW) == Invite(2, NOW + 100, True)
    one = store.redeem(token, "One", identity.name_key("One"), NOW, "o1")
    assert one.admin and store.account("o1") == one
    assert store.invite(token, NOW) == Invite(1, NOW + 100, True)
    store.redeem(token, "Two", identity.name_key("Two"), NOW, "o2")
    assert store.invite(token, NOW) is None
    with pytest.raises(InviteGone):
        store.redeem(token, "Three", identity.name_key("Three"), NOW, "o3")
    late = digest(new_secret())
    store.add_invite(late, Invite(1, NOW + 10, admin=False), NOW)
    assert store.invite(late, NOW + 10) is None
    with pytest.raises(InviteGone):
        store.redeem(late, "Four", identity.name_key("Four"), NOW + 11, "o4")
    with pytest.raises(InviteGone):
        store.redeem(digest("forged"), "Five", identity.name_key("Five"), NOW, "o5")
    assert store.count() == 3


def test_open_invites_are_bounded(store: AccountStore) -> None:
    """Ensure no more than INVITES_OPEN_MAX invites can be open at once, and
    expired ones make room."""
    for n in range(INVITES_OPEN_MAX):
        store.add_invite(
            digest(f"i{n}"), Invite(1, NOW + 10 + (n % 2) * 100, False), NOW
        )
    with pytest.raises(TooManyInvites):
        store.add_invite(digest("one more"), Invite(1, NOW + 100, False), NOW)
    store.add_invite(digest("later"), Invite(1, NOW + 1000, False), NOW + 50)


def test_sessions_listed_revoked_and_bounded(store: AccountStore) -> None:
    """Ensure sessions are found by cookie, listed oldest first, revoked by id
    (only the owner's), and the oldest go past SESSIONS_PER_ACCOUNT."""
    create(store, "Alice", "a1")
    create(store, "Bob", "b1")
    made = []
    for n in range(SESSIONS_PER_ACCOUNT + 2):
        token, session = make_session("a1", NOW + n)
        store.add_session(session)
        made.append((token, session))
    listed = store.sessions("a1")
    assert [s.id for s in listed] == [s.id for _, s in made[2:]]
    assert store.session(digest(made[0][0])) is None
    token, session = made[-1]
    assert store.session(digest(token)) == session
    assert store.revoke("b1", session.id) is None  # not Bob's
    assert store.revoke("a1", session.id) == session
    assert store.session(digest(token)) is None
    assert store.revoke("a1", session.id) is None
    other = made[-2][1]
    assert store.live([other.token_hash, session.token_hash, "nope"]) == {
        other.token_hash
    }
    store.touch(other.token_hash, NOW + 500)
    found = store.session(other.token_hash)
    assert found is not None and found.last_seen == NOW + 500
    store.end(other.token_hash)
    assert store.session(other.token_hash) is None
    assert other.id not in [s.id for s in store.sessions("a1")]
    store.touch(other.token_hash, NOW + 600)  # a revoked one stays gone
    assert store.session(other.token_hash) is None


def test_signin_codes_work_once_and_expire(store: AccountStore) -> None:
    """Ensure a sign-in code names its account once, never after expiry, and a
    new code replaces the account's previous one."""
    create(store, "Alice", "a1")
    store.add_code(digest("c1"), "a1", NOW + 600)
    assert store.use_code(digest("c1"), NOW) == "a1"
    assert store.use_code(digest("c1"), NOW) is None
    store.add_code(digest("c2"), "a1", NOW + 600)
    assert store.use_code(digest("c2"), NOW + 601) is None
    store.add_code(digest("c3"), "a1", NOW + 600)
    store.add_code(digest("c4"), "a1", NOW + 600)
    assert store.use_code(digest("c3"), NOW) is None
    assert store.use_code(digest("c4"), NOW) == "a1"


def test_purge_drops_what_expired(store: AccountStore) -> None:
    """Ensure purge keeps the invites that still work (what it drops cannot
    be asked for: ``invite`` never returns an expired one)."""
    store.add_invite(digest("old"), Invite(1, NOW + 1, False), NOW)
    store.add_invite(digest("new"), Invite(1, NOW + 100, False), NOW)
    store.purge(NOW + 50)
    assert store.invite(digest("new"), NOW + 50) is not None
    assert store.invite(digest("old"), NOW + 50) is None


def test_ended_changes_whenever_a_session_ends(store: AccountStore) -> None:
    """Ensure the ended count moves on a revoke, a sign-out and a session
    dropped past the bound, and not on a new session or a touch."""
    create(store, "Alice", "a1")
    made = [make_session("a1", NOW + n) for n in range(SESSIONS_PER_ACCOUNT)]
    for _, session in made:
        store.add_session(session)
    before = store.ended()
    store.touch(made[0][1].token_hash, NOW + 100)
    assert store.ended() == before
    store.add_session(make_session("a1", NOW + 500)[1])  # drops the oldest
    dropped = store.ended()
    assert dropped != before
    store.revoke("a1", made[1][1].id)
    revoked = store.ended()
    assert revoked != dropped
    store.end(made[2][1].token_hash)
    assert store.ended() != revoked
    unchanged = store.ended()
    store.end("no such session")
    assert store.ended() == unchanged
