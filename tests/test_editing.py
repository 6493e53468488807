"""Unit tests of chatcore.editing through the hub, without a network."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from chatcore.config import Settings
from chatcore.editing import Editing
from chatcore.history import Draft
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import SqliteHistory
from chatcore.hub import Hub
from chatcore.limits import TokenBucket
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.users import User
from tests.test_hub import START, Conn, HubHarness, Inbox


class EditHarness(HubHarness):
    """The hub harness on a memory history the test can read."""

    def __init__(self, settings: Settings | None = None):
        super().__init__(settings)
        self.history = MemoryHistory(self.settings.history_max)
        self.hub = Hub(
            self.settings,
            self.history,
            MemoryNames(),
            lambda: self.now,
            random.Random(1234),
        )

    def posted(self, conn: Conn, text: str, room: str = "lobby") -> int:
        """Post a message; return its id."""
        inbox = self.say(conn, text, room=room)
        return int(inbox.one(conn, "message")["id"])

    def edit(self, conn: Conn, message_id: int, text: str, **extra: Any) -> Inbox:
        frame = {"room": "lobby", "id": message_id, "text": text, **extra}
        return self.send(conn, type="edit", **frame)

    def delete(self, conn: Conn, message_id: int, room: str = "lobby") -> Inbox:
        return self.send(conn, type="delete", room=room, id=message_id)

    def user_id(self, conn: Conn) -> str:
        return self.hub._conns[conn].user.id  # noqa: SLF001 - the test's own hub


@pytest.fixture
def h() -> EditHarness:
    return EditHarness()


def test_an_edit_reaches_everyone_in_the_room(h: EditHarness) -> None:
    """Ensure an author's edit goes to every member, the author included,
    with the new text, the time, the revision and the author."""
    alice, bob = h.user("alice"), h.user("bob")
    carol = h.user("carol", room="elsewhere")
    first = h.posted(alice, "helo")
    h.step(2.5)
    inbox = h.edit(alice, first, "hello")
    assert inbox.receivers() == {alice, bob}
    edited = inbox.one(bob, "edited")
    assert edited == inbox.one(alice, "edited")
    assert edited == {
        "type": "edited",
        "rev": 2,
        "room": "lobby",
        "id": 1,
        "text": "hello",
        "edited": int((START + 2.5) * 1000),
        "user": {
            "id": h.user_id(alice),
            "name": "alice",
            "color": edited["user"]["color"],
        },
    }
    assert inbox.of(carol, "edited") == []


def test_the_same_text_changes_nothing(h: EditHarness) -> None:
    """Ensure an edit to the text the message has sends and stores nothing."""
    alice = h.user("alice")
    first = h.posted(alice, "same")
    assert h.edit(alice, first, "same") == {}
    assert h.history.last_id("lobby") == 1


def test_a_delete_leaves_a_tombstone_everywhere(h: EditHarness) -> None:
    """Ensure a delete reaches everyone, and pages and replays show a
    tombstone without the text."""
    alice, bob = h.user("alice"), h.user("bob")
    first = h.posted(alice, "oops, a password")
    inbox = h.delete(alice, first)
    assert inbox.one(bob, "deleted") == {
        "type": "deleted",
        "rev": 2,
        "room": "lobby",
        "id": 1,
    }
    assert inbox.one(alice, "deleted")["id"] == 1
    page = h.send(bob, type="history", room="lobby").one(bob, "history")
    [tombstone] = page["messages"]
    assert (tombstone["id"], tombstone["text"], tombstone["deleted"]) == (1, "", True)
    assert "oops" not in repr(page)
    again = h.delete(alice, first).error(alice)
    assert (again["code"], again["ref"]) == ("bad_request", "delete")
    edit = h.edit(alice, first, "back").error(alice)
    assert edit["code"] == "bad_request"


def test_only_the_author_edits_or_deletes(h: EditHarness) -> None:
    """Ensure another member's edit or delete is forbidden and changes nothing."""
    alice, bob = h.user("alice"), h.user("bob")
    first = h.posted(alice, "mine")
    for inbox in (h.edit(bob, first, "yours"), h.delete(bob, first)):
        error = inbox.error(bob)
        assert error["code"] == "forbidden"
        assert inbox.of(alice, "edited") == inbox.of(alice, "deleted") == []
    assert h.history.get("lobby", first).text == "mine"


