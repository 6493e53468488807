"""Unit tests of chatcore.hub: the chat rules of docs/protocol.md, without a network.

Connections are small named sentinels; time is a float the tests step by hand.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from chatcore import identity
from chatcore.config import Settings
from chatcore.delivery import Delivery
from chatcore.history import HistoryError
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import SqliteHistory
from chatcore.hub import ROOMS_PER_CONNECTION_MAX, TYPING_BURST, Hub

Frame = dict[str, Any]
START = 1_700_000_000.0  # seconds since the epoch, the fake clock's first reading


class Conn:
    """An opaque connection key with a readable name in assertion output."""

    def __init__(self, label: str):
        self.label = label

    def __repr__(self) -> str:
        return f"Conn({self.label})"


class Inbox(dict[Conn, list[Frame]]):
    """Parsed frames grouped by the connection they were delivered to.

    A connection that got nothing reads as an empty list and is not ``in`` it.
    """

    def __init__(self, deliveries: Iterable[Delivery] = ()):
        super().__init__()
        for delivery in deliveries:
            assert len(set(delivery.targets)) == len(delivery.targets), delivery
            parsed = json.loads(delivery.text)
            for target in delivery.targets:
                self.setdefault(target, []).append(parsed)

    def __missing__(self, conn: Conn) -> list[Frame]:
        return []

    def types(self, conn: Conn) -> list[str]:
        return [f["type"] for f in self.get(conn, [])]

    def of(self, conn: Conn, kind: str) -> list[Frame]:
        return [f for f in self.get(conn, []) if f["type"] == kind]

    def one(self, conn: Conn, kind: str) -> Frame:
        found = self.of(conn, kind)
        assert len(found) == 1, f"{conn}: expected one {kind!r}, got {self.get(conn)}"
        return found[0]

    def error(self, conn: Conn) -> Frame:
        """The single frame ``conn`` got, which must be an error."""
        assert self.types(conn) == ["error"], dict(self)
        return self[conn][0]

    def receivers(self) -> set[Conn]:
        return {conn for conn, frames in self.items() if frames}


class HubHarness:
    """A Hub with an in-memory history, a steppable clock and a seeded rng."""

    def __init__(self, settings: Settings | None = None, seed: int = 1234):
        self.now = START
        self.settings = settings or Settings()
        self.history = MemoryHistory(self.settings.history_max)
        self.names = MemoryNames()
        self.hub = Hub(
            self.settings,
            self.history,
            self.names,
            lambda: self.now,
            random.Random(seed),
        )
        self._count = 0

    def step(self, seconds: float) -> None:
        self.now += seconds

    def connect(
        self,
        name: str | None = None,
        key: str | None = None,
        room: str | None = None,
        label: str | None = None,
    ) -> tuple[Conn, Inbox]:
        """Open a connection; return it and what the hub delivered."""
        self._count += 1
        conn = Conn(label or name or f"c{self._count}")
        return conn, Inbox(self.hub.connect(conn, name=name, room=room, client_key=key))

    def user(self, name: str | None, **kwargs: Any) -> Conn:
        """Connect and return just the connection."""
        return self.connect(name, **kwargs)[0]

    def user_snapshot(self, name: str) -> Frame:
        """Connect ``name`` to the lobby; return the snapshot it got."""
        conn, inbox = self.connect(name)
        return inbox.one(conn, "presence")

    def welcome(self, conn: Conn, inbox: Inbox) -> Frame:
        frames = inbox[conn]
        assert frames[0]["type"] == "welcome", frames
        return frames[0]

    def send(self, conn: Conn, **frame: Any) -> Inbox:
        """Send one client frame from ``conn``; return the deliveries."""
        return Inbox(self.hub.receive(conn, json.dumps(frame)))

    def send_text(self, conn: Conn, text: str) -> Inbox:
        return Inbox(self.hub.receive(conn, text))

    def say(self, conn: Conn, text: str, **extra: Any) -> Inbox:
        return self.send(conn, type="message", text=text, **extra)

    def disconnect(self, conn: Conn) -> Inbox:
        return Inbox(self.hub.disconnect(conn))

    def expire(self) -> Inbox:
        return Inbox(self.hub.expire_typing())


@pytest.fixture
def h() -> HubHarness:
    return HubHarness()


def user_of(inbox: Inbox, conn: Conn) -> Frame:
    """The user object of ``conn``'s welcome."""
    return inbox[conn][0]["user"]


# -- connecting ---------------------------------------------------------------


def test_welcome_fields(h: HubHarness) -> None:
    """Ensure welcome carries the user, the rooms and the limits."""
    alice, inbox = h.connect("alice")
    welcome = h.welcome(alice, inbox)
    assert list(welcome)[0] == "type"
    # No key given: the server issues one for the client to keep.
    assert set(welcome) == {"type", "user", "rooms", "limits", "epoch", "key"}
    assert welcome["epoch"] == h.history.epoch()
    assert re.fullmatch(r"[0-9a-f]{32}", welcome["key"])
    assert welcome["user"]["name"] == "alice"
    assert welcome["user"]["color"] == identity.color_for("alice")
    assert re.fullmatch(r"u[0-9a-f]{15}", welcome["user"]["id"])
    assert welcome["rooms"] == ["lobby"]
    assert welcome["limits"] == {
        "max_text": 2000,
        "rate": 5.0,
        "burst": 10,
        "history_page": 100,
        "max_upload": 0,
        "typing_rate": 2.0,
        "typing_burst": 6,
        "rooms_max": 20,
    }


def test_welcome_limits_follow_settings() -> None:
    """Ensure the advertised limits are the configured ones."""
    h = HubHarness(Settings(max_text=10, rate=1.5, burst=3))
    alice, inbox = h.connect("alice")
    assert h.welcome(alice, inbox)["limits"] == {
        "max_text": 10,
        "rate": 1.5,
        "burst": 3,
        "history_page": 100,
        "max_upload": 0,
        "typing_rate": 2.0,
        "typing_burst": 6,
        "rooms_max": 20,
    }


