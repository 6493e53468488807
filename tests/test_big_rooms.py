"""Big rooms (docs/protocol.md, Big rooms), without a network: counts instead
of lists past ``--presence-max``, one ``count`` frame per room per tick, and
``members`` pages."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from chatcore import hub as hub_module
from chatcore.big_rooms import COUNT_PUSHES_PER_SECOND
from chatcore.config import Settings
from chatcore.delivery import Delivery
from chatcore.fanout import Join, Leave, Nick, Typing
from chatcore.history.memory import MemoryNames
from chatcore.hub import MEMBERS_BURST, Hub
from chatcore.rooms import Connection, Presence
from chatcore.users import User
from tests.test_hub import START, Conn, HubHarness, Inbox
from tests.test_hub_shared import PublishingMemory, RecordingFanout

Frame = dict[str, Any]


def harness(presence_max: int = 3) -> HubHarness:
    return HubHarness(Settings(presence_max=presence_max, rate=1000, burst=1000))


def fill(h: HubHarness, count: int, room: str = "lobby") -> list[Conn]:
    return [h.user(f"user{n:03d}", room=room) for n in range(count)]


def tick(h: HubHarness) -> Inbox:
    h.step(1.0)  # past any room's wait between two count frames
    return Inbox(h.hub.presence_tick())


def member_pages(h: HubHarness, conn: Conn, room: str = "lobby", **query: Any):
    """Every page of ``members``, following ``next``."""
    pages: list[Frame] = []
    after = None
    while True:
        frame = {"type": "members", "room": room, **query}
        if after:
            frame["after"] = after
        answer = h.send(conn, **frame).one(conn, "members")
        pages.append(answer)
        after = answer.get("next")
        if after is None:
            return pages


# -- the count without a loop ------------------------------------------------


def test_the_count_kept_as_members_come_and_go_is_the_count_of_their_union() -> None:
    """Ensure Presence.count, kept without a loop, equals |here ∪ elsewhere|
    through any order of local and remote joins and leaves."""
    rng = random.Random(15)
    users = {f"u{n}": User(f"u{n}", f"name{n}", "#000") for n in range(6)}
    presence = Presence(users)
    conns: dict[str, Connection] = {}
    for step in range(3000):
        user_id, origin = rng.choice(list(users)), rng.choice(["p1", "p2"])
        match rng.randrange(4):
            case 0:
                key = f"{user_id}-{rng.randrange(2)}"
                conn = conns.setdefault(
                    key, Connection(key, users[user_id], [], *([None] * 5))
                )
                presence.enter(conn, "room")
            case 1:
                key = f"{user_id}-{rng.randrange(2)}"
                if key in conns and "room" in conns[key].rooms:
                    presence.exit(conns[key], "room")
            case 2:
                wire = {"id": user_id, "name": users[user_id].name, "color": "#000"}
                presence.remote_join(origin, "room", wire)
            case 3:
                presence.remote_leave(origin, "room", user_id)
        room = presence.rooms.get("room")
        here = set(room.members) if room else set()
        assert presence.count("room") == len(
            here | set(presence.remote.get("room", {}))
        ), step


# -- small rooms stay as they were -------------------------------------------


def test_a_room_at_the_limit_lists_everyone_and_announces_each_join() -> None:
    """Ensure up to --presence-max members a room is small: whole lists, events."""
    h = harness(3)
    alice, bob = fill(h, 2)
    carol, inbox = h.connect("carol")
    snapshot = inbox.one(carol, "presence")
    assert len(snapshot["users"]) == 3 and snapshot["count"] == 3
    assert "big" not in snapshot and "members_more" not in snapshot
    assert inbox.one(alice, "presence")["event"] == "join"
    assert inbox.one(bob, "presence")["event"] == "join"
    assert tick(h) == {}


# -- growing past the limit ------------------------------------------------------


def test_the_join_that_passes_the_limit_gets_a_first_page_and_the_others_a_count() -> (
    None
):
    """Ensure crossing: the joiner's snapshot is paged, nobody else hears the
    join now, and the next tick tells everyone the room is big."""
    h = harness(3)
    first = fill(h, 3)
    dave, inbox = h.connect("dave")
    assert inbox.receivers() == {dave}
    snapshot = inbox.one(dave, "presence")
    assert snapshot["event"] == "snapshot" and snapshot["count"] == 4
    assert snapshot["big"] is True and snapshot["members_more"] is True
    assert snapshot["typists"] == 0
    names = [user["name"] for user in snapshot["users"]]
    assert names == ["dave", "user000", "user001"]  # self, then join order
    counted = tick(h)
    assert counted.receivers() == {*first, dave}
    for conn in (*first, dave):
        assert counted.one(conn, "presence") == {
            "type": "presence",
            "room": "lobby",
            "event": "count",
            "count": 4,
            "big": True,
            "typists": 0,
        }
    assert tick(h) == {}  # nothing changed since


def test_a_join_into_a_big_room_costs_the_same_at_any_size() -> None:
    """Ensure a join into a big room is two frames to the joiner, nothing to
    anyone else, whether the room holds 20 or 400 members."""
    h = harness(5)
    costs = []
    for size in (20, 400):
        fill(h, size - h.hub.member_count("lobby"))
        tick(h)
        deliveries = h.hub.connect(Conn(f"new{size}"), name=f"new{size}")
        costs.append([(len(d.targets), json.loads(d.text)["type"]) for d in deliveries])
    assert costs[0] == costs[1] == [(1, "welcome"), (1, "presence")]


def test_a_tick_sends_one_frame_per_changed_room_however_many_changes() -> None:
    """Ensure many joins and leaves in two big rooms make two frames per tick,
    each with the count as it is when the tick runs."""
    h = harness(2)
    lobby, dev = fill(h, 10), fill(h, 6, room="dev")
    fill(h, 1, room="quiet")
    tick(h)
    for conn in lobby[:4]:
        h.disconnect(conn)
    fill(h, 3, room="dev")
    h.step(1.0)
    deliveries = h.hub.presence_tick()
    assert sorted(json.loads(d.text)["room"] for d in deliveries) == ["dev", "lobby"]
    counts = {
        json.loads(d.text)["room"]: json.loads(d.text)["count"] for d in deliveries
    }
    assert counts == {"lobby": 6, "dev": 9}
    dev_delivery = next(d for d in deliveries if '"dev"' in d.text)
    assert set(dev_delivery.targets) >= set(dev)


def test_a_big_room_waits_its_turn_for_the_next_count() -> None:
    """Ensure a room of n connections gets count frames at most every
    n / COUNT_PUSHES_PER_SECOND seconds; a change meanwhile waits, not lost."""
    h = harness(3)
    conns = fill(h, 20)
    tick(h)
    h.disconnect(conns[0])
    assert h.hub.presence_tick() == []  # at the same moment: not yet
    h.step(10 / COUNT_PUSHES_PER_SECOND)
    assert h.hub.presence_tick() == []  # half the wait of 20 connections
    h.step(10 / COUNT_PUSHES_PER_SECOND + 1e-6)
    assert Inbox(h.hub.presence_tick()).one(conns[1], "presence")["count"] == 19


def test_a_leave_from_a_big_room_is_counted_not_announced() -> None:
    """Ensure a leave sends no frame to the others and changes the next count."""
    h = harness(3)
    conns = fill(h, 6)
    tick(h)
    assert h.disconnect(conns[0]) == {}
    left = h.send(conns[1], type="leave", room="lobby")
    assert left.types(conns[1]) == ["left"] and left.receivers() == {conns[1]}
    assert tick(h).one(conns[2], "presence")["count"] == 4


def test_typing_in_a_big_room_is_a_count() -> None:
    """Ensure typing in a big room sends no typing frames; the tick counts typists."""
    h = harness(3)
    conns = fill(h, 5)
    tick(h)
    assert h.send(conns[0], type="typing", room="lobby", active=True) == {}
    assert h.send(conns[1], type="typing", room="lobby", active=True) == {}
    assert tick(h).one(conns[4], "presence")["typists"] == 2
    joiner, inbox = h.connect("late")
    assert inbox.one(joiner, "presence")["typists"] == 2
    assert "typing" not in inbox.one(joiner, "presence")
    h.say(conns[0], "done typing")
    assert tick(h).one(conns[4], "presence")["typists"] == 1


def test_a_big_room_stays_big_until_empty_here() -> None:
    """Ensure shrinking below the limit keeps counts; an empty room starts small."""
    h = harness(3)
    conns = fill(h, 5)
    for conn in conns[:4]:
        h.disconnect(conn)
    assert tick(h).one(conns[4], "presence") == {
        "type": "presence",
        "room": "lobby",
        "event": "count",
        "count": 1,
        "big": True,
        "typists": 0,
    }
    joiner, inbox = h.connect("joiner")
    assert inbox.one(joiner, "presence")["big"] is True
    assert inbox.receivers() == {joiner}
    h.disconnect(conns[4])
    h.disconnect(joiner)
    again, inbox = h.connect("again")
    assert "big" not in inbox.one(again, "presence")


def test_an_emptied_big_room_leaves_nothing_behind() -> None:
    """Ensure the big-room bookkeeping of a room is dropped once it is empty
    here (a bound: rooms come and go), also when its last member here is
    still in it on another process."""
    s = SharedBig(2)
    ann = Conn("ann")
    welcome = Inbox(s.hub.connect(ann, name="ann", client_key="ann-key")).one(
        ann, "welcome"
    )
    conns = [ann, s.user("bo"), s.user("cy")]
    # ann is in the room on the other process too, and stays there.
    s.remote(Join("there", "lobby", welcome["user"]))
    s.remote(Typing("there", "lobby", remote_wire("rob"), True))
    conns.append(s.user("dee"))
    s.tick()
    big = s.hub._big  # what it keeps per room
    assert big._due and big._pages
    for conn in conns[1:]:
        s.hub.disconnect(conn)
    s.tick()
    s.hub.disconnect(ann)  # the last one here, a member still on the other
    s.tick()
    assert (big._changed, big._due, big._pages, big._remote_typists) == ({}, {}, {}, {})


def test_the_first_page_puts_the_owner_and_moderators_after_the_joiner() -> None:
    """Ensure the snapshot's first page: joiner, then roles, then join order."""
    h = harness(3)
    conns = fill(h, 6)
    roster = {
        m["name"]: m["id"]
        for page in member_pages(h, conns[0])
        for m in page["members"]
    }
    h.hub.set_role("lobby", roster["user005"], "moderator")
    joiner, inbox = h.connect("zed")
    users = inbox.one(joiner, "presence")["users"]
    assert [u["name"] for u in users] == ["zed", "user005", "user000"]
    assert users[1]["role"] == "moderator"


