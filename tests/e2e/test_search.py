"""Replies and search with real servers and real WebSocket clients, in every
store, and across two processes on one Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import FAST, StartServer
from tests.redis_server import needs_redis, run_redis
from tests.support import (
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    run_server,
)


def connect(server: ServerProcess, **kwargs: Any) -> Client:
    """A client that is closed at the end of the test."""
    return closed_after_the_test(open_client(server, **kwargs))


def say(client: Client, text: str, room: str = "lobby", **extra: Any) -> dict:
    client.send(type="message", room=room, text=text, **extra)
    return client.recv_until("message", lambda f: f["text"] == text)


def search(client: Client, **frame: Any) -> dict[str, Any]:
    client.send(type="search", **frame)
    return client.recv_until("results")


def test_reply_then_search(chat: StartServer) -> None:
    """Ensure a reply reaches the room with its quote, a history page quotes
    the original as it is now, and a search finds what was said."""
    with chat() as server:
        ann, bob = connect(server, name="ann"), connect(server, name="bob")
        original = say(ann, "Where shall we have lunch?")
        bob.send(
            type="message",
            room="lobby",
            text="The usual place",
            reply_to=original["id"],
        )
        for client in (ann, bob):
            reply = client.recv_until("message", lambda f: "reply_to" in f)
            assert reply["reply"]["text"] == "Where shall we have lunch?"
            assert reply["reply"]["user"]["name"] == "ann"
        ann.send(type="delete", room="lobby", id=original["id"])
        ann.recv_until("deleted")
        ann.send(type="history", room="lobby")
        page = ann.recv_until("history")
        [quoted] = [m for m in page["messages"] if m.get("reply_to")]
        assert quoted["reply"]["deleted"] is True and quoted["reply"]["text"] == ""
        results = search(bob, q="usual")
        assert [m["text"] for m in results["hits"]] == ["The usual place"]
        assert results["hits"][0]["highlight"] == [[4, 9]]
        assert search(bob, q="lunch")["hits"] == []  # deleted


def test_a_private_room_never_shows_in_anothers_results(chat: StartServer) -> None:
    """Ensure a search by someone outside a private room finds nothing of it,
    and one by a member does."""
    with chat() as server:
        ann, eve = connect(server, name="ann"), connect(server, name="eve")
        ann.send(type="create", room="secret", private=True)
        ann.recv_until("presence", lambda f: f.get("room") == "secret")
        say(ann, "the vault code is 4711", room="secret")
        assert search(eve, q="vault")["hits"] == []
        eve.send(type="search", q="vault", room="secret")
        assert eve.recv_until("error")["code"] == "forbidden"
        assert [m["room"] for m in search(ann, q="vault")["hits"]] == ["secret"]


@needs_redis
def test_two_processes_search_and_quote_each_others_messages(tmp_path: Path) -> None:
    """Ensure a message posted on one process is found from the other, and a
    reply posted on one reaches the other with its quote."""
    with run_redis(tmp_path / "redis") as redis:
        flags = (*FAST, "--redis", redis.url)
        with (
            run_server(*flags, log_dir=tmp_path) as one,
            run_server(*flags, log_dir=tmp_path) as two,
        ):
            ann, bob = connect(one, name="ann"), connect(two, name="bob")
            original = say(ann, "Deploy at five, everyone")
            bob.recv_until("message", lambda f: f["id"] == original["id"])
            results = search(bob, q="deploy")
            assert [m["id"] for m in results["hits"]] == [original["id"]]
            say(ann, "Confirmed", reply_to=original["id"])
            reply = bob.recv_until("message", lambda f: f["text"] == "Confirmed")
            assert reply["reply"]["id"] == original["id"]
            assert reply["reply"]["text"] == "Deploy at five, everyone"
