"""Roles and moderation against real servers: the admin command while the
server runs, forbidden members, mute, kick, ban (and by address), runtime
slow mode, the log; and across two processes on one Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.rawws import (
    RawWS,
    ServerClosed,
    open_raw,
    raw_handshake,
    upgrade_request,
)
from tests.redis_server import needs_redis, run_redis
from tests.support import MS, ROOT, ServerProcess, closed_after_the_test, run_server

FAST = ("--rate", "1000", "--burst", "1000", "--shutdown-timeout", "0.5")
WAIT = 5000 * MS


def raw(port: int, query: dict[str, str]) -> RawWS:
    """A raw WebSocket that is closed at the end of the test."""
    ws = open_raw(port, "/ws?" + urlencode(query))
    return closed_after_the_test(ws)


class Person:
    """One browser: a raw WebSocket (to see close codes), its key and id."""

    def __init__(self, server: ServerProcess, name: str, key: str | None = None):
        self.server = server
        self.name = name
        query = {"name": name, **({"key": key} if key else {})}
        self.ws = raw(server.port, query)
        self.welcome = self.ws.read_greeting()
        self.key = key or self.welcome["key"]
        self.id = self.welcome["user"]["id"]

    def send(self, **frame: Any) -> None:
        self.ws.send_json(**frame)

    def until(self, kind: str, **match: Any) -> dict[str, Any]:
        return self.ws.recv_json_until(
            kind, lambda f: all(f.get(k) == v for k, v in match.items()), WAIT
        )

    def error(self, ref: str) -> dict[str, Any]:
        return self.until("error", ref=ref)

    def close(self) -> None:
        self.ws.close()


def store_flags(server: ServerProcess) -> list[str]:
    """The --db or --redis the server was started with, for a command."""
    args = server.proc.args
    assert isinstance(args, list)
    for flag in ("--redis", "--db"):
        if flag in args:
            return [flag, str(args[args.index(flag) + 1])]
    raise AssertionError(args)


def admin_command(
    server: ServerProcess, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "admin", *args, *store_flags(server)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_admin(server: ServerProcess, name: str) -> Person:
    """``name`` connects, is made an admin by the command while the server
    runs, and reconnects until the server says so (its cache expires)."""
    first = Person(server, name)
    done = admin_command(server, "add", name)
    assert done.returncode == 0, done.stderr
    first.close()
    deadline = time.monotonic() + WAIT
    while True:
        person = Person(server, name, first.key)
        if person.welcome.get("admin"):
            return person
        person.close()
        assert time.monotonic() < deadline, "the server never saw the new admin"
        time.sleep(200 * MS)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(*FAST, log_dir=tmp_path) as running:
        yield running


def test_admin_command_while_the_server_runs(server: ServerProcess) -> None:
    """Ensure ``admin add`` makes a connected name an admin of the running
    server, ``admin list`` shows it, ``remove`` undoes it, and an unknown
    name is one line and exit 2."""
    ann = make_admin(server, "ann")
    listed = admin_command(server, "list")
    assert listed.returncode == 0 and listed.stdout.split() == [ann.id]
    unknown = admin_command(server, "add", "nobody-here")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "chat.py admin: error: nobody uses the name 'nobody-here'"
    ]
    assert admin_command(server, "remove", "ann").returncode == 0
    assert admin_command(server, "list").stdout == ""


def test_members_are_forbidden(server: ServerProcess) -> None:
    """Ensure a member's mute, kick, ban, slow and modlog get ``forbidden``."""
    ann, bob = Person(server, "ann"), Person(server, "bob")
    for frame in (
        {"type": "mute", "user": bob.id, "room": "lobby"},
        {"type": "kick", "user": bob.id},
        {"type": "ban", "user": bob.id},
        {"type": "slow", "room": "lobby", "seconds": 5},
        {"type": "modlog"},
    ):
        ann.send(**frame)
        assert ann.error(frame["type"])["code"] == "forbidden"
    bob.send(type="message", room="lobby", text="still here")
    assert bob.until("message")["text"] == "still here"