def test_the_first_page_shows_no_one_who_left_and_no_old_name() -> None:
    """Ensure the first page, kept between joins, follows leaves and renames."""
    h = harness(3)
    conns = fill(h, 6)
    first = h.connect("late1")[1]
    assert [u["name"] for u in first.one(first_conn(first), "presence")["users"]] == [
        "late1",
        "user000",
        "user001",
    ]
    h.send(conns[1], type="nick", name="renamed1")
    again = h.connect("late2")[1]
    shown = [u["name"] for u in again.one(first_conn(again), "presence")["users"]]
    assert shown == ["late2", "user000", "renamed1"]
    h.disconnect(conns[0])
    third = h.connect("late3")[1]
    shown = [u["name"] for u in third.one(first_conn(third), "presence")["users"]]
    assert shown == ["late3", "renamed1", "user002"]


def first_conn(inbox: Inbox) -> Conn:
    """The connection that got a welcome (the one just opened)."""
    return next(c for c, frames in inbox.items() if frames[0]["type"] == "welcome")


# -- members --------------------------------------------------------------------


def test_members_pages_list_everyone_once_in_name_order() -> None:
    """Ensure following ``next`` lists every member once, by name, case-folded."""
    h = harness(3)
    names = ["bob", "Alice", "carol", "Dave", "erin", "alfred", "Zoe"]
    conns = [h.user(name) for name in names]
    pages = member_pages(h, conns[0], limit=3)
    assert [len(page["members"]) for page in pages] == [3, 3, 1]
    listed = [m["name"] for page in pages for m in page["members"]]
    assert listed == sorted(names, key=str.casefold)
    assert "next" not in pages[-1]


