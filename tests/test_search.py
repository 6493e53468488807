"""Contract tests of the search backends (chatcore/search/), on every store:
the FTS5 index of a SQLite file, and the scan of memory and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcore.history import HistoryStore
from chatcore.search import (
    BadCursor,
    SearchIndex,
    highlight,
    open_search,
    terms,
)
from chatcore.search.scan import HistoryScan
from tests.test_history import (  # noqa: F401 (fixtures)
    MakeStore,
    add,
    draft,
    make_store,
    services,
)


@pytest.fixture
def store(make_store: MakeStore) -> HistoryStore:  # noqa: F811
    """A store of the parametrized backend, keeping 1000 messages per room."""
    return make_store()


def index_of(store: HistoryStore) -> SearchIndex:
    return open_search(store, 10_000)


def found(
    store: HistoryStore, query: str, rooms: list[str] | None = None, limit: int = 50
) -> list[str]:
    rooms = ["lobby"] if rooms is None else rooms
    page = index_of(store).search(terms(query), rooms, None, limit)
    return [m.text for m in page.hits]


def test_finds_every_word_case_insensitively_newest_first(
    store: HistoryStore,
) -> None:
    """Ensure a search finds the messages holding every word, newest first."""
    add(
        store,
        draft(text="The quick brown fox", ts=1),
        draft(text="a QUICK reply", ts=2),
        draft(text="nothing here", ts=3),
        draft(text="Quick, quick: brown!", ts=4),
    )
    assert found(store, "quick") == [
        "Quick, quick: brown!",
        "a QUICK reply",
        "The quick brown fox",
    ]
    assert found(store, "BROWN quick") == [
        "Quick, quick: brown!",
        "The quick brown fox",
    ]
    assert found(store, "qui") == found(store, "quick")  # word starts match
    assert found(store, "zebra") == []


def test_only_the_rooms_given_are_searched(store: HistoryStore) -> None:
    """Ensure a message of a room not in the list is never a hit."""
    add(
        store,
        draft("lobby", "plan in the lobby", ts=1),
        draft("secret", "plan in secret", ts=2),
        draft("other", "plan elsewhere", ts=3),
    )
    assert found(store, "plan", ["lobby"]) == ["plan in the lobby"]
    assert found(store, "plan", ["lobby", "other"]) == [
        "plan elsewhere",
        "plan in the lobby",
    ]
    assert found(store, "plan", []) == []


def test_pages_follow_the_cursor_without_repeats(store: HistoryStore) -> None:
    """Ensure paging with ``next`` returns every hit once, across rooms."""
    add(
        store,
        *(draft("lobby" if n % 2 else "talk", f"match {n}", ts=n) for n in range(1, 8)),
        draft("lobby", "no", ts=9),
    )
    index = index_of(store)
    seen, cursor = [], None
    for _ in range(10):
        page = index.search(terms("match"), ["lobby", "talk"], cursor, 3)
        seen += [m.text for m in page.hits]
        cursor = page.next
        if cursor is None:
            break
    assert seen == [f"match {n}" for n in range(7, 0, -1)]


def test_a_bad_cursor_is_refused(store: HistoryStore) -> None:
    add(store, draft(text="x y"))
    with pytest.raises(BadCursor):
        index_of(store).search(terms("x"), ["lobby"], "not a cursor", 5)


def test_an_edit_is_searched_by_its_new_text(store: HistoryStore) -> None:
    """Ensure an edit replaces the words a message is found by."""
    [message] = add(store, draft(text="meet at noon"))
    store.change(message, "meet at midnight", at=5)
    assert found(store, "noon") == []
    assert found(store, "midnight") == ["meet at midnight"]


def test_a_deleted_message_is_not_found(store: HistoryStore) -> None:
    """Ensure a delete removes a message from the results at once."""
    [message, _] = add(store, draft(text="password hunter2"), draft(text="hunter2?"))
    store.change(message, None, at=5)
    assert found(store, "hunter2") == ["hunter2?"]


def test_trimmed_messages_are_not_found(make_store: MakeStore) -> None:  # noqa: F811
    """Ensure messages retention trimmed are not hits."""
    store = make_store(3)
    add(store, *(draft(text=f"word {n}", ts=n) for n in range(1, 6)))
    assert found(store, "word") == ["word 5", "word 4", "word 3"]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        'say "hi',
        "NEAR(",
        "NEAR(a b)",
        "*",
        "a*",
        "OR",
        "x OR y",
        "text:x",
        "-x",
        "^x",
        "x AND",
        "(",
        ")",
        "{a b}",
        "'",
        "\\",
        "%",
        "_",
        "\x00",
    ],
)
def test_query_syntax_is_never_interpreted(store: HistoryStore, query: str) -> None:
    """Ensure FTS5 syntax typed by a user neither fails nor changes meaning:
    every word is a word to find."""
    add(
        store,
        draft(text="NEAR(a b) and x OR y"),
        draft(text="x"),
        draft(text='she said "hi there"'),
    )
    hits = found(store, query)
    if query == "NEAR(a b)":
        assert hits == ["NEAR(a b) and x OR y"]
    if query == "x OR y":  # all three words, not either one
        assert hits == ["NEAR(a b) and x OR y"]
    if query == 'say "hi':
        assert hits == []
    if query in ('"', "*", "(", "'", "%"):  # no word in it: nothing to find
        assert hits == []


def test_highlight_ranges_are_utf16_offsets() -> None:
    """Ensure ranges count UTF-16 units (an emoji is two) and merge overlaps."""
    assert highlight("Hello hello", ("hel",)) == [[0, 3], [6, 9]]
    assert highlight("😀 Café", ("café",)) == [[3, 7]]
    assert highlight("abcabc", ("abc", "bca")) == [[0, 6]]
    assert highlight("Straße", ("strasse",)) == [[0, 6]]
    assert highlight("nothing", ("x",)) == []


def test_terms_ignore_punctuation_and_repeats() -> None:
    assert terms('Hello "hello" ,, WORLD *') == ("hello", '"hello"', "world")
    assert len(terms(" ".join(f"w{n}" for n in range(20)))) == 8


def test_the_scan_stops_at_its_bound(make_store: MakeStore) -> None:  # noqa: F811
    """Ensure a scan looks at no more messages than its bound, and says so."""
    store = make_store()
    add(store, draft(text="old needle", ts=1))
    add(store, *(draft(text=f"hay {n}", ts=n + 2) for n in range(30)))
    scan = HistoryScan(store, 20)
    page = scan.search(terms("needle"), ["lobby"], None, 5)
    assert page.hits == [] and page.partial
    page = HistoryScan(store, 100).search(terms("needle"), ["lobby"], None, 5)
    assert [m.text for m in page.hits] == ["old needle"] and not page.partial
    out_of_time = HistoryScan(store, 100, seconds_max=-1)
    page = out_of_time.search(terms("needle"), ["lobby"], None, 5)
    assert page.hits == [] and page.partial


def test_a_deleted_text_leaves_the_sqlite_file(tmp_path: Path) -> None:
    """Ensure a deleted message's words are gone from the SQLite files (the
    table, its index and the WAL), not just hidden from searches."""
    from chatcore.history.sqlite import SqliteHistory

    store = SqliteHistory(str(tmp_path / "chat.db"), 1000)
    try:
        add(store, *(draft(text=f"filler {n}") for n in range(50)))
        [secret] = add(store, draft(text="zanzibarquux is my password"))
        add(store, *(draft(text=f"filler {n}") for n in range(50)))

        def in_files() -> bool:
            return any(
                b"zanzibarquux" in path.read_bytes()
                for path in tmp_path.iterdir()
                if path.name.startswith("chat.db")
            )

        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert in_files()
        deleted = store.change(secret, None, at=5)
        index = open_search(store, 0)
        index.forget(deleted)
        assert found(store, "zanzibarquux") == []  # at once
        index.purge()
        assert not in_files()
    finally:
        store.close()


def test_every_store_keeps_reply_to_and_never_the_quote(store: HistoryStore) -> None:
    """Ensure ``reply_to`` is stored and read back by every store, and the
    quote sent with a reply is not stored with it."""
    from dataclasses import replace

    [original] = add(store, draft(text="the original"))
    quoted = {"id": original.id, "text": "the original"}
    reply = replace(draft(text="an answer"), reply_to=original.id, reply=quoted)
    [stored] = add(store, reply)
    assert stored.reply_to == original.id and stored.reply is None
    for read in (
        store.get("lobby", stored.id),
        store.before("lobby", None, 5)[0][-1],
        store.since("lobby", 0, 5)[-1],
        store.after("lobby", 0, 5)[-1],
    ):
        assert read is not None
        assert read.reply_to == original.id and read.reply is None
        assert "reply" not in read.to_wire()
    edited = store.change(stored, "a better answer", at=5)
    assert store.get("lobby", stored.id) == edited and edited.reply_to == original.id


def test_the_migration_indexes_the_messages_already_stored(tmp_path: Path) -> None:
    """Ensure a file from before search is indexed when it is upgraded: its
    kept messages are found, its deleted ones are not."""
    import sqlite3

    from chatcore.history.sqlite import MIGRATIONS, SqliteHistory, migrate

    search_step = next(i for i, m in enumerate(MIGRATIONS) if "search_index" in m)
    path = tmp_path / "chat.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, upto=search_step)  # every step before the one adding search
    columns = "room, id, user_id, name, color, text, ts, deleted"
    for values in (
        ("lobby", 1, "u1", "ann", "#000", "old news about lunch", 1, 0),
        ("lobby", 2, "u1", "ann", "#000", "", 2, 1),
        ("talk", 1, "u2", "bob", "#000", "more lunch talk", 3, 0),
    ):
        db.execute(f"INSERT INTO messages ({columns}) VALUES (?,?,?,?,?,?,?,?)", values)
    db.execute("INSERT INTO rooms (name, last_id) VALUES ('lobby', 2), ('talk', 1)")
    db.close()
    store = SqliteHistory(str(path), 1000)
    try:
        assert found(store, "lunch", ["lobby", "talk"]) == [
            "more lunch talk",
            "old news about lunch",
        ]
        [new] = add(store, draft(text="lunch again"))
        assert found(store, "lunch", ["lobby"]) == [
            "lunch again",
            "old news about lunch",
        ]
        assert new.reply_to is None
    finally:
        store.close()
