"""The read position store contract, on every backend: memory, SQLite, Redis."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.history import HistoryError
from chatcore.history.redis import connect
from chatcore.history.sqlite import migrate
from chatcore.reads import KEEP_SECONDS, ReadStore
from chatcore.reads.memory import MemoryReads
from chatcore.reads.redis import RedisReads
from chatcore.reads.sqlite import SqliteReads
from tests.redis_server import REDIS_SERVER, run_redis

NOW = 1_700_000_000.0
ROOMS_MAX = 3


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    if request.param == "memory":
        yield MemoryReads(rooms_per_user=ROOMS_MAX)
    elif request.param == "sqlite":
        db = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
        migrate(db)
        yield SqliteReads(db, rooms_per_user=ROOMS_MAX)
        db.close()
    else:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        with run_redis(tmp_path / "redis") as server:
            client = connect(server.url)
            yield RedisReads(client, "chat:", rooms_per_user=ROOMS_MAX)
            client.close()


def test_a_position_only_moves_forward(store: ReadStore) -> None:
    """Ensure advance keeps the maximum and says whether it moved."""
    assert store.position("u-ann", "lobby") is None
    assert store.advance("u-ann", "lobby", 5, NOW)
    assert not store.advance("u-ann", "lobby", 3, NOW + 1)
    assert not store.advance("u-ann", "lobby", 5, NOW + 1)
    store.flush()
    assert store.position("u-ann", "lobby") == 5
    assert store.advance("u-ann", "lobby", 9, NOW + 2)
    assert store.position("u-ann", "lobby") == 9
    store.flush()
    assert store.position("u-ann", "lobby") == 9


def test_positions_are_per_user_and_room(store: ReadStore) -> None:
    """Ensure one user's position in one room touches no other."""
    store.advance("u-ann", "lobby", 5, NOW)
    store.advance("u-ann", "dev", 2, NOW)
    store.advance("u-bob", "lobby", 7, NOW)
    store.flush()
    assert store.position("u-ann", "lobby") == 5
    assert store.position("u-ann", "dev") == 2
    assert store.position("u-bob", "lobby") == 7
    assert store.position("u-bob", "dev") is None


def test_forget_drops_one_position(store: ReadStore) -> None:
    """Ensure forget removes the position, written or still waiting, and a
    later advance starts afresh (lower than before is fine then)."""
    store.advance("u-ann", "lobby", 5, NOW)
    store.flush()
    store.advance("u-ann", "dev", 4, NOW)  # still waiting in SQLite
    store.forget("u-ann", "lobby")
    store.forget("u-ann", "dev")
    store.forget("u-ann", "nowhere")
    store.flush()
    assert store.position("u-ann", "lobby") is None
    assert store.position("u-ann", "dev") is None
    assert store.advance("u-ann", "lobby", 2, NOW)
    store.flush()
    assert store.position("u-ann", "lobby") == 2


def test_a_user_keeps_the_most_recently_moved_rooms(store: ReadStore) -> None:
    """Ensure the bound per user drops the position moved longest ago."""
    for i, room in enumerate(["a", "b", "c"]):
        store.advance("u-ann", room, 1, NOW + i)
    store.flush()
    store.advance("u-ann", "a", 2, NOW + 10)  # "b" is now the stalest
    store.advance("u-ann", "d", 1, NOW + 11)
    store.flush()
    assert store.position("u-ann", "b") is None
    assert [store.position("u-ann", r) for r in ["a", "c", "d"]] == [2, 1, 1]


def test_purge_drops_stale_positions(store: ReadStore) -> None:
    """Ensure a position not moved for KEEP_SECONDS is purged (Redis: the
    keys carry that time to live)."""
    store.advance("u-ann", "lobby", 5, NOW)
    store.flush()
    if isinstance(store, RedisReads):
        ttl = store.client.ttl("chat:reads:pos:u-ann")
        assert KEEP_SECONDS - 10 < ttl <= KEEP_SECONDS
        return
    store.purge(NOW + KEEP_SECONDS - 1)
    assert store.position("u-ann", "lobby") == 5
    store.purge(NOW + KEEP_SECONDS + 1)
    assert store.position("u-ann", "lobby") is None


def test_sqlite_batches_until_flush(tmp_path: Path) -> None:
    """Ensure SQLite writes nothing until flush, then everything in one go,
    and a second connection to the file sees it only then."""
    path = tmp_path / "chat.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    store = SqliteReads(db)
    other = sqlite3.connect(path)
    count = "SELECT COUNT(*) FROM read_positions"
    for i in range(100):
        store.advance(f"u-{i}", "lobby", i + 1, NOW)
    assert store.pending == 100
    assert other.execute(count).fetchone()[0] == 0
    store.flush()
    assert store.pending == 0
    assert other.execute(count).fetchone()[0] == 100
    other.close()
    db.close()


def test_sqlite_keeps_positions_when_a_write_fails(tmp_path: Path) -> None:
    """Ensure a failed flush raises HistoryError and keeps what waited for
    the next one."""
    db = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
    migrate(db)
    store = SqliteReads(db)
    store.advance("u-ann", "lobby", 5, NOW)
    db.execute("ALTER TABLE read_positions RENAME TO gone")
    with pytest.raises(HistoryError):
        store.flush()
    assert store.pending == 1
    db.execute("ALTER TABLE gone RENAME TO read_positions")
    store.flush()
    assert db.execute("SELECT last_read FROM read_positions").fetchone() == (5,)
    db.close()
