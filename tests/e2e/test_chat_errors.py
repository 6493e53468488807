"""End-to-end error handling: every error code of the contract, and HTTP edges."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import (
    MS,
    Client,
    ServerProcess,
    connect,
    http_get,
    run_server,
)

Frame = dict[str, Any]

_pings = iter(range(1, 1_000_000))


def assert_still_open(client: Client) -> None:
    """Prove the connection is usable: a ping is answered with its own pong."""
    t = f"alive-{next(_pings)}"
    client.send(type="ping", t=t)
    assert client.recv_until("pong", lambda f: f["t"] == t)["t"] == t


def expect_error(client: Client, code: str, ref: str | None = None) -> Frame:
    """Read up to the next error frame and check its code and ref."""
    error = client.recv_until("error")
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    if ref is not None:
        assert error.get("ref") == ref, error
    return error


def messages(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "message"]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One default server for the stateless malformed-frame checks of this module."""
    with run_server(log_dir=tmp_path_factory.mktemp("shared")) as server:
        yield server


@pytest.fixture
def own_client(shared_server: ServerProcess) -> Iterator[Client]:
    """A fresh client of ``shared_server``, in a room of its own."""
    client = connect(shared_server, room=f"solo-{next(_pings)}")
    yield client
    client.close()


@pytest.fixture
def open_on() -> Iterator[Callable[..., Client]]:
    """Open clients on any server; every one is closed after the test."""
    opened: list[Client] = []

    def open_client(server: ServerProcess, **kwargs: Any) -> Client:
        client = connect(server, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


# -- malformed frames ---------------------------------------------------------


@pytest.mark.parametrize("text", ["{not json", "", "hello", '{"type": "ping",}'])
def test_bad_json(own_client: Client, text: str):
    """Ensure a frame that is not JSON gets bad_json and the connection stays."""
    client = own_client
    client.ws.send(text)
    expect_error(client, "bad_json")
    assert_still_open(client)


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        # not an object
        ([1, 2], None),
        (42, None),
        ("ping", None),
        (None, None),
        # no string type
        ({}, None),
        ({"type": 5}, None),
        ({"type": None, "text": "x"}, None),
        # a field missing
        ({"type": "message"}, "message"),
        ({"type": "join"}, "join"),
        ({"type": "leave"}, "leave"),
        ({"type": "nick"}, "nick"),
        ({"type": "history"}, "history"),
        ({"type": "typing", "room": "lobby"}, "typing"),
        # a field of the wrong type
        ({"type": "message", "text": 5}, "message"),
        ({"type": "message", "text": "x", "room": ["lobby"]}, "message"),
        ({"type": "message", "text": "x", "client_id": 7}, "message"),
        ({"type": "join", "room": "lobby", "since": "3"}, "join"),
        ({"type": "join", "room": "lobby", "since": True}, "join"),
        ({"type": "join", "room": "lobby", "since": -1}, "join"),
        ({"type": "typing", "room": "lobby", "active": "yes"}, "typing"),
        ({"type": "history", "room": "lobby", "limit": 0}, "history"),
        ({"type": "history", "room": "lobby", "before": 1.5}, "history"),
        ({"type": "nick", "name": ["Bob"]}, "nick"),
    ],
)
def test_bad_request_for_malformed_frames(
    own_client: Client, frame: Any, ref: str | None
):
    """Ensure a non-object, a missing or mistyped field gets bad_request."""
    client = own_client
    client.ws.send(json.dumps(frame))
    expect_error(client, "bad_request", ref)
    assert_still_open(client)


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        ({"type": "message", "text": "   "}, "message"),
        ({"type": "message", "text": "x", "client_id": "c" * 65}, "message"),
        ({"type": "join", "room": "-starts-badly"}, "join"),
        ({"type": "join", "room": "has space"}, "join"),
        ({"type": "join", "room": "r" * 33}, "join"),
        ({"type": "nick", "name": "guest-1234"}, "nick"),
        ({"type": "nick", "name": "<script>"}, "nick"),
        ({"type": "nick", "name": "n" * 25}, "nick"),
        ({"type": "nick", "name": "   "}, "nick"),
    ],
)
def test_bad_request_for_invalid_values(
    clients: Callable[..., Client], frame: Frame, ref: str
):
    """Ensure empty messages, bad names and bad room names get bad_request."""
    client = clients()
    other = clients()
    client.send(**frame)
    expect_error(client, "bad_request", ref)
    assert_still_open(client)
    assert messages(other.drain()) == []


