"""The read path after the upgrade: idle connections hold no greenlet, and
messages read from the event loop reach the hooks in order."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.rawws import (
    OP_PONG,
    OP_TEXT,
    RawWS,
    frame_bytes,
    open_raw,
    read_http_answer,
    upgrade_request,
)
from tests.e2e.test_moderation import Person, make_admin
from tests.redis_server import REDIS_SERVER, run_redis
from tests.support import MS, ServerProcess, healthz, http_get, wait_for

NO_LIMITS = ("--rate", "1e9", "--burst", "1000000000", "--max-conn-per-ip", "0")


def greenlets(server: ServerProcess) -> int:
    text = http_get(server.http_url + "/metrics?greenlets=1")[2].decode()
    match = re.search(r"^chat_greenlets ([0-9.e+]+)$", text, re.M)
    assert match, "chat_greenlets not in metrics"
    return int(float(match.group(1)))


def test_idle_connections_hold_no_greenlet(
    server_with: Callable[..., ServerProcess],
) -> None:
    """Ensure 500 open, idle connections leave the count of live greenlets
    where it was with none (a greenlet each would add 500)."""
    server = server_with(*NO_LIMITS)
    idle = greenlets(server)
    with contextlib.ExitStack() as stack:
        for number in range(500):
            client = stack.enter_context(
                open_raw(server.port, f"/ws?room=idle{number}")
            )
            client.read_greeting()
        assert healthz(server)["connections"] == 500
        assert greenlets(server) <= idle + 3, (idle, greenlets(server))


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_a_burst_from_many_connections_keeps_each_ones_order(
    server_with: Callable[..., ServerProcess], tmp_path: Path, store: str
) -> None:
    """Ensure 30 clients sending 20 pipelined messages each at the same
    moment get all 600 delivered to everyone, each sender's in its order
    (and the room's ids in increasing order). With Redis each message's
    hook waits for the store: a second greenlet reading the same connection
    meanwhile would reorder its messages."""
    with contextlib.ExitStack() as servers:
        if store == "memory":
            flags: tuple[str, ...] = ("--db", ":memory:")
        elif store == "redis":
            if REDIS_SERVER is None:
                pytest.skip("redis-server is not installed")
            flags = ("--redis", servers.enter_context(run_redis(tmp_path / "r")).url)
        else:
            flags = ()
        burst_in_order(server_with(*NO_LIMITS, *flags))


def burst_in_order(server: ServerProcess) -> None:
    senders, each = 30, 20
    clients: list[RawWS] = []
    with contextlib.ExitStack() as stack:
        for _ in range(senders):
            client = stack.enter_context(open_raw(server.port, "/ws?room=burst"))
            client.read_greeting()
            clients.append(client)
        bursts = [
            b"".join(
                frame_bytes(
                    OP_TEXT,
                    json.dumps(
                        {"type": "message", "room": "burst", "text": f"{who}:{n}"}
                    ).encode(),
                )
                for n in range(each)
            )
            for who in range(senders)
        ]
        # Each burst in two writes: the second half is read while the hooks
        # of the first may still be running, and must wait for them.
        half = len(bursts[0]) // 2
        for client, burst in zip(clients, bursts, strict=True):
            client.send_raw(burst[:half])
        for client, burst in zip(clients, bursts, strict=True):
            client.send_raw(burst[half:])
        for client in clients:
            seen: dict[str, list[int]] = {}
            ids: list[int] = []
            while len(ids) < senders * each:
                frame = client.recv_json(10000 * MS)
                if frame["type"] != "message":
                    continue
                who, n = frame["text"].split(":")
                seen.setdefault(who, []).append(int(n))
                ids.append(frame["id"])
            assert ids == sorted(ids)
            assert seen == {str(who): list(range(each)) for who in range(senders)}


def test_past_max_connections_a_connection_gets_503_until_one_closes(
    server_with: Callable[..., ServerProcess],
) -> None:
    """Ensure --max-connections counts WebSockets after their handler has
    returned: the next connection gets a 503 with its reason, and is let
    in again once one of them has closed."""
    server = server_with(*NO_LIMITS, "--max-connections", "3")
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(open_raw(server.port)) for _ in range(3)]
        for client in held:
            client.read_greeting()
        with pytest.raises(ConnectionError, match="503"):
            open_raw(server.port)
        held[0].close()
        again: list[RawWS] = []

        def admitted() -> bool:
            with contextlib.suppress(ConnectionError):
                again.append(stack.enter_context(open_raw(server.port)))
            return bool(again)

        wait_for(admitted, 5000 * MS, "a slot given back")
        again[0].read_greeting()


BIG = ("--max-text", "30000", "--max-frame", "40000", "--outbox-max", "100000000")


def open_small_window(port: int, path: str) -> RawWS:
    """A connection whose receive buffer is small (set before connecting):
    a client that stops reading fills the server's socket quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5000 * MS)
    sock.connect(("127.0.0.1", port))
    sock.sendall(upgrade_request(port, path))
    buffer = bytearray()
    answer = read_http_answer(sock, buffer)
    assert answer.status == 101, answer.status_line
    return RawWS(sock, answer, buffer)


def fill(sender: RawWS, room: str, count: int) -> None:
    """Post ``count`` messages of 29,000 characters, each after the last's echo."""
    for n in range(count):
        sender.send_json(type="message", room=room, text=f"{n}:" + "x" * 29000)
        sender.recv_json_until("message", lambda f, n=n: f["text"].startswith(f"{n}:"))


def test_a_full_socket_is_written_by_the_loop_then_gets_everything(
    server_with: Callable[..., ServerProcess],
) -> None:
    """Ensure a client that stops reading while 9 MB pile up for it costs no
    greenlet (a write watcher waits for its socket, not a writer greenlet),
    and that once it reads again it gets every message, in order."""
    server = server_with(*NO_LIMITS, *BIG)
    with (
        open_small_window(server.port, "/ws?room=full") as slow,
        open_raw(server.port, "/ws?room=full") as sender,
    ):
        slow.read_greeting()
        sender.read_greeting()
        quiet = greenlets(server)
        fill(sender, "full", 300)
        assert greenlets(server) <= quiet
        texts = []
        while len(texts) < 300:
            frame = slow.recv_json(10000 * MS)
            if frame["type"] == "message":
                texts.append(frame["text"].split(":")[0])
        assert texts == [str(n) for n in range(300)]


def test_a_client_whose_socket_takes_nothing_is_dropped(
    server_with: Callable[..., ServerProcess],
) -> None:
    """Ensure a client that keeps sending (unsolicited pongs, which also
    stand for answers to pings) but never reads, with less queued for it
    than --outbox-max, is dropped once its socket has taken nothing for
    --ping-timeout seconds."""
    server = server_with(
        *NO_LIMITS, *BIG, "--ping-interval", "1", "--ping-timeout", "2"
    )
    with (
        open_small_window(server.port, "/ws?room=stall") as slow,
        open_raw(server.port, "/ws?room=stall") as sender,
    ):
        slow.read_greeting()
        sender.read_greeting()
        stop = threading.Event()

        def keep_sending() -> None:
            while not stop.wait(200 * MS):
                try:
                    slow.send_frame(OP_PONG, b"still here")
                except OSError:
                    return

        beat = threading.Thread(target=keep_sending, daemon=True)
        beat.start()
        try:
            fill(sender, "stall", 300)
            sender.close()
            wait_for(
                lambda: healthz(server)["connections"] == 0,
                15000 * MS,
                "the stalled client dropped",
            )
        finally:
            stop.set()
            beat.join()
        assert "took nothing in 2 s, dropping" in server.log()


def test_a_kicked_client_that_never_closes_is_cut_after_close_timeout(
    server_with: Callable[..., ServerProcess],
) -> None:
    """Ensure a close the server starts (here a kick) ends the connection
    within --close-timeout even when the idle peer never answers it: no
    greenlet waits for it, a timer does."""
    server = server_with("--rate", "1000", "--burst", "1000", "--close-timeout", "1")
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    boss.send(type="kick", user=bob.id)
    bob.until("moderated", action="kick")  # then bob reads nor sends anything
    wait_for(
        lambda: healthz(server)["connections"] == 1,
        5000 * MS,
        "the silent kicked client cut",
    )
    assert "close conn=" in server.log() and "code=4000" in server.log()
