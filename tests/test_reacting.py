"""Reactions through the hub, and which texts are one emoji; no network."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from chatcore import protocol
from chatcore.config import Settings
from chatcore.history.memory import MemoryNames
from chatcore.history.sqlite import SqliteHistory
from chatcore.hub import Hub
from chatcore.reactions import PALETTE, emoji_problem
from tests.test_editing import EditHarness
from tests.test_hub import START, Conn, Inbox
from tests.test_private_rooms import Harness as PrivateHarness

ONE_EMOJI = [
    *PALETTE,
    "❤",  # text presentation, still one emoji
    "👍🏽",  # a skin tone
    "👩🏽‍💻",  # ZWJ with a skin tone
    "👨‍👩‍👧‍👦",  # a family
    "🇫🇷",  # a flag
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # a tag flag
    "1️⃣",  # a keycap
    "#️⃣",
    "🏳️‍🌈",
]
NOT_ONE_EMOJI = [
    "",
    "a",
    "ab",
    "<b>",
    "1",
    "#",
    "👍👍",  # two
    "👍 ",
    "🇫",  # half a flag
    "🇫🇷🇩🇪",
    "é",
    "👍\u0301",  # a combining accent is one grapheme, but no emoji
    "\u200d",
    "x" * 100,
]


@pytest.mark.parametrize("emoji", ONE_EMOJI)
def test_single_emoji_are_taken(emoji: str) -> None:
    """Ensure pictographs, skin tones, ZWJ sequences, flags and keycaps pass."""
    assert emoji_problem(emoji) is None


@pytest.mark.parametrize("text", NOT_ONE_EMOJI)
def test_anything_else_is_not_an_emoji(text: str) -> None:
    """Ensure letters, markup, digits, two emoji and stray parts are refused,
    in the decoder as ``bad_request``."""
    assert emoji_problem(text) is not None
    frame = json.dumps({"type": "react", "room": "lobby", "id": 1, "emoji": text})
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.decode(frame)
    assert (refused.value.code, refused.value.ref) == ("bad_request", "react")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "react", "room": "lobby", "id": 1},
        {"type": "react", "room": "lobby", "emoji": "👍"},
        {"type": "react", "room": "lobby", "id": 0, "emoji": "👍"},
        {"type": "react", "room": "lobby", "id": "1", "emoji": "👍"},
        {"type": "react", "id": 1, "emoji": "👍"},
        {"type": "react", "room": "lobby", "id": 1, "emoji": 5},
    ],
)
def test_react_frames_need_room_id_and_emoji(frame: dict[str, Any]) -> None:
    """Ensure a react frame without a room, a positive id or a string emoji
    is refused."""
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.decode(json.dumps(frame))
    assert refused.value.code == "bad_request"


class ReactHarness(EditHarness):
    def react(
        self, conn: Conn, message_id: int, emoji: str = "👍", room: str = "lobby"
    ) -> Inbox:
        return self.send(conn, type="react", room=room, id=message_id, emoji=emoji)


@pytest.fixture
def h() -> ReactHarness:
    return ReactHarness()


def test_a_reaction_reaches_the_room_with_who_reacted(h: ReactHarness) -> None:
    """Ensure a toggle sends ``reacted`` with the whole list to every member,
    the reactor included, and a second toggle takes it back."""
    alice, bob = h.user("alice"), h.user("bob")
    carol = h.user("carol", room="elsewhere")
    first = h.posted(alice, "ship it?")
    inbox = h.react(bob, first, "🎉")
    assert inbox.receivers() == {alice, bob}
    assert carol not in inbox.receivers()
    reacted = inbox.one(alice, "reacted")
    assert reacted == inbox.one(bob, "reacted")
    assert reacted == {
        "type": "reacted",
        "room": "lobby",
        "id": first,
        "emoji": "🎉",
        "by": {"id": h.user_id(bob), "name": "bob"},
        "added": True,
        "rev": 2,
        "reactions": [
            {
                "emoji": "🎉",
                "count": 1,
                "users": [{"id": h.user_id(bob), "name": "bob"}],
            }
        ],
    }
    h.react(alice, first, "🎉")
    back = h.react(bob, first, "🎉").one(alice, "reacted")
    assert (back["rev"], back["added"], back["by"]["name"]) == (4, False, "bob")
    assert back["reactions"] == [
        {
            "emoji": "🎉",
            "count": 1,
            "users": [{"id": h.user_id(alice), "name": "alice"}],
        }
    ]
    assert h.history.get("lobby", first).reactions[0].count == 1


def test_a_history_page_and_a_replay_carry_reactions(h: ReactHarness) -> None:
    """Ensure history pages show the current reactions, and a rejoin with
    since replays a message whose reactions changed meanwhile."""
    alice, bob = h.user("alice"), h.user("bob")
    first = h.posted(alice, "one")
    h.posted(alice, "two")
    h.send(bob, type="leave", room="lobby")
    h.react(alice, first, "😮")  # rev 3
    inbox = h.send(bob, type="join", room="lobby", since=2)
    [replayed] = inbox.of(bob, "message")
    assert (replayed["id"], replayed["rev"]) == (first, 3)
    assert replayed["reactions"][0]["emoji"] == "😮"
    page = h.send(bob, type="history", room="lobby").one(bob, "history")
    assert page["messages"][0]["reactions"][0]["count"] == 1
    assert "reactions" not in page["messages"][1]


def test_refusals(h: ReactHarness) -> None:
    """Ensure a room not joined, a message not kept, a deleted message and
    a muted user are refused with the codes docs/protocol.md names."""
    alice, bob = h.user("alice"), h.user("bob")
    first = h.posted(alice, "one")
    error = h.react(alice, first, room="dev").error(alice)
    assert (error["code"], error["ref"]) == ("not_in_room", "react")
    for message_id in (2, 99):
        assert h.react(alice, message_id).error(alice)["code"] == "no_such_message"
    h.react(alice, first)  # rev 2: a revision id is no message
    assert h.react(alice, 2).error(alice)["code"] == "no_such_message"
    h.delete(alice, first)
    error = h.react(bob, first).error(bob)
    assert (error["code"], error["message"]) == (
        "bad_request",
        "the message is deleted",
    )
    second = h.posted(alice, "two")
    h.hub.set_role("lobby", h.user_id(alice), "owner")
    h.send(alice, type="mute", user=h.user_id(bob), room="lobby")
    error = h.react(bob, second).error(bob)
    assert (error["code"], error["ref"]) == ("forbidden", "react")
    assert h.history.get("lobby", second).reactions == ()


def test_reactions_spend_the_message_tokens() -> None:
    """Ensure toggles share the connection's message bucket."""
    h = ReactHarness(Settings(rate=1, burst=2))
    alice = h.user("alice")
    first = h.posted(alice, "a")
    h.react(alice, first)
    error = h.react(alice, first, "❤️").error(alice)
    assert (error["code"], error["ref"]) == ("rate_limited", "react")
    h.step(1.0)
    assert h.react(alice, first, "❤️").one(alice, "reacted")["id"] == first


