"""Unit tests of chatcore.private_rooms through the hub: who may create,
join, read and post to a room, and how members are added and removed."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from chatcore import fanout, protocol
from chatcore.config import Settings
from chatcore.directory.memory import MemoryDirectory
from chatcore.history import HistoryError
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.hub import ROOMS_PER_CONNECTION_MAX, Hub
from chatcore.limits import TokenBucket
from chatcore.protocol import ProtocolError
from chatcore.users import User
from tests.test_hub import START, Conn, Inbox
from tests.test_hub_shared import RecordingFanout

NOT_A_MEMBER = "you are not a member of this room"


class Harness:
    """A hub with a memory directory; users connect with their name as key."""

    def __init__(
        self,
        fanout: RecordingFanout | None = None,
        directory: MemoryDirectory | None = None,
    ):
        self.history = MemoryHistory(1000)
        self.directory = directory or MemoryDirectory()
        self.hub = Hub(
            Settings(rate=1000, burst=1000),
            self.history,
            MemoryNames(),
            clock=lambda: START,
            rng=random.Random(3),
            fanout=fanout,
            directory=self.directory,
        )

    def connect(self, name: str, room: str = "lobby") -> tuple[Conn, Inbox]:
        conn = Conn(name)
        return conn, Inbox(
            self.hub.connect(conn, name=name, room=room, client_key=name + "-key")
        )

    def user(self, name: str, room: str = "lobby") -> Conn:
        return self.connect(name, room)[0]

    def send(self, conn: Conn, **frame: Any) -> Inbox:
        return Inbox(self.hub.receive(conn, json.dumps(frame)))

    def user_id(self, conn: Conn) -> str:
        return self.hub._conns[conn].user.id

    def private_room(self, owner: Conn, room: str = "secret") -> Inbox:
        inbox = self.send(owner, type="create", room=room, private=True)
        assert inbox.one(owner, "presence")["private"] is True, inbox
        return inbox


@pytest.fixture
def p() -> Harness:
    return Harness()


def refused(inbox: Inbox, conn: Conn, ref: str) -> None:
    error = inbox.error(conn)
    assert error == {
        "type": "error",
        "code": "forbidden",
        "message": NOT_A_MEMBER,
        "ref": ref,
        "room": "secret",
    }


def test_the_creator_joins_a_private_room_marked_private(p: Harness) -> None:
    alice = p.user("alice")
    inbox = p.private_room(alice)
    snapshot = inbox.one(alice, "presence")
    assert snapshot["event"] == "snapshot" and snapshot["room"] == "secret"
    assert [u["name"] for u in snapshot["users"]] == ["alice"]
    assert p.directory.members("secret") == {p.user_id(alice)}
    assert snapshot["role"] == "owner"  # the creator owns the room
    assert p.hub.moderates(p.user_id(alice), "secret")
    assert p.hub.rooms_of(alice) == ["lobby", "secret"]


def test_a_public_room_is_created_without_the_mark(p: Harness) -> None:
    alice = p.user("alice")
    inbox = p.send(alice, type="create", room="open", private=False)
    snapshot = inbox.one(alice, "presence")
    assert "private" not in snapshot
    assert p.directory.private_among(["open"]) == set()
    bob = p.user("bob")
    assert p.send(bob, type="join", room="open").one(bob, "presence")


def test_a_room_in_use_cannot_be_created(p: Harness) -> None:
    alice, bob = p.user("alice"), p.user("bob", room="talk")
    p.send(bob, type="message", room="talk", text="hi")
    p.send(bob, type="leave", room="talk")
    p.private_room(alice)
    for room in ("lobby", "talk", "secret"):  # members, history, private
        error = p.send(bob, type="create", room=room, private=True).error(bob)
        assert error["code"] == "room_exists" and error["ref"] == "create", room
    assert p.directory.members("secret") == {p.user_id(alice)}
    assert not any(p.hub.moderates(p.user_id(bob), r) for r in ("lobby", "talk"))


def test_a_connection_in_too_many_rooms_creates_nothing(p: Harness) -> None:
    alice = p.user("alice")
    for n in range(ROOMS_PER_CONNECTION_MAX - 1):
        p.send(alice, type="join", room=f"r{n}")
    error = p.send(alice, type="create", room="secret", private=True).error(alice)
    assert error["code"] == "bad_request" and error["ref"] == "create"
    assert p.directory.access("secret", None).room is None
    assert not p.hub.moderates(p.user_id(alice), "secret")


def test_a_non_member_is_refused_join_history_and_message(p: Harness) -> None:
    alice, bob = p.user("alice"), p.user("bob")
    p.private_room(alice)
    p.send(alice, type="message", room="secret", text="for members only")
    refused(p.send(bob, type="join", room="secret"), bob, "join")
    refused(p.send(bob, type="history", room="secret"), bob, "history")
    refused(p.send(bob, type="message", room="secret", text="hi"), bob, "message")
    assert p.hub.rooms_of(bob) == ["lobby"]
    assert p.history.last_id("secret") == 1  # bob's message was not stored


def test_connecting_straight_into_a_private_room_is_refused(p: Harness) -> None:
    alice = p.user("alice")
    p.private_room(alice)
    bob, inbox = p.connect("bob", room="secret")
    assert inbox.types(bob) == ["welcome", "error"]
    assert inbox.one(bob, "welcome")["rooms"] == []
    assert inbox.one(bob, "error")["code"] == "forbidden"


def test_a_member_adds_a_person_by_name(p: Harness) -> None:
    alice, bob = p.user("alice"), p.user("bob")
    bob_tab = p.user("bob")  # a second tab of the same user
    p.private_room(alice)
    inbox = p.send(alice, type="add", room="secret", name="BOB")  # as names compare
    assert inbox.one(alice, "added") == {
        "type": "added",
        "room": "secret",
        "user": {"id": p.user_id(bob), "name": "BOB"},
    }
    by = inbox.one(bob, "room_added")["by"]
    assert by["name"] == "alice"
    assert inbox.one(bob_tab, "room_added")["room"] == "secret"
    joined = p.send(bob, type="join", room="secret")
    assert joined.one(bob, "presence")["private"] is True
    assert joined.one(bob, "presence")["creator"] == p.user_id(alice)
    assert p.send(bob, type="history", room="secret").one(bob, "history")
    # Bob, a member now, adds someone else; adding twice tells nobody again.
    carol = p.user("carol")
    assert p.send(bob, type="add", room="secret", name="carol").one(carol, "room_added")
    again = p.send(bob, type="add", room="secret", name="carol")
    assert again.types(bob) == ["added"] and not again.of(carol, "room_added")


def test_add_refusals(p: Harness) -> None:
    alice, bob = p.user("alice"), p.user("bob")
    p.private_room(alice)
    refused(p.send(bob, type="add", room="secret", name="bob"), bob, "add")
    nobody = p.send(alice, type="add", room="secret", name="nobody").error(alice)
    assert nobody["code"] == "bad_request" and "nobody goes by" in nobody["message"]
    public = p.send(alice, type="add", room="lobby", name="bob").error(alice)
    assert public["code"] == "bad_request" and "not a private room" in public["message"]
    assert p.directory.members("secret") == {p.user_id(alice)}


def test_the_creator_removes_a_member_everywhere(p: Harness) -> None:
    alice, bob, carol = p.user("alice"), p.user("bob"), p.user("carol")
    p.private_room(alice)
    for name in ("bob", "carol"):
        p.send(alice, type="add", room="secret", name=name)
        p.send(p.user(name), type="join", room="secret")
    p.send(bob, type="join", room="secret")
    # Only the creator removes, and never themselves.
    no = p.send(bob, type="remove", room="secret", user=p.user_id(carol)).error(bob)
    assert no["code"] == "forbidden"
    own = p.send(alice, type="remove", room="secret", user=p.user_id(alice))
    assert own.error(alice)["code"] == "bad_request"
    inbox = p.send(alice, type="remove", room="secret", user=p.user_id(bob))
    assert inbox.one(alice, "removed") == {
        "type": "removed",
        "room": "secret",
        "user": p.user_id(bob),
    }
    assert {"type": "left", "room": "secret", "reason": "removed"} in inbox[bob]
    leave = [f for f in inbox[alice] if f["type"] == "presence"]
    assert leave and leave[0]["event"] == "leave"
    assert "secret" not in p.hub.rooms_of(bob)
    refused(p.send(bob, type="join", room="secret"), bob, "join")


def test_a_member_removed_elsewhere_cannot_post(p: Harness) -> None:
    """A removal this process did not hear of: the next message finds it."""
    alice, bob = p.user("alice"), p.user("bob")
    p.private_room(alice)
    p.send(alice, type="add", room="secret", name="bob")
    p.send(bob, type="join", room="secret")
    p.directory.remove("secret", p.user_id(bob))
    inbox = p.send(bob, type="message", room="secret", text="still here?")
    assert inbox.of(bob, "left") and inbox.of(bob, "error")[0]["code"] == "forbidden"
    assert p.history.last_id("secret") == 0
    assert "secret" not in p.hub.rooms_of(bob)


def test_bots_may_not_post_to_private_rooms(p: Harness) -> None:
    p.private_room(p.user("alice"))
    bot = User("bot-x", "bot", "#123456")
    with pytest.raises(ProtocolError) as caught:
        p.hub.post(bot, "secret", "hi", None, TokenBucket(10, 10))
    assert caught.value.code is protocol.ErrorCode.FORBIDDEN
    assert p.history.last_id("secret") == 0


def test_lists_and_pages_see_private_rooms_of_members_only(p: Harness) -> None:
    alice = p.user("alice")
    p.private_room(alice)
    rooms = ["lobby", "secret"]
    assert p.hub.visible_rooms(rooms, p.user_id(alice)) == rooms
    assert p.hub.visible_rooms(rooms, "someone-else") == ["lobby"]
    assert p.hub.visible_rooms(rooms, None) == ["lobby"]
    assert not p.hub.room_access("secret", None).allowed


def test_adds_and_removals_reach_other_processes() -> None:
    recording = RecordingFanout()
    p = Harness(recording)
    alice, bob = p.user("alice"), p.user("bob")
    p.private_room(alice)
    p.send(alice, type="add", room="secret", name="bob")
    added = [e for e in recording.published if isinstance(e, fanout.Added)]
    assert added == [
        fanout.Added(
            "here",
            "secret",
            p.user_id(bob),
            {"id": p.user_id(alice), "name": "alice", "color": added[0].by["color"]},
        )
    ]
    p.send(bob, type="join", room="secret")
    p.send(alice, type="remove", room="secret", user=p.user_id(bob))
    assert fanout.Removed("here", "secret", p.user_id(bob)) in recording.published
    # The same events from another process act here; our own are ignored.
    carol = p.user("carol")
    by = {"id": "u-dave", "name": "dave", "color": "#123456"}
    inbox = Inbox(
        p.hub.deliver_published(fanout.Added("there", "x", p.user_id(carol), by))
    )
    assert inbox.one(carol, "room_added") == {
        "type": "room_added",
        "room": "x",
        "by": by,
    }
    mine = fanout.Added("here", "x", p.user_id(carol), by)
    assert not Inbox(p.hub.deliver_published(mine))
    p.send(alice, type="add", room="secret", name="carol")
    p.send(carol, type="join", room="secret")
    removed = fanout.Removed("there", "secret", p.user_id(carol))
    inbox = Inbox(p.hub.deliver_published(removed))
    assert inbox.of(carol, "left") and "secret" not in p.hub.rooms_of(carol)
    for event in (added[0], removed):
        assert fanout.decode(fanout.encode(event)) == event


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"type": "create"}, "'create' needs the field 'room'"),
        ({"type": "create", "room": "x", "private": "yes"}, "'private' of 'create'"),
        ({"type": "add", "room": "x"}, "'add' needs the field 'name'"),
        ({"type": "remove", "room": "x", "user": 7}, "'user' of 'remove'"),
    ],
)
def test_bad_frames_are_refused(frame: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(json.dumps(frame))
    assert caught.value.code is protocol.ErrorCode.BAD_REQUEST
    assert message in caught.value.message


def test_frames_decode() -> None:
    assert protocol.decode('{"type":"create","room":"x"}') == protocol.Create("x")
    assert protocol.decode('{"type":"create","room":"x","private":true}') == (
        protocol.Create("x", True)
    )
    assert protocol.decode('{"type":"add","room":"x","name":"Bo"}') == protocol.Add(
        "x", "Bo"
    )
    assert protocol.decode('{"type":"remove","room":"x","user":"u1"}') == (
        protocol.Remove("x", "u1")
    )


class BrokenDirectory(MemoryDirectory):
    """A directory whose store cannot be reached, as Redis gone away."""

    def access(self, room: str, user_id: str | None) -> Any:
        raise HistoryError("the store is down")


def test_a_directory_that_cannot_be_read_costs_an_error_not_the_server() -> None:
    p = Harness()
    p.hub._private._directory = BrokenDirectory()
    alice, inbox = p.connect("alice")
    assert inbox.types(alice) == ["welcome", "error"]
    assert inbox.one(alice, "error")["code"] == "internal"
    error = p.send(alice, type="join", room="lobby").error(alice)
    assert (error["code"], error["ref"]) == ("internal", "join")
    assert p.hub.rooms_of(alice) == []
    with pytest.raises(ProtocolError) as caught:
        p.hub.post(
            User("bot-x", "bot", "#123456"), "lobby", "hi", None, TokenBucket(9, 9)
        )
    assert caught.value.code is protocol.ErrorCode.INTERNAL


def test_joins_of_a_busy_public_room_do_not_read_the_directory(p: Harness) -> None:
    """Ensure a public room with members here is looked up once, not once
    per joiner (a room in use cannot be made private)."""
    reads: list[str] = []
    access = p.directory.access

    def counted(room: str, user_id: str | None) -> Any:
        reads.append(room)
        return access(room, user_id)

    p.directory.access = counted  # type: ignore[method-assign]
    for i in range(30):
        p.user(f"user{i}", "busy")
    assert reads.count("busy") == 2  # the first joiner, then the room is known


def test_a_public_room_that_emptied_and_became_private_is_checked_again(
    p: Harness,
) -> None:
    """Ensure the answer 'public' goes with the room's members here: once
    it emptied, and someone made it private, a non-member is refused."""
    ann = p.user("ann", "secret")
    bob = p.user("bob", "secret")  # the room is known public now
    for conn in (ann, bob):
        p.send(conn, type="leave", room="secret")
    owner = p.user("owner")
    p.private_room(owner)  # the owner is in it: it has members here again
    cat = p.user("cat")
    refused(p.send(cat, type="join", room="secret"), cat, "join")
