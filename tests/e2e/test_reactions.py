"""Reactions with real servers and real WebSocket clients: live, after a
reconnect with since, in history pages, after a restart, in every store, and
across two processes on one Redis."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tests.e2e.conftest import FAST, StartServer
from tests.e2e.test_editing import connect, say
from tests.redis_server import needs_redis, run_redis
from tests.support import MS, Client, run_server


def react(client: Client, message_id: int, emoji: str, room: str = "lobby") -> None:
    client.send(type="react", room=room, id=message_id, emoji=emoji)


def reacted(client: Client, message_id: int, rev_above: int = 0) -> dict[str, Any]:
    """The next ``reacted`` event for a message, newer than ``rev_above``."""
    return client.recv_until(
        "reacted",
        lambda f: f["id"] == message_id and f["rev"] > rev_above,
        timeout=5000 * MS,
    )


def shown(reactions: list[dict[str, Any]]) -> list[tuple[str, int, list[str]]]:
    return [
        (r["emoji"], r["count"], [u["name"] for u in r["users"]]) for r in reactions
    ]


def test_reactions_are_seen_live_and_toggle(chat: StartServer) -> None:
    """Ensure a reaction reaches the other member and the reactor at once
    with who reacted, a second toggle takes it back, and text that is not an
    emoji is refused."""
    with chat() as server:
        alice, bob = connect(server, name="alice"), connect(server, name="bob")
        first = say(alice, "ship it?")
        bob.recv_until("message", lambda f: f["id"] == first["id"])
        react(bob, first["id"], "🎉")
        seen = reacted(alice, first["id"])
        assert seen == reacted(bob, first["id"])
        assert seen["rev"] > first["id"]
        assert shown(seen["reactions"]) == [("🎉", 1, ["bob"])]
        assert (seen["emoji"], seen["by"]["name"], seen["added"]) == ("🎉", "bob", True)
        react(alice, first["id"], "🎉")
        react(alice, first["id"], "👍🏽")
        react(bob, first["id"], "🎉")
        last = reacted(alice, first["id"], seen["rev"])
        for _ in range(2):
            last = reacted(alice, first["id"], last["rev"])
        assert shown(last["reactions"]) == [
            ("🎉", 1, ["alice"]),
            ("👍🏽", 1, ["alice"]),
        ]
        react(bob, first["id"], "<b>")
        error = bob.recv_until("error")
        assert (error["code"], error["ref"]) == ("bad_request", "react")


def test_a_reconnect_with_since_brings_the_reactions(chat: StartServer) -> None:
    """Ensure a client that was away gets the message whose reactions changed
    meanwhile, in its current state, and history pages show them."""
    with chat() as server:
        alice, bob = connect(server, name="alice"), connect(server, name="bob")
        one, two = say(alice, "one"), say(alice, "two")
        last_seen = bob.recv_until("message", lambda f: f["id"] == two["id"])["id"]
        bob.close()
        react(alice, one["id"], "❤️")
        reacted(alice, one["id"])

        back = connect(server, key=bob.welcome["key"], room="nowhere")
        back.send(type="join", room="lobby", since=last_seen)
        back.recv_until("presence", lambda f: f["event"] == "snapshot")
        replay = back.recv_until("message")
        assert replay["id"] == one["id"] and replay["rev"] > two["id"]
        assert shown(replay["reactions"]) == [("❤️", 1, ["alice"])]
        back.send(type="history", room="lobby")
        page = back.recv_until("history")["messages"]
        assert [shown(m.get("reactions", [])) for m in page] == [
            [("❤️", 1, ["alice"])],
            [],
        ]


def test_reactions_outlive_a_restart(tmp_path: Path) -> None:
    """Ensure reactions kept in the SQLite file are there after a restart."""
    db = str(tmp_path / "chat.db")
    with run_server(*FAST, "--db", db, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        first = say(alice, "remember me")
        react(alice, first["id"], "😮")
        reacted(alice, first["id"])
        alice.close()
    with run_server(*FAST, "--db", db, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        alice.send(type="history", room="lobby")
        [page] = alice.recv_until("history")["messages"]
        assert shown(page["reactions"]) == [("😮", 1, ["alice"])]


@needs_redis
def test_reactions_cross_processes_live_and_after_a_reconnect(
    tmp_path: Path,
) -> None:
    """Ensure reactions made on two processes reach clients of both at once,
    add up to one list (the same on both), and reach a client of the other
    process that reconnects with since."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(run_redis(tmp_path / "redis"))
        one, two = (
            stack.enter_context(
                run_server(*FAST, "--redis", redis.url, log_dir=tmp_path)
            )
            for _ in range(2)
        )
        alice, bob = connect(one, name="alice"), connect(two, name="bob")
        first = say(alice, "lunch?")
        bob.recv_until("message", lambda f: f["id"] == first["id"])
        crowd = [
            connect(server, name=f"p{n}") for n, server in enumerate([one, two] * 3)
        ]
        for person in crowd:
            react(person, first["id"], "👍")
        react(bob, first["id"], "😂")
        # Every toggle comes to both, in one order: the last has them all.
        final = []
        for client in (alice, bob):
            events = [{"rev": 0}]
            for _ in range(len(crowd) + 1):
                events.append(reacted(client, first["id"], events[-1]["rev"]))
            final.append(events[-1])
        seen_a, seen_b = final
        assert seen_b == seen_a
        # The two processes take the toggles in any order: find each by emoji.
        by_emoji = {r["emoji"]: r for r in seen_a["reactions"]}
        thumbs, laugh = by_emoji["👍"], by_emoji["😂"]
        assert (thumbs["emoji"], thumbs["count"]) == ("👍", 6)
        assert {u["name"] for u in thumbs["users"]} == {f"p{n}" for n in range(6)}
        assert shown([laugh]) == [("😂", 1, ["bob"])]

        bob.close()
        react(alice, first["id"], "👍")
        after = reacted(alice, first["id"], seen_a["rev"])
        assert (after["emoji"], after["by"]["name"], after["added"]) == (
            "👍",
            "alice",
            True,
        )
        back = connect(two, key=bob.welcome["key"], room="nowhere")
        back.send(type="join", room="lobby", since=seen_a["rev"])
        replay = back.recv_until("message")
        assert (replay["id"], replay["rev"]) == (first["id"], after["rev"])
        assert replay["reactions"] == after["reactions"]
        assert replay["reactions"][0]["count"] == 7
