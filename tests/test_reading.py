"""Unit tests of read positions in the hub (chatcore/reading.py): the
``read`` frame, the snapshot's ``read``, the reader's other connections,
other processes. No network."""

from __future__ import annotations

import pytest

from chatcore import fanout
from chatcore.fanout import ReadUpTo
from chatcore.history import HistoryError
from chatcore.reading import READ_BURST
from chatcore.reads.memory import MemoryReads
from tests.test_hub import HubHarness, Inbox
from tests.test_hub_shared import Shared
from tests.test_private_rooms import Harness as PrivateHarness


@pytest.fixture
def h() -> HubHarness:
    return HubHarness()


def snapshot_read(h: HubHarness, key: str, room: str = "lobby") -> int | None:
    """Connect a tab of the user with ``key`` to ``room``; its snapshot's read."""
    conn, inbox = h.connect(key=key, room=room)
    return inbox.one(conn, "presence").get("read")


def test_a_first_join_has_read_everything_so_far(h: HubHarness) -> None:
    """Ensure the first join of a room reads up to its last id (0 when new)."""
    ann, inbox = h.connect("ann", key="ann-key")
    assert inbox.one(ann, "presence")["read"] == 0
    for text in ["one", "two", "three"]:
        h.say(ann, text)
    assert snapshot_read(h, "bob-key") == 3
    assert snapshot_read(h, "ann-key") == 0  # ann's own position never moved


def test_read_moves_and_tells_the_other_tabs_in_the_room(h: HubHarness) -> None:
    """Ensure a read reaches the user's other connections in that room
    only; the reader and other users get nothing."""
    ann = h.user("ann", key="ann-key")
    ann_phone = h.user("ann", key="ann-key", label="ann-phone")
    ann_elsewhere = h.user("ann", key="ann-key", room="dev", label="ann-dev")
    bob = h.user("bob", key="bob-key")
    for text in ["one", "two"]:
        h.say(bob, text)
    inbox = h.send(ann, type="read", room="lobby", id=2)
    assert inbox.receivers() == {ann_phone}
    assert inbox.one(ann_phone, "read") == {"type": "read", "room": "lobby", "id": 2}
    assert ann_elsewhere not in inbox
    assert snapshot_read(h, "ann-key") == 2


def test_read_never_moves_backwards_and_is_clamped(h: HubHarness) -> None:
    """Ensure an older id changes nothing (and says nothing), and an id above
    the room's last one is taken as the last one."""
    ann = h.user("ann", key="ann-key")
    phone = h.user("ann", key="ann-key", label="phone")
    for text in ["one", "two", "three"]:
        h.say(ann, text)
    assert h.send(ann, type="read", room="lobby", id=2).receivers() == {phone}
    assert h.send(ann, type="read", room="lobby", id=1).receivers() == set()
    inbox = h.send(ann, type="read", room="lobby", id=999)
    assert inbox.one(phone, "read")["id"] == 3
    assert snapshot_read(h, "ann-key") == 3


def test_read_refusals(h: HubHarness) -> None:
    """Ensure a room not joined is not_in_room and a bad id is bad_request."""
    ann = h.user("ann", key="ann-key")
    assert h.send(ann, type="read", room="dev", id=1).error(ann)["code"] == (
        "not_in_room"
    )
    for bad in [-1, "3", None, 1.5, True]:
        error = h.send(ann, type="read", room="lobby", id=bad).error(ann)
        assert (error["code"], error["ref"]) == ("bad_request", "read")


def test_excess_reads_are_dropped_quietly(h: HubHarness) -> None:
    """Ensure reads beyond the connection's bucket move nothing and answer
    nothing, and are allowed again after a while."""
    ann = h.user("ann", key="ann-key")
    phone = h.user("ann", key="ann-key", label="phone")
    for i in range(READ_BURST + 5):
        h.say(ann, f"m{i}")
        h.step(0.2)  # the message bucket refills; the read bucket barely
    told = 0
    for i in range(1, READ_BURST + 6):
        inbox = h.send(ann, type="read", room="lobby", id=i)
        assert ann not in inbox
        told += len(inbox.of(phone, "read"))
    assert told == READ_BURST
    h.step(5)
    assert h.send(ann, type="read", room="lobby", id=READ_BURST + 5).receivers() == {
        phone
    }


def test_leave_forgets_the_position(h: HubHarness) -> None:
    """Ensure leaving a room drops the position: rejoining reads from then."""
    ann = h.user("ann", key="ann-key")
    bob = h.user("bob", key="bob-key")
    h.say(bob, "one")
    h.send(ann, type="leave", room="lobby")
    h.say(bob, "two")
    assert snapshot_read(h, "ann-key") == 2


def test_a_store_that_fails_leaves_the_snapshot_without_read() -> None:
    """Ensure a join still works when the read store cannot be read."""

    class Broken(MemoryReads):
        def position(self, user_id: str, room: str) -> int | None:
            raise HistoryError("down")

    h = HubHarness()
    h.hub._reading._store = Broken()
    ann, inbox = h.connect("ann", key="ann-key")
    snapshot = inbox.one(ann, "presence")
    assert "read" not in snapshot and snapshot["users"]


def test_reads_go_to_other_processes_and_come_from_them() -> None:
    """Ensure a read is published as ReadUpTo, another process's ReadUpTo
    reaches the user's connections here, and our own is ignored."""
    s = Shared()
    ann = s.user("ann")
    bob = s.user("bob")
    s.send(bob, type="message", text="hi")
    s.pump()
    s.send(ann, type="read", room="lobby", id=1)
    published = [e for e in s.fanout.published if isinstance(e, ReadUpTo)]
    assert len(published) == 1
    ann_id = published[0].user_id
    assert published[0] == ReadUpTo("here", ann_id, "lobby", 1)
    assert ann_id.startswith("u")
    assert Inbox(s.hub.deliver_published(published[0])) == {}
    inbox = Inbox(s.hub.deliver_published(ReadUpTo("there", ann_id, "lobby", 1)))
    assert inbox.receivers() == {ann}
    assert inbox.one(ann, "read") == {"type": "read", "room": "lobby", "id": 1}
    event = ReadUpTo("p1", ann_id, "lobby", 7)
    assert fanout.decode(fanout.encode(event)) == event


def test_removal_from_a_private_room_forgets_the_position() -> None:
    """Ensure a member removed from a private room loses their position
    there: added back later, they start from then, not from before."""
    p = PrivateHarness()
    ann, bob = p.user("ann"), p.user("bob")
    p.private_room(ann)
    p.send(ann, type="add", room="secret", name="bob")
    assert p.send(bob, type="join", room="secret").one(bob, "presence")["read"] == 0
    p.send(ann, type="message", room="secret", text="one")
    p.send(bob, type="read", room="secret", id=1)
    p.send(ann, type="message", room="secret", text="two")
    p.send(ann, type="remove", room="secret", user=p.user_id(bob))
    p.send(ann, type="add", room="secret", name="bob")
    snapshot = p.send(bob, type="join", room="secret").one(bob, "presence")
    assert snapshot["read"] == 2
