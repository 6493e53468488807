"""Unit tests of the hub with a shared fan-out (several processes), without a
network: published events are handed to the hub by hand, as the Redis
listener would, and what the hub publishes is recorded."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from chatcore import fanout, identity, protocol
from chatcore.config import Settings
from chatcore.fanout import Gone, Join, Leave, Nick, Published, Typing
from chatcore.history import Draft, HistoryError, StoredMessage
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.hub import Hub
from tests.test_hub import START, Conn, Inbox


class RecordingFanout:
    """A shared fan-out that keeps what the hub publishes."""

    shared = True

    def __init__(self, origin: str = "here"):
        self.origin = origin
        self.published: list[fanout.Event] = []

    def publish(self, event: fanout.Event) -> None:
        self.published.append(event)


class PublishingMemory(MemoryHistory):
    """A memory store that queues each appended message as published."""

    def __init__(self, keep: int = 1000):
        super().__init__(keep)
        self.outbox: list[Published] = []
        self.broken = False

    def wipe(self) -> None:
        """Lose every message, as a Redis restarted without its data does."""
        MemoryHistory.__init__(self, self._max)
        self.outbox.clear()

    def append(self, draft: Draft) -> StoredMessage:
        if self.broken:
            raise HistoryError("the store is down")
        stored = super().append(draft)
        frame = protocol.encode("message", **stored.to_wire())
        self.outbox.append(Published(stored.room, stored.id, frame))
        return stored

    def change(
        self,
        current: StoredMessage,
        text: str | None,
        at: int,
        by: dict[str, str] | None = None,
    ) -> StoredMessage:
        changed = super().change(current, text, at, by)
        kind, fields = changed.change_event(by)
        frame = protocol.encode(kind, **fields)
        assert changed.rev is not None
        self.outbox.append(Published(changed.room, changed.rev, frame))
        return changed


class Shared:
    def __init__(self, keep: int = 1000) -> None:
        self.history = PublishingMemory(keep)
        self.fanout = RecordingFanout()
        self.hub = Hub(
            Settings(rate=1000, burst=1000, history_max=keep),
            self.history,
            MemoryNames(),
            clock=lambda: START,
            rng=random.Random(7),
            fanout=self.fanout,
        )

    def user(self, name: str, room: str = "lobby", key: str | None = None) -> Conn:
        conn = Conn(name)
        self.hub.connect(conn, name=name, room=room, client_key=key or name + "-key")
        return conn

    def send(self, conn: Conn, **frame: Any) -> Inbox:
        return Inbox(self.hub.receive(conn, json.dumps(frame)))

    def elsewhere(self, text: str, room: str = "lobby") -> None:
        """A message sent on another process: stored and published, not yet
        back from the subscription."""
        self.history.append(Draft(room, "u-zed", "zed", "#123456", text, START))

    def pump(self) -> Inbox:
        """Hand every published message back to the hub, as the listener does."""
        out = []
        while self.history.outbox:
            out += self.hub.deliver_published(self.history.outbox.pop(0))
        return Inbox(out)


def wire(name: str) -> dict[str, str]:
    return {"id": "u-" + name, "name": name, "color": "#123456"}


@pytest.fixture
def s() -> Shared:
    return Shared()


def test_a_message_goes_out_sender_first_when_nothing_is_on_its_way(
    s: Shared,
) -> None:
    """Ensure a message whose id follows the last one delivered here goes to
    the members here at once, its sender first, and its copy from the
    subscription is dropped."""
    alice, bob = s.user("alice"), s.user("bob")
    frame = {"type": "message", "text": "hi", "client_id": "c1"}
    deliveries = s.hub.receive(alice, json.dumps(frame))
    [delivery] = [d for d in deliveries if d.durable]
    assert delivery.targets == (alice, bob) and delivery.sender_first
    direct = Inbox(deliveries)
    assert direct.one(alice, "message")["client_id"] == "c1"
    assert direct.one(bob, "message")["text"] == "hi"
    assert s.pump().of(bob, "message") == []  # the channel's copy is dropped


def test_a_message_waits_for_the_channel_behind_an_earlier_one(s: Shared) -> None:
    """Ensure a message waits for the subscription while an earlier id (from
    another process) is still on its way, so every member gets the room's
    messages in id order, each once."""
    alice, bob = s.user("alice"), s.user("bob")
    s.elsewhere("first")
    direct = s.send(alice, type="message", text="second", client_id="c1")
    assert direct.of(alice, "message") == [] and direct.of(bob, "message") == []
    event = s.history.outbox[1]
    back = s.pump()
    for member in (alice, bob):
        assert [m["text"] for m in back.of(member, "message")] == ["first", "second"]
    assert back.of(alice, "message")[1]["client_id"] == "c1"
    assert s.hub.deliver_published(event) == []  # a second copy is dropped
    after = s.send(alice, type="message", text="third")  # caught up again
    assert [m["text"] for m in after.of(bob, "message")] == ["third"]


def test_messages_of_other_processes_reach_local_members(s: Shared) -> None:
    """Ensure a message published elsewhere goes to this room's members only."""
    alice = s.user("alice")
    s.user("carol", room="other")
    frame = '{"type":"message","id":1,"room":"lobby"}'
    inbox = Inbox(s.hub.deliver_published(Published("lobby", 1, frame)))
    assert inbox.receivers() == {alice}
    assert s.hub.deliver_published(Published("nobody-here", 1, frame)) == []


