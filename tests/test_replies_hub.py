"""Replies and search through the hub: the ``reply_to`` of a message and its
quote, and the ``search`` frame (rooms the asker may see, and no other)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from chatcore.config import Settings
from chatcore.directory.memory import MemoryDirectory
from chatcore.history import HistoryStore
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import SqliteHistory
from chatcore.hub import Hub
from chatcore.replies import EXCERPT_MAX
from chatcore.search import open_search
from tests.test_hub import START, Conn, Inbox


class Harness:
    """A hub over a memory or SQLite store, with private rooms; users
    connect with their name as key."""

    def __init__(self, history: HistoryStore, keep: int = 1000):
        self.history = history
        self.now = START
        self.hub = Hub(
            Settings(rate=1000, burst=1000, history_max=keep),
            history,
            MemoryNames(),
            clock=lambda: self.now,
            rng=random.Random(3),
            directory=MemoryDirectory(),
            search=open_search(history, 10_000),
        )

    def user(self, name: str, room: str = "lobby") -> Conn:
        conn = Conn(name)
        self.hub.connect(conn, name=name, room=room, client_key=name + "-key")
        return conn

    def send(self, conn: Conn, **frame: Any) -> Inbox:
        inbox = Inbox(self.hub.receive(conn, json.dumps(frame)))
        self.history.flush()
        return inbox

    def say(self, conn: Conn, text: str, room: str = "lobby", **extra: Any) -> int:
        self.now += 0.01  # each message a little later than the one before
        inbox = self.send(conn, type="message", room=room, text=text, **extra)
        return int(inbox.one(conn, "message")["id"])

    def search(self, conn: Conn, **frame: Any) -> dict[str, Any]:
        self.now += 10  # clear of the search rate
        return self.send(conn, type="search", **frame).one(conn, "results")


@pytest.fixture(params=["memory", "sqlite"])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield Harness(MemoryHistory(1000))
        return
    store = SqliteHistory(str(tmp_path / "chat.db"), 1000)
    yield Harness(store)
    store.close()


# -- replies -------------------------------------------------------------------


def test_a_reply_carries_the_quoted_original(h: Harness) -> None:
    """Ensure everyone in the room gets the reply with the original's quote."""
    ann, bob = h.user("ann"), h.user("bob")
    original = h.say(ann, "x" * 200)
    inbox = h.send(bob, type="message", room="lobby", text="yes", reply_to=original)
    for conn in (ann, bob):
        message = inbox.one(conn, "message")
        assert message["reply_to"] == original
        assert message["reply"] == {
            "id": original,
            "user": {
                "id": message["reply"]["user"]["id"],
                "name": "ann",
                "color": message["reply"]["user"]["color"],
            },
            "text": "x" * EXCERPT_MAX,
        }
    assert h.history.get("lobby", original + 1).reply_to == original


def test_replying_to_what_is_not_kept_here_is_refused(h: Harness) -> None:
    """Ensure a reply_to of no message, of another room's message or of a
    deleted message is refused, and nothing is stored."""
    ann = h.user("ann")
    h.send(ann, type="join", room="other")
    elsewhere = h.say(ann, "elsewhere", room="other")
    gone = h.say(ann, "soon gone")
    h.send(ann, type="delete", room="lobby", id=gone)
    last = h.history.last_id("lobby")
    for reply_to, code in ((99, "no_such_message"), (gone, "bad_request")):
        frame = dict(type="message", room="lobby", text="re", reply_to=reply_to)
        error = h.send(ann, **frame).error(ann)
        assert (error["code"], error["ref"]) == (code, "message")
    assert elsewhere == 1 and h.history.get("lobby", 1) is not None
    for bad in (0, -1, "1", True, 2**60):
        frame = dict(type="message", room="lobby", text="re", reply_to=bad)
        assert h.send(ann, **frame).error(ann)["code"] == "bad_request"
    assert h.history.last_id("lobby") == last


def test_pages_and_replays_quote_the_original_as_it_is_now(h: Harness) -> None:
    """Ensure a history page and a replay read the quote afresh: an edited
    original shows its new text, a deleted one shows as deleted."""
    ann = h.user("ann")
    first = h.say(ann, "first words")
    second = h.say(ann, "second words")
    to_first = h.say(ann, "re 1", reply_to=first)
    to_second = h.say(ann, "re 2", reply_to=second)
    h.send(ann, type="edit", room="lobby", id=first, text="better words")
    h.send(ann, type="delete", room="lobby", id=second)
    page = h.send(ann, type="history", room="lobby").one(ann, "history")
    quotes = {m["id"]: m.get("reply") for m in page["messages"]}
    assert quotes[to_first]["text"] == "better words"
    assert quotes[to_second]["deleted"] is True and quotes[to_second]["text"] == ""
    assert quotes[first] is None
    bob = h.user("bob", room="elsewhere")
    replay = h.send(bob, type="join", room="lobby", since=0)
    replayed = {m["id"]: m.get("reply") for m in replay.of(bob, "message")}
    assert replayed[to_first]["text"] == "better words"
    assert replayed[to_second]["deleted"] is True