def test_bounds_are_clear_errors(h: ReactHarness) -> None:
    """Ensure the 21st emoji on a message is refused with a message that
    names the bound."""
    h = ReactHarness(Settings(rate=100, burst=100))
    alice = h.user("alice")
    first = h.posted(alice, "a")
    for n in range(20):
        h.react(alice, first, chr(0x1F600 + n))
    error = h.react(alice, first, chr(0x1F600 + 20)).error(alice)
    assert error["code"] == "bad_request"
    assert "20" in error["message"]


def test_a_reaction_waits_for_the_store_only_if_its_message_does(
    tmp_path: Path,
) -> None:
    """Ensure with SQLite a reaction to a message still pending is sent only
    after the flush (or as an error to its sender), and one to a written
    message is not held back."""
    settings = Settings()
    history = SqliteHistory(str(tmp_path / "chat.db"), settings.history_max)
    hub = Hub(settings, history, MemoryNames(), lambda: START, random.Random(1))
    alice = Conn("alice")
    hub.connect(alice, name="alice")
    hub.receive(alice, '{"type": "message", "text": "fresh"}')
    react = '{"type":"react","room":"lobby","id":1,"emoji":"👍"}'
    [pending] = hub.receive(alice, react)
    assert pending.durable and pending.fallback is not None
    assert pending.fallback.targets == (alice,)
    history.flush()
    [written] = hub.receive(alice, react)
    assert not written.durable and written.fallback is None
    assert json.loads(written.text)["reactions"] == []
    history.close()


def test_a_member_removed_elsewhere_cannot_react() -> None:
    """Ensure a removal this process did not hear of is found by a reaction,
    as by a message: out of the private room, refused, nothing stored."""
    p = PrivateHarness()
    alice, bob = p.user("alice"), p.user("bob")
    p.private_room(alice)
    p.send(alice, type="add", room="secret", name="bob")
    p.send(bob, type="join", room="secret")
    first = p.send(alice, type="message", room="secret", text="plans").one(
        alice, "message"
    )
    p.directory.remove("secret", p.user_id(bob))
    inbox = p.send(bob, type="react", room="secret", id=first["id"], emoji="👍")
    [error] = inbox.of(bob, "error")
    assert (error["code"], error["ref"]) == ("forbidden", "react")
    assert inbox.of(bob, "left")
    assert inbox.of(alice, "reacted") == []
    assert p.history.get("secret", first["id"]).reactions == ()
