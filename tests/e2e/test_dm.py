"""Direct messages end to end: real server processes (memory, SQLite, an
invite-only server, two processes on one Redis), real WebSocket clients,
real HTTP requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts_support import (
    connect_as,
    cookie_header,
    first_invite,
    redeem,
    request,
)
from tests.e2e.test_private_rooms import FAST, api, connect, refused
from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import MS, Client, ServerProcess, http_get

Start = Callable[..., ServerProcess]


@pytest.fixture(params=["sqlite", "memory"])
def server(request: pytest.FixtureRequest, server_with: Start) -> ServerProcess:
    store = ("--db", ":memory:") if request.param == "memory" else ()
    return server_with(*FAST, *store)


def user_id(client: Client) -> str:
    return str(client.welcome["user"]["id"])


def open_dm(client: Client, *others: Client) -> dict[str, Any]:
    """``client`` opens a conversation with ``others``; the snapshot."""
    client.send(type="dm", to=[user_id(o) for o in others])
    snapshot = client.recv_until(
        "presence", lambda f: f["event"] == "snapshot" and f.get("kind") == "dm"
    )
    assert snapshot["private"] is True and "creator" not in snapshot
    return snapshot


def join(client: Client, room: str, **fields: Any) -> dict[str, Any]:
    client.send(type="join", room=room, **fields)
    return client.recv_until(
        "presence", lambda f: f["event"] == "snapshot" and f["room"] == room
    )


def test_a_dm_is_private_to_the_pair(server: ServerProcess) -> None:
    """Ensure the other person hears of a new conversation on every tab, both
    talk in it, and a third person can neither join, read nor post to it."""
    ann, ben, carl = (
        connect(server, "ann"),
        connect(server, "ben"),
        connect(server, "carl"),
    )
    ben_tab = connect(server, "ben")
    snapshot = open_dm(ann, ben)
    room = snapshot["room"]
    assert room.startswith("@") and len(room) == 31
    assert snapshot["members"] == [
        {"id": user_id(ann), "name": "ann"},
        {"id": user_id(ben), "name": "ben"},
    ]
    for tab in (ben, ben_tab):
        added = tab.recv_until("room_added")
        assert (added["room"], added["kind"], added["by"]["name"]) == (
            room,
            "dm",
            "ann",
        )
        assert added["members"] == snapshot["members"]
    ann.send(type="message", room=room, text="just between us")
    ann.recv_until("message")
    assert join(ben, room, since=0)["kind"] == "dm"
    assert ben.recv_until("message")["text"] == "just between us"
    ben.send(type="message", room=room, text="agreed")
    assert ann.recv_until("message")["text"] == "agreed"

    carl.send(type="join", room=room)
    refused(carl, "join")
    carl.send(type="history", room=room)
    refused(carl, "history")
    carl.send(type="message", room=room, text="let me in")
    refused(carl, "message")
    carl.send(type="add", room=room, name="carl")
    assert carl.recv_until("error")["code"] == "forbidden"
    ann.send(type="add", room=room, name="carl")
    error = ann.recv_until("error")
    assert error["code"] == "forbidden" and "direct conversation" in error["message"]
    assert all(f["type"] != "room_added" for f in carl.drain(300 * MS))

    # Over HTTP nobody sees it: open mode has no identity there.
    ann.send(type="message", room="lobby", text="hello all")
    ann.recv_until("message", lambda f: f["room"] == "lobby")
    status, _, page = http_get(server.http_url + "/rooms")
    assert status == 200 and room.encode() not in page and b"lobby" in page
    for suffix in ("", "/transcript.txt", "/transcript.jsonl"):
        hidden = http_get(f"{server.http_url}/rooms/{room}{suffix}")
        unknown = http_get(f"{server.http_url}/rooms/nosuch{suffix}")
        assert hidden[0] == unknown[0] == 404 and hidden[2] == unknown[2], suffix
        assert b"between" not in hidden[2]
    status, listed = api(server, "GET", "/api/rooms")
    assert status == 200 and room not in [r["room"] for r in listed["rooms"]]
    status, answer = api(server, "POST", f"/api/rooms/{room}/messages", {"text": "x"})
    assert status == 403 and answer["error"] == "forbidden"


def test_opening_again_finds_it_and_a_leave_keeps_the_membership(
    server: ServerProcess,
) -> None:
    ann, ben = connect(server, "ann"), connect(server, "ben")
    room = open_dm(ann, ben)["room"]
    assert open_dm(ben, ann)["room"] == room
    ben.send(type="leave", room=room)
    ben.recv_until("left")
    ann.send(type="message", room=room, text="are you there?")
    ann.recv_until("message")
    assert join(ben, room, since=0)["room"] == room
    assert ben.recv_until("message")["text"] == "are you there?"
    # And a new connection of ben's is told of it in its welcome.
    later = connect(server, "ben")
    assert later.welcome["dms"] == [room]


def test_a_name_of_the_reserved_form_is_refused_until_opened(
    server: ServerProcess,
) -> None:
    ann = connect(server, "ann")
    future = "@" + "0" * 30
    ann.send(type="join", room=future)
    error = ann.recv_until("error")
    assert (error["code"], error["ref"]) == ("forbidden", "join")
    ann.send(type="create", room=future, private=True)
    error = ann.recv_until("error")
    assert (error["code"], error["ref"]) == ("bad_request", "create")
    ann.send(type="dm", to=["u-nobody-at-all"])
    error = ann.recv_until("error")
    assert (error["code"], error["user"]) == ("no_such_user", "u-nobody-at-all")


def test_dms_on_an_invite_only_server(server_with: Start) -> None:
    """Ensure a member who was away finds the conversation in their welcome,
    sees it by account names, reads it over HTTP, and an admin outside it
    cannot."""
    server = server_with(*FAST, "--access", "invite")
    admin_token = redeem(server, first_invite(server), "Alice")
    admin = connect_as(server, admin_token)
    admin.send(type="invite", uses=2)
    invite = admin.recv_until("invite")["url"]
    ben_token, carl_token = (
        redeem(server, invite, "Ben"),
        redeem(server, invite, "Carl"),
    )
    ben = connect_as(server, ben_token)
    carl = connect_as(server, carl_token)
    carl_id = user_id(carl)
    carl.close()  # away: known by the account
    snapshot = open_dm(ben, carl)
    room = snapshot["room"]
    assert snapshot["members"] == [
        {"id": user_id(ben), "name": "Ben"},
        {"id": carl_id, "name": "Carl"},
    ]
    ben.send(type="message", room=room, text="when you are back")
    ben.recv_until("message")

    carl = connect_as(server, carl_token)
    assert carl.welcome["dms"] == [room]
    join(carl, room, since=0)
    assert carl.recv_until("message")["text"] == "when you are back"

    admin.send(type="join", room=room)
    refused(admin, "join")
    for token, sees in ((carl_token, True), (admin_token, False)):
        headers = cookie_header(token)
        status, _, page = request(
            server, "GET", f"/rooms/{room}/transcript.txt", None, headers
        )
        assert (status, "when you are back" in page) == (
            (200, True) if sees else (404, False)
        )
        status, _, listing = request(server, "GET", "/rooms", None, headers)
        assert status == 200 and (room in listing) is sees


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis") as server:
        yield server


@needs_redis
def test_a_dm_opened_on_one_process_reaches_the_member_on_the_other(
    redis_server: RedisProcess, server_with: Start
) -> None:
    """Ensure a conversation opened through process 1 reaches its member on
    process 2 at once, both talk in it, and a third person on process 2 is
    refused."""
    redis = ("--redis", redis_server.url, "--redis-heartbeat", "0.5")
    one, two = server_with(*FAST, *redis), server_with(*FAST, *redis)
    ann = connect(one, "ann")
    ben, carl = connect(two, "ben"), connect(two, "carl")
    # Ann's process knows Ben once his join in the lobby has reached it.
    ann.recv_until(
        "presence", lambda f: f["event"] == "join" and f["user"]["name"] == "ben"
    )
    snapshot = open_dm(ann, ben)
    room = snapshot["room"]
    assert {m["name"] for m in snapshot["members"]} == {"ann", "ben"}
    added = ben.recv_until("room_added")
    assert added["room"] == room and added["kind"] == "dm"
    assert added["members"] == snapshot["members"]
    assert join(ben, room)["members"] == snapshot["members"]
    ben.send(type="message", room=room, text="from two")
    assert ann.recv_until("message")["text"] == "from two"
    ann.send(type="message", room=room, text="from one")
    assert ben.recv_until("message", lambda f: f["text"] == "from one")
    carl.send(type="join", room=room)
    refused(carl, "join")
    assert all(f["type"] != "room_added" for f in carl.drain(300 * MS))
    # Opening it through process 2 finds the same room.
    assert open_dm(ben, ann)["room"] == room


def test_the_bounds_come_from_the_settings(server_with: Start) -> None:
    """Ensure --dm-per-hour and --dm-max reach the store, and a refusal says why."""
    server = server_with(*FAST, "--dm-per-hour", "1", "--dm-max", "2")
    ann, ben, cal = (
        connect(server, "ann"),
        connect(server, "ben"),
        connect(server, "cal"),
    )
    open_dm(ann, ben)
    ann.send(type="dm", to=[user_id(cal)])
    error = ann.recv_until("error")
    assert (error["code"], error["ref"]) == ("bad_request", "dm")
    assert "1 direct conversations in the last hour" in error["message"]
    open_dm(ben, cal)  # ben's second: the most he may be in
    cal.send(type="dm", to=[user_id(ben), user_id(ann)])
    error = cal.recv_until("error")
    assert "ben is in 2 direct conversations" in error["message"]
