"""Sends the hub's deliveries: framed once, stored first when they must be durable.

``send`` frames a delivery once and queues the same bytes in every target's
outbox; the ``Dispatcher`` holds stored messages back until the history
store has written them (a group commit per event-loop turn).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import gevent

from chatcore import frames
from chatcore.delivery import Delivery
from chatcore.history import HistoryStore
from chatcore.metrics import ChatMetrics

log = logging.getLogger(__name__)


def send(delivery: Delivery) -> None:
    """Frame a delivery once and queue the same bytes for every target.

    A ``sender_first`` delivery's first target is written at once: the
    sender, whose echo (the acknowledgement) then does not wait behind the
    queueing for the rest of the room. Everything else is written by the
    flusher at the end of the loop turn, so a connection's frames of one turn
    (a new connection's 101, welcome and snapshot) take one system call.
    """
    data = frames.text_frame(delivery.text)
    targets: Any = delivery.targets
    if delivery.close_code is not None:
        for outbox in targets:
            outbox.push(data)
            outbox.close(delivery.close_code, delivery.close_reason)
        return
    if not targets:
        return
    if delivery.sender_first:
        first = targets[0]
        first.push(data)
        first.write_now()
        targets = targets[1:]
    for outbox in targets:
        outbox.push(data)


class Dispatcher:
    """Sends the hub's deliveries, holding back stored messages until durable.

    A ``durable`` delivery waits for the end of the current turn of the event
    loop, when one ``history.flush()`` writes every message appended during
    the turn in a single transaction (a group commit); the waiting deliveries
    then go out in their original order. So a message anyone has seen, its
    sender's echo included, is already in the database. Once something waits,
    later deliveries queue behind it, keeping the order the hub produced.
    """

    def __init__(self, history: HistoryStore, metrics: ChatMetrics):
        self.history = history
        self.metrics = metrics
        self.delivered = 0  # frames queued, one per recipient
        self._waiting: list[tuple[Delivery, float | None]] = []
        self._loop = gevent.get_hub().loop

    def __call__(
        self, deliveries: Iterable[Delivery], started: float | None = None
    ) -> None:
        """Send ``deliveries``; ``started`` (perf_counter) times a broadcast."""
        deliveries = list(deliveries)
        if not self._waiting and not (
            self.history.has_pending and any(d.durable for d in deliveries)
        ):
            self._send_all([(d, started) for d in deliveries])
            return
        if not self._waiting:
            self._loop.run_callback(self.commit_now)
        self._waiting += [(d, started) for d in deliveries]

    def commit_now(self) -> None:
        """Store what waits, then send it (or its fallbacks if storing failed)."""
        waiting, self._waiting = self._waiting, []
        began = time.perf_counter()
        try:
            self.history.flush()
            stored = True
        except Exception:
            log.exception("history write failed; %d deliveries refused", len(waiting))
            stored = False
        self.metrics.history_write_seconds.observe(time.perf_counter() - began)
        if not stored:
            waiting = [
                (d.fallback if d.durable else d, started)
                for d, started in waiting
                if not d.durable or d.fallback is not None
            ]
        self._send_all(waiting)

    def _send_all(self, batch: list[tuple[Any, float | None]]) -> None:
        for delivery, started in batch:
            try:
                send(delivery)
            except Exception:
                log.exception("could not send a delivery")
                continue
            self.delivered += len(delivery.targets)
            if started is not None and delivery.durable:
                self.metrics.broadcast_seconds.observe(time.perf_counter() - started)