def test_connect_joins_requested_room(h: HubHarness) -> None:
    """Ensure the room query parameter chooses the first room."""
    alice, inbox = h.connect("alice", room="dev")
    assert h.welcome(alice, inbox)["rooms"] == ["dev"]
    assert inbox.one(alice, "presence")["room"] == "dev"
    assert list(h.hub.room_names()) == ["dev"]


def test_connect_invalid_room_joins_nothing(h: HubHarness) -> None:
    """Ensure an invalid first room joins no room and errors after welcome."""
    alice, inbox = h.connect("alice", room="no spaces!")
    assert inbox.types(alice) == ["welcome", "error"]
    assert h.welcome(alice, inbox)["rooms"] == []
    error = inbox[alice][1]
    assert (error["code"], error["ref"]) == ("bad_request", "join")
    assert list(h.hub.room_names()) == []


def test_guest_name_without_name(h: HubHarness) -> None:
    """Ensure a connection without a name gets a guest-NNNN name and no error."""
    guest, inbox = h.connect()
    assert inbox.types(guest) == ["welcome", "presence"]
    assert re.fullmatch(r"guest-\d{4}", user_of(inbox, guest)["name"])


def test_guests_get_distinct_names(h: HubHarness) -> None:
    """Ensure guests never share a name."""
    names = set()
    for _ in range(30):
        conn, inbox = h.connect()
        names.add(user_of(inbox, conn)["name"])
    assert len(names) == 30


@pytest.mark.parametrize("name", ["guest-0001", "bad\x00name", "-dash", "x" * 25])
def test_invalid_name_gets_guest_and_bad_request(h: HubHarness, name: str) -> None:
    """Ensure an invalid name gives a guest name and bad_request after welcome."""
    conn, inbox = h.connect(name, label="invalid")
    assert inbox.types(conn)[:2] == ["welcome", "error"]
    assert re.fullmatch(r"guest-\d{4}", user_of(inbox, conn)["name"])
    error = inbox[conn][1]
    assert (error["code"], error["ref"]) == ("bad_request", "nick")


@pytest.mark.parametrize("second", ["alice", "Alice", "ALICE", "ａｌｉｃｅ"])
def test_taken_name_gets_guest_and_name_taken(h: HubHarness, second: str) -> None:
    """Ensure a name taken case-insensitively (and NFKC) gives a guest name."""
    h.user("alice")
    conn, inbox = h.connect(second, label="second")
    assert inbox.types(conn)[:2] == ["welcome", "error"]
    assert user_of(inbox, conn)["name"].startswith("guest-")
    error = inbox[conn][1]
    assert (error["code"], error["ref"]) == ("name_taken", "nick")


def test_snapshot_to_joiner_and_join_event_to_others(h: HubHarness) -> None:
    """Ensure the joiner gets the full list and the others only a join event."""
    alice, first = h.connect("alice")
    snapshot = first.one(alice, "presence")
    assert snapshot["event"] == "snapshot"
    assert snapshot["count"] == 1
    assert [u["name"] for u in snapshot["users"]] == ["alice"]

    bob, inbox = h.connect("bob")
    assert inbox.receivers() == {alice, bob}
    snapshot = inbox.one(bob, "presence")
    users = sorted(snapshot.pop("users"), key=lambda u: u["name"])
    assert users == [user_of(first, alice), user_of(inbox, bob)]
    assert snapshot == {
        "type": "presence",
        "room": "lobby",
        "event": "snapshot",
        "count": 2,
        "read": 0,  # bob's read position: where the room was when he came
    }
    assert inbox[alice] == [
        {
            "type": "presence",
            "room": "lobby",
            "event": "join",
            "user": user_of(inbox, bob),
            "count": 2,
        }
    ]


def test_same_client_key_is_one_member(h: HubHarness) -> None:
    """Ensure two connections with one key are one member, one name, one id."""
    alice = h.user("alice")
    tab1, first = h.connect("bob", key="secret-of-bob", label="tab1")
    assert first.one(alice, "presence")["count"] == 2

    tab2, second = h.connect("robert", key="secret-of-bob", label="tab2")
    assert user_of(second, tab2) == user_of(first, tab1)  # the name is kept
    assert second.receivers() == {tab2}  # no second join event
    snapshot = second.one(tab2, "presence")
    assert snapshot["count"] == 2
    assert sorted(u["name"] for u in snapshot["users"]) == ["alice", "bob"]

    assert h.disconnect(tab1).receivers() == set()  # bob is still there
    leave = h.disconnect(tab2)
    assert leave[alice] == [
        {
            "type": "presence",
            "room": "lobby",
            "event": "leave",
            "user": user_of(first, tab1),
            "count": 1,
        }
    ]


def test_different_keys_are_different_users(h: HubHarness) -> None:
    """Ensure distinct keys, or no key, give distinct user ids."""
    ids = set()
    for key in ("k1", "k2", None, None):
        conn, inbox = h.connect(key=key)
        ids.add(user_of(inbox, conn)["id"])
    assert len(ids) == 4


# -- messages -----------------------------------------------------------------


def test_message_broadcast_to_room_including_sender(h: HubHarness) -> None:
    """Ensure a message reaches every connection in the room, sender included."""
    alice, welcomed = h.connect("alice")
    bob = h.user("bob")
    inbox = h.say(alice, "hello <b>world</b>", client_id="c-1")
    assert inbox.receivers() == {alice, bob}
    expected = {
        "type": "message",
        "id": 1,
        "room": "lobby",
        "user": user_of(welcomed, alice),
        "text": "hello <b>world</b>",
        "ts": int(START * 1000),
        "client_id": "c-1",
    }
    assert inbox[alice] == [expected]
    assert inbox[bob] == [expected]


