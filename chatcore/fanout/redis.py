"""Fan-out through Redis: several chat processes, one set of rooms.

Messages need nothing from this module to be published: the Redis history
store publishes each one in the same atomic step that stores it. Here are the
three greenlets that do the rest, in every process:

- the listener subscribes to the chat's channel and hands every event to the
  hub (``hub.deliver_published``), which delivers it to this process's
  members. When the subscription breaks it retries with a capped exponential
  backoff (reset once it is back), re-reads the other processes' members and
  recovers the messages published meanwhile from the streams
  (``hub.recover``), or tells clients of a ``gap`` where it cannot;
- the publisher sends this process's membership and typing changes, keeping
  its member list (a hash with a time to live) in step; after any failure it
  rewrites the whole list and asks the others to re-read it (``Sync``);
- the heartbeat refreshes this process's keys every ``--redis-heartbeat``
  seconds (time to live: three beats) and drops the members of processes
  whose keys expired: a process killed with SIGKILL leaves presence by
  itself, within the time to live.

Keys (with the history store's prefix): ``procs`` (a set of process ids),
``proc:<id>`` (alive while it exists), ``members:<id>`` (a hash of
``"<room> <user id>"`` to the user as on the wire).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable

import gevent
import redis
from gevent.event import Event as Signal
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatcore import fanout as events
from chatcore.config import Settings
from chatcore.delivery import Delivery
from chatcore.history import StoreUnreachable
from chatcore.history.redis import (
    DEFAULT_PREFIX,
    RedisHistory,
    RedisNames,
    connect,
    describe,
)

log = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0  # seconds between reconnection attempts
TTL_BEATS = 3  # a process's keys live this many heartbeats
BATCH_MAX = 500  # membership events written in one round trip

Dispatch = Callable[[Iterable[Delivery]], None]


def open_redis(settings: Settings) -> tuple[RedisHistory, RedisNames, RedisFanout]:
    """The history store, name store and fan-out for ``--redis``.

    Raises:
        StoreUnreachable: Redis does not answer (the message says where).
    """
    url = settings.redis_url
    client = connect(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise StoreUnreachable(
            f"cannot reach Redis at {describe(url)} (--redis / CHAT_REDIS_URL): {exc}"
        ) from None
    history = RedisHistory(client, settings.history_max, DEFAULT_PREFIX)
    names = RedisNames(client, DEFAULT_PREFIX)
    return history, names, RedisFanout(url, history, settings.redis_heartbeat)


def _field(room: str, user_id: str) -> str:
    return f"{room} {user_id}"


def parse_members(fields: dict[bytes, bytes]) -> dict[str, dict[str, events.Wire]]:
    """A process's member hash as room -> user id -> user."""
    rooms: dict[str, dict[str, events.Wire]] = {}
    for name, value in fields.items():
        room, _, user_id = name.decode().partition(" ")
        rooms.setdefault(room, {})[user_id] = json.loads(value)
    return rooms