def test_a_moderator_deletes_but_does_not_edit(h: EditHarness) -> None:
    """Ensure a room's moderator may delete anyone's message there (the event
    says by whom), but not edit it, and not delete in other rooms."""
    alice, mod = h.user("alice"), h.user("mod")
    h.send(mod, type="join", room="dev")
    h.send(alice, type="join", room="dev")
    h.hub.set_role("lobby", h.user_id(mod), "moderator")
    first = h.posted(alice, "rude words")
    in_dev = h.posted(alice, "rude words too", room="dev")
    assert h.edit(mod, first, "nice words").error(mod)["code"] == "forbidden"
    assert h.delete(mod, in_dev, room="dev").error(mod)["code"] == "forbidden"
    deleted = h.delete(mod, first).one(alice, "deleted")
    assert deleted["by"]["name"] == "mod"
    assert deleted["by"]["id"] == h.user_id(mod)
    own = h.posted(mod, "my own")
    assert "by" not in h.delete(mod, own).one(alice, "deleted")


def test_a_message_not_kept_is_no_such_message(h: EditHarness) -> None:
    """Ensure ids never sent, revision ids and other rooms' ids are refused."""
    alice = h.user("alice")
    first = h.posted(alice, "one")
    h.edit(alice, first, "one!")  # rev 2
    h.send(alice, type="join", room="dev")
    in_dev = h.posted(alice, "in dev", room="dev")
    for message_id in (2, 99):
        error = h.edit(alice, message_id, "x").error(alice)
        assert (error["code"], error["ref"]) == ("no_such_message", "edit")
        assert h.delete(alice, message_id).error(alice)["code"] == "no_such_message"
    assert in_dev == 1
    wrong_room = h.send(alice, type="delete", room="dev", id=first + 4)
    assert wrong_room.error(alice)["code"] == "no_such_message"
    assert h.history.get("dev", in_dev) is not None


def test_edits_are_checked_like_messages(h: EditHarness) -> None:
    """Ensure an empty or too long text and a room not joined are refused."""
    h = EditHarness(Settings(max_text=10))
    alice = h.user("alice")
    first = h.posted(alice, "short")
    assert h.edit(alice, first, "   ").error(alice)["code"] == "bad_request"
    assert h.edit(alice, first, "x" * 11).error(alice)["code"] == "too_large"
    error = h.edit(alice, first, "ok", room="dev").error(alice)
    assert (error["code"], error["ref"]) == ("not_in_room", "edit")
    assert h.history.get("lobby", first).text == "short"


def test_edits_spend_the_message_tokens() -> None:
    """Ensure edits and deletes share the connection's message bucket."""
    h = EditHarness(Settings(rate=1, burst=3))
    alice = h.user("alice")
    first = h.posted(alice, "a")
    h.edit(alice, first, "b")
    h.edit(alice, first, "c")
    error = h.delete(alice, first).error(alice)
    assert (error["code"], error["ref"]) == ("rate_limited", "delete")
    h.step(1.0)
    assert h.delete(alice, first).one(alice, "deleted")["id"] == first


