"""Search by reading the history store: memory and Redis.

The scan reads the rooms' newest messages through ``HistoryStore.before``,
merges them newest first (by time, then id, then room) and keeps those that
hold every term, case-insensitively, as substrings. It looks at no more than
``scan_max`` messages a search, and reads nothing more once the search has
taken ``seconds_max``: older ones are not found (the page says ``partial``).
Each search costs one ``before`` read per room searched plus one per PAGE
messages looked at (with Redis, a round trip each): the first read of a room
takes FIRST_PAGE messages, the next ones PAGE.
"""

from __future__ import annotations

import heapq
import time

from chatcore.history import HistoryStore, StoredMessage
from chatcore.search import BadCursor, SearchPage, holds

FIRST_PAGE, PAGE = 25, 200  # messages read at once from a room: first, then on
SECONDS_MAX = 0.2  # no more reads after this long (the rest is ``partial``)

# A message's place in the merge: newest first.
_Place = tuple[int, int, str]


def _place(message: StoredMessage) -> _Place:
    return (-message.ts, -message.id, message.room)


def _cursor(place: _Place) -> str:
    return f"{-place[0]}:{-place[1]}:{place[2]}"


def _parse(cursor: str) -> _Place:
    try:
        ts, message_id, room = cursor.split(":", 2)
        return (-int(ts), -int(message_id), room)
    except ValueError:
        raise BadCursor(f"'{cursor[:40]}' is not a search cursor") from None


class HistoryScan:
    """Search by a bounded scan of ``history``.

    Args:
        history: the store read.
        scan_max: the most messages one search looks at.
        seconds_max: no more reads once a search has taken this long.
    """

    def __init__(
        self, history: HistoryStore, scan_max: int, seconds_max: float = SECONDS_MAX
    ):
        self._history = history
        self._scan_max = scan_max
        self._seconds_max = seconds_max

    def search(
        self, terms: tuple[str, ...], rooms: list[str], before: str | None, limit: int
    ) -> SearchPage:
        after = _parse(before) if before is not None else None
        if not terms:
            return SearchPage([], None)
        budget = self._scan_max
        deadline = time.monotonic() + self._seconds_max
        queue: list[tuple[_Place, int, StoredMessage]] = []
        pages: dict[str, tuple[list[StoredMessage], bool]] = {}

        def read(room: str, below: int | None) -> None:
            nonlocal budget
            if time.monotonic() > deadline:
                budget = 0  # out of time: what was read is all there is
                return
            # Small first pages: a common word is found in the newest few.
            size = PAGE if room in pages else FIRST_PAGE
            messages, more = self._history.before(room, below, min(size, budget))
            budget -= len(messages)
            pages[room] = (messages, more)
            if messages:
                newest = messages[-1]
                heapq.heappush(queue, (_place(newest), len(messages) - 1, newest))

        for room in rooms:
            if budget <= 0:
                break
            read(room, -after[1] if after and after[2] == room else None)
        hits: list[StoredMessage] = []
        while queue:
            place, index, message = heapq.heappop(queue)
            messages, more = pages[message.room]
            if index > 0:
                older = messages[index - 1]
                heapq.heappush(queue, (_place(older), index - 1, older))
            elif more and budget > 0:
                read(message.room, message.id)
            if after is not None and place <= after:
                continue
            if not message.deleted and holds(message.text, terms):
                if len(hits) == limit:
                    return SearchPage(hits, _cursor(_place(hits[-1])))
                hits.append(message)
        unread = len(pages) < len(rooms) or any(more for _, more in pages.values())
        return SearchPage(hits, None, partial=budget <= 0 and unread)

    def forget(self, message: StoredMessage) -> None:
        """Nothing to do: the scan reads the store, where the text is gone."""

    def purge(self) -> None:
        """Nothing to do: the scan keeps nothing of its own."""
