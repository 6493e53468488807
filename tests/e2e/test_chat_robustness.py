"""End-to-end robustness: slow readers, floods, ordering, cleanup and garbage."""

from __future__ import annotations

import json
import random
import socket
import string
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from tests.support import (
    MS,
    Client,
    ServerProcess,
    connect,
    healthz,
    wait_for,
)

Frame = dict[str, Any]

# No rate limit gets in the way of a flood.
UNLIMITED = ("--rate", "100000", "--burst", "100000")


def abrupt_close(client: Client) -> None:
    """Drop the TCP connection without a WebSocket close frame."""
    client.ws.sock.shutdown(socket.SHUT_RDWR)
    client.ws.sock.close()


def assert_still_open(client: Client, t: str = "alive") -> None:
    client.send(type="ping", t=t)
    assert client.recv_until("pong", lambda f: f["t"] == t)["t"] == t


def read_until_closed(ws: websocket.WebSocket, timeout: float) -> int | None:
    """Read frames until the server closes; return its close code, None on EOF."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big")
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return None
    finally:
        ws.shutdown()
    raise AssertionError("the server did not close the connection in time")


def next_frame_or_close(client: Client, timeout: float = 5000 * MS) -> Frame | int:
    """The next JSON frame, or the close code (0 for end of file) if it closed.

    Frames of other types than ``error`` are skipped; a closed socket is freed.
    """
    client.ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, frame = client.ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                client.ws.shutdown()
                return int.from_bytes(frame.data[:2], "big")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                decoded = json.loads(frame.data)
                if decoded["type"] == "error":
                    return decoded
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        client.ws.shutdown()
        return 0
    raise AssertionError("neither an error frame nor a close in time")


def masked_text_frame(payload: str | bytes) -> bytes:
    """One client (masked) text frame, bytes ready for the raw socket."""
    return websocket.ABNF.create_frame(payload, websocket.ABNF.OPCODE_TEXT).format()


@pytest.fixture
def opened(server_with: Callable[..., ServerProcess]) -> Iterator[list[Client]]:
    """Clients to close after the test, before any server of ``server_with`` stops.

    A server stopping waits for its clients to answer its close: closing them
    first keeps the test fast.
    """
    clients: list[Client] = []
    yield clients
    for client in clients:
        client.close()
        client.ws.shutdown()  # frees the socket even if the server closed first


# -- slow readers and floods ----------------------------------------------------


def test_a_reader_that_stops_reading_is_closed_and_the_others_get_everything(
    server_with: Callable[..., ServerProcess], opened: list[Client]
):
    """Ensure a client that never reads is dropped with 1008 while others get all."""
    flags = ("--outbox-max", "65536", "--close-timeout", "1", *UNLIMITED)
    server = server_with(*flags)
    slow = websocket.create_connection(
        server.ws_url + "?name=Slow",
        timeout=5000 * MS,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    try:
        sender = connect(server, name="Sender")
        reader = connect(server, name="Reader")
        opened += [sender, reader]
        sender.drain()

        batch, sent = 50, 0
        echoed: list[Frame] = []
        received: list[Frame] = []
        leave: Frame | None = None
        # The kernel buffers of the slow socket take a few MB before the
        # server's own queue starts to grow: send until it gives up on it.
        deadline = time.monotonic() + 30000 * MS
        while leave is None:
            assert time.monotonic() < deadline, "the slow client was never closed"
            assert sent < 20000, "the slow client was never closed"
            for i in range(sent, sent + batch):
                text = f"{i:06d} " + "x" * 1500
                sender.send(type="message", text=text, client_id=str(i))
            sent += batch
            while len(echoed) < sent:
                echoed.append(sender.recv_until("message"))
            while len(received) < sent:
                frame = reader.recv()
                if frame["type"] == "message":
                    received.append(frame)
                elif frame["type"] == "presence" and frame["event"] == "leave":
                    leave = frame
        assert leave["user"]["name"] == "Slow"
        assert leave["count"] == 2

        ids = list(range(1, sent + 1))
        assert [m["id"] for m in received] == ids
        assert [m["client_id"] for m in received] == [str(i) for i in range(sent)]
        assert [m["id"] for m in echoed] == ids
        wait_for(lambda: healthz(server)["connections"] == 2)
        assert "closing a slow client" in server.log()

        # What reached the slow socket is readable, then the connection ends.
        assert read_until_closed(slow, 10000 * MS) in (1008, None)

        sender.send(type="message", text="life goes on")
        assert reader.recv_until("message")["text"] == "life goes on"
        assert "Traceback" not in server.log()
    finally:
        slow.shutdown()


def test_a_pipelining_sender_cannot_starve_the_others(
    server_with: Callable[..., ServerProcess], opened: list[Client]
):
    """Ensure ping round trips complete while another client floods the server."""
    flood_size = 2000
    server = server_with(*UNLIMITED)
    flooder = connect(server, room="flood")
    prober = connect(server, room="quiet")
    opened += [flooder, prober]
    blob = b"".join(
        masked_text_frame(json.dumps({"type": "ping", "t": i}))
        for i in range(flood_size)
    )
    sender = threading.Thread(target=flooder.ws.sock.sendall, args=(blob,))
    sender.start()
    try:
        for round_trip in range(5):
            t = f"probe-{round_trip}"
            prober.send(type="ping", t=t)
            pong = prober.recv(timeout=5000 * MS)
            assert pong == {"type": "pong", "t": t}
    finally:
        sender.join(10000 * MS)
    assert not sender.is_alive()
    pongs = [flooder.recv_until("pong")["t"] for _ in range(flood_size)]
    assert pongs == list(range(flood_size))


def test_frames_of_one_connection_are_handled_in_arrival_order(
    server_with: Callable[..., ServerProcess], opened: list[Client]
):
    """Ensure 200 quick messages come back in order with strictly increasing ids."""
    server = server_with(*UNLIMITED)
    sender, watcher = connect(server), connect(server)
    opened += [sender, watcher]
    sender.drain()
    for i in range(200):
        sender.send(type="message", text=f"n{i}", client_id=str(i))
    for client in (sender, watcher):
        got = [client.recv_until("message") for _ in range(200)]
        assert [m["client_id"] for m in got] == [str(i) for i in range(200)]
        assert [m["text"] for m in got] == [f"n{i}" for i in range(200)]
        ids = [m["id"] for m in got]
        assert all(a < b for a, b in zip(ids, ids[1:], strict=False))


# -- cleanup ------------------------------------------------------------------


def test_many_connects_and_disconnects_clean_up_exactly_once(
    chat_server: ServerProcess,
):
    """Ensure 200 clean or abrupt disconnects leave no connection, user or room."""
    total, wave = 200, 20
    for start in range(0, total, wave):
        batch = []
        for i in range(start, start + wave):
            batch.append(
                connect(
                    chat_server,
                    room=f"r{i % 3}",
                    key=f"k{i // 2}" if i % 10 < 2 else None,
                    read_welcome=i % 4 != 3,
                )
            )
        for i, client in zip(range(start, start + wave), batch, strict=True):
            if i % 4 == 0:
                client.send(type="message", text=f"bye {i}")
                client.close()
            elif i % 4 == 1:
                client.close()
            else:
                abrupt_close(client)

    def all_gone() -> bool:
        status = healthz(chat_server)
        return (status["connections"], status["users"], status["rooms"]) == (0, 0, 0)

    wait_for(all_gone, 10000 * MS)
    log = chat_server.log()
    assert log.count(" open conn=") == 0  # debug only: one line per connection
    assert log.count(" close conn=") == total
    assert "Traceback" not in log


# -- garbage ------------------------------------------------------------------


def test_the_server_survives_garbage(chat_server: ServerProcess, opened: list[Client]):
    """Ensure random text, deep nesting and bad UTF-8 leave the server serving."""
    bystander = connect(chat_server, name="Bystander")
    vandal = connect(chat_server, name="Vandal")
    opened += [bystander, vandal]

    rng = random.Random(6455)
    for i in range(50):
        noise = "~" + "".join(rng.choice(string.printable) for _ in range(i * 7))
        vandal.ws.send(noise)
        assert vandal.recv_until("error")["code"] == "bad_json"
    assert_still_open(vandal)

    vandal.ws.send("[" * 100000)
    answer = next_frame_or_close(vandal)
    if isinstance(answer, dict):
        assert answer["code"] in {"bad_json", "bad_request"}
        assert_still_open(vandal, "after nesting")
    else:  # 100 kB may be over the frame size limit: a clean 1009 close is fine
        assert answer == 1009

    bystander.drain()
    bystander.send(type="message", text="still here")
    assert bystander.recv_until("message")["text"] == "still here"

    # Invalid UTF-8 in a text frame is a WebSocket-level violation (1007).
    liar = connect(chat_server)
    opened.append(liar)
    liar.ws.sock.sendall(masked_text_frame(b'{"type":"ping","t":"\xff\xfe"}'))
    answer = next_frame_or_close(liar)
    if isinstance(answer, dict):
        assert_still_open(liar, "after bad utf-8")
    else:
        assert answer == 1007

    fresh = connect(chat_server, name="Fresh")
    opened.append(fresh)
    assert_still_open(fresh)
    fresh.send(type="message", text="hello after the garbage")
    assert fresh.recv_until("message")["text"] == "hello after the garbage"
    assert bystander.recv_until("message")["text"] == "hello after the garbage"
    assert healthz(chat_server)["status"] == "ok"


def test_invalid_utf8_closes_with_1007(chat_server: ServerProcess):
    """Ensure a text frame with invalid UTF-8 is closed with 1007, the server stays."""
    client = connect(chat_server)
    client.ws.sock.sendall(masked_text_frame(b'{"type":"ping","t":"\xc3\x28"}'))
    assert read_until_closed(client.ws, 5000 * MS) == 1007
    wait_for(lambda: healthz(chat_server)["connections"] == 0)


@pytest.mark.parametrize(
    "text",
    # Deep enough to exhaust Python's recursion limit, small enough (< 64 kB)
    # to stay under the frame size limit.
    ["[" * 50000, '{"type":"ping","t":' + "[" * 30000 + "]" * 30000 + "}"],
    ids=["unterminated", "valid-but-deep"],
)
def test_deeply_nested_json_is_a_client_error(
    chat_server: ServerProcess, opened: list[Client], text: str
):
    """Ensure deeply nested JSON gets bad_json or bad_request, never internal."""
    client = connect(chat_server)
    opened.append(client)
    client.ws.send(text)
    error = client.recv_until("error")
    assert_still_open(client)
    assert error["code"] in {"bad_json", "bad_request"}, error
    assert "Traceback" not in chat_server.log()


# -- oversize input -------------------------------------------------------------


def test_an_oversize_frame_is_closed_with_1009(
    chat_server: ServerProcess, opened: list[Client]
):
    """Ensure a frame a thousand times larger than any message ends with 1009."""
    client = connect(chat_server)
    opened.append(client)
    payload = json.dumps({"type": "message", "text": "x" * (2 << 20)})
    try:
        client.ws.send(payload)
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        pass  # the server may stop reading as soon as it sees the length
    assert next_frame_or_close(client, 10000 * MS) == 1009
    bystander = connect(chat_server)
    opened.append(bystander)
    assert_still_open(bystander)


def fill_room_history(server: ServerProcess, room: str) -> None:
    """Store 100 legal messages whose JSON takes 12 kB each (1.2 MB in all).

    Every character is U+0001, which JSON escapes as six bytes. Ten short-lived
    senders of ten messages each stay within the default rate limit.
    """
    for _ in range(10):
        sender = connect(server, room=room)
        try:
            for _ in range(10):
                sender.send(type="message", text="\x01" * 2000)
            for _ in range(10):
                sender.recv_until("message")
        finally:
            sender.close()


@pytest.mark.parametrize(
    "request_frame",
    [
        {"type": "history", "room": "vault", "limit": 100},
        {"type": "join", "room": "vault", "since": 0},
    ],
    ids=["history", "join-since"],
)
def test_a_big_page_does_not_disconnect_a_reading_client(
    chat_server: ServerProcess, opened: list[Client], request_frame: Frame
):
    """Ensure a client that reads gets a big history page or replay, not 1008."""
    fill_room_history(chat_server, "vault")
    client = connect(chat_server)
    opened.append(client)
    client.send(**request_frame)
    client.ws.settimeout(5000 * MS)
    got: list[int] = []
    while len(got) < 100:
        opcode, frame = client.ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_TEXT, frame.data[:40]
        decoded = json.loads(frame.data)
        if decoded["type"] == "history":
            got += [m["id"] for m in decoded["messages"]]
        elif decoded["type"] == "message":
            got.append(decoded["id"])
    assert got == list(range(1, 101))
    assert_still_open(client)
