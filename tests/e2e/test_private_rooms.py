"""Private rooms end to end: real server processes (memory, SQLite, two on one
Redis), real WebSocket clients, real HTTP requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import (
    MS,
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    http_get,
    run_server,
)

TOKEN = "private-rooms-token"
FAST = (
    "--rate",
    "1000",
    "--burst",
    "1000",
    "--api-token",
    TOKEN,
    "--shutdown-timeout",
    "0.5",
)
NOT_A_MEMBER = "you are not a member of this room"


def connect(server: ServerProcess, name: str, **kwargs: Any) -> Client:
    """A client with a key of its own (one user per name), closed after the test."""
    client = open_client(server, name=name, key=f"{name}-key-0123456789", **kwargs)
    return closed_after_the_test(client)


@pytest.fixture(params=["sqlite", "memory"])
def server(
    request: pytest.FixtureRequest, server_with: Callable[..., ServerProcess]
) -> ServerProcess:
    store = ("--db", ":memory:") if request.param == "memory" else ()
    return server_with(*FAST, *store)


def refused(client: Client, ref: str) -> None:
    error = client.recv_until("error")
    assert (error["code"], error["ref"], error["message"]) == (
        "forbidden",
        ref,
        NOT_A_MEMBER,
    )


def create_private(client: Client, room: str = "plans") -> dict[str, Any]:
    client.send(type="create", room=room, private=True)
    snapshot = client.recv_until("presence", lambda f: f["room"] == room)
    assert snapshot["event"] == "snapshot" and snapshot["private"] is True
    return snapshot


def api(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        server.http_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:  # its socket, closed now rather than whenever it is collected
            return error.code, json.loads(error.read())


def test_a_non_member_is_refused_everywhere(server: ServerProcess) -> None:
    """Ensure a non-member can neither join, read nor post to a private room."""
    alice, bob = connect(server, "alice"), connect(server, "bob")
    create_private(alice)
    alice.send(type="message", room="plans", text="the secret plan")
    alice.recv_until("message")
    bob.send(type="join", room="plans")
    refused(bob, "join")
    bob.send(type="history", room="plans")
    refused(bob, "history")
    bob.send(type="message", room="plans", text="let me in", client_id="c1")
    refused(bob, "message")
    assert all(f["type"] != "message" for f in alice.drain(300 * MS))
    # Nor by connecting straight into it.
    carol = connect(server, "carol", room="plans", read_welcome=False)
    assert carol.recv()["rooms"] == []
    refused(carol, "join")


def test_a_private_room_is_hidden_over_http(server: ServerProcess) -> None:
    """Ensure /rooms, transcripts, downloads and the bot API hide a private
    room, answering exactly as for a room that does not exist."""
    alice = connect(server, "alice")
    create_private(alice)
    alice.send(type="message", room="plans", text="the secret plan")
    alice.send(type="message", room="lobby", text="hello all")
    alice.recv_until("message", lambda f: f["room"] == "lobby")
    status, _, page = http_get(server.http_url + "/rooms")
    assert status == 200 and b"lobby" in page and b"plans" not in page
    for suffix in ("", "/transcript.txt", "/transcript.jsonl"):
        hidden = http_get(f"{server.http_url}/rooms/plans{suffix}")
        unknown = http_get(f"{server.http_url}/rooms/nosuch{suffix}")
        assert hidden[0] == unknown[0] == 404, suffix
        assert hidden[2] == unknown[2]
        assert b"secret" not in hidden[2]
    assert http_get(server.http_url + "/rooms/lobby/transcript.txt")[0] == 200
    status, listed = api(server, "GET", "/api/rooms")
    assert status == 200 and [r["room"] for r in listed["rooms"]] == ["lobby"]
    status, answer = api(server, "POST", "/api/rooms/plans/messages", {"text": "hi"})
    assert status == 403 and answer["error"] == "forbidden"
    assert all(f["type"] != "message" for f in alice.drain(300 * MS))


def test_a_member_adds_a_person_who_can_then_join(server: ServerProcess) -> None:
    """Ensure an added person hears of it on every tab, joins and reads, and
    leaves everywhere when the creator removes them."""
    alice, bob = connect(server, "alice"), connect(server, "bob")
    bob_tab = connect(server, "bob")
    create_private(alice)
    alice.send(type="message", room="plans", text="before bob")
    alice.send(type="add", room="plans", name="bob")
    added = alice.recv_until("added")
    assert added["user"]["name"] == "bob"
    for tab in (bob, bob_tab):
        notice = tab.recv_until("room_added")
        assert notice["room"] == "plans" and notice["by"]["name"] == "alice"
    bob.send(type="join", room="plans", since=0)
    snapshot = bob.recv_until("presence", lambda f: f["event"] == "snapshot")
    assert snapshot["private"] is True
    assert {u["name"] for u in snapshot["users"]} == {"alice", "bob"}
    ids = {u["name"]: u["id"] for u in snapshot["users"]}
    assert snapshot["creator"] == ids["alice"]
    assert bob.recv_until("message")["text"] == "before bob"
    bob.send(type="message", room="plans", text="hi alice")
    assert alice.recv_until("message", lambda f: f["text"] == "hi alice")
    alice.send(type="remove", room="plans", user=added["user"]["id"])
    assert alice.recv_until("removed")["user"] == added["user"]["id"]
    left = bob.recv_until("left")
    assert left == {"type": "left", "room": "plans", "reason": "removed"}
    bob.send(type="join", room="plans")
    refused(bob, "join")


def test_create_refuses_a_room_in_use(server: ServerProcess) -> None:
    alice = connect(server, "alice")
    alice.send(type="create", room="lobby", private=True)  # alice is in it
    error = alice.recv_until("error")
    assert error["code"] == "room_exists" and error["ref"] == "create"


def test_private_rooms_survive_a_restart(tmp_path: Path) -> None:
    """Ensure SQLite keeps private rooms and members across a restart."""
    db = str(tmp_path / "chat.db")
    with run_server(*FAST, "--db", db, log_dir=tmp_path) as first:
        alice = connect(first, "alice")
        connect(first, "bob")
        create_private(alice)
        alice.send(type="add", room="plans", name="bob")
        alice.recv_until("added")
        port = first.port
    with run_server(*FAST, "--db", db, log_dir=tmp_path, port=port) as second:
        carol = connect(second, "carol")
        carol.send(type="join", room="plans")
        refused(carol, "join")
        bob = connect(second, "bob")
        bob.send(type="join", room="plans")
        assert bob.recv_until("presence")["private"] is True


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis") as server:
        yield server


@needs_redis
def test_added_on_one_process_joins_on_the_other(
    redis_server: RedisProcess, server_with: Callable[..., ServerProcess]
) -> None:
    """Ensure a room created and a member added through process 1 is private
    and joinable through process 2 at once, and the added person hears of it
    there; a removal there takes them out."""
    redis = ("--redis", redis_server.url, "--redis-heartbeat", "0.5")
    one, two = server_with(*FAST, *redis), server_with(*FAST, *redis)
    alice, bob, carol = (
        connect(one, "alice"),
        connect(two, "bob"),
        connect(two, "carol"),
    )
    create_private(alice)
    carol.send(type="join", room="plans")
    refused(carol, "join")
    alice.send(type="add", room="plans", name="bob")
    alice.recv_until("added")
    bob.send(type="join", room="plans")  # at once, wherever room_added is
    seen = [bob.recv()]
    while not (seen[-1]["type"] == "presence" and seen[-1]["room"] == "plans"):
        seen.append(bob.recv())
    snapshot = seen[-1]
    assert snapshot["event"] == "snapshot" and snapshot["private"] is True
    ids = {u["name"]: u["id"] for u in snapshot["users"]}
    assert snapshot["creator"] == ids["alice"]  # read from the shared store
    notices = [f for f in seen if f["type"] == "room_added"]
    notice = notices[0] if notices else bob.recv_until("room_added")
    assert notice["by"]["name"] == "alice"
    bob.send(type="message", room="plans", text="from two")
    assert alice.recv_until("message")["text"] == "from two"
    for server in (one, two):
        status, _, page = http_get(server.http_url + "/rooms")
        assert status == 200 and b"plans" not in page
    alice.send(
        type="remove",
        room="plans",
        user=snapshot["users"][0]["id"]
        if snapshot["users"][0]["name"] == "bob"
        else snapshot["users"][1]["id"],
    )
    assert bob.recv_until("left")["reason"] == "removed"
