"""Prometheus metrics: what the server counts, exposed at ``/metrics``.

Counts that the pure hub keeps (messages, errors by code) and live figures
(connections, rooms, queued bytes) are read when Prometheus scrapes; only the
latency histograms are observed as events happen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

from greenlet import greenlet
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from chatcore.server import ChatContext

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class ChatMetrics:
    """The registry behind ``/metrics``, and the histograms the edge feeds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.broadcast_seconds = Histogram(
            "chat_broadcast_seconds",
            "From a message frame read to its frames queued for every member "
            "(the history write included)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.history_write_seconds = Histogram(
            "chat_history_write_seconds",
            "Time to store one batch of messages",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        # Asked for explicitly only (``/metrics?greenlets=1``): counting walks
        # the whole heap while the event loop waits.
        self.greenlet_registry = CollectorRegistry(auto_describe=True)
        self.greenlet_registry.register(_GreenletCollector())

    def watch(self, chat: ChatContext) -> None:
        self.registry.register(_LiveCollector(chat))

    def render(self, count_greenlets: bool = False) -> bytes:
        """The Prometheus text; with ``count_greenlets`` also
        ``chat_greenlets`` (costly: see ``live_greenlets``)."""
        text = generate_latest(self.registry)
        if count_greenlets:
            text += generate_latest(self.greenlet_registry)
        return text


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def live_greenlets() -> int:
    """Greenlets spawned and not yet finished, the event loop's own included.

    Nothing keeps a list of them, so this walks every object the garbage
    collector tracks: linear in the heap (a few ms for a few hundred thousand
    objects, during which the event loop waits), and nothing at all between
    scrapes.
    """
    return sum(
        1 for obj in gc.get_objects() if isinstance(obj, greenlet) and not obj.dead
    )


class _GreenletCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield gauge(
            "chat_greenlets",
            "Live greenlets: HTTP requests in progress, hooks running, timers "
            "(an idle WebSocket has none)",
            live_greenlets(),
        )


class _LiveCollector(Collector):
    def __init__(self, chat: ChatContext):
        self.chat = chat

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        chat = self.chat
        stats = chat.hub.stats()
        counters = stats.counters
        yield gauge("chat_connections", "Open WebSocket connections", stats.connections)
        yield gauge(
            "chat_users", "Connected users (tabs of one user count once)", stats.users
        )
        yield gauge("chat_rooms", "Rooms with at least one member", stats.rooms)
        yield gauge(
            "chat_members", "Room memberships (users, summed over rooms)", stats.members
        )
        yield gauge(
            "chat_outbox_bytes",
            "Bytes queued for clients, not yet sent",
            sum(app.outbox.size for app in chat.connections),
        )
        redis = GaugeMetricFamily(
            "chat_redis_up",
            "1 when the Redis link is up, 0 when down, absent without Redis",
            labels=[],
        )
        if chat.redis_up is not None:
            redis.add_metric([], 1.0 if chat.redis_up() else 0.0)
            yield redis
        yield CounterMetricFamily(
            "chat_messages_received",
            "Messages accepted and stored",
            value=counters.get("messages", 0),
        )
        yield CounterMetricFamily(
            "chat_message_changes",
            "Edits and deletes accepted and stored",
            value=counters.get("changes", 0),
        )
        yield CounterMetricFamily(
            "chat_reactions",
            "Reactions added or taken back, and stored",
            value=counters.get("reactions", 0),
        )
        yield CounterMetricFamily(
            "chat_messages_sent_first",
            "Messages sent to the members here as soon as stored, sender first "
            "(with Redis: those not waiting for the round trip through it)",
            value=counters.get("sent_first", 0),
        )
        yield CounterMetricFamily(
            "chat_deliveries",
            "Frames queued for clients (one per recipient)",
            value=chat.dispatch.delivered,
        )
        yield CounterMetricFamily(
            "chat_clients_closed_slow",
            "Clients closed with 1008 because they stopped reading",
            value=chat.flusher.slow_closed,
        )
        errors = CounterMetricFamily(
            "chat_errors", "Error frames sent, by code", labels=["code"]
        )
        for key, count in counters.items():
            if key.startswith("error:"):
                errors.add_metric([key[6:]], count)
        yield errors
        yield CounterMetricFamily(
            "chat_rate_limited",
            "Frames refused as rate-limited",
            value=counters.get("error:rate_limited", 0),
        )