def test_members_search_by_the_start_of_the_name_ignoring_case() -> None:
    """Ensure ``q`` finds the members whose names start with it, any case."""
    h = harness(3)
    conns = [h.user(name) for name in ["Alice", "alfred", "bob", "sally", "ALBERT"]]
    found = member_pages(h, conns[2], q="AL")
    assert [m["name"] for m in found[0]["members"]] == ["ALBERT", "alfred", "Alice"]
    assert h.send(conns[2], type="members", room="lobby", q="zz").one(
        conns[2], "members"
    ) == {"type": "members", "room": "lobby", "members": [], "q": "zz"}


def test_members_a_page_survives_members_leaving_before_the_next() -> None:
    """Ensure a cursor stays valid when its member leaves: no one listed twice."""
    h = harness(3)
    conns = fill(h, 9)
    first = h.send(conns[0], type="members", room="lobby", limit=4).one(
        conns[0], "members"
    )
    h.disconnect(conns[3])  # the last one of the first page
    rest = h.send(
        conns[0], type="members", room="lobby", limit=10, after=first["next"]
    ).one(conns[0], "members")
    names = [m["name"] for m in first["members"] + rest["members"]]
    assert names == [f"user{n:03d}" for n in range(9)]


def test_members_only_for_members_and_within_limits() -> None:
    """Ensure refusals: not a member, a bad limit, too many requests."""
    h = harness(3)
    alice = h.user("alice")
    bob = h.user("bob", room="dev")
    refused = h.send(bob, type="members", room="lobby").error(bob)
    assert refused["code"] == "not_in_room" and refused["ref"] == "members"
    bad = h.send(alice, type="members", room="lobby", limit=0).error(alice)
    assert bad["code"] == "bad_request"
    too_long = h.send(alice, type="members", room="lobby", q="x" * 65).error(alice)
    assert too_long["code"] == "bad_request"
    for _ in range(MEMBERS_BURST):
        assert h.send(alice, type="members", room="lobby").types(alice) == ["members"]
    limited = h.send(alice, type="members", room="lobby").error(alice)
    assert limited["code"] == "rate_limited" and limited["retry_after"] > 0
    h.step(1.0)
    assert h.send(alice, type="members", room="lobby").types(alice) == ["members"]