def test_bad_request_for_too_many_rooms(clients: Callable[..., Client]):
    """Ensure a 21st room is refused with bad_request; the 20 others still work."""
    client = clients()  # already in the lobby
    for i in range(19):
        client.send(type="join", room=f"room-{i}")
        client.recv_until("presence", lambda f, i=i: f["room"] == f"room-{i}")
    client.send(type="join", room="one-too-many")
    expect_error(client, "bad_request", "join")
    assert_still_open(client)
    client.send(type="message", room="room-18", text="still fine")
    assert client.recv_until("message")["room"] == "room-18"


def test_invalid_name_and_room_on_connect(clients: Callable[..., Client]):
    """Ensure a bad name or room in the query gives welcome, then bad_request."""
    client = clients(name="guest-0001", room="bad room!", read_welcome=False)
    welcome = client.recv()
    assert welcome["type"] == "welcome"
    assert welcome["rooms"] == []
    assert welcome["user"]["name"].startswith("guest-")
    errors = [client.recv(), client.recv()]
    assert sorted((e["type"], e["code"], e["ref"]) for e in errors) == [
        ("error", "bad_request", "join"),
        ("error", "bad_request", "nick"),
    ]
    assert_still_open(client)
    client.send(type="message", text="nowhere to say it")
    expect_error(client, "not_in_room", "message")


def test_unknown_type(clients: Callable[..., Client]):
    """Ensure an unknown type gets unknown_type with that type as ref."""
    client = clients()
    client.send(type="dance", steps=3)
    expect_error(client, "unknown_type", "dance")
    assert_still_open(client)


def test_binary_frame_is_refused(clients: Callable[..., Client]):
    """Ensure a binary frame gets bad_request and the connection stays open."""
    client = clients()
    client.ws.send_binary(b'{"type": "ping"}')
    expect_error(client, "bad_request")
    assert_still_open(client)


# -- limits -------------------------------------------------------------------


def test_too_large_is_refused_and_not_broadcast(
    server_with: Callable[..., ServerProcess], open_on: Callable[..., Client]
):
    """Ensure text over --max-text gets too_large and nobody receives anything."""
    server = server_with("--max-text", "50")
    sender, other = open_on(server), open_on(server)
    sender.drain()
    assert sender.welcome["limits"]["max_text"] == 50

    sender.send(type="message", text="x" * 51)
    expect_error(sender, "too_large", "message")
    assert other.drain() == []
    assert_still_open(sender)

    sender.send(type="message", text="é" * 50)  # exactly at the limit
    at_limit = sender.recv_until("message")
    assert at_limit["id"] == 1  # the refused one was never stored
    assert messages(other.drain()) == [at_limit]


def test_rate_limited_after_the_burst(
    server_with: Callable[..., ServerProcess], open_on: Callable[..., Client]
):
    """Ensure the message after the burst gets rate_limited and is not broadcast."""
    server = server_with("--rate", "1", "--burst", "2")
    sender, other = open_on(server), open_on(server)
    sender.drain()
    for i in range(3):
        sender.send(type="message", text=f"rapid {i}")
    frames = [sender.recv() for _ in range(3)]
    assert [f["type"] for f in frames] == ["message", "message", "error"]
    error = frames[2]
    assert (error["code"], error["ref"]) == ("rate_limited", "message")
    assert any(ch.isdigit() for ch in error["message"])  # says when to retry
    assert [m["text"] for m in messages(other.drain())] == ["rapid 0", "rapid 1"]
    assert_still_open(sender)


def test_typing_flood_is_rate_limited(clients: Callable[..., Client]):
    """Ensure too many typing events get rate_limited with ref typing."""
    client = clients()
    for i in range(10):  # the typing burst is 6; 20 refusals in a row would close
        client.send(type="typing", room="lobby", active=i % 2 == 0)
    expect_error(client, "rate_limited", "typing")
    assert_still_open(client)


# -- names and rooms ----------------------------------------------------------


def test_name_taken(clients: Callable[..., Client]):
    """Ensure a name held by another user gets name_taken, case-insensitively."""
    clients(name="Zoë")
    client = clients(name="Bob")
    client.send(type="nick", name="ZOË")
    expect_error(client, "name_taken", "nick")
    assert_still_open(client)


