"""The Redis fan-out's publisher against a real redis-server: what it sends."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import fanout
from chatcore.config import Settings
from chatcore.directory.redis import RedisDirectory
from chatcore.fanout.redis import RedisFanout
from chatcore.history.redis import RedisHistory, RedisNames, connect
from chatcore.hub import Hub
from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import MS

pytestmark = needs_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis") as server:
        yield server


def test_a_rewrite_of_the_member_list_keeps_news_of_private_rooms(
    redis_server: RedisProcess,
) -> None:
    """Ensure rewriting the member list (which replaces queued membership
    events) still sends queued Added and Removed events, in order."""
    client = connect(redis_server.url)
    history = RedisHistory(client, 100)
    link = RedisFanout(redis_server.url, history, heartbeat=0.5)
    link.hub = Hub(
        Settings(),
        history,
        RedisNames(client),
        clock=lambda: 1.0,
        rng=random.Random(1),
        fanout=link,
        directory=RedisDirectory(client),
    )
    listener = connect(redis_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(history.channel)
    while listener.get_message(timeout=1000 * MS) is None and not listener.subscribed:
        pass
    by = {"id": "u1", "name": "alice", "color": "#123456"}
    news = [
        fanout.Join(link.origin, "lobby", by),
        fanout.Added(link.origin, "plans", "u2", by),
        fanout.Removed(link.origin, "plans", "u3"),
    ]
    for event in news:
        link.publish(event)
    link._write_all()
    while link._queue:
        link._write_batch()
    heard = []
    while (message := listener.get_message(timeout=1000 * MS)) is not None:
        heard.append(fanout.decode(message["data"].decode()))
    assert heard == [fanout.Sync(link.origin), *news[1:]]