def test_a_trimmed_original_is_quoted_as_gone(tmp_path: Path) -> None:
    h = Harness(MemoryHistory(3), keep=3)
    ann = h.user("ann")
    first = h.say(ann, "old")
    reply = h.say(ann, "re", reply_to=first)
    h.say(ann, "a")
    h.say(ann, "b")
    page = h.send(ann, type="history", room="lobby").one(ann, "history")
    [quoted] = [m for m in page["messages"] if m["id"] == reply]
    assert quoted["reply"] == {"id": first, "gone": True}


# -- search ----------------------------------------------------------------------


def test_search_finds_and_marks_the_words(h: Harness) -> None:
    """Ensure results carry the hit as a message with UTF-16 highlight ranges."""
    ann = h.user("ann")
    h.say(ann, "😀 Lunch at noon?")
    h.say(ann, "no")
    results = h.search(ann, q="LUNCH")
    assert results["q"] == "LUNCH" and results["more"] is False
    [hit] = results["hits"]
    assert hit["text"] == "😀 Lunch at noon?" and hit["room"] == "lobby"
    assert hit["highlight"] == [[3, 8]]
    assert "next" not in results


def test_a_private_room_is_searched_by_its_members_only(h: Harness) -> None:
    """Ensure nobody outside a private room gets a hit, a count or a cursor
    from it, and a member does."""
    ann, bob, eve = h.user("ann"), h.user("bob"), h.user("eve")
    h.send(ann, type="create", room="secret", private=True)
    h.send(ann, type="add", room="secret", name="bob")
    for n in range(3):
        h.say(ann, f"launch code {n}", room="secret")
    h.say(ann, "launch party in the lobby")
    for frame in ({"q": "launch"}, {"q": "launch", "limit": 1}):
        results = h.search(eve, **frame)
        assert [m["room"] for m in results["hits"]] == ["lobby"]
        assert results["more"] is False and "next" not in results
    refused = h.send(eve, type="search", q="launch", room="secret").error(eve)
    assert refused["code"] == "forbidden" and refused["ref"] == "search"
    member = h.search(bob, q="launch")
    assert [m["room"] for m in member["hits"]] == ["lobby"] + ["secret"] * 3
    assert len(h.search(bob, q="code", room="secret")["hits"]) == 3


def test_search_pages(h: Harness) -> None:
    ann = h.user("ann")
    for n in range(5):
        h.say(ann, f"item {n}")
    first = h.search(ann, q="item", limit=2)
    assert [m["text"] for m in first["hits"]] == ["item 4", "item 3"]
    assert first["more"] is True
    second = h.search(ann, q="item", limit=2, before=first["next"])
    assert [m["text"] for m in second["hits"]] == ["item 2", "item 1"]
    bad = h.send(ann, type="search", q="item", before="nonsense").error(ann)
    assert bad["code"] == "bad_request"


def test_searches_are_rate_limited(h: Harness) -> None:
    ann = h.user("ann")
    codes = [h.send(ann, type="search", q="x").types(ann)[0] for _ in range(8)]
    assert codes[:5] == ["results"] * 5 and "error" in codes


@pytest.mark.parametrize(
    "frame",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": 5},
        {"q": "x", "limit": 0},
        {"q": "x", "limit": 51},
        {"q": "x", "room": "no spaces allowed here?"},
        {"q": "x", "before": "k" * 101},
    ],
)
def test_bad_searches_are_refused(h: Harness, frame: dict[str, Any]) -> None:
    ann = h.user("ann")
    error = h.send(ann, type="search", **frame).error(ann)
    assert (error["code"], error["ref"]) == ("bad_request", "search")


def test_deleted_words_leave_the_sqlite_file_at_most_every_interval(
    tmp_path: Path,
) -> None:
    """Ensure a delete's words leave the file at the next tick, and deletes
    close together share one rewrite of the index (PURGE_INTERVAL)."""
    from chatcore.searching import PURGE_INTERVAL

    store = SqliteHistory(str(tmp_path / "chat.db"), 1000)
    h = Harness(store)

    def in_file(word: bytes) -> bool:
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return any(
            word in path.read_bytes()
            for path in tmp_path.iterdir()
            if path.name.startswith("chat.db")
        )

    try:
        ann = h.user("ann")
        for n in range(30):
            h.say(ann, f"filler {n}")
        first = h.say(ann, "quuxfirst is a secret")
        second = h.say(ann, "quuxsecond is another")
        h.send(ann, type="delete", room="lobby", id=first)
        assert h.search(ann, q="quuxfirst")["hits"] == []  # not found at once
        h.hub.expire_typing()
        assert not in_file(b"quuxfirst")
        h.send(ann, type="delete", room="lobby", id=second)
        h.now += PURGE_INTERVAL / 2
        h.hub.expire_typing()
        assert in_file(b"quuxsecond")  # the index was rewritten just now
        h.now += PURGE_INTERVAL / 2
        h.hub.expire_typing()
        assert not in_file(b"quuxsecond")
    finally:
        store.close()
