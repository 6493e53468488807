"""Search in the hub: the ``search`` frame. Pure.

Which rooms a search may look in is decided here, from the room directory
(chatcore/private_rooms.py): one room the asker may read, or every room with
messages except the private rooms they are not a member of. The index
(chatcore/search/) only ever sees that list, so a hit, a count or a cursor
never comes from a room the asker may not read. Each connection has a token
bucket of searches; each search is bounded by its backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatcore import identity, protocol
from chatcore.delivery import ConnKey, Delivery
from chatcore.history import HistoryError, HistoryStore, StoredMessage
from chatcore.limits import TokenBucket
from chatcore.private_rooms import PrivateRooms
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.rooms import Connection
from chatcore.search import (
    BadCursor,
    SearchIndex,
    SearchTooBroad,
    highlight,
    terms,
)

SEARCH_RATE, SEARCH_BURST = 0.5, 5  # searches per connection
PURGE_INTERVAL = 10.0  # seconds between rewrites of the index after deletes


class Searching:
    """Answers ``search`` frames.

    Args:
        index: the search backend.
        history: the store whose rooms are searched.
        private: who may read which room.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        index: SearchIndex,
        history: HistoryStore,
        private: PrivateRooms,
        clock: Callable[[], float],
    ):
        self._index = index
        self._history = history
        self._private = private
        self._clock = clock
        self._buckets: dict[ConnKey, TokenBucket] = {}  # one per connection
        self._purge_at: float | None = None  # when deleted words leave the index
        self._purged = float("-inf")  # when they last did
        self.purge_failures = 0

    def search(self, conn: Connection, command: protocol.Search) -> list[Delivery]:
        """One page of results for ``conn``'s user.

        Raises:
            ProtocolError: ``rate_limited``, ``bad_request`` (a bad room or
                cursor, a search too broad) or ``forbidden`` (a private room
                the asker is not a member of).
            HistoryError: the store could not be read.
        """
        bucket = self._buckets.setdefault(
            conn.key, TokenBucket(SEARCH_RATE, SEARCH_BURST)
        )
        if not bucket.take(self._clock()):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many searches; try again in {bucket.retry_after():.0f} s",
                "search",
                retry_after=round(bucket.retry_after(), 1),
            )
        user_id = conn.user.id
        extra: dict[str, Any] = {}
        if command.room is not None:
            try:
                room = identity.check_room(command.room)
            except identity.InvalidName as exc:
                raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "search") from None
            self._private.check(user_id, room, "search")
            rooms = [room]
            extra["room"] = room
        else:
            rooms = self._private.visible(self._history.rooms(), user_id)
        words = terms(command.q)
        try:
            page = self._index.search(words, rooms, command.before, command.limit)
        except (BadCursor, SearchTooBroad) as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "search") from None
        hits = [
            {**m.to_wire(), "highlight": highlight(m.text, words)} for m in page.hits
        ]
        if page.next is not None:
            extra["next"] = page.next
        if page.partial:
            extra["partial"] = True
        frame = protocol.encode(
            "results", q=command.q, hits=hits, more=page.next is not None, **extra
        )
        return [Delivery((conn.key,), frame)]

    def deleted(self, message: StoredMessage) -> None:
        """A message was deleted: it is no longer found, and its words leave
        the index at the next ``tick`` that may rewrite it."""
        self._index.forget(message)
        if self._purge_at is None:
            self._purge_at = max(self._clock(), self._purged + PURGE_INTERVAL)

    def tick(self) -> None:
        """Called every second or so: rewrite the index if deletes wait for
        it, at most once every PURGE_INTERVAL seconds (a rewrite costs about
        0.1 s at 100,000 messages in SQLite). The deletes stand if it fails;
        the next delete tries again."""
        now = self._clock()
        if self._purge_at is None or now < self._purge_at:
            return
        self._purge_at = None
        self._purged = now
        try:
            self._index.purge()
        except HistoryError:
            self.purge_failures += 1

    def disconnected(self, key: ConnKey) -> None:
        self._buckets.pop(key, None)