def test_store_failure_is_an_error_for_the_sender(s: Shared) -> None:
    """Ensure a message the store refuses gives its sender an internal error."""
    alice, bob = s.user("alice"), s.user("bob")
    s.history.broken = True
    inbox = s.send(alice, type="message", text="hi", client_id="c9")
    error = inbox.error(alice)
    assert (error["code"], error["client_id"]) == ("internal", "c9")
    assert bob not in inbox


def test_membership_changes_are_published(s: Shared) -> None:
    """Ensure joins, leaves, renames and typing are told to the other processes."""
    alice = s.user("alice")
    s.send(alice, type="typing", room="lobby", active=True)
    s.send(alice, type="nick", name="alicia")
    s.send(alice, type="leave", room="lobby")
    kinds = [type(e).__name__ for e in s.fanout.published]
    assert kinds == ["Join", "Typing", "Nick", "Typing", "Leave"]
    assert all(e.origin == "here" for e in s.fanout.published)


def test_remote_members_are_merged_into_presence(s: Shared) -> None:
    """Ensure snapshots and counts include members of other processes, a user
    on two processes counting once."""
    alice = s.user("alice")
    joined = Inbox(s.hub.deliver_published(Join("p2", "lobby", wire("bob"))))
    event = joined.one(alice, "presence")
    assert (event["event"], event["user"]["name"], event["count"]) == ("join", "bob", 2)
    # bob on a third process too: no second join.
    assert s.hub.deliver_published(Join("p3", "lobby", wire("bob"))) == []
    carol = Conn("carol")
    greeting = Inbox(s.hub.connect(carol, name="carol", client_key="carol-key"))
    snapshot = greeting.one(carol, "presence")
    assert sorted(u["name"] for u in snapshot["users"]) == ["alice", "bob", "carol"]
    assert snapshot["count"] == 3
    assert s.hub.deliver_published(Leave("p2", "lobby", "u-bob")) == []
    left = Inbox(s.hub.deliver_published(Leave("p3", "lobby", "u-bob")))
    assert left.one(alice, "presence")["event"] == "leave"
    assert left.one(alice, "presence")["count"] == 2


def test_own_events_are_ignored(s: Shared) -> None:
    """Ensure a process does not act twice on the events it published itself."""
    alice = s.user("alice")
    assert s.hub.deliver_published(Join("here", "lobby", wire("ghost"))) == []
    assert s.hub.member_count("lobby") == 1
    assert s.hub.rooms_of(alice) == ["lobby"]


def test_a_user_on_two_processes_leaves_when_gone_from_both(s: Shared) -> None:
    """Ensure a local user also present elsewhere leaves only when gone everywhere."""
    bob = s.user("bob")
    alice = s.user("alice")
    user_id = identity.user_id_for("alice-key", random.Random())
    s.hub.deliver_published(Join("p2", "lobby", {**wire("alice"), "id": user_id}))
    inbox = Inbox(s.hub.disconnect(alice))
    assert inbox.of(bob, "presence") == []
    left = Inbox(s.hub.deliver_published(Leave("p2", "lobby", user_id)))
    assert left.one(bob, "presence")["event"] == "leave"


