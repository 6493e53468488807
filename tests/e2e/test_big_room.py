"""Big rooms over real sockets (docs/protocol.md, Big rooms): a room past
``--presence-max`` members sends counts, not lists; ``members`` pages and
searches it; with two processes on one Redis the counts and pages include
the other process's members."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import (
    MS,
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    run_server,
)

FLAGS = ("--presence-max", "5", "--presence-tick", "0.1", "--max-conn-per-ip", "0")
FAST = ("--rate", "1000", "--burst", "1000")


def join(server: ServerProcess, name: str) -> tuple[Client, dict[str, Any]]:
    """A client in the lobby, and the snapshot it got."""
    client = closed_after_the_test(open_client(server, name=name, read_welcome=False))
    assert client.recv()["type"] == "welcome"
    snapshot = client.recv_until("presence", lambda f: f["event"] == "snapshot")
    return client, snapshot


def count_reaches(client: Client, count: int) -> dict[str, Any]:
    """Read until a ``count`` frame says ``count``; once counts come, no
    ``join`` or ``leave`` may."""
    deadline = time.monotonic() + 5000 * MS
    counted = False
    while True:
        frame = client.recv_until("presence", timeout=deadline - time.monotonic())
        assert frame["event"] == "count" or not counted, frame
        counted = counted or frame["event"] == "count"
        if counted and frame["count"] == count:
            return frame


def all_pages(client: Client, **query: Any) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        client.send(
            type="members", room="lobby", **query, **({"after": after} if after else {})
        )
        page = client.recv_until("members")
        pages.append(page)
        after = page.get("next")
        if after is None:
            return pages


@pytest.mark.parametrize("db", [":memory:", "file"])
def test_twelve_clients_in_a_room_for_five_get_counts_and_pages(
    server_with: Callable[..., ServerProcess], tmp_path: Path, db: str
) -> None:
    """Ensure the first five joins are announced, the rest counted once per
    tick; late joiners get a first page; ``members`` lists and finds everyone."""
    path = ":memory:" if db == ":memory:" else str(tmp_path / "big.db")
    server = server_with(*FLAGS, *FAST, "--db", path)
    first, snapshot = join(server, "ann")
    assert "big" not in snapshot
    clients = [first]
    for n in range(1, 12):
        client, snapshot = join(server, f"user{n:02d}")
        clients.append(client)
    assert snapshot["big"] is True and snapshot["members_more"] is True
    assert snapshot["count"] == 12
    assert [u["name"] for u in snapshot["users"]] == [
        "user11",
        "ann",
        "user01",
        "user02",
        "user03",
    ]
    joins = [f for f in first.drain(300 * MS) if f["type"] == "presence"]
    announced = [f["user"]["name"] for f in joins if f["event"] == "join"]
    assert announced == ["user01", "user02", "user03", "user04"]
    counts = [f for f in joins if f["event"] == "count"]
    assert counts and counts[-1]["count"] == 12 and counts[-1]["big"] is True
    assert len(counts) < 8  # coalesced: fewer frames than the joins they count

    pages = all_pages(clients[3], limit=5)
    assert [len(page["members"]) for page in pages] == [5, 5, 2]
    names = [m["name"] for page in pages for m in page["members"]]
    assert names == ["ann"] + [f"user{n:02d}" for n in range(1, 12)]
    found = all_pages(clients[3], q="USER1")
    assert [m["name"] for m in found[0]["members"]] == ["user10", "user11"]

    clients[5].send(type="typing", room="lobby", active=True)
    assert count_reaches_typists(first, 1)["count"] == 12
    for client in clients[8:]:
        client.close()
    assert count_reaches(first, 8)["big"] is True


def count_reaches_typists(client: Client, typists: int) -> dict[str, Any]:
    return client.recv_until(
        "presence", lambda f: f["event"] == "count" and f["typists"] == typists
    )


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis") as server:
        yield server


@needs_redis
def test_two_processes_count_and_list_each_others_members(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Ensure a big room spread over two processes is counted whole on each,
    and ``members`` on one lists the other's members too."""
    with contextlib.ExitStack() as stack:
        one, two = (
            stack.enter_context(
                run_server("--redis", redis_server.url, *FLAGS, *FAST, log_dir=tmp_path)
            )
            for _ in range(2)
        )
        here = [join(one, f"one{n}")[0] for n in range(4)]
        there = [join(two, f"two{n}")[0] for n in range(4)]
        assert count_reaches(here[0], 8)["big"] is True
        names = [m["name"] for page in all_pages(here[1]) for m in page["members"]]
        assert names == [f"one{n}" for n in range(4)] + [f"two{n}" for n in range(4)]
        found = all_pages(there[2], q="one")
        assert len(found[0]["members"]) == 4
        there[3].close()
        assert count_reaches(here[2], 7)["count"] == 7