def test_no_such_room(clients: Callable[..., Client]):
    """Ensure history of a room with no members and no messages is no_such_room."""
    client = clients()
    client.send(type="history", room="ghost-town")
    expect_error(client, "no_such_room", "history")
    assert_still_open(client)


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        ({"type": "message", "text": "hi", "room": "elsewhere"}, "message"),
        ({"type": "typing", "room": "elsewhere", "active": True}, "typing"),
        ({"type": "leave", "room": "elsewhere"}, "leave"),
    ],
)
def test_not_in_room(clients: Callable[..., Client], frame: Frame, ref: str):
    """Ensure message, typing or leave for a room not joined gets not_in_room."""
    client = clients()
    member = clients(room="elsewhere")
    client.send(**frame)
    expect_error(client, "not_in_room", ref)
    assert_still_open(client)
    assert member.drain() == []


def test_not_in_room_after_leaving(clients: Callable[..., Client]):
    """Ensure a message with no room after leaving every room gets not_in_room."""
    client = clients()
    client.send(type="leave", room="lobby")
    client.recv_until("left")
    client.send(type="message", text="anyone?")
    expect_error(client, "not_in_room", "message")
    assert_still_open(client)


# -- HTTP ---------------------------------------------------------------------


def upgrade_response(server: ServerProcess, path: str) -> bytes:
    """Send a valid WebSocket handshake for ``path``; return the response head."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), 5000 * MS) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head


@pytest.mark.parametrize(
    "path", ["/nope", "/wsx", "/ws/extra", "/ws/", "/static/x", "/", "/healthz"]
)
def test_upgrade_to_another_path_gets_404(chat_server: ServerProcess, path: str):
    """Ensure an upgrade request to any path but /ws gets HTTP 404, never a 101."""
    head = upgrade_response(chat_server, path)
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 404"), head
    assert b"101" not in status_line
    status, _, body = http_get(chat_server.http_url + "/healthz")
    assert json.loads(body)["connections"] == 0


def test_upgrade_to_ws_gets_101(chat_server: ServerProcess):
    """Ensure the same raw handshake on /ws is accepted with 101."""
    head = upgrade_response(chat_server, "/ws")
    assert head.startswith(b"HTTP/1.1 101"), head


def test_plain_get_of_ws_is_400(chat_server: ServerProcess):
    """Ensure a plain GET of /ws gets 400 with a short explanation."""
    status, headers, body = http_get(chat_server.http_url + "/ws")
    assert status == 400
    assert b"WebSocket" in body


def test_chat_page(chat_server: ServerProcess):
    """Ensure GET / serves the chat page as HTML."""
    status, headers, body = http_get(chat_server.http_url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"<!DOCTYPE html>" in body


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/static/js/main.js", "javascript"),
        ("/static/chat.css", "text/css"),
        ("/vendor/jquery/jquery.min.js", "javascript"),
    ],
)
def test_static_files(chat_server: ServerProcess, path: str, mime: str):
    """Ensure the static files and the vendored jQuery are served with their type."""
    status, headers, body = http_get(chat_server.http_url + path)
    assert status == 200
    assert mime in headers["Content-Type"]
    if "jquery" in path:
        assert body.startswith(b"/*! jQuery")


def test_healthz(chat_server: ServerProcess, clients: Callable[..., Client]):
    """Ensure /healthz answers JSON ok with the live figures."""
    clients()
    status, headers, body = http_get(chat_server.http_url + "/healthz")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    health = json.loads(body)
    assert health["status"] == "ok"
    assert (health["connections"], health["users"], health["rooms"]) == (1, 1, 1)


@pytest.mark.parametrize("path", ["/nope", "/static/missing.js", "/wsx"])
def test_unknown_page_is_404(chat_server: ServerProcess, path: str):
    """Ensure an unknown page gets the 404 HTML page."""
    status, headers, body = http_get(chat_server.http_url + path)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert b"404" in body


def test_static_files_stay_in_their_directory(chat_server: ServerProcess):
    """Ensure a path escaping the static directory is not served."""
    status, _, body = http_get(chat_server.http_url + "/static/%2e%2e/chat.py")
    assert status in (403, 404)
    assert b"monkey" not in body
