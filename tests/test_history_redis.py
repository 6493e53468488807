"""The Redis history store against a real redis-server: what only it does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import fanout
from chatcore.history import Draft, HistoryError
from chatcore.history.redis import RedisHistory, connect
from tests.redis_server import RedisProcess, run_redis
from tests.support import MS, free_port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis") as server:
        yield server


def draft(room: str = "lobby", text: str = "hi", client_id: str | None = None) -> Draft:
    return Draft(room, "u1", "alice", "#c0392b", text, 1, client_id)


def test_two_stores_share_ids_and_publish_in_id_order(
    redis_server: RedisProcess,
) -> None:
    """Ensure two processes' stores number one room's messages together, and the
    channel carries each message once, in id order, ready to send."""
    one = RedisHistory(connect(redis_server.url), 100)
    two = RedisHistory(connect(redis_server.url), 100)
    listener = connect(redis_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(one.channel)
    while listener.get_message(timeout=1000 * MS) is None and not listener.subscribed:
        pass
    stored = [(one if n % 2 else two).append(draft(text=f"m{n}")) for n in range(6)]
    assert [m.id for m in stored] == [1, 2, 3, 4, 5, 6]
    events = []
    while len(events) < 6:
        message = listener.get_message(timeout=2000 * MS)
        assert message is not None, events
        events.append(fanout.decode(message["data"].decode()))
    assert [(e.room, e.id) for e in events] == [("lobby", n) for n in range(1, 7)]
    assert all(isinstance(e, fanout.Published) for e in events)
    first = events[0]
    assert isinstance(first, fanout.Published)
    assert first.frame.startswith('{"type":"message","id":1,"room":"lobby"')
    assert two.since("lobby", 4, 10) == stored[4:]
    assert one.find("u1", "nope") is None
    listener.close()
    for store in (one, two):
        store.close()


def test_idempotency_keys_expire(redis_server: RedisProcess) -> None:
    """Ensure the client_id of a send is remembered with a time to live."""
    store = RedisHistory(connect(redis_server.url), 100)
    sent = store.append(draft(client_id="c-1"))
    assert store.find("u1", "c-1") == sent
    ttl = store.client.ttl(f"{store.prefix}sent:u1:c-1")
    assert 0 < ttl <= 24 * 3600
    store.close()


def test_unreachable_redis_raises_history_error() -> None:
    """Ensure a store whose Redis is gone refuses writes with HistoryError."""
    store = RedisHistory(connect(f"redis://127.0.0.1:{free_port()}/0"), 100)
    assert store.problem() is not None
    with pytest.raises(HistoryError):
        store.append(draft())
    with pytest.raises(HistoryError):
        store.last_id("lobby")
    store.close()


def everything_in(store: RedisHistory) -> str:
    """Every value under the store's keys, as text."""
    client, values = store.client, []
    for key in client.keys(store.prefix + "*"):
        kind = client.type(key).decode()
        if kind == "stream":
            values.append(repr(client.xrange(key)))
        elif kind == "hash":
            values.append(repr(client.hgetall(key)))
        elif kind == "zset":
            values.append(repr(client.zrange(key, 0, -1)))
        elif kind == "set":
            values.append(repr(client.smembers(key)))
        else:
            values.append(repr(client.get(key)))
    return "".join(values)


def test_changes_keep_no_text_and_are_trimmed(redis_server: RedisProcess) -> None:
    """Ensure a deleted text is nowhere in Redis, a change is published under
    its revision id, and the changed states are trimmed with retention."""
    store = RedisHistory(connect(redis_server.url), 3)
    listener = connect(redis_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(store.channel)
    while listener.get_message(timeout=1000 * MS) is None and not listener.subscribed:
        pass
    secret = store.append(draft(text="secret-words"))
    store.change(secret, None, 2)
    events = []
    while len(events) < 2:
        message = listener.get_message(timeout=2000 * MS)
        assert message is not None, events
        events.append(fanout.decode(message["data"].decode()))
    deleted = events[1]
    assert isinstance(deleted, fanout.Published)
    assert (deleted.id, deleted.room) == (2, "lobby")
    assert deleted.frame == '{"type":"deleted","rev":2,"room":"lobby","id":1}'
    assert "secret-words" not in everything_in(store)
    for n in range(6):  # each edit takes an id: the older changes fall out
        message = store.append(draft(text=f"m{n}"))
        store.change(message, f"m{n}!", 3)
    changed = f"{store.prefix}room:lobby:changed"
    assert sorted(int(k) for k in store.client.hkeys(changed)) == [13]
    assert store.client.zcard(f"{store.prefix}room:lobby:changes") == 1
    for n in range(3):  # new messages alone push the last change out too
        store.append(draft(text=f"late {n}"))
    assert store.client.hkeys(changed) == []
    assert store.client.zcard(f"{store.prefix}room:lobby:changes") == 0
    listener.close()
    store.close()