def test_message_goes_to_the_sender_first_then_in_join_order(h: HubHarness) -> None:
    """Ensure the sender's echo (its ack) leads the broadcast, the rest follow
    in join order, wrapping around."""
    conns = [h.user(f"user{n}") for n in range(5)]
    deliveries = h.hub.receive(conns[2], json.dumps({"type": "message", "text": "x"}))
    (message,) = [d for d in deliveries if json.loads(d.text)["type"] == "message"]
    assert message.targets == (conns[2], conns[3], conns[4], conns[0], conns[1])


def test_message_without_client_id_has_none(h: HubHarness) -> None:
    """Ensure client_id is only present when the sender gave one."""
    alice = h.user("alice")
    assert "client_id" not in h.say(alice, "hi").one(alice, "message")


def test_message_ts_follows_clock_in_ms(h: HubHarness) -> None:
    """Ensure ts is the hub clock in milliseconds."""
    alice = h.user("alice")
    h.step(1.2345)
    assert h.say(alice, "hi").one(alice, "message")["ts"] == int(
        (START + 1.2345) * 1000
    )


def test_message_ids_increase_per_room_independently(h: HubHarness) -> None:
    """Ensure each room counts its own ids from 1."""
    alice = h.user("alice")
    h.send(alice, type="join", room="dev")
    ids = []
    for room in ("lobby", "lobby", "dev", "lobby", "dev"):
        ids.append(h.say(alice, "x", room=room).one(alice, "message")["id"])
    assert ids == [1, 2, 1, 3, 2]


def test_room_isolation(h: HubHarness) -> None:
    """Ensure a message, typing or presence in one room stays in that room."""
    alice = h.user("alice")
    carol = h.user("carol", room="other")
    bob = h.user("bob")
    reached = h.say(alice, "hi").receivers()
    reached |= h.send(alice, type="typing", room="lobby", active=True).receivers()
    reached |= h.send(alice, type="nick", name="Alicia").receivers()
    reached |= h.disconnect(bob).receivers()
    assert reached == {alice, bob}
    assert carol not in reached


def test_message_default_room_is_first_joined(h: HubHarness) -> None:
    """Ensure a message without room goes to the connection's first room."""
    alice = h.user("alice", room="first")
    h.send(alice, type="join", room="second")
    assert h.say(alice, "hi").one(alice, "message")["room"] == "first"


def test_message_default_room_after_leaving_first(h: HubHarness) -> None:
    """Ensure the default room moves to the next one once the first is left."""
    alice = h.user("alice", room="first")
    h.send(alice, type="join", room="second")
    h.send(alice, type="leave", room="first")
    assert h.say(alice, "hi").one(alice, "message")["room"] == "second"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message", "text": "hi", "room": "elsewhere"},
        {"type": "typing", "room": "elsewhere", "active": True},
        {"type": "leave", "room": "elsewhere"},
    ],
    ids=lambda frame: frame["type"],
)
def test_not_in_room(h: HubHarness, frame: Frame) -> None:
    """Ensure message, typing and leave for a room not joined are not_in_room."""
    alice = h.user("alice")
    bob = h.user("bob", room="elsewhere")
    inbox = h.send(alice, **frame)
    assert bob not in inbox
    error = inbox.error(alice)
    assert (error["code"], error["ref"]) == ("not_in_room", frame["type"])


def test_message_with_no_room_is_not_in_room(h: HubHarness) -> None:
    """Ensure a message from a connection in no room is not_in_room."""
    alice = h.user("alice", room="bad room")
    error = h.say(alice, "hi").error(alice)
    assert (error["code"], error["ref"]) == ("not_in_room", "message")


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n"])
def test_empty_message_is_bad_request(h: HubHarness, text: str) -> None:
    """Ensure an empty or whitespace-only message is bad_request."""
    alice = h.user("alice")
    bob = h.user("bob")
    inbox = h.say(alice, text)
    assert bob not in inbox
    error = inbox.error(alice)
    assert (error["code"], error["ref"]) == ("bad_request", "message")


def test_too_large_message_is_refused_and_not_delivered() -> None:
    """Ensure text above max_text is too_large and nothing is broadcast."""
    h = HubHarness(Settings(max_text=10))
    alice = h.user("alice")
    bob = h.user("bob")
    inbox = h.say(alice, "x" * 11)
    assert bob not in inbox
    error = inbox.error(alice)
    assert (error["code"], error["ref"]) == ("too_large", "message")
    assert "10" in error["message"]
    assert h.say(alice, "é" * 10).one(bob, "message")["id"] == 1


def test_rate_limit_burst_then_refill() -> None:
    """Ensure a burst is allowed, the next is rate_limited, then allowed later."""
    h = HubHarness(Settings(rate=2.0, burst=3))
    alice = h.user("alice")
    bob = h.user("bob")
    for _ in range(3):
        assert h.say(alice, "x").types(bob) == ["message"]
    inbox = h.say(alice, "too many")
    assert bob not in inbox
    error = inbox.error(alice)
    assert (error["code"], error["ref"]) == ("rate_limited", "message")
    assert "0.5" in error["message"]  # says when to retry

    h.step(0.49)
    assert h.say(alice, "still early").error(alice)["code"] == "rate_limited"
    h.step(0.01)
    assert h.say(alice, "again").one(bob, "message")["id"] == 4  # no id lost
    assert h.say(alice, "and again").error(alice)["code"] == "rate_limited"