def test_mute_in_a_room_and_server_wide(server: ServerProcess) -> None:
    """Ensure a mute in a room blocks that room only, and a server-wide one
    blocks every room, each explained to the target, until unmuted."""
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    bob.send(type="join", room="dev")
    bob.until("presence", event="snapshot", room="dev")
    boss.send(type="mute", user=bob.id, room="lobby", seconds=600)
    told = bob.until("moderated", action="mute")
    assert told["room"] == "lobby" and told["by"]["name"] == "boss"
    bob.send(type="message", room="lobby", text="hi")
    error = bob.error("message")
    assert error["code"] == "forbidden" and "10 minutes" in error["message"]
    bob.send(type="message", room="dev", text="here I may")
    assert bob.until("message")["room"] == "dev"
    boss.send(type="mute", user=bob.id)
    bob.until("moderated", action="mute")
    bob.send(type="message", room="dev", text="not now")
    assert "on this server" in bob.error("message")["message"]
    boss.send(type="unmute", user=bob.id)
    boss.send(type="unmute", user=bob.id, room="lobby")
    bob.until("moderated", action="unmute", room="lobby")
    bob.send(type="message", room="lobby", text="back")
    assert bob.until("message")["text"] == "back"


def test_kick_closes_and_blocks_until_it_ends(server: ServerProcess) -> None:
    """Ensure a room kick takes the user out and refuses the rejoin; a
    server kick closes with 4000 "kicked" and refuses connects until it
    ends."""
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    boss.send(type="kick", user=bob.id, room="lobby", seconds=60)
    assert bob.until("moderated", action="kick")["room"] == "lobby"
    bob.until("left", room="lobby")
    bob.send(type="join", room="lobby")
    error = bob.error("join")
    assert error["code"] == "forbidden" and "1 minute" in error["message"]
    boss.send(type="kick", user=bob.id, seconds=1)
    with pytest.raises(ServerClosed):
        bob.until("never")
    assert bob.ws.close_reason == "kicked"
    again = raw(server.port, {"key": bob.key})
    assert again.recv_json()["code"] == "forbidden"
    assert again.expect_close() == 4000
    time.sleep(1.2)
    back = Person(server, "bob", bob.key)
    assert back.welcome["user"]["id"] == bob.id


def test_kick_close_code(server: ServerProcess) -> None:
    """Ensure the close of a server kick carries code 4000."""
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    boss.send(type="kick", user=bob.id)
    assert bob.until("moderated", action="kick")["until"] > 0
    assert bob.ws.expect_close() == 4000


def test_ban_closes_refuses_and_by_address_gets_403(server: ServerProcess) -> None:
    """Ensure a ban closes the user with 4003, refuses their connects with
    the error, and with ``address`` refuses upgrades from it with 403 until
    unban."""
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    boss.send(type="ban", user=bob.id, reason="spam")
    assert bob.until("moderated", action="ban")["reason"] == "spam"
    assert bob.ws.expect_close() == 4003 and bob.ws.close_reason == "banned"
    again = raw(server.port, {"key": bob.key})
    assert "spam" in again.recv_json()["message"]
    assert again.expect_close() == 4003
    cat = Person(server, "cat")
    boss.send(type="ban", user=cat.id, address=True)
    assert cat.ws.expect_close() == 4003
    answer = raw_handshake(server.port, upgrade_request(server.port))
    assert answer.status == 403 and b"banned" in answer.body
    boss.send(type="unban", user=cat.id)
    boss.until("moderation")
    deadline = time.monotonic() + WAIT
    while raw_handshake(server.port, upgrade_request(server.port)).status != 101:
        assert time.monotonic() < deadline
        time.sleep(100 * MS)