def test_members_pages_share_a_budget_of_members_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ensure the pages of all connections together read a bounded number of
    members a second (each page reads the whole list)."""
    monkeypatch.setattr(hub_module, "MEMBER_READS_RATE", 6)
    monkeypatch.setattr(hub_module, "MEMBER_READS_BURST", 18)
    h = harness(3)
    conns = fill(h, 6)
    for conn in conns[:3]:  # 3 pages of 6 members: the burst
        assert h.send(conn, type="members", room="lobby").types(conn) == ["members"]
    refused = h.send(conns[3], type="members", room="lobby").error(conns[3])
    assert refused["code"] == "rate_limited" and refused["retry_after"] == 1.0
    h.step(1.0)
    assert h.send(conns[4], type="members", room="lobby").types(conns[4]) == ["members"]


# -- several processes ------------------------------------------------------------


class SharedBig:
    """A hub that shares its rooms with another process (events by hand)."""

    def __init__(self, presence_max: int = 3):
        self.history = PublishingMemory()
        self.now = START
        self.hub = Hub(
            Settings(presence_max=presence_max, rate=1000, burst=1000),
            self.history,
            MemoryNames(),
            clock=lambda: self.now,
            rng=random.Random(7),
            fanout=RecordingFanout(),
        )

    def user(self, name: str) -> Conn:
        conn = Conn(name)
        self.hub.connect(conn, name=name, room="lobby", client_key=name + "-key")
        return conn

    def remote(self, event: Any) -> list[Delivery]:
        return self.hub.deliver_published(event)

    def tick(self) -> Inbox:
        self.now += 1.0
        return Inbox(self.hub.presence_tick())


def remote_wire(name: str) -> dict[str, str]:
    return {"id": "u-" + name, "name": name, "color": "#123456"}


def test_other_processes_joins_of_a_big_room_are_counted_and_listed() -> None:
    """Ensure remote joins into a big room send nothing at once, count at the
    tick, and show in ``members``; remote typing and leaves count too."""
    s = SharedBig(3)
    here = [s.user(name) for name in ("alice", "bob")]
    for name in ("rob", "rita", "ray"):
        s.remote(Join("there", "lobby", remote_wire(name)))
    assert s.remote(Join("there", "lobby", remote_wire("rex"))) == []
    counted = s.tick()
    assert counted.one(here[0], "presence")["count"] == 6
    pages = Inbox(
        s.hub.receive(here[0], json.dumps({"type": "members", "room": "lobby"}))
    ).one(here[0], "members")
    names = [m["name"] for m in pages["members"]]
    assert names == ["alice", "bob", "ray", "rex", "rita", "rob"]
    assert s.remote(Typing("there", "lobby", remote_wire("rob"), True)) == []
    assert s.tick().one(here[1], "presence")["typists"] == 1
    assert s.remote(Leave("there", "lobby", "u-rob")) == []
    after = s.tick().one(here[1], "presence")
    assert (after["count"], after["typists"]) == (5, 0)


@pytest.mark.parametrize("presence_max", [100])
def test_remote_joins_of_a_small_room_are_still_announced(presence_max: int) -> None:
    """Ensure a small room shared with another process keeps its join events."""
    s = SharedBig(presence_max)
    alice = s.user("alice")
    joined = Inbox(s.remote(Join("there", "lobby", remote_wire("rob"))))
    assert joined.one(alice, "presence")["event"] == "join"


def test_the_first_page_follows_other_processes_leaves_and_renames() -> None:
    """Ensure a cached first page drops a remote member who left everywhere
    and shows a remote member's new name."""
    s = SharedBig(5)
    s.user("alice")
    for n in range(1, 7):
        s.remote(Join("there", "lobby", remote_wire(f"r{n}")))

    def first_page(name: str) -> list[str]:
        conn = Conn(name)
        inbox = Inbox(
            s.hub.connect(conn, name=name, room="lobby", client_key=name + "-key")
        )
        return [u["name"] for u in inbox.one(conn, "presence")["users"]]

    assert first_page("bea") == ["bea", "alice", "r1", "r2", "r3"]
    s.remote(Leave("there", "lobby", "u-r1"))
    assert first_page("cy") == ["cy", "alice", "bea", "r2", "r3"]
    renamed = {**remote_wire("r2"), "name": "r2x"}
    s.remote(Nick("there", renamed, "r2", ("lobby",)))
    assert first_page("dee") == ["dee", "alice", "bea", "cy", "r2x"]