def test_rate_limit_is_per_connection() -> None:
    """Ensure one connection's burst does not limit another's."""
    h = HubHarness(Settings(burst=1))
    alice = h.user("alice")
    bob = h.user("bob")
    h.say(alice, "one")
    assert h.say(alice, "two").error(alice)["code"] == "rate_limited"
    assert h.say(bob, "mine").types(alice) == ["message"]


def test_refused_messages_do_not_spend_tokens() -> None:
    """Ensure empty or too long messages do not use up the rate budget."""
    h = HubHarness(Settings(burst=1, max_text=5))
    alice = h.user("alice")
    h.say(alice, " ")
    h.say(alice, "x" * 6)
    assert h.say(alice, "ok").types(alice) == ["message"]


# -- typing -------------------------------------------------------------------


def typing_frame(room: str, user: Frame, active: bool) -> Frame:
    return {"type": "typing", "room": room, "user": user, "active": active}


def test_typing_relayed_to_others_only(h: HubHarness) -> None:
    """Ensure typing reaches the other members, not the typist's connections."""
    tab1, welcomed = h.connect("alice", key="k-alice", label="tab1")
    tab2 = h.user("ignored", key="k-alice", label="tab2")
    bob = h.user("bob")
    inbox = h.send(tab1, type="typing", room="lobby", active=True)
    assert inbox.receivers() == {bob}
    assert inbox[bob] == [typing_frame("lobby", user_of(welcomed, tab1), True)]
    assert tab2 not in inbox