class RedisFanout:
    """This process's link to the others, through one Redis.

    Args:
        url: the Redis URL (the listener opens a connection of its own).
        history: the store, whose client and key prefix are shared.
        heartbeat: seconds between heartbeats.
    """

    shared = True

    def __init__(self, url: str, history: RedisHistory, heartbeat: float):
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.client = history.client
        self.channel = history.channel
        self.prefix = history.prefix
        self.heartbeat = heartbeat
        self.ttl_ms = int(heartbeat * TTL_BEATS * 1000)
        # No retries of its own: a broken subscription must surface here, so
        # that what was published meanwhile is recovered from the streams.
        self._listen_client = redis.Redis.from_url(
            url,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=max(1, int(heartbeat)),
        )
        self._queue: deque[events.Event] = deque()
        self._wake = Signal()
        self._rewrite = True  # the member list must be written whole
        self._subscribed = False
        self._beating = False
        self._up_once = Signal()
        self._greenlets: list[gevent.Greenlet] = []
        self.hub: events.FanoutHandler  # both set by start()
        self.dispatch: Dispatch

    # -- the Fanout interface ------------------------------------------------

    def publish(self, event: events.Event) -> None:
        self._queue.append(event)
        self._wake.set()

    # -- life cycle ------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether the link works: subscribed, and the last heartbeat written."""
        return self._subscribed and self._beating

    def start(
        self, hub: events.FanoutHandler, dispatch: Dispatch, wait: float = 5.0
    ) -> None:
        """Start the greenlets; wait up to ``wait`` s for the first subscription."""
        self.hub, self.dispatch = hub, dispatch
        self._greenlets = [
            gevent.spawn(self._listen),
            gevent.spawn(self._publish_loop),
            gevent.spawn(self._beat_loop),
        ]
        self._up_once.wait(wait)

    def stop(self) -> None:
        """Stop, and tell the others at once that this process's users are gone."""
        gevent.killall(self._greenlets)
        self._subscribed = self._beating = False
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self._alive_key(self.origin), self._members_key(self.origin))
            pipe.srem(self.prefix + "procs", self.origin)
            pipe.publish(self.channel, events.encode(events.Gone(self.origin)))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not say goodbye on Redis: %s", exc)
        self._listen_client.close()

    def _alive_key(self, origin: str) -> str:
        return f"{self.prefix}proc:{origin}"

    def _members_key(self, origin: str) -> str:
        return f"{self.prefix}members:{origin}"

    def _deliver(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self.dispatch(deliveries)

    # -- the listener ----------------------------------------------------------

    def _listen(self) -> None:
        backoff = BACKOFF_MIN
        lost_at: float | None = None
        while True:
            pubsub = self._listen_client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while True:  # wait for the confirmation: only then read state
                    reply = pubsub.get_message(timeout=self.heartbeat)
                    if reply is not None and reply["type"] == "subscribe":
                        break
                self._load_others()
                recovered = self._recover()
                self._subscribed = True
                self._rewrite = True  # the others may have dropped us meanwhile
                self._wake.set()
                self._up_once.set()
                if lost_at is not None:
                    log.info(
                        "Redis subscription restored after %.1f s; "
                        "%d deliveries recovered",
                        time.monotonic() - lost_at,
                        recovered,
                    )
                    lost_at = None
                backoff = BACKOFF_MIN
                while True:
                    reply = pubsub.get_message(timeout=self.heartbeat)
                    if reply is not None and reply["type"] == "message":
                        self._handle(reply["data"])
            except (redis.RedisError, OSError) as exc:
                self._subscribed = False
                if lost_at is None:
                    lost_at = time.monotonic()
                    log.warning("Redis subscription lost: %s", exc)
                with gevent.Timeout(1.0, False):
                    pubsub.close()
                gevent.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _handle(self, data: bytes) -> None:
        try:
            event = events.decode(data.decode("utf-8"))
        except (events.BadEvent, UnicodeDecodeError) as exc:
            log.warning("ignored on the channel: %s", exc)
            return
        try:
            self._deliver(self.hub.deliver_published(event))
            if isinstance(event, events.Sync) and event.origin != self.origin:
                fields = self.client.hgetall(self._members_key(event.origin))
                self._deliver(
                    self.hub.replace_remote(event.origin, parse_members(fields))
                )
        except redis.RedisError:
            raise
        except Exception:
            # A bug must cost one event, not the subscription.
            log.exception("could not handle an event from Redis")

    def _load_others(self) -> None:
        """Read every live process's members; forget the processes gone."""
        procs = {p.decode() for p in self.client.smembers(self.prefix + "procs")}
        others = sorted((procs | self.hub.remote_origins()) - {self.origin})
        pipe = self.client.pipeline(transaction=False)
        for origin in others:
            pipe.exists(self._alive_key(origin))
            pipe.hgetall(self._members_key(origin))
        replies = pipe.execute()
        for index, origin in enumerate(others):
            alive, fields = replies[2 * index], replies[2 * index + 1]
            members = parse_members(fields) if alive else {}
            self._deliver(self.hub.replace_remote(origin, members))

    def _recover(self) -> int:
        deliveries = self.hub.recover()
        self._deliver(deliveries)
        return len(deliveries)

    # -- the publisher -----------------------------------------------------------

    def _publish_loop(self) -> None:
        backoff = BACKOFF_MIN
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                if self._rewrite:
                    self._write_all()
                while self._queue:
                    self._write_batch()
                backoff = BACKOFF_MIN
            except (redis.RedisError, OSError) as exc:
                log.warning("could not publish presence on Redis: %s", exc)
                self._rewrite = True  # written whole once Redis is back
                self._queue.clear()
                gevent.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                self._wake.set()

    def _write_all(self) -> None:
        """Replace this process's member list and ask the others to re-read it."""
        # The list written now includes what membership events said; news of
        # private rooms' members and of read positions is not in it and
        # still goes out.
        self._queue = deque(
            event
            for event in self._queue
            if isinstance(event, events.Added | events.Removed | events.ReadUpTo)
        )
        self._rewrite = False
        mapping = {
            _field(room, user_id): json.dumps(wire, ensure_ascii=False)
            for room, users in self.hub.local_members().items()
            for user_id, wire in users.items()
        }
        key = self._members_key(self.origin)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        if mapping:
            pipe.hset(key, mapping=mapping)
            pipe.pexpire(key, self.ttl_ms)
        pipe.set(self._alive_key(self.origin), "1", px=self.ttl_ms)
        pipe.sadd(self.prefix + "procs", self.origin)
        pipe.publish(self.channel, events.encode(events.Sync(self.origin)))
        try:
            pipe.execute()
        except BaseException:
            self._rewrite = True
            raise

    def _write_batch(self) -> None:
        batch = [self._queue.popleft() for _ in range(min(BATCH_MAX, len(self._queue)))]
        key = self._members_key(self.origin)
        pipe = self.client.pipeline(transaction=True)
        for event in batch:
            match event:
                case events.Join():
                    pipe.hset(
                        key,
                        _field(event.room, event.user["id"]),
                        json.dumps(event.user, ensure_ascii=False),
                    )
                case events.Leave():
                    pipe.hdel(key, _field(event.room, event.user_id))
                case events.Nick():
                    for room in event.rooms:
                        pipe.hset(
                            key,
                            _field(room, event.user["id"]),
                            json.dumps(event.user, ensure_ascii=False),
                        )
            pipe.publish(self.channel, events.encode(event))
        pipe.pexpire(key, self.ttl_ms)
        pipe.execute()

    # -- the heartbeat -------------------------------------------------------------

    def _beat_loop(self) -> None:
        while True:
            try:
                self._beat()
                self._beating = True
            except (redis.RedisError, OSError) as exc:
                if self._beating:
                    log.warning("Redis heartbeat failed: %s", exc)
                self._beating = False
                self._rewrite = True
            gevent.sleep(self.heartbeat)

    def _beat(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._alive_key(self.origin), "1", px=self.ttl_ms, get=True)
        pipe.pexpire(self._members_key(self.origin), self.ttl_ms)
        pipe.sadd(self.prefix + "procs", self.origin)
        pipe.smembers(self.prefix + "procs")
        was_alive, _, _, procs = pipe.execute()
        if was_alive is None:
            # Our keys had expired (a long stall, or Redis lost them): the
            # others dropped our members, so they are written and announced.
            self._rewrite = True
            self._wake.set()
        others = ({p.decode() for p in procs} | self.hub.remote_origins()) - {
            self.origin
        }
        if not others:
            return
        ordered = sorted(others)
        pipe = self.client.pipeline(transaction=False)
        for origin in ordered:
            pipe.exists(self._alive_key(origin))
        dead = [
            o for o, alive in zip(ordered, pipe.execute(), strict=True) if not alive
        ]
        for origin in dead:
            log.info("process %s stopped beating: its users leave", origin)
            self._deliver(self.hub.replace_remote(origin, {}))
        if dead:
            pipe = self.client.pipeline(transaction=False)
            pipe.srem(self.prefix + "procs", *dead)
            pipe.delete(*(self._members_key(o) for o in dead))
            pipe.execute()
