"""Read positions on real servers: one user's tabs, one account's devices
(invite mode), two processes on one Redis, and a restart (SQLite)."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts_support import (
    connect_as,
    first_invite,
    own_origin,
    path_of,
    redeem,
    request,
)
from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import (
    MS,
    Client,
    ServerProcess,
    close_tracked,
    closed_after_the_test,
    connect as open_client,
    poll_until,
    run_server,
)

Start = Callable[..., ServerProcess]


def connect(server: ServerProcess, **kwargs: Any) -> Client:
    return closed_after_the_test(open_client(server, **kwargs))


def snapshot_read(server: ServerProcess, key: str, room: str = "lobby") -> int:
    """A new tab of the user with ``key`` joins ``room``: its snapshot's read."""
    tab = connect(server, key=key, read_welcome=False)
    tab.recv_until("welcome")
    tab.send(type="join", room=room)
    snapshot = tab.recv_until(
        "presence", lambda f: f["event"] == "snapshot" and f["room"] == room
    )
    tab.close()
    return int(snapshot["read"])


def post(client: Client, room: str, *texts: str) -> int:
    """Post ``texts`` to ``room``; the id of the last one."""
    last = 0
    for text in texts:
        client.send(type="message", room=room, text=text)
        last = client.recv_until("message", lambda f, t=text: f["text"] == t)["id"]
    return last


@pytest.mark.parametrize("db", ["sqlite", "memory"])
def test_a_read_reaches_the_other_tabs_and_later_joins(
    server_with: Start, db: str
) -> None:
    """Ensure a read from one tab reaches the user's other tab (not the
    reader), and a later tab's snapshot starts there; an id above the
    room's last is clamped; another user is not told."""
    server = server_with(*(["--db", ":memory:"] if db == "memory" else []))
    laptop = connect(server, key="ann-key")
    phone = connect(server, key="ann-key")
    bob = connect(server, key="bob-key")
    last = post(bob, "lobby", "one", "two", "three")
    assert snapshot_read(server, "ann-key") == 0  # joined before any message
    laptop.send(type="read", room="lobby", id=last - 1)
    assert phone.recv_until("read") == {"type": "read", "room": "lobby", "id": last - 1}
    laptop.send(type="read", room="lobby", id=last + 100)
    assert phone.recv_until("read")["id"] == last
    assert snapshot_read(server, "ann-key") == last
    assert [f for f in laptop.drain() if f["type"] == "read"] == []
    assert [f for f in bob.drain() if f["type"] == "read"] == []


def test_positions_survive_a_restart(tmp_path: Path) -> None:
    """Ensure positions written in SQLite's batches are there after a
    graceful restart (flushed on shutdown) and, once a flush ran, after a
    SIGKILL too."""
    db = str(tmp_path / "chat.db")
    with run_server("--db", db, log_dir=tmp_path) as server:
        ann = connect(server, key="ann-key")
        last = post(ann, "lobby", "one", "two")
        ann.send(type="read", room="lobby", id=last)
        assert snapshot_read(server, "ann-key") == last
        # Unread after a restart only if the position was kept (a first
        # join would read up to the room's end).
        post(connect(server, key="bob-key"), "lobby", "unread")
        port = server.port
        close_tracked()
    with run_server("--db", db, log_dir=tmp_path, port=port) as server:
        assert snapshot_read(server, "ann-key") == last
        ann = connect(server, key="ann-key", room="dev")
        last_dev = post(ann, "dev", "x", "y")
        ann.send(type="read", room="dev", id=last_dev)
        assert snapshot_read(server, "ann-key", "dev") == last_dev
        post(ann, "dev", "after the read")
        # The batch is written within FLUSH_EVERY; then even a kill keeps it.
        assert poll_until(lambda: stored(db, "dev") == last_dev, 10000 * MS)
        close_tracked()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
    with run_server("--db", db, log_dir=tmp_path, port=port) as server:
        assert snapshot_read(server, "ann-key", "dev") == last_dev
        close_tracked()


def stored(db: str, room: str) -> int | None:
    """The position in ``room`` written to the file, read beside the server."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT last_read FROM read_positions WHERE room = ?", (room,)
        ).fetchone()
    return row[0] if row else None


def test_two_devices_of_one_account(server_with: Start) -> None:
    """Ensure two sessions of one account (a sign-in link) are one reader:
    a read on the laptop reaches the phone."""
    server = server_with("--access", "invite")
    token = redeem(server, first_invite(server), "Ann")
    laptop = connect_as(server, token)
    laptop.send(type="signin_link")
    link = laptop.recv_until("signin_link")["url"]
    status, headers, _ = request(server, "POST", path_of(link), {}, own_origin(server))
    assert status == 303
    phone_token = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    phone = connect_as(server, phone_token)
    bob_token = redeem(server, invite_from(laptop), "Bob")
    bob = connect_as(server, bob_token)
    last = post(bob, "lobby", "hello ann", "are you there")
    laptop.send(type="read", room="lobby", id=last)
    assert phone.recv_until("read") == {"type": "read", "room": "lobby", "id": last}
    assert [f for f in bob.drain() if f["type"] == "read"] == []


def invite_from(admin: Client) -> str:
    admin.send(type="invite")
    return admin.recv_until("invite")["url"]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two chat processes on one redis-server."""
    with contextlib.ExitStack() as stack:
        redis: RedisProcess = stack.enter_context(run_redis(tmp_path / "redis"))
        flags = ("--redis", redis.url, "--redis-heartbeat", "0.5")
        one = stack.enter_context(run_server(*flags, log_dir=tmp_path))
        two = stack.enter_context(run_server(*flags, log_dir=tmp_path))
        yield one, two
        close_tracked()


@needs_redis
def test_a_read_crosses_processes(pair: tuple[ServerProcess, ServerProcess]) -> None:
    """Ensure a read on process one reaches the user's tab on process two,
    and a tab opened later on process two starts from it."""
    one, two = pair
    on_one = connect(one, key="ann-key")
    on_two = connect(two, key="ann-key")
    bob = connect(two, key="bob-key")
    last = post(bob, "lobby", "one", "two")
    on_one.recv_until("message", lambda f: f["id"] == last)
    on_one.send(type="read", room="lobby", id=last)
    assert on_two.recv_until("read") == {"type": "read", "room": "lobby", "id": last}
    assert snapshot_read(two, "ann-key") == last
