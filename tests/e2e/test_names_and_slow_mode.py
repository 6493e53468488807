"""Name reservation and slow mode against the real server."""

from __future__ import annotations

from pathlib import Path

from tests.support import connect, run_server


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