def test_a_second_tab_elsewhere_keeps_the_name(s: Shared) -> None:
    """Ensure a user connecting here with a key already connected elsewhere
    gets the name they have there."""
    s.user("bob")
    rng = random.Random(1)
    user_id = identity.user_id_for("dana-key", rng)
    s.hub.deliver_published(
        Join("p2", "lobby", {"id": user_id, "name": "dana", "color": "#000000"})
    )
    tab = Conn("dana-tab")
    greeting = Inbox(s.hub.connect(tab, client_key="dana-key"))
    assert greeting.one(tab, "welcome")["user"]["name"] == "dana"


def test_a_dead_process_takes_its_users_away(s: Shared) -> None:
    """Ensure forgetting a process sends leave for each user only it had."""
    alice = s.user("alice")
    s.hub.replace_remote("p2", {"lobby": {"u-bob": wire("bob"), "u-eve": wire("eve")}})
    assert s.hub.member_count("lobby") == 3
    inbox = Inbox(s.hub.deliver_published(Gone("p2")))
    assert sorted(f["user"]["name"] for f in inbox.of(alice, "presence")) == [
        "bob",
        "eve",
    ]
    assert s.hub.member_count("lobby") == 1
    assert s.hub.remote_origins() == set()


def test_remote_typing_and_nick(s: Shared) -> None:
    """Ensure typing and renames from other processes reach local members."""
    alice = s.user("alice")
    s.hub.deliver_published(Join("p2", "lobby", wire("bob")))
    typing = Inbox(s.hub.deliver_published(Typing("p2", "lobby", wire("bob"), True)))
    assert typing.one(alice, "typing")["user"]["name"] == "bob"
    renamed = {**wire("bob"), "name": "robert"}
    nick = Inbox(s.hub.deliver_published(Nick("p2", renamed, "bob", ("lobby",))))
    event = nick.one(alice, "presence")
    assert (event["event"], event["previous"], event["user"]["name"]) == (
        "nick",
        "bob",
        "robert",
    )
    # The same rename heard again changes nothing.
    assert s.hub.deliver_published(Nick("p2", renamed, "bob", ("lobby",))) == []


def test_join_with_since_does_not_repeat_live_messages(s: Shared) -> None:
    """Ensure a joiner's replay and the live channel never deliver one message
    twice, nor a live one before the replay."""
    alice = s.user("alice")
    for n in range(3):
        s.send(alice, type="message", text=f"m{n}")
    s.pump()
    # Published but not yet back from the subscription when bob joins:
    s.elsewhere("in flight")
    bob = Conn("bob")
    greeting = Inbox(s.hub.connect(bob, name="bob", room="other", client_key="bk"))
    assert greeting.one(bob, "welcome")
    replay = s.send(bob, type="join", room="lobby", since=1)
    assert [m["id"] for m in replay.of(bob, "message")] == [2, 3, 4]
    live = s.pump()
    assert live.of(bob, "message") == []  # had it from the replay
    assert [m["id"] for m in live.of(alice, "message")] == [4]
    sent = s.send(alice, type="message", text="next")  # caught up: sender first
    assert [m["id"] for m in sent.of(bob, "message") + s.pump().of(bob, "message")] == [
        5
    ]


def test_recover_delivers_what_the_subscription_missed(s: Shared) -> None:
    """Ensure recover() sends messages stored while the listener was away, once."""
    alice = s.user("alice")
    s.send(alice, type="message", text="seen")
    s.pump()
    for n in range(3):
        s.elsewhere(f"missed {n}")
    lost = list(s.history.outbox)
    s.history.outbox.clear()
    inbox = Inbox(s.hub.recover())
    assert [m["text"] for m in inbox.of(alice, "message")] == [
        "missed 0",
        "missed 1",
        "missed 2",
    ]
    assert all(s.hub.deliver_published(e) == [] for e in lost)


def test_recover_reports_a_gap_when_the_store_trimmed() -> None:
    """Ensure recover() sends a gap frame when missed messages are gone."""
    s = Shared(keep=2)
    alice = s.user("alice")
    s.send(alice, type="message", text="seen")
    s.pump()
    for n in range(5):
        s.elsewhere(f"missed {n}")
    s.history.outbox.clear()
    inbox = Inbox(s.hub.recover())
    gap = inbox.one(alice, "gap")
    assert (gap["after"], gap["before"], gap["count"]) == (1, 5, 3)
    assert [m["id"] for m in inbox.of(alice, "message")] == [5, 6]


