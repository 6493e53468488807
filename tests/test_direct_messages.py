"""Unit tests of chatcore.direct_messages through the hub: opening a direct
conversation, who hears of it, what its snapshot says, and who may do what
with it."""

from __future__ import annotations

import pytest

from chatcore import fanout, identity
from chatcore.directory.memory import MemoryDirectory
from chatcore.hub import ROOMS_PER_CONNECTION_MAX
from tests.test_hub import Conn, Inbox
from tests.test_hub_shared import RecordingFanout
from tests.test_private_rooms import NOT_A_MEMBER, Harness


@pytest.fixture
def p() -> Harness:
    return Harness()


def open_dm(p: Harness, sender: Conn, *others: Conn) -> tuple[str, Inbox]:
    """``sender`` opens a conversation with ``others``; its room and the frames."""
    inbox = p.send(sender, type="dm", to=[p.user_id(o) for o in others])
    snapshot = inbox.one(sender, "presence")
    return snapshot["room"], inbox


def test_a_dm_is_a_private_room_named_by_its_members(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    room, inbox = open_dm(p, ann, ben)
    ids = {p.user_id(ann), p.user_id(ben)}
    assert room == identity.dm_room(ids) and identity.is_dm_room(room)
    snapshot = inbox.one(ann, "presence")
    assert snapshot["event"] == "snapshot" and snapshot["private"] is True
    assert snapshot["kind"] == "dm" and "creator" not in snapshot
    assert "role" not in snapshot  # nobody owns it
    assert snapshot["members"] == [
        {"id": p.user_id(ann), "name": "ann"},
        {"id": p.user_id(ben), "name": "ben"},
    ]
    assert p.directory.members(room) == ids
    assert p.hub.rooms_of(ann) == ["lobby", room]
    assert p.hub.rooms_of(ben) == ["lobby"]  # told, not joined
    added = inbox.one(ben, "room_added")
    assert added["room"] == room and added["kind"] == "dm"
    assert added["by"]["id"] == p.user_id(ann)
    assert added["members"] == snapshot["members"]


def test_every_connection_of_every_member_hears_but_the_opening_one(
    p: Harness,
) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    ann_tab, _ = p.connect("ann")
    ben_tab, _ = p.connect("ben")
    carl = p.user("carl")
    room, inbox = open_dm(p, ann, ben)
    assert inbox.types(ann) == ["presence"]
    for conn in (ann_tab, ben, ben_tab):
        assert inbox.one(conn, "room_added")["room"] == room
    assert carl not in inbox


def test_opening_it_again_finds_the_same_room_and_tells_nobody(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    room, _ = open_dm(p, ann, ben)
    again, inbox = open_dm(p, ben, ann)
    assert again == room
    assert inbox.types(ann) == ["presence"]  # ben came in, nothing more
    assert inbox.types(ben) == ["presence"]
    assert p.hub.rooms_of(ben) == ["lobby", room]


def test_small_groups_are_their_own_conversations(p: Harness) -> None:
    ann, ben, carl = p.user("ann"), p.user("ben"), p.user("carl")
    pair, _ = open_dm(p, ann, ben)
    group, inbox = open_dm(p, ann, ben, carl)
    assert group != pair
    assert {m["name"] for m in inbox.one(ann, "presence")["members"]} == {
        "ann",
        "ben",
        "carl",
    }
    assert inbox.one(carl, "room_added")["room"] == group
    # Naming yourself too changes nothing.
    same = p.send(carl, type="dm", to=[p.user_id(carl), p.user_id(ann), p.user_id(ben)])
    assert same.one(carl, "presence")["room"] == group


def test_a_third_person_can_neither_join_nor_read_it(p: Harness) -> None:
    ann, ben, carl = p.user("ann"), p.user("ben"), p.user("carl")
    room, _ = open_dm(p, ann, ben)
    p.send(ann, type="message", room=room, text="just us")
    for ref, frame in (
        ("join", {"type": "join", "room": room}),
        ("history", {"type": "history", "room": room}),
        ("message", {"type": "message", "room": room, "text": "me too"}),
    ):
        error = p.send(carl, **frame).error(carl)
        assert (error["code"], error["message"], error["ref"]) == (
            "forbidden",
            NOT_A_MEMBER,
            ref,
        )
    assert p.history.last_id(room) == 1
    assert p.hub.visible_rooms([room, "lobby"], p.user_id(carl)) == ["lobby"]
    assert p.hub.visible_rooms([room], p.user_id(ben)) == [room]


def test_a_name_of_the_reserved_form_is_no_room_until_opened(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    future = identity.dm_room([p.user_id(ann), p.user_id(ben)])
    for frame in (
        {"type": "join", "room": future},
        {"type": "history", "room": future},
    ):
        assert p.send(ann, **frame).error(ann)["code"] == "forbidden"
    error = p.send(ann, type="create", room=future, private=True).error(ann)
    assert error["code"] == "bad_request" and "'dm'" in error["message"]
    assert p.directory.access(future, None).room is None
    assert p.hub.rooms_of(ann) == ["lobby"]
    # Nor may a bot write into it before its members do.
    with pytest.raises(Exception, match="private") as refused:
        p.hub.post(
            p.hub._conns[ann].user, future, "early", None, p.hub._conns[ann].messages
        )
    assert refused.value.code == "forbidden"  # type: ignore[attr-defined]
    assert p.history.last_id(future) == 0


def test_nobody_is_added_to_or_removed_from_a_dm(p: Harness) -> None:
    ann, ben, carl = p.user("ann"), p.user("ben"), p.user("carl")
    room, _ = open_dm(p, ann, ben)
    error = p.send(ann, type="add", room=room, name="carl").error(ann)
    assert error["code"] == "forbidden" and "direct conversation" in error["message"]
    error = p.send(ann, type="remove", room=room, user=p.user_id(ben)).error(ann)
    assert error["code"] == "forbidden" and "direct conversation" in error["message"]
    assert p.directory.members(room) == {p.user_id(ann), p.user_id(ben)}
    assert carl not in p.send(ann, type="message", room=room, text="x")


def test_leaving_keeps_the_membership(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    room, _ = open_dm(p, ann, ben)
    p.send(ann, type="message", room=room, text="first")
    p.send(ann, type="leave", room=room)
    p.send(ben, type="join", room=room)
    p.send(ben, type="message", room=room, text="while you were away")
    inbox = p.send(ann, type="join", room=room, since=1)
    assert [m["text"] for m in inbox.of(ann, "message")] == ["while you were away"]


def test_bad_dm_frames_get_clear_errors(p: Harness) -> None:
    ann = p.user("ann")
    me = p.user_id(ann)
    cases = [
        ({"to": []}, "bad_request", "list of 1 to 7"),
        ({"to": "ben"}, "bad_request", "list of 1 to 7"),
        ({"to": [1]}, "bad_request", "list of 1 to 7"),
        ({"to": ["x" * 65]}, "bad_request", "list of 1 to 7"),
        ({"to": ["a"] * 9}, "bad_request", "list of 1 to 7"),
        ({"to": ["b", "b"]}, "bad_request", "twice"),
        ({"to": [me]}, "bad_request", "besides you"),
        ({"to": [f"u{n}" for n in range(8)]}, "bad_request", "at most 7"),
        ({"to": ["u-nobody"]}, "no_such_user", "known here"),
    ]
    for fields, code, words in cases:
        error = p.send(ann, type="dm", **fields).error(ann)
        assert error["code"] == code and words in error["message"], (fields, error)
        assert error["ref"] == "dm"
    assert p.hub.rooms_of(ann) == ["lobby"]
    assert p.directory.rooms_of(me) == set()


def test_unknown_ids_are_named_in_the_error(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    error = p.send(ann, type="dm", to=[p.user_id(ben), "u-gone"]).error(ann)
    assert error["code"] == "no_such_user" and error["user"] == "u-gone"
    assert p.directory.rooms_of(p.user_id(ben)) == set()  # nothing half made


def test_a_user_connected_elsewhere_is_known_by_their_name_there() -> None:
    recording = RecordingFanout()
    p = Harness(recording)
    ann = p.user("ann")
    dora = {"id": "u-dora", "name": "Dora", "color": "#123456"}
    p.hub.deliver_published(fanout.Join("there", "lobby", dora))
    inbox = p.send(ann, type="dm", to=["u-dora"])
    snapshot = inbox.one(ann, "presence")
    assert {"id": "u-dora", "name": "Dora"} in snapshot["members"]
    room = snapshot["room"]
    added = [e for e in recording.published if isinstance(e, fanout.Added)]
    assert {e.user_id for e in added} == {"u-dora", p.user_id(ann)}
    assert all(e.room == room and e.detail["kind"] == "dm" for e in added)
    for event in added:
        assert fanout.decode(fanout.encode(event)) == event
    # The same event, heard from another process, tells the member here.
    ben = p.user("ben")
    heard = fanout.Added("there", room, p.user_id(ben), dora, added[0].detail)
    frame = Inbox(p.hub.deliver_published(heard)).one(ben, "room_added")
    assert frame["kind"] == "dm" and frame["members"] == added[0].detail["members"]


def test_the_snapshot_names_members_by_their_names_now(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    ben_id = p.user_id(ben)
    room, _ = open_dm(p, ann, ben)
    p.send(ben, type="nick", name="Benjamin")
    snapshot = p.send(ann, type="join", room=room).one(ann, "presence")
    assert {"id": ben_id, "name": "Benjamin"} in snapshot["members"]
    p.hub.disconnect(ben)  # gone: the name they had when it was opened
    snapshot = p.send(ann, type="join", room=room).one(ann, "presence")
    assert {"id": ben_id, "name": "ben"} in snapshot["members"]


def test_an_admin_cannot_read_a_dm_but_a_mute_still_silences_it(
    p: Harness,
) -> None:
    ann, ben, root = p.user("ann"), p.user("ben"), p.user("root")
    room, _ = open_dm(p, ann, ben)
    p.hub.grant_admin(p.user_id(root), "root")
    for kind in ("join", "history"):
        assert p.send(root, type=kind, room=room).error(root)["code"] == "forbidden"
    p.send(root, type="mute", user=p.user_id(ann))  # everywhere, until unmuted
    error = p.send(ann, type="message", room=room, text="hello?").error(ann)
    assert error["code"] == "forbidden" and error["ref"] == "message"
    assert p.history.last_id(room) == 0


def test_the_opening_rate_is_bounded_and_said() -> None:
    p = Harness(directory=MemoryDirectory(dm_per_hour=1))
    ann, ben, carl = p.user("ann"), p.user("ben"), p.user("carl")
    room, _ = open_dm(p, ann, ben)
    error = p.send(ann, type="dm", to=[p.user_id(carl)]).error(ann)
    assert error["code"] == "bad_request" and "in the last hour" in error["message"]
    assert p.hub.rooms_of(ann) == ["lobby", room]
    assert open_dm(p, ann, ben)[0] == room  # finding one is never refused


def test_a_connection_in_too_many_rooms_opens_nothing(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    for n in range(ROOMS_PER_CONNECTION_MAX - 1):
        p.send(ann, type="join", room=f"r{n}")
    error = p.send(ann, type="dm", to=[p.user_id(ben)]).error(ann)
    assert error["code"] == "bad_request" and error["ref"] == "dm"
    assert p.directory.rooms_of(p.user_id(ben)) == set()


def test_the_welcome_lists_the_users_conversations(p: Harness) -> None:
    ann, ben, carl = p.user("ann"), p.user("ben"), p.user("carl")
    pair, _ = open_dm(p, ann, ben)
    group, _ = open_dm(p, carl, ann, ben)
    p.private_room(ann)  # a private room is no conversation
    ben_tab, inbox = p.connect("ben")
    assert inbox.one(ben_tab, "welcome")["dms"] == sorted([pair, group])
    dora, inbox = p.connect("dora")
    assert "dms" not in inbox.one(dora, "welcome")


def test_an_open_conversation_is_found_while_the_others_are_away(p: Harness) -> None:
    ann, ben = p.user("ann"), p.user("ben")
    ben_id = p.user_id(ben)
    room, _ = open_dm(p, ann, ben)
    p.send(ann, type="leave", room=room)
    p.hub.disconnect(ben)  # nobody here knows ben now
    inbox = p.send(ann, type="dm", to=[ben_id])
    assert inbox.one(ann, "presence")["room"] == room
    carl = p.user("carl")  # but nobody else finds a way in through it
    error = p.send(carl, type="dm", to=[ben_id]).error(carl)
    assert error["code"] == "no_such_user"
