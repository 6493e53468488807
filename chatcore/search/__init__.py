"""Search: the interface every backend implements, the query's terms, the
highlight ranges, and the factory. Pure.

A search looks for messages whose text holds every term of a query, in the
rooms it is given (the caller decides which rooms the asker may see), newest
first, a page at a time. Backends: ``sqlite.py`` (an FTS5 index kept by the
history file's triggers) and ``scan.py`` (a bounded scan of the history
store, for memory and Redis). Each answers a page with an opaque cursor for
the next, older one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chatcore.history import StoredMessage

TERMS_MAX = 8  # words of a query that count; the rest are ignored
HIGHLIGHTS_MAX = 50  # ranges marked in one hit


class BadCursor(ValueError):
    """A ``before`` cursor this backend did not hand out."""


class SearchTooBroad(Exception):
    """The search would take more work than one search may; the message says
    what to do instead."""


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[StoredMessage]  # newest first
    next: str | None  # the cursor of the next, older page; None: no more
    partial: bool = False  # older messages exist that this backend did not look at


class SearchIndex(Protocol):
    def search(
        self, terms: tuple[str, ...], rooms: list[str], before: str | None, limit: int
    ) -> SearchPage:
        """The newest ``limit`` kept, undeleted messages of ``rooms`` whose
        text holds every term, older than the cursor ``before``.

        Raises:
            BadCursor: ``before`` is not a cursor of this backend.
            SearchTooBroad: the search hit the work bound.
            HistoryError: the store could not be read.
        """

    def forget(self, message: StoredMessage) -> None:
        """``message`` was just deleted (it is no longer found): its words are
        to leave the store at the next ``purge``."""

    def purge(self) -> None:
        """Remove for good what ``forget`` was told of (the SQLite index
        rewrites itself; nothing to do for a scan).

        Raises:
            HistoryError: the store could not be written.
        """


def terms(query: str) -> tuple[str, ...]:
    """The words of a query that are searched for: case-folded, each with a
    letter or digit (punctuation alone is no word), the first TERMS_MAX."""
    found: list[str] = []
    for word in query.casefold().split():
        if any(ch.isalnum() for ch in word) and word not in found:
            found.append(word)
    return tuple(found[:TERMS_MAX])


def holds(text: str, words: tuple[str, ...]) -> bool:
    """Whether ``text`` holds every one of ``words`` (case-insensitively)."""
    folded = text.casefold()
    return all(word in folded for word in words)


def highlight(text: str, words: tuple[str, ...]) -> list[list[int]]:
    """Where ``words`` occur in ``text``, case-insensitively: sorted, merged
    [start, end) ranges in UTF-16 code units (JavaScript string indices)."""
    folded: list[str] = []
    origin: list[int] = []  # folded character -> index in text
    for index, ch in enumerate(text):
        for part in ch.casefold():
            folded.append(part)
            origin.append(index)
    haystack = "".join(folded)
    spans: list[tuple[int, int]] = []
    for word in words:
        start = haystack.find(word)
        while start >= 0 and len(spans) < 4 * HIGHLIGHTS_MAX:
            end = start + len(word)
            spans.append((origin[start], origin[end - 1] + 1))
            start = haystack.find(word, end)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    units = [0]
    for ch in text:
        units.append(units[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return [[units[start], units[end]] for start, end in merged[:HIGHLIGHTS_MAX]]


def open_search(history: Any, scan_max: int) -> SearchIndex:
    """The search that goes with ``history``: the FTS5 index in its SQLite
    file, else a scan of at most ``scan_max`` messages a search."""
    if type(history).__module__ == "chatcore.history.sqlite":
        from chatcore.search.sqlite import SqliteSearch

        return SqliteSearch(history.connection)
    from chatcore.search.scan import HistoryScan

    return HistoryScan(history, scan_max)
