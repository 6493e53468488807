"""SQLite history: schema versions, migrations, durability of flushed batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chatcore.history import Draft, HistoryError, open_history
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteHistory,
    SqliteNames,
    migrate,
)


def draft(room: str = "lobby", text: str = "hi", client_id: str | None = None) -> Draft:
    return Draft(room, "u1", "alice", "#c0392b", text, 1_700_000_000_000, client_id)


def test_open_history_picks_the_backend(tmp_path: Path) -> None:
    """Ensure ':memory:' gives the in-process store and a path gives SQLite."""
    history, names = open_history(":memory:", 10)
    assert isinstance(history, MemoryHistory) and isinstance(names, MemoryNames)
    store, names = open_history(str(tmp_path / "chat.db"), 10)
    assert isinstance(store, SqliteHistory) and isinstance(names, SqliteNames)
    store.close()


def test_ids_continue_after_reopening(tmp_path: Path) -> None:
    """Ensure a reopened file keeps its messages and hands out the next ids."""
    path = str(tmp_path / "chat.db")
    store = SqliteHistory(path, 100)
    for n in range(3):
        store.append(draft(text=f"m{n}"))
    store.close()
    store = SqliteHistory(path, 100)
    assert [m.text for m in store.before("lobby", None, 10)[0]] == ["m0", "m1", "m2"]
    assert store.append(draft()).id == 4
    store.close()


def test_unflushed_messages_are_readable_and_marked_pending(tmp_path: Path) -> None:
    """Ensure reads see a message before its batch is flushed, marked pending."""
    store = SqliteHistory(str(tmp_path / "chat.db"), 100)
    written = store.append(draft(text="written"))
    store.flush()
    stored = store.append(draft(client_id="c1"))
    assert store.has_pending
    assert store.since("lobby", 0, 10) == [written, stored]
    assert store.since("lobby", 0, 1) == [written]
    assert store.before("lobby", None, 1) == ([stored], True)
    assert store.before("lobby", None, 5) == ([written, stored], False)
    assert store.before("lobby", 2, 5) == ([written], False)
    assert [store.is_pending(m) for m in (written, stored)] == [False, True]
    assert store.find("u1", "c1") == stored  # dedupe sees pending sends
    store.flush()
    assert not store.has_pending
    assert not store.is_pending(stored)
    assert store.since("lobby", 0, 10) == [written, stored]
    store.close()


def test_trimmed_rooms_never_reuse_ids(tmp_path: Path) -> None:
    """Ensure retention trims the oldest while ids keep counting up."""
    path = str(tmp_path / "chat.db")
    store = SqliteHistory(path, 2)
    for _ in range(5):
        store.append(draft())
    store.flush()
    kept, more = store.before("lobby", None, 10)
    assert [m.id for m in kept] == [4, 5] and not more
    store.close()
    store = SqliteHistory(path, 2)
    assert store.append(draft()).id == 6
    store.close()


def test_a_file_from_the_first_schema_is_migrated(tmp_path: Path) -> None:
    """Ensure a version-1 file is upgraded in place, its messages kept."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, upto=1)
    db.executemany(
        "INSERT INTO messages (room, id, user_id, name, color, text, ts) "
        "VALUES (?, ?, 'u1', 'alice', '#c0392b', ?, 1)",
        [("lobby", 1, "old one"), ("lobby", 2, "old two"), ("dev", 7, "dev")],
    )
    db.close()
    store = SqliteHistory(str(path), 100)
    assert store.migrated_from == 1
    assert [m.text for m in store.since("lobby", 0, 10)] == ["old one", "old two"]
    assert store.last_id("dev") == 7
    assert store.append(draft(room="lobby", client_id="c9")).id == 3
    store.flush()
    assert store.find("u1", "c9") is not None
    versions = [r[0] for r in store._db.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    store.close()


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    """Ensure a schema newer than this release stops with a clear message."""
    path = tmp_path / "new.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    db.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS) + 5,))
    db.close()
    with pytest.raises(HistoryError, match="newer than this release"):
        SqliteHistory(str(path), 100)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Ensure garbage in place of the database gives a readable HistoryError."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot open the database"):
        SqliteHistory(str(path), 100)


def test_rooms_that_do_not_exist_are_not_cached(tmp_path: Path) -> None:
    """Ensure asking about unknown rooms leaves nothing behind, known ones stay."""
    store = SqliteHistory(str(tmp_path / "chat.db"), 100)
    store.append(draft("lobby"))
    for n in range(1000):
        assert store.last_id(f"nowhere{n}") == 0
    assert set(store._last) == {"lobby"}
    store.close()


def test_one_process_per_file(tmp_path: Path) -> None:
    """Ensure a second store on an open file is refused with a reason, and
    the file is free again once the first is closed."""
    path = str(tmp_path / "chat.db")
    first = SqliteHistory(path, 100)
    with pytest.raises(HistoryError, match="in use by another chat process"):
        SqliteHistory(path, 100)
    first.append(draft())
    first.close()
    second = SqliteHistory(path, 100)
    assert second.last_id("lobby") == 1
    second.close()


def test_problem_writes_for_real(tmp_path: Path) -> None:
    """Ensure the readiness probe commits a write: it fails on a read-only file."""
    path = tmp_path / "chat.db"
    store = SqliteHistory(str(path), 100)
    assert store.problem() is None
    written = sqlite3.connect(path).execute("SELECT written FROM probe").fetchone()
    assert written[0] > 0
    store.close()


def test_a_deleted_text_leaves_the_file(tmp_path: Path) -> None:
    """Ensure a deleted message's text is not in the database file's bytes
    once the store is closed (the WAL checkpointed), though the others are."""
    path = tmp_path / "chat.db"
    store = SqliteHistory(str(path), 100)
    # Long enough, and between others, that the row is moved, not rewritten
    # in place: only secure_delete then clears the old bytes.
    texts = [f"kept-{n} " * 30 for n in range(20)]
    texts[5] = "secret-words " * 20
    stored = [store.append(Draft("lobby", "u1", "a", "#c0392b", t, 1)) for t in texts]
    store.flush()
    store.change(stored[5], None, 3)
    store.close()
    data = path.read_bytes()
    assert b"kept-4" in data
    assert b"secret-words" not in data