def test_event_payloads_round_trip() -> None:
    """Ensure every event survives encoding for the channel."""
    samples: list[fanout.Event] = [
        Published("lobby", 7, '{"type":"message","id":7,"text":"a b"}'),
        Join("p1", "lobby", wire("bob")),
        Leave("p1", "lobby", "u-bob"),
        Nick("p1", wire("bob"), "old", ("lobby", "dev")),
        Typing("p1", "lobby", wire("bob"), False),
        fanout.Sync("p1"),
        Gone("p1"),
    ]
    for event in samples:
        assert fanout.decode(fanout.encode(event)) == event
    with pytest.raises(fanout.BadEvent):
        fanout.decode("junk")
    with pytest.raises(fanout.BadEvent):
        fanout.decode('e{"k":"nope"}')


def test_recover_follows_a_store_that_lost_its_data(s: Shared) -> None:
    """Ensure that after the store lost messages (ids counting again from a
    lower value), new messages are delivered, not taken for old ones."""
    alice = s.user("alice")
    for n in range(3):
        s.send(alice, type="message", text=f"old {n}")
    s.pump()
    s.history.wipe()  # an emptied Redis: a new epoch
    reset = Inbox(s.hub.recover())
    assert reset.types(alice) == ["reset"]
    assert reset.one(alice, "reset") == {
        "type": "reset",
        "room": "lobby",
        "epoch": s.history.epoch(),
    }
    sent = s.send(alice, type="message", text="new")
    got = sent.of(alice, "message") + s.pump().of(alice, "message")
    assert [m["text"] for m in got] == ["new"]


def test_a_remote_rename_shows_in_a_later_snapshot(s: Shared) -> None:
    """Ensure a user renamed on another process, who also has a tab here, is
    listed under the new name in the snapshot a newcomer gets (the cached
    encoding of the user must not keep the old name)."""
    dana = s.user("dana", key="dana-key")
    s.user("bob")  # a snapshot has been built: dana's encoding is cached
    wire_here = {
        "id": identity.user_id_for("dana-key", random.Random()),
        "name": "dana",
        "color": identity.color_for("dana"),
    }
    s.hub.deliver_published(Join("p2", "lobby", wire_here))
    renamed = {**wire_here, "name": "daniela", "color": identity.color_for("daniela")}
    inbox = Inbox(s.hub.deliver_published(Nick("p2", renamed, "dana", ("lobby",))))
    assert inbox.one(dana, "renamed")["user"]["name"] == "daniela"
    carol = Conn("carol")
    greeting = Inbox(s.hub.connect(carol, name="carol", client_key="carol-key"))
    names = sorted(u["name"] for u in greeting.one(carol, "presence")["users"])
    assert names == ["bob", "carol", "daniela"]


def test_a_change_is_delivered_only_when_it_comes_back(s: Shared) -> None:
    """Ensure an edit goes out from the subscription, like a message, once."""
    alice, bob = s.user("alice"), s.user("bob")
    s.send(alice, type="message", text="helo")
    s.pump()
    direct = s.send(alice, type="edit", room="lobby", id=1, text="hello")
    assert direct == {}
    event = s.history.outbox[0]
    back = s.pump()
    assert back.one(bob, "edited")["text"] == "hello"
    assert back.one(alice, "edited")["rev"] == 2
    assert s.hub.deliver_published(event) == []


def test_recover_brings_changes_missed(s: Shared) -> None:
    """Ensure recover() sends messages changed while the listener was away,
    in their current state, and the lost live events are then dropped."""
    alice = s.user("alice")
    s.send(alice, type="message", text="one")
    s.send(alice, type="message", text="two")
    s.pump()
    s.send(alice, type="delete", room="lobby", id=1)
    s.send(alice, type="edit", room="lobby", id=2, text="two!")
    lost = list(s.history.outbox)
    s.history.outbox.clear()
    inbox = Inbox(s.hub.recover())
    assert inbox.of(alice, "gap") == []
    replayed = inbox.of(alice, "message")
    assert [(m["id"], m["rev"], m["text"]) for m in replayed] == [
        (1, 3, ""),
        (2, 4, "two!"),
    ]
    assert all(s.hub.deliver_published(e) == [] for e in lost)