def test_typing_repeat_only_refreshes(h: HubHarness) -> None:
    """Ensure a second active:true sends nothing and pushes the expiry back."""
    alice = h.user("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    h.step(5)
    assert h.send(alice, type="typing", room="lobby", active=True) == {}
    h.step(5)  # 10 s after the first, 5 s after the refresh
    assert h.expire() == {}
    h.step(3)
    assert h.expire().one(bob, "typing")["active"] is False


def test_typing_cleared_by_active_false(h: HubHarness) -> None:
    """Ensure active:false clears the indicator once, for the others."""
    alice, welcomed = h.connect("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    inbox = h.send(alice, type="typing", room="lobby", active=False)
    assert inbox.receivers() == {bob}
    assert inbox[bob] == [typing_frame("lobby", user_of(welcomed, alice), False)]
    assert h.send(alice, type="typing", room="lobby", active=False) == {}


def test_typing_cleared_by_message(h: HubHarness) -> None:
    """Ensure sending a message clears the typist's indicator before it."""
    alice, welcomed = h.connect("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    inbox = h.say(alice, "done")
    assert inbox.types(bob) == ["typing", "message"]
    assert inbox[bob][0] == typing_frame("lobby", user_of(welcomed, alice), False)
    assert inbox.types(alice) == ["message"]


def test_typing_cleared_by_leave(h: HubHarness) -> None:
    """Ensure leaving the room clears the indicator for the others."""
    alice = h.user("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    inbox = h.send(alice, type="leave", room="lobby")
    assert inbox.types(bob) == ["typing", "presence"]
    assert inbox[bob][0]["active"] is False


def test_typing_cleared_by_disconnect(h: HubHarness) -> None:
    """Ensure disconnecting clears the indicator for the others."""
    alice = h.user("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    inbox = h.disconnect(alice)
    assert inbox.types(bob) == ["typing", "presence"]
    assert inbox[bob][0]["active"] is False


def test_typing_expires_after_timeout() -> None:
    """Ensure expire_typing clears an indicator after typing_timeout seconds."""
    h = HubHarness(Settings(typing_timeout=8.0))
    alice, welcomed = h.connect("alice")
    bob = h.user("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    h.step(7.9)
    assert h.expire() == {}
    h.step(0.1)
    inbox = h.expire()
    assert inbox.receivers() == {bob}
    assert inbox[bob] == [typing_frame("lobby", user_of(welcomed, alice), False)]
    assert h.expire() == {}
    # Typing again after the expiry is relayed again.
    assert h.send(alice, type="typing", room="lobby", active=True).receivers() == {bob}


def test_typing_rate_limited(h: HubHarness) -> None:
    """Ensure a flood of typing events is rate_limited."""
    alice = h.user("alice")
    for _ in range(TYPING_BURST):
        assert "error" not in h.send(
            alice, type="typing", room="lobby", active=True
        ).types(alice)
    error = h.send(alice, type="typing", room="lobby", active=True).error(alice)
    assert (error["code"], error["ref"]) == ("rate_limited", "typing")


# -- names --------------------------------------------------------------------


def test_nick_renames_all_connections_and_tells_members(h: HubHarness) -> None:
    """Ensure nick sends renamed to every tab and a nick event to the others."""
    tab1, welcomed = h.connect("alice", key="k-alice", label="tab1")
    tab2 = h.user(None, key="k-alice", label="tab2")
    bob = h.user("bob")
    old = user_of(welcomed, tab1)
    inbox = h.send(tab1, type="nick", name="Alicia")
    new = {"id": old["id"], "name": "Alicia", "color": identity.color_for("Alicia")}
    renamed = {"type": "renamed", "user": new, "previous": "alice"}
    assert inbox[tab1] == [renamed]
    assert inbox[tab2] == [renamed]
    assert inbox[bob] == [
        {
            "type": "presence",
            "room": "lobby",
            "event": "nick",
            "user": new,
            "count": 2,
            "previous": "alice",
        }
    ]


def test_nick_event_once_per_room(h: HubHarness) -> None:
    """Ensure a member of two shared rooms gets one nick event per room."""
    alice = h.user("alice")
    bob = h.user("bob")
    for conn in (alice, bob):
        h.send(conn, type="join", room="dev")
    inbox = h.send(alice, type="nick", name="Alicia")
    assert sorted(f["room"] for f in inbox.of(bob, "presence")) == ["dev", "lobby"]


def test_nick_taken_by_another_user(h: HubHarness) -> None:
    """Ensure nick to a name another connected user holds is name_taken."""
    h.user("alice")
    bob = h.user("bob")
    for name in ("alice", "ALICE", "Alice"):
        error = h.send(bob, type="nick", name=name).error(bob)
        assert (error["code"], error["ref"]) == ("name_taken", "nick")


def test_nick_to_own_name_in_other_case(h: HubHarness) -> None:
    """Ensure a user may change the case of their own name."""
    alice = h.user("alice")
    inbox = h.send(alice, type="nick", name="Alice")
    assert inbox.one(alice, "renamed")["user"]["name"] == "Alice"


@pytest.mark.parametrize("name", ["", "   ", "guest-1234", "a\u200bb", "x" * 25])
def test_nick_invalid_is_bad_request(h: HubHarness, name: str) -> None:
    """Ensure nick to an invalid name is bad_request."""
    alice = h.user("alice")
    error = h.send(alice, type="nick", name=name).error(alice)
    assert (error["code"], error["ref"]) == ("bad_request", "nick")


def test_name_stays_reserved_for_its_browser_until_the_ttl(h: HubHarness) -> None:
    """Ensure a name stays its owner's after they leave, until --name-ttl passes."""
    tab1 = h.user("alice", key="k-alice")
    tab2 = h.user(None, key="k-alice")
    bob = h.user("bob")
    h.disconnect(tab1)
    assert h.send(bob, type="nick", name="alice").error(bob)["code"] == "name_taken"
    h.disconnect(tab2)
    error = h.send(bob, type="nick", name="ALICE").error(bob)
    assert error["code"] == "name_taken" and "reserved" in error["message"]
    back, inbox = h.connect("alice", key="k-alice", label="alice again")
    assert user_of(inbox, back)["name"] == "alice"  # the owner gets it back
    h.disconnect(back)
    h.step(h.hub.settings.name_ttl + 1)
    assert h.send(bob, type="nick", name="alice").types(bob) == ["renamed"]


def test_slow_mode_allows_one_message_per_interval(h: HubHarness) -> None:
    """Ensure a slow-mode room refuses a second message before its interval."""
    slow = HubHarness(Settings(slow_mode=(("lobby", 10.0),)))
    alice, inbox = slow.connect("alice")
    snapshot = inbox.one(alice, "presence")
    assert snapshot["slow_mode"] == 10.0
    assert slow.send(alice, type="message", text="one").types(alice) == ["message"]
    error = slow.send(alice, type="message", text="two").error(alice)
    assert error["code"] == "rate_limited" and error["retry_after"] == 10.0
    slow.step(10)
    assert slow.send(alice, type="message", text="three").types(alice) == ["message"]


def test_old_name_freed_after_nick(h: HubHarness) -> None:
    """Ensure the previous name can be taken by someone else after a nick."""
    alice = h.user("alice")
    h.send(alice, type="nick", name="Alicia")
    carol, inbox = h.connect("alice", label="carol")
    assert inbox.types(carol) == ["welcome", "presence"]
    assert user_of(inbox, carol)["name"] == "alice"


# -- history and replay ---------------------------------------------------------


def test_history_paging(h: HubHarness) -> None:
    """Ensure history pages backwards with before/limit and reports more."""
    alice = h.user("alice")
    for n in range(1, 6):
        h.say(alice, f"m{n}")

    def page(**fields: Any) -> tuple[list[int], bool]:
        frame = h.send(alice, type="history", room="lobby", **fields).one(
            alice, "history"
        )
        assert frame["room"] == "lobby"
        return [m["id"] for m in frame["messages"]], frame["more"]

    assert page() == ([1, 2, 3, 4, 5], False)
    assert page(limit=2) == ([4, 5], True)
    assert page(before=4, limit=2) == ([2, 3], True)
    assert page(before=2, limit=2) == ([1], False)
    assert page(before=1) == ([], False)


def test_history_messages_shape(h: HubHarness) -> None:
    """Ensure history messages are message objects without type, oldest first."""
    alice, welcomed = h.connect("alice")
    h.say(alice, "first", client_id="a")
    h.say(alice, "second")
    frame = h.send(alice, type="history", room="lobby").one(alice, "history")
    assert frame == {
        "type": "history",
        "room": "lobby",
        "messages": [
            {
                "id": 1,
                "room": "lobby",
                "user": user_of(welcomed, alice),
                "text": "first",
                "ts": int(START * 1000),
                "client_id": "a",
            },
            {
                "id": 2,
                "room": "lobby",
                "user": user_of(welcomed, alice),
                "text": "second",
                "ts": int(START * 1000),
            },
        ],
        "more": False,
    }


def test_history_page_capped_at_100() -> None:
    """Ensure a history limit above 100 returns 100 messages."""
    h = HubHarness(Settings(rate=1e6, burst=1000))
    alice = h.user("alice")
    for n in range(120):
        h.say(alice, str(n))
    frame = h.send(alice, type="history", room="lobby", limit=500).one(alice, "history")
    assert [m["id"] for m in frame["messages"]] == list(range(21, 121))
    assert frame["more"] is True


def test_history_of_unknown_room_is_no_such_room(h: HubHarness) -> None:
    """Ensure history of a room with no members and no messages is no_such_room."""
    alice = h.user("alice")
    error = h.send(alice, type="history", room="nowhere").error(alice)
    assert (error["code"], error["ref"]) == ("no_such_room", "history")


def test_history_of_room_with_members_but_no_messages(h: HubHarness) -> None:
    """Ensure history of a room that has members but no messages is empty."""
    alice = h.user("alice")
    h.user("bob", room="quiet")
    frame = h.send(alice, type="history", room="quiet").one(alice, "history")
    assert (frame["messages"], frame["more"]) == ([], False)


def test_history_of_emptied_room_with_messages(h: HubHarness) -> None:
    """Ensure a room's stored messages stay readable after everyone left."""
    alice = h.user("alice")
    bob = h.user("bob", room="dev")
    h.say(bob, "kept")
    h.disconnect(bob)
    assert "dev" not in h.hub.room_names()
    frame = h.send(alice, type="history", room="dev").one(alice, "history")
    assert [m["text"] for m in frame["messages"]] == ["kept"]


@pytest.mark.parametrize("room", ["", "bad room", "-x", "x" * 33])
def test_history_invalid_room_is_bad_request(h: HubHarness, room: str) -> None:
    """Ensure history of an invalid room name is bad_request."""
    alice = h.user("alice")
    error = h.send(alice, type="history", room=room).error(alice)
    assert (error["code"], error["ref"]) == ("bad_request", "history")


def test_snapshot_lists_who_is_typing(h: HubHarness) -> None:
    """Ensure a joiner's snapshot names the users typing now (not itself),
    and has no typing field when nobody is."""
    alice = h.user("alice")
    assert "typing" not in h.user_snapshot("bob")
    h.send(alice, type="typing", room="lobby", active=True)
    assert [u["name"] for u in h.user_snapshot("carol")["typing"]] == ["alice"]
    h.say(alice, "done")  # sending clears the indicator
    assert "typing" not in h.user_snapshot("dave")


def test_join_with_since_replays_missed_messages(h: HubHarness) -> None:
    """Ensure join with since sends the snapshot, then the missed ones in order."""
    alice = h.user("alice")
    for n in range(1, 5):
        h.say(alice, f"m{n}")
    bob = h.user("bob", room="other")
    inbox = h.send(bob, type="join", room="lobby", since=1)
    assert inbox.types(bob) == ["presence", "message", "message", "message"]
    assert inbox[bob][0]["event"] == "snapshot"
    assert [f["id"] for f in inbox[bob][1:]] == [2, 3, 4]
    assert [f["text"] for f in inbox[bob][1:]] == ["m2", "m3", "m4"]
    assert inbox.types(alice) == ["presence"]  # only the join event, no replay


def test_replay_and_history_include_messages_still_being_written(
    tmp_path: Path,
) -> None:
    """Ensure a message accepted in this turn (not yet flushed to SQLite) is
    replayed to a later joiner and shown in history, held until stored."""
    store = SqliteHistory(str(tmp_path / "chat.db"), 100)
    hub = Hub(Settings(), store, MemoryNames(), lambda: START, random.Random(1))
    alice, bob = Conn("alice"), Conn("bob")
    hub.connect(alice, name="alice", room="lobby")
    hub.connect(bob, name="bob", room="other")
    hub.receive(alice, json.dumps({"type": "message", "text": "first"}))
    store.flush()
    hub.receive(alice, json.dumps({"type": "message", "text": "second"}))
    assert store.has_pending  # accepted, not written yet

    joined = hub.receive(bob, json.dumps({"type": "join", "room": "lobby", "since": 0}))
    replay = [d for d in joined if json.loads(d.text)["type"] == "message"]
    assert [json.loads(d.text)["text"] for d in replay] == ["first", "second"]
    assert [d.durable for d in replay] == [False, True]

    (answer,) = hub.receive(bob, json.dumps({"type": "history", "room": "lobby"}))
    assert [m["text"] for m in json.loads(answer.text)["messages"]] == [
        "first",
        "second",
    ]
    assert answer.durable and answer.fallback is not None
    assert json.loads(answer.fallback.text)["code"] == "internal"
    store.close()


def test_join_with_since_zero_replays_everything(h: HubHarness) -> None:
    """Ensure since 0 replays every stored message."""
    alice = h.user("alice")
    h.say(alice, "a")
    h.say(alice, "b")
    bob = h.user("bob", room="other")
    inbox = h.send(bob, type="join", room="lobby", since=0)
    assert [f["id"] for f in inbox.of(bob, "message")] == [1, 2]


def test_join_with_since_up_to_date_replays_nothing(h: HubHarness) -> None:
    """Ensure since equal to the last id replays nothing."""
    alice = h.user("alice")
    h.say(alice, "a")
    bob = h.user("bob", room="other")
    assert h.send(bob, type="join", room="lobby", since=1).types(bob) == ["presence"]


def test_join_without_since_replays_nothing(h: HubHarness) -> None:
    """Ensure a plain join sends only the snapshot."""
    alice = h.user("alice")
    h.say(alice, "a")
    bob = h.user("bob", room="other")
    assert h.send(bob, type="join", room="lobby").types(bob) == ["presence"]


def test_join_room_already_joined_resends_snapshot(h: HubHarness) -> None:
    """Ensure joining a room twice sends a snapshot and no second join event."""
    alice = h.user("alice")
    bob = h.user("bob")
    inbox = h.send(bob, type="join", room="lobby")
    assert inbox.receivers() == {bob}
    assert inbox.one(bob, "presence")["count"] == 2
    assert h.hub.rooms_of(bob) == ["lobby"]
    assert alice not in inbox


@pytest.mark.parametrize("room", ["", "a b", "_x", "-x", "x" * 33, "é!"])
def test_join_invalid_room_is_bad_request(h: HubHarness, room: str) -> None:
    """Ensure join of an invalid room name is bad_request."""
    alice = h.user("alice")
    error = h.send(alice, type="join", room=room).error(alice)
    assert (error["code"], error["ref"]) == ("bad_request", "join")


def test_rooms_per_connection_max(h: HubHarness) -> None:
    """Ensure a connection can be in at most 20 rooms."""
    alice = h.user("alice")
    for n in range(1, ROOMS_PER_CONNECTION_MAX):
        assert h.send(alice, type="join", room=f"r{n}").types(alice) == ["presence"]
    assert len(h.hub.rooms_of(alice)) == ROOMS_PER_CONNECTION_MAX == 20
    error = h.send(alice, type="join", room="one-too-many").error(alice)
    assert (error["code"], error["ref"]) == ("bad_request", "join")
    assert "one-too-many" not in h.hub.rooms_of(alice)
    # A room already joined can still be joined again (a snapshot refresh).
    assert h.send(alice, type="join", room="r1").types(alice) == ["presence"]
    # After leaving one, there is room for another.
    h.send(alice, type="leave", room="r1")
    assert h.send(alice, type="join", room="one-too-many").types(alice) == ["presence"]


def test_refused_join_leaves_no_empty_room(h: HubHarness) -> None:
    """Ensure a join refused for too many rooms creates no room."""
    alice = h.user("alice")
    for n in range(1, ROOMS_PER_CONNECTION_MAX):
        h.send(alice, type="join", room=f"r{n}")
    h.send(alice, type="join", room="ghost")
    assert "ghost" not in h.hub.room_names()
    error = h.send(alice, type="history", room="ghost").error(alice)
    assert error["code"] == "no_such_room"


# -- leaving and closing ----------------------------------------------------------


def test_leave_answers_left_and_tells_others(h: HubHarness) -> None:
    """Ensure leave sends left to the leaver and a leave event to the others."""
    alice, welcomed = h.connect("alice")
    bob = h.user("bob")
    inbox = h.send(alice, type="leave", room="lobby")
    assert inbox[alice] == [{"type": "left", "room": "lobby"}]
    assert inbox[bob] == [
        {
            "type": "presence",
            "room": "lobby",
            "event": "leave",
            "user": user_of(welcomed, alice),
            "count": 1,
        }
    ]
    assert h.hub.rooms_of(alice) == []


def test_leave_with_other_tab_still_in_room(h: HubHarness) -> None:
    """Ensure leaving from one of two tabs sends no leave event to the others."""
    tab1 = h.user("alice", key="k-alice")
    h.user(None, key="k-alice")
    bob = h.user("bob")
    inbox = h.send(tab1, type="leave", room="lobby")
    assert inbox.receivers() == {tab1}
    assert inbox.types(tab1) == ["left"]
    # Messages still reach the remaining tab, not the one that left.
    assert tab1 not in h.say(bob, "hi")


def test_room_deleted_when_empty(h: HubHarness) -> None:
    """Ensure a room disappears once its last connection leaves."""
    alice = h.user("alice")
    bob = h.user("bob", room="dev")
    h.send(alice, type="join", room="dev")
    h.send(alice, type="leave", room="dev")
    assert set(h.hub.room_names()) == {"lobby", "dev"}
    h.send(bob, type="leave", room="dev")
    assert set(h.hub.room_names()) == {"lobby"}
    h.disconnect(alice)
    assert set(h.hub.room_names()) == set()


def test_disconnect_tells_every_room_and_is_idempotent(h: HubHarness) -> None:
    """Ensure disconnect sends leave events once; a second call returns []."""
    alice = h.user("alice")
    h.send(alice, type="join", room="dev")
    bob = h.user("bob")
    h.send(bob, type="join", room="dev")
    inbox = h.disconnect(alice)
    events = [(f["room"], f["event"], f["count"]) for f in inbox[bob]]
    assert events == [("lobby", "leave", 1), ("dev", "leave", 1)]
    assert h.hub.disconnect(alice) == []
    assert h.hub.rooms_of(alice) == [] and h.hub.stats().connections == 1


def test_disconnect_of_unknown_connection(h: HubHarness) -> None:
    """Ensure disconnect of a connection never opened returns []."""
    assert h.hub.disconnect(Conn("stranger")) == []


def test_receive_for_unknown_connection(h: HubHarness) -> None:
    """Ensure a frame from an unknown (or closed) connection is ignored."""
    alice = h.user("alice")
    h.disconnect(alice)
    assert h.hub.receive(alice, '{"type":"ping"}') == []
    assert h.hub.receive(Conn("stranger"), '{"type":"message","text":"x"}') == []


# -- misc frames ------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 12.5, "x", [1, {"a": None}], {"k": True}])
def test_ping_pong_echoes_t(h: HubHarness, t: Any) -> None:
    """Ensure pong carries the ping's t unchanged."""
    alice = h.user("alice")
    assert h.send(alice, type="ping", t=t)[alice] == [{"type": "pong", "t": t}]


def test_ping_without_t_gets_null(h: HubHarness) -> None:
    """Ensure a ping without t is answered with t null."""
    alice = h.user("alice")
    inbox = h.send(alice, type="ping")
    assert inbox[alice] == [{"type": "pong", "t": None}]
    assert h.hub.receive(alice, '{"type":"ping"}')[0].text == '{"type":"pong","t":null}'


def test_malformed_frames_get_errors_and_keep_the_connection(h: HubHarness) -> None:
    """Ensure bad frames are answered with errors and the connection still works."""
    alice = h.user("alice")
    bob = h.user("bob")
    cases = {
        "not json": "bad_json",
        "[1, 2]": "bad_request",
        '{"type": "dance"}': "unknown_type",
        '{"type": "message"}': "bad_request",
    }
    for text, code in cases.items():
        inbox = h.send_text(alice, text)
        assert inbox.receivers() == {alice}
        assert inbox.error(alice)["code"] == code
    assert h.say(alice, "still here").types(bob) == ["message"]


def test_receive_binary_is_bad_request(h: HubHarness) -> None:
    """Ensure a binary frame is refused with bad_request, connection kept."""
    alice = h.user("alice")
    inbox = Inbox(h.hub.receive_binary(alice))
    assert inbox.error(alice)["code"] == "bad_request"
    assert h.send(alice, type="ping", t=1).types(alice) == ["pong"]


def test_deliveries_are_shared_texts(h: HubHarness) -> None:
    """Ensure a broadcast is one delivery with every target, not one per target."""
    alice = h.user("alice")
    others = [h.user(f"u{n}") for n in range(5)]
    deliveries = h.hub.receive(alice, '{"type":"message","text":"hi"}')
    assert len(deliveries) == 1
    assert set(deliveries[0].targets) == {alice, *others}


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as browsers' JSON.parse does."""

    def refuse(literal: str) -> Any:
        raise ValueError(f"not JSON: {literal}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("t", ["1e999", "-1e999", "NaN"])
def test_every_delivery_is_strict_json(h: HubHarness, t: str) -> None:
    """Ensure the hub never sends a frame that a strict JSON parser refuses."""
    alice = h.user("alice")
    deliveries = h.hub.receive(alice, '{"type":"ping","t":' + t + "}")
    assert len(deliveries) == 1  # a pong, or an error: never nothing
    for delivery in deliveries:
        strict_loads(delivery.text)


def test_lone_surrogate_never_reaches_a_delivery(h: HubHarness) -> None:
    """Ensure every delivery stays UTF-8 encodable after a lone-surrogate message."""
    alice = h.user("alice")
    deliveries = h.hub.receive(alice, '{"type":"message","text":"hi \\ud83d"}')
    deliveries += h.hub.receive(alice, '{"type":"history","room":"lobby"}')
    kinds = [json.loads(d.text)["type"] for d in deliveries]
    assert kinds == ["error", "history"]  # the message refused, the page sent
    for delivery in deliveries:
        delivery.text.encode("utf-8")


class FailingNames(MemoryNames):
    """A name store that is down while ``broken`` (a locked or full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def holder(self, name_key: str) -> tuple[str, float] | None:
        if self.broken:
            raise HistoryError("database is locked")
        return super().holder(name_key)

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        if self.broken:
            raise HistoryError("database is locked")
        super().hold(name_key, user_id, now)


def test_a_store_failure_on_connect_registers_nothing() -> None:
    """Ensure a connect whose name cannot be reserved gets an internal error
    and a close, and leaves no user, name or member behind."""
    names = FailingNames()
    hub = Hub(Settings(), MemoryHistory(100), names, lambda: START, random.Random(1))
    names.broken = True
    bob = Conn("bob")
    deliveries = hub.connect(bob, name="Bob", client_key="bob-key")
    assert [json.loads(d.text)["code"] for d in deliveries] == ["internal"]
    assert deliveries[0].close_code == 1011
    assert hub.stats().connections == hub.stats().users == hub.stats().rooms == 0
    names.broken = False
    assert hub.name_refusal("someone-else", "Bob") is None
    again = Inbox(hub.connect(bob, name="Bob", client_key="bob-key"))
    assert again.one(bob, "welcome")["user"]["name"] == "Bob"


def test_a_store_failure_on_nick_keeps_the_old_name(h: HubHarness) -> None:
    """Ensure a rename that cannot be reserved is refused with internal and
    changes nothing."""
    names = FailingNames()
    hub = Hub(Settings(), MemoryHistory(100), names, lambda: START, random.Random(1))
    alice = Conn("alice")
    hub.connect(alice, name="Alice", client_key="alice-key")
    names.broken = True
    reply = Inbox(hub.receive(alice, json.dumps({"type": "nick", "name": "Alicia"})))
    assert reply.error(alice)["code"] == "internal"
    names.broken = False
    assert hub.name_refusal("someone-else", "Alice") is not None
    assert hub.name_refusal("someone-else", "Alicia") is None


def test_a_guest_keeps_their_name_across_reconnects(h: HubHarness) -> None:
    """Ensure a guest gets the same guest name on every connect with one key."""
    first, inbox = h.connect(key="guest-key")
    name = h.welcome(first, inbox)["user"]["name"]
    h.disconnect(first)
    second, inbox = h.connect(key="guest-key")
    assert h.welcome(second, inbox)["user"]["name"] == name


def test_guests_never_spin_when_short_names_run_out(h: HubHarness) -> None:
    """Ensure guests whose short guest names are all taken still get a name
    at once (the old random pick of guest-0000..9999 looped for ever)."""
    taken: set[str] = set()
    for n in range(10_001):  # one more than there are four-digit names
        conn, inbox = h.connect(key=f"k{n}", room=f"r{n}")
        taken.add(h.welcome(conn, inbox)["user"]["name"])
    assert len(taken) == 10_001


def test_lookalike_names_are_taken(h: HubHarness) -> None:
    """Ensure a name that looks like a connected user's is refused."""
    h.user("Alice")
    for lookalike in ("\u0410lice", "ALICE", "A1ice"):
        conn, inbox = h.connect(lookalike)
        assert inbox.one(conn, "error")["code"] == "name_taken"
        assert h.welcome(conn, inbox)["user"]["name"].startswith("guest-")


def test_a_since_from_another_epoch_is_reset(h: HubHarness) -> None:
    """Ensure a join whose since belongs to a lost history (another epoch, or
    above every id the room ever had) gets reset, then the whole replay."""
    alice = h.user("alice")
    h.say(alice, "one")
    h.say(alice, "two")
    bob = h.user("bob")
    for stale in ({"since": 60}, {"since": 1, "epoch": "an-old-one"}):
        inbox = h.send(bob, type="join", room="lobby", **stale)
        assert inbox.types(bob)[1:] == ["reset", "message", "message"]
        assert inbox.one(bob, "reset") == {
            "type": "reset",
            "room": "lobby",
            "epoch": h.history.epoch(),
        }
    current = h.send(bob, type="join", room="lobby", since=1, epoch=h.history.epoch())
    assert current.types(bob) == ["presence", "message"]