def test_a_replay_brings_the_changes_missed(h: EditHarness) -> None:
    """Ensure a rejoin with since gets messages changed meanwhile in their
    current state, each once, and no gap for revision ids."""
    alice, bob = h.user("alice"), h.user("bob")
    for n in range(4):
        h.posted(alice, f"m{n}")
    h.send(bob, type="leave", room="lobby")
    h.edit(alice, 1, "m0 once")  # rev 5
    h.edit(alice, 1, "m0 twice")  # rev 6
    h.delete(alice, 3)  # rev 7
    h.posted(alice, "m4")  # id 8
    inbox = h.send(bob, type="join", room="lobby", since=4)
    assert inbox.of(bob, "gap") == []
    replay = inbox.of(bob, "message")
    assert [(m["id"], m.get("rev")) for m in replay] == [(1, 6), (3, 7), (8, None)]
    assert replay[0]["text"] == "m0 twice"
    assert (replay[1]["text"], replay[1]["deleted"]) == ("", True)


def test_a_gap_counts_ids_not_replayed() -> None:
    """Ensure a replay cut by retention is preceded by a gap whose bounds are
    ids, though edits took some of them."""
    h = EditHarness(Settings(history_max=3))
    alice, bob = h.user("alice"), h.user("bob")
    h.send(bob, type="leave", room="lobby")
    first = h.posted(alice, "a")
    h.edit(alice, first, "b")  # rev 2
    h.edit(alice, first, "c")  # rev 3
    for text in ("d", "e", "f"):
        h.posted(alice, text)  # ids 4..6: ids 1..3 fall out
    inbox = h.send(bob, type="join", room="lobby", since=1)
    gap = inbox.one(bob, "gap")
    assert (gap["after"], gap["before"], gap["count"]) == (1, 4, 2)
    assert [m["id"] for m in inbox.of(bob, "message")] == [4, 5, 6]
    error = h.edit(alice, first, "g").error(alice)
    assert error["code"] == "no_such_message"


class RacingMemory(MemoryHistory):
    """A store where another process changes the message just before the
    first change this process makes (``race``: that process's text, None
    for a delete)."""

    def __init__(self, race: str | None):
        super().__init__(1000)
        self.race: list[str | None] = [race]

    def change(self, current, text, at, by=None):  # type: ignore[no-untyped-def]
        if self.race:
            super().change(current, self.race.pop(), at, by)
        return super().change(current, text, at, by)


@pytest.mark.parametrize("race", ["edited elsewhere", None])
def test_a_change_raced_by_another_process_is_checked_again(race: str | None) -> None:
    """Ensure a change refused as stale is read and checked again: a delete
    then deletes the edited message, and finds a deleted one deleted."""
    history = RacingMemory(race)
    alice = User("u-alice", "alice", "#c0392b")
    message = history.append(Draft("lobby", alice.id, "alice", "#c0392b", "x", 1))
    editing = Editing(100, history, lambda: START)
    bucket = TokenBucket(10, 10)
    if race is None:
        with pytest.raises(ProtocolError) as refused:
            editing.delete(alice, "lobby", message.id, bucket)
        assert refused.value.code is ErrorCode.BAD_REQUEST
        return
    deleted = editing.delete(alice, "lobby", message.id, bucket)
    assert (deleted.deleted, deleted.rev) == (True, 3)
    assert history.get("lobby", message.id) == deleted


def test_a_change_waits_for_the_store_only_if_its_message_does(
    tmp_path: Path,
) -> None:
    """Ensure with SQLite a change of a message still pending is sent only
    after the flush (or as an error to its sender), and a change of a
    written message, written at once, is not held back."""
    settings = Settings()
    history = SqliteHistory(str(tmp_path / "chat.db"), settings.history_max)
    hub = Hub(settings, history, MemoryNames(), lambda: START, random.Random(1))
    alice = Conn("alice")
    hub.connect(alice, name="alice")
    hub.receive(alice, '{"type": "message", "text": "typo"}')
    [pending] = hub.receive(alice, '{"type":"edit","room":"lobby","id":1,"text":"ok"}')
    assert pending.durable and pending.fallback is not None
    assert pending.fallback.targets == (alice,)
    history.flush()
    [written] = hub.receive(alice, '{"type":"delete","room":"lobby","id":1}')
    assert not written.durable and written.fallback is None
    history.close()
