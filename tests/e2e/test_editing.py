"""Edits and deletes with real servers and real WebSocket clients: live, after
a reconnect, in history pages and transcripts, in every store, and across two
processes on one Redis."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import FAST, StartServer
from tests.e2e.test_operations import metric
from tests.redis_server import needs_redis, run_redis
from tests.support import (
    MS,
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    http_get,
    run_server,
)

SECRET = "the-launch-code-is-0000"


def connect(server: ServerProcess, **kwargs: Any) -> Client:
    """A client that is closed at the end of the test."""
    client = open_client(server, **kwargs)
    return closed_after_the_test(client)


def say(client: Client, text: str, room: str = "lobby") -> dict[str, Any]:
    """Send a message and return its echo."""
    client_id = f"c-{text[:20]}"
    client.send(type="message", room=room, text=text, client_id=client_id)
    return client.recv_until("message", lambda f: f.get("client_id") == client_id)


def test_edits_and_deletes_are_seen_live(chat: StartServer) -> None:
    """Ensure an edit and a delete reach the other member and the author at
    once, and another user's message cannot be changed."""
    with chat() as server:
        alice, bob = connect(server, name="alice"), connect(server, name="bob")
        first = say(alice, "helo")
        bob.recv_until("message", lambda f: f["id"] == first["id"])
        alice.send(type="edit", room="lobby", id=first["id"], text="hello")
        seen = bob.recv_until("edited")
        assert (seen["id"], seen["text"], seen["user"]["name"]) == (
            first["id"],
            "hello",
            "alice",
        )
        assert seen["rev"] > first["id"] and seen["edited"] >= first["ts"]
        assert alice.recv_until("edited") == seen

        bob.send(type="edit", room="lobby", id=first["id"], text="mine now")
        error = bob.recv_until("error")
        assert (error["code"], error["ref"]) == ("forbidden", "edit")
        bob.send(type="delete", room="lobby", id=first["id"])
        assert bob.recv_until("error")["code"] == "forbidden"

        alice.send(type="delete", room="lobby", id=first["id"])
        gone = bob.recv_until("deleted")
        assert (gone["id"], gone["rev"]) == (first["id"], seen["rev"] + 1)
        assert "by" not in gone
        assert alice.recv_until("deleted") == gone
        alice.send(type="delete", room="lobby", id=gone["rev"])
        assert alice.recv_until("error")["code"] == "no_such_message"
        metrics = http_get(server.http_url + "/metrics")[2].decode()
        assert metric(metrics, "chat_message_changes_total") == 2


def test_a_reconnect_with_since_brings_the_changes(chat: StartServer) -> None:
    """Ensure a client that was away gets the messages changed meanwhile in
    their current state, and the history page shows the same."""
    with chat() as server:
        alice, bob = connect(server, name="alice"), connect(server, name="bob")
        typo, secret = say(alice, "helo"), say(alice, SECRET)
        last_seen = bob.recv_until("message", lambda f: f["id"] == secret["id"])["id"]
        bob.close()
        alice.send(type="edit", room="lobby", id=typo["id"], text="hello")
        alice.send(type="delete", room="lobby", id=secret["id"])
        alice.recv_until("deleted")

        back = connect(server, key=bob.welcome["key"], room="nowhere")
        back.send(type="join", room="lobby", since=last_seen)
        back.recv_until("presence", lambda f: f["event"] == "snapshot")
        replay = [back.recv_until("message"), back.recv_until("message")]
        assert [(m["id"], m["text"]) for m in replay] == [
            (typo["id"], "hello"),
            (secret["id"], ""),
        ]
        assert replay[0]["edited"] > 0 and replay[1]["deleted"] is True
        assert replay[0]["rev"] < replay[1]["rev"]
        assert not any(f["type"] == "gap" for f in back.drain())

        back.send(type="history", room="lobby")
        page = back.recv_until("history")["messages"]
        assert [(m["id"], m["text"], m.get("deleted")) for m in page] == [
            (typo["id"], "hello", None),
            (secret["id"], "", True),
        ]


def test_transcripts_and_the_file_lose_the_deleted_text(tmp_path: Path) -> None:
    """Ensure the transcript page and downloads show the tombstone and never
    the deleted text, and that the SQLite file no longer holds it."""
    db = tmp_path / "chat.db"
    with run_server(*FAST, "--db", str(db), log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        say(alice, "before it " * 20)
        secret = say(alice, (SECRET + " ") * 10)
        say(alice, "after it " * 20)
        alice.send(type="delete", room="lobby", id=secret["id"])
        alice.recv_until("deleted")
        bodies = {}
        for path in ("", "/transcript.txt", "/transcript.jsonl"):
            status, _, body = http_get(f"{server.http_url}/rooms/lobby{path}")
            assert status == 200
            bodies[path] = body.decode()
            assert SECRET not in bodies[path]
        assert "message deleted" in bodies[""]
        assert f"#{secret['id']} <alice> (message deleted)" in bodies["/transcript.txt"]
        rows = [json.loads(line) for line in bodies["/transcript.jsonl"].splitlines()]
        assert rows[1] | {"ts": 0} == {
            "id": secret["id"],
            "room": "lobby",
            "user": alice.welcome["user"],
            "text": "",
            "ts": 0,
            "client_id": secret["client_id"],
            "deleted": True,
            "rev": 4,
        }
    # The server stopped: its last connection checkpointed the WAL into the file.
    assert (
        not Path(str(db) + "-wal").exists() or not Path(str(db) + "-wal").stat().st_size
    )
    data = db.read_bytes()
    assert b"before it" in data
    assert SECRET.encode() not in data


@needs_redis
def test_a_delete_crosses_processes_live_and_after_a_reconnect(
    tmp_path: Path,
) -> None:
    """Ensure a delete made on one process reaches a client of another at
    once, and again after that client reconnects with since."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(run_redis(tmp_path / "redis"))
        one, two = (
            stack.enter_context(
                run_server(*FAST, "--redis", redis.url, log_dir=tmp_path)
            )
            for _ in range(2)
        )
        alice, bob = connect(one, name="alice"), connect(two, name="bob")
        first, second = say(alice, SECRET), say(alice, "keep me")
        bob.recv_until("message", lambda f: f["id"] == second["id"])
        alice.send(type="delete", room="lobby", id=first["id"])
        gone = bob.recv_until("deleted", timeout=5000 * MS)
        assert gone["id"] == first["id"]
        bob.close()
        alice.send(type="edit", room="lobby", id=second["id"], text="kept, edited")
        alice.recv_until("edited")

        back = connect(two, key=bob.welcome["key"], room="nowhere")
        back.send(type="join", room="lobby", since=gone["rev"])
        replay = back.recv_until("message")
        assert (replay["id"], replay["text"]) == (second["id"], "kept, edited")
        back.send(type="join", room="lobby", since=0)
        back.send(type="history", room="lobby")
        page = back.recv_until("history")["messages"]
        assert [(m["id"], m["text"]) for m in page] == [
            (first["id"], ""),
            (second["id"], "kept, edited"),
        ]
        assert SECRET not in json.dumps(page)