def test_slow_mode_at_runtime_and_the_log(server: ServerProcess) -> None:
    """Ensure ``slow`` is announced and changes the pacing at once, and the
    log lists every action with who, what, where."""
    boss = make_admin(server, "boss")
    bob = Person(server, "bob")
    boss.send(type="slow", room="lobby", seconds=60)
    assert bob.until("slow_mode")["seconds"] == 60
    bob.send(type="message", room="lobby", text="one")
    bob.until("message", text="one")
    bob.send(type="message", room="lobby", text="two")
    assert bob.error("message")["code"] == "rate_limited"
    boss.send(type="slow", room="lobby", seconds=0)
    assert bob.until("slow_mode")["seconds"] == 0
    bob.send(type="message", room="lobby", text="three")
    bob.until("message", text="three")
    boss.send(type="mute", user=bob.id, room="lobby", seconds=5)
    boss.send(type="modlog")
    log = boss.until("modlog")
    assert [(e["action"], e.get("detail")) for e in log["entries"]] == [
        ("mute", {"seconds": 5, "until": log["entries"][0]["detail"]["until"]}),
        ("slow", {"seconds": 0}),
        ("slow", {"seconds": 60}),
        ("admin", None),
    ]
    assert log["entries"][0]["actor"]["name"] == "boss"
    assert log["entries"][0]["target"] == {"id": bob.id, "name": "bob"}


def test_slow_mode_survives_a_restart(tmp_path: Path) -> None:
    """Ensure a runtime slow mode is kept in the SQLite file over restarts."""
    db = str(tmp_path / "chat.db")
    with run_server(*FAST, "--db", db, log_dir=tmp_path) as first:
        boss = make_admin(first, "boss")
        boss.send(type="slow", room="lobby", seconds=42)
        boss.until("slow_mode")
    with run_server(*FAST, "--db", db, log_dir=tmp_path) as second:
        ann = raw(second.port, {"name": "ann"})
        ann.recv_json()
        assert ann.recv_json_until("presence")["slow_mode"] == 42


# -- two processes on one Redis --------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two chat processes on one real Redis."""
    with run_redis(tmp_path / "redis") as redis_server:
        flags = ("--redis", redis_server.url, "--redis-heartbeat", "0.5", *FAST)
        with (
            run_server(*flags, log_dir=tmp_path) as one,
            run_server(*flags, log_dir=tmp_path) as two,
        ):
            yield one, two


@needs_redis
def test_a_ban_on_one_process_closes_the_target_on_the_other(pair) -> None:
    """Ensure a ban made on process 1 closes the user's connection on
    process 2 (4003) and process 2 refuses them too; a ban by address
    records the address process 2 saw, refused by both."""
    one, two = pair
    boss = make_admin(one, "boss")
    bob = Person(two, "bob")
    boss.send(type="ban", user=bob.id)
    assert bob.until("moderated", action="ban")["by"]["name"] == "boss"
    assert bob.ws.expect_close() == 4003
    again = raw(two.port, {"key": bob.key})
    assert again.recv_json()["code"] == "forbidden"
    # By address: only process 2 knows where cat connects from.
    cat = Person(two, "cat")
    boss.send(type="ban", user=cat.id, address=True)
    assert cat.ws.expect_close() == 4003
    for server in (one, two):
        deadline = time.monotonic() + WAIT
        while raw_handshake(server.port, upgrade_request(server.port)).status != 403:
            assert time.monotonic() < deadline, "the address was never refused"
            time.sleep(100 * MS)


@needs_redis
def test_a_mute_on_one_process_is_enforced_on_the_other(pair) -> None:
    """Ensure a mute made on process 1 refuses the user's messages on process 2,
    and a runtime slow mode reaches process 2's members."""
    one, two = pair
    boss = make_admin(one, "boss")
    bob = Person(two, "bob")
    boss.send(type="mute", user=bob.id, room="lobby", seconds=300)
    bob.until("moderated", action="mute")
    bob.send(type="message", room="lobby", text="hi")
    assert bob.error("message")["code"] == "forbidden"
    boss.send(type="slow", room="lobby", seconds=7)
    assert bob.until("slow_mode")["seconds"] == 7
