"""Durable history against the real server: restarts, kill -9, replay, paging."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from tests.support import MS, ROOT, connect, http_get, run_server

FAST = ("--rate", "100000", "--burst", "100000")


def send_acked(client, count: int, prefix: str, room: str = "lobby") -> list[dict]:
    """Send ``count`` messages and wait for each one's echo (its ack)."""
    acks = []
    for n in range(count):
        client.send(
            type="message", room=room, text=f"{prefix} {n}", client_id=f"{prefix}-{n}"
        )
        acks.append(
            client.recv_until(
                "message", lambda f, cid=f"{prefix}-{n}": f.get("client_id") == cid
            )
        )
    return acks


def test_history_survives_a_restart_and_ids_continue(tmp_path: Path) -> None:
    """Ensure a restarted server keeps its history and hands out the next ids."""
    db = str(tmp_path / "chat.db")
    with run_server("--db", db, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        acks = send_acked(alice, 3, "before")
        alice.close()
    with run_server("--db", db, log_dir=tmp_path) as server:
        bob = connect(server, name="bob")
        bob.send(type="history", room="lobby")
        page = bob.recv_until("history")
        assert [m["text"] for m in page["messages"]] == [
            "before 0",
            "before 1",
            "before 2",
        ]
        assert [m["id"] for m in page["messages"]] == [a["id"] for a in acks]
        bob.send(type="message", text="after")
        assert bob.recv_until("message")["id"] == acks[-1]["id"] + 1
        bob.close()


def test_every_acked_message_survives_kill_9(tmp_path: Path) -> None:
    """Ensure a message whose echo reached its sender is in the file after kill -9."""
    db = tmp_path / "chat.db"
    acked: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    with run_server("--db", str(db), *FAST, log_dir=tmp_path) as server:
        senders = [
            connect(server, name=f"sender{n}", room=f"room{n % 2}") for n in range(4)
        ]

        def storm(client, index: int) -> None:
            try:
                for n in range(100000):
                    client.send(
                        type="message", text=f"storm {n}", client_id=f"s{index}-{n}"
                    )
                    while True:
                        frame = client.recv(2000 * MS)
                        if (
                            frame["type"] == "message"
                            and frame.get("client_id") == f"s{index}-{n}"
                        ):
                            with lock:
                                acked.append(
                                    (frame["room"], frame["id"], frame["client_id"])
                                )
                            break
            except Exception:
                return  # the server died under us: that is the point

        threads = [
            threading.Thread(target=storm, args=(c, i)) for i, c in enumerate(senders)
        ]
        for thread in threads:
            thread.start()
        while True:
            with lock:
                if len(acked) >= 400:
                    break
            threading.Event().wait(0.01)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        for thread in threads:
            thread.join(5000 * MS)
        for client in senders:
            client.close()
    with lock:
        snapshot = list(acked)
    stored = set(
        sqlite3.connect(db)
        .execute("SELECT room, id, client_id FROM messages")
        .fetchall()
    )
    missing = [a for a in snapshot if a not in stored]
    assert len(snapshot) >= 400
    assert missing == []


def test_join_since_replays_exactly_what_was_missed(tmp_path: Path) -> None:
    """Ensure a rejoin with since gets the missed messages, in order, then new ones."""
    with run_server(*FAST, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        bob = connect(server, name="bob", room="elsewhere")
        seen = send_acked(alice, 2, "seen")
        missed = send_acked(alice, 5, "missed")
        bob.send(type="join", room="lobby", since=seen[-1]["id"])
        bob.recv_until("presence", lambda f: f["event"] == "snapshot")
        replay = [bob.recv() for _ in missed]
        assert [m["id"] for m in replay] == [m["id"] for m in missed]
        assert all(m["type"] == "message" for m in replay)
        alice.send(type="message", text="new")
        assert bob.recv_until("message")["text"] == "new"
        alice.close()
        bob.close()


def test_more_than_500_missed_sends_a_gap_marker(tmp_path: Path) -> None:
    """Ensure a replay is capped at 500 and preceded by a gap frame saying so."""
    with run_server(*FAST, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        for n in range(600):
            alice.send(type="message", text=f"m{n}")
        last = alice.recv_until("message", lambda f: f["text"] == "m599")["id"]
        bob = connect(server, name="bob", room="elsewhere")
        bob.send(type="join", room="lobby", since=10)
        bob.recv_until("presence", lambda f: f["event"] == "snapshot")
        gap = bob.recv()
        assert gap == {
            "type": "gap",
            "room": "lobby",
            "after": 10,
            "before": last - 499,
            "count": last - 499 - 11,
        }
        replay = [bob.recv() for _ in range(500)]
        assert [m["id"] for m in replay] == list(range(last - 499, last + 1))
        alice.close()
        bob.close()


def test_a_resent_client_id_is_stored_once(tmp_path: Path) -> None:
    """Ensure a resent client_id is re-acked with its original id, not rebroadcast."""
    with run_server(log_dir=tmp_path) as server:
        alice = connect(server, name="alice", key="alice-key")
        bob = connect(server, name="bob")
        alice.send(type="message", text="once", client_id="c-1")
        first = alice.recv_until("message")
        assert bob.recv_until("message")["id"] == first["id"]
        alice.close()
        # The same user (same key) reconnects and resends, as after an outage.
        again = connect(server, name="alice", key="alice-key")
        again.send(type="message", text="once", client_id="c-1")
        ack = again.recv_until("message")
        assert ack["id"] == first["id"] and ack["client_id"] == "c-1"
        assert [f for f in bob.drain() if f["type"] == "message"] == []
        again.send(type="history", room="lobby")
        texts = [m["text"] for m in again.recv_until("history")["messages"]]
        assert texts == ["once"]
        again.close()
        bob.close()


def test_history_pages_backwards_with_a_capped_limit(tmp_path: Path) -> None:
    """Ensure history pages with before/limit, capped at 100, oldest first."""
    with run_server(*FAST, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        for n in range(150):
            alice.send(type="message", text=f"m{n}")
        alice.recv_until("message", lambda f: f["text"] == "m149")
        alice.send(type="history", room="lobby", limit=1000)
        newest = alice.recv_until("history")
        assert len(newest["messages"]) == 100 and newest["more"] is True
        assert newest["messages"][-1]["text"] == "m149"
        alice.send(type="history", room="lobby", before=newest["messages"][0]["id"])
        older = alice.recv_until("history")
        assert [m["text"] for m in older["messages"]] == [f"m{n}" for n in range(50)]
        assert older["more"] is False
        alice.close()


def test_transcript_shows_markup_as_text(tmp_path: Path) -> None:
    """Ensure the transcript page escapes message text and names, and downloads work."""
    with run_server(log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        payload = '<img src=x onerror="alert(1)"> & <b>bold</b>'
        alice.send(type="message", text=payload)
        alice.recv_until("message")
        status, headers, body = http_get(server.http_url + "/rooms/lobby")
        page = body.decode()
        assert status == 200
        assert (
            "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;bold" in page
        )
        assert "<img" not in page and "<b>bold" not in page
        assert "<script" not in page
        status, headers, body = http_get(
            server.http_url + "/rooms/lobby/transcript.jsonl"
        )
        assert status == 200 and "attachment" in headers["Content-Disposition"]
        assert '"text": "<img src=x' in body.decode()
        status, _, body = http_get(server.http_url + "/rooms/lobby/transcript.txt")
        assert status == 200 and body.decode().endswith(f"<alice> {payload}\n")
        assert http_get(server.http_url + "/rooms/never-used")[0] == 404
        alice.close()


def test_an_unusable_database_stops_the_server_with_a_message(tmp_path: Path) -> None:
    """Ensure a --db that cannot be opened exits 1 with a readable reason."""
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"garbage" * 1000)
    result = subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "--port", "0", "--db", str(bad)],
        capture_output=True,
        text=True,
        timeout=20000 * MS,
    )
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lost_history_is_a_new_epoch_and_rejoiners_are_told(tmp_path: Path) -> None:
    """Ensure a client whose ``since`` belongs to a history that is gone (a
    server with --db :memory: restarted, or a new database file) gets
    ``reset`` and then what there is now, instead of waiting for ids it has
    seen already; a restart that keeps the file keeps the epoch."""
    db = str(tmp_path / "chat.db")
    for args, same_history in ((("--db", ":memory:"), False), (("--db", db), True)):
        with run_server(*args, log_dir=tmp_path) as server:
            alice = connect(server, name="alice")
            epoch = alice.welcome["epoch"]
            seen = send_acked(alice, 5, "old")[-1]["id"]
            alice.close()
        with run_server(*args, log_dir=tmp_path) as server:
            bob = connect(server, name="bob")
            assert (bob.welcome["epoch"] == epoch) is same_history
            send_acked(bob, 1, "new")
            back = connect(server, name="alice", room="elsewhere")
            back.send(type="join", room="lobby", since=seen, epoch=epoch)
            if same_history:
                assert back.recv_until("message")["text"] == "new 0"
            else:
                reset = back.recv_until("reset")
                assert reset == {
                    "type": "reset",
                    "room": "lobby",
                    "epoch": bob.welcome["epoch"],
                }
                assert back.recv_until("message")["text"] == "new 0"
            bob.close()
            back.close()
