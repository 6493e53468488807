"""Name reservation and slow mode against the real server."""

from __future__ import annotations

import json
import resource
import socket
import sqlite3
import struct
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket

from tests.e2e.rawws import open_raw, upgrade_request
from tests.support import MS, ServerProcess, connect, healthz, run_server, wait_for

GUESTS = 10_000  # as many as there are four-digit guest names


def test_a_name_stays_reserved_for_its_browser_across_restarts(tmp_path: Path) -> None:
    """Ensure a used name is refused to another browser, even after a restart."""
    db = str(tmp_path / "chat.db")
    with run_server("--db", db, log_dir=tmp_path) as server:
        first = connect(server, name="alice")
        key = first.welcome["key"]  # issued by the server, kept by the browser
        first.close()
    with run_server("--db", db, log_dir=tmp_path) as server:
        thief = connect(server, name="Alice", read_welcome=False)
        assert thief.recv()["user"]["name"].startswith("guest-")  # the welcome
        error = thief.recv()  # right after it: why the name was refused
        assert error["code"] == "name_taken" and "reserved" in error["message"]
        thief.send(type="nick", name="alice")
        assert thief.recv_until("error")["code"] == "name_taken"
        owner = connect(server, name="alice", key=key)
        assert owner.welcome["user"]["name"] == "alice"
        assert "key" not in owner.welcome
        thief.close()
        owner.close()


def test_a_name_expires_after_the_ttl(tmp_path: Path) -> None:
    """Ensure an unused reservation lapses after --name-ttl seconds."""
    with run_server("--name-ttl", "0.5", log_dir=tmp_path) as server:
        connect(server, name="alice").close()
        __import__("time").sleep(1.0)
        other = connect(server, name="alice")
        assert other.welcome["user"]["name"] == "alice"
        other.close()


def test_slow_mode_is_enforced_and_announced(tmp_path: Path) -> None:
    """Ensure a slow-mode room tells the joiner and refuses fast second posts."""
    with run_server("--slow-mode", "lobby=30", log_dir=tmp_path) as server:
        alice = connect(server, name="alice", read_welcome=False)
        alice.recv_until("welcome")
        snapshot = alice.recv_until("presence")
        assert snapshot["slow_mode"] == 30
        alice.send(type="message", text="first")
        assert alice.recv_until("message")["text"] == "first"
        alice.send(type="message", text="second")
        error = alice.recv_until("error")
        assert error["code"] == "rate_limited" and 29 <= error["retry_after"] <= 30
        alice.send(type="join", room="other")
        alice.recv_until("presence", lambda f: f["room"] == "other")
        alice.send(type="message", room="other", text="elsewhere is fine")
        assert alice.recv_until("message")["room"] == "other"
        alice.close()


def test_a_guest_keeps_their_name_across_reconnects(tmp_path: Path) -> None:
    """Ensure a guest gets the same guest name every time its browser key
    connects (a queued message must not go out under another name)."""
    with run_server(log_dir=tmp_path) as server:
        first = connect(server)
        key, name = first.welcome["key"], first.welcome["user"]["name"]
        assert name.startswith("guest-")
        first.close()
        again = connect(server, key=key)
        assert again.welcome["user"]["name"] == name
        again.close()


def test_ten_thousand_guests_do_not_freeze_the_server(tmp_path: Path) -> None:
    """Ensure the guest after the ten-thousandth still gets a name and the
    server keeps answering (a random pick among guest-0000..9999 looped at
    100% CPU for ever)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < GUESTS + 1000:
        pytest.skip(f"needs {GUESTS + 1000} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, GUESTS + 1000), hard))
    socks: list[socket.socket] = []
    args = ("--max-conn-per-ip", "0", "--db", ":memory:")
    with run_server(*args, log_dir=tmp_path) as server:
        try:
            for n in range(GUESTS):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(upgrade_request(server.port, f"/ws?key=k{n}&room=r{n}"))
                socks.append(sock)
            wait_for(
                lambda: healthz(server)["connections"] == GUESTS,
                60000 * MS,
                f"{GUESTS} guests connected",
            )
            last = open_raw(server.port, "/ws?key=the-next-one", timeout=10000 * MS)
            socks.append(last.sock)
            welcome = json.loads(last.recv_frame(10000 * MS).payload)
            assert welcome["user"]["name"].startswith("guest-")
            assert healthz(server)["connections"] == GUESTS + 1
        finally:
            for sock in socks:
                sock.close()


def test_lookalike_and_invisible_names_are_refused(tmp_path: Path) -> None:
    """Ensure names that render like a connected user's are refused: a
    Cyrillic look-alike is taken, an invisible character is invalid."""
    with run_server(log_dir=tmp_path) as server:
        alice = connect(server, name="Alice")
        for lookalike in ("\u0410lice", "ALICE"):
            other = connect(server, name=lookalike, read_welcome=False)
            assert other.recv()["user"]["name"].startswith("guest-")
            assert other.recv()["code"] == "name_taken"
            other.close()
        for invisible in ("\u034f", "\ufe0f", "\u3164", "\u115f"):
            other = connect(server, name="Alice" + invisible, read_welcome=False)
            assert other.recv()["user"]["name"].startswith("guest-")
            error = other.recv()
            assert error["code"] == "bad_request" and "invisible" in error["message"]
            other.close()
        alice.close()


def test_a_bot_cannot_post_under_a_reserved_name(tmp_path: Path) -> None:
    """Ensure the bot API refuses a name reserved for a user's key (also
    once that user has left) and one that looks like it."""
    with run_server("--api-token", "t0ken", log_dir=tmp_path) as server:
        connect(server, name="Teacher").close()
        for name in ("Teacher", "teacher", "T\u0435acher"):  # Cyrillic e
            status, body = api_post(server, {"text": "hi", "name": name})
            assert status == 409 and body["error"] == "name_taken", (name, body)
        status, body = api_post(server, {"text": "hi", "name": "deploybot"})
        assert status == 201


def api_post(server: ServerProcess, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        server.http_url + "/api/rooms/lobby/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer t0ken", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_locked_store_on_connect_leaves_no_half_registered_user(
    tmp_path: Path,
) -> None:
    """Ensure that while another process holds the SQLite write lock (a
    backup, say), connecting as Bob gets an internal error frame and a 1011
    close, and Bob is free again once the lock is gone."""
    db = tmp_path / "chat.db"
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        connect(server, name="warmup").close()  # the file exists, migrated
        backup = sqlite3.connect(db, isolation_level=None)
        backup.execute("BEGIN IMMEDIATE")  # hold the write lock
        try:
            bob = connect(server, name="Bob", read_welcome=False)
            error = bob.recv(10000 * MS)
            assert error["type"] == "error" and error["code"] == "internal"
            opcode, frame = bob.ws.recv_data_frame(True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE
            assert struct.unpack("!H", frame.data[:2])[0] == 1011
            bob.ws.shutdown()  # the server closed first: no handshake to finish
            assert healthz(server)["users"] == 0
        finally:
            backup.execute("ROLLBACK")
            backup.close()
        bob = connect(server, name="Bob")
        assert bob.welcome["user"]["name"] == "Bob"
        bob.close()
