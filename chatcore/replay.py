"""Reading history for a client: a join's replay after ``since``, and pages. Pure.

A replay is the messages a rejoining client missed, new or changed (edited,
deleted) since, in the order of their newest id, at most ``REPLAY_MAX`` of
them, preceded by a ``gap`` frame when older missed ones are not included
(docs/protocol.md, Recovery). Messages still waiting for
the store's group commit are sent only once written.
"""

from __future__ import annotations

from chatcore import protocol
from chatcore.cluster import (
    REPLAY_MAX,
    Cluster,
    gap_frame,
    replay_start,
    reset_frame,
)
from chatcore.delivery import ConnKey, Delivery
from chatcore.history import HistoryStore
from chatcore.posting import message_delivery
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.replies import with_quotes


class Replay:
    """Answers ``join`` with ``since`` and ``history`` from the store.

    Args:
        history: where messages are read.
        cluster: one process or several (a replay may need to catch up).
        kept: how many ids of each room the store keeps (``--history-max``).
    """

    def __init__(self, history: HistoryStore, cluster: Cluster, kept: int):
        self._history = history
        self._cluster = cluster
        self._kept = kept

    def since(
        self, key: ConnKey, room_name: str, since: int, epoch: str | None = None
    ) -> list[Delivery]:
        """The messages after ``since`` for one joiner.

        A ``since`` from another ``epoch``, or above every id the room ever
        had, was counted by a history that is gone: the joiner gets
        ``reset`` and then the replay of what there is now.

        Raises:
            HistoryError: the store could not be read.
        """
        history = self._history
        last = history.last_id(room_name)
        out = []
        current = self._cluster.epoch
        if since > last or (epoch is not None and epoch != current):
            out.append(Delivery((key,), reset_frame(room_name, current)))
            since = 0
        start = replay_start(since, last, self._kept)
        missed = history.since(room_name, start, REPLAY_MAX)
        missed = self._cluster.replayed(key, room_name, missed, last)
        missed = with_quotes(history, missed)
        if start > since:
            out.append(Delivery((key,), gap_frame(room_name, since, start + 1)))
        out += [
            message_delivery(m, (key,), waits_for_store=history.is_pending(m))
            for m in missed
        ]
        return out

    def page(
        self, key: ConnKey, room_name: str, before: int | None, limit: int
    ) -> list[Delivery]:
        """One ``history`` page: the newest ``limit`` messages below ``before``.

        Raises:
            HistoryError: the store could not be read.
        """
        history = self._history
        messages, more = history.before(room_name, before, limit)
        frame = protocol.encode(
            "history",
            room=room_name,
            messages=[m.to_wire() for m in with_quotes(history, messages)],
            more=more,
        )
        if not any(history.is_pending(m) for m in messages):
            return [Delivery((key,), frame)]
        failed = ProtocolError(
            ErrorCode.INTERNAL, "the history could not be read; try again", "history"
        )
        return [
            Delivery(
                (key,),
                frame,
                durable=True,
                fallback=Delivery((key,), protocol.encode_error(failed)),
            )
        ]
