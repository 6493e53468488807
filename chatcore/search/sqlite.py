"""Search in the SQLite file: an FTS5 index of the kept messages.

The index (``search_index``, made by the history's migration) is kept by
triggers on ``messages``: a message is indexed when written, re-indexed when
edited, and leaves the index when deleted or trimmed. Its rowid is the order
in which messages were written, so newest first is rowid descending and a
page's cursor is the last rowid it returned (``k<rowid>``).

Each term of the query becomes one quoted FTS5 string with a prefix star
(``"term"*``): whatever the asker types is matched as words and never read as
FTS5 syntax (``NEAR``, ``*``, ``"``, ``OR``, column filters).
"""

from __future__ import annotations

import json
import sqlite3

from chatcore.history import HistoryError, StoredMessage
from chatcore.search import BadCursor, SearchPage, SearchTooBroad

# The most SQLite virtual-machine steps one search may take (a few tens of
# milliseconds); past them it is stopped and refused.
STEPS_MAX = 20_000_000
_STEPS_CHECKED = 10_000  # how often the progress handler counts
PREFIX_MIN = 3  # characters a term needs to match word starts too

_COLUMNS = (
    "m.id, m.room, m.user_id, m.name, m.color, m.text, m.ts, m.client_id, "
    "m.edited, m.deleted, m.rev, m.reply_to"
)
# CROSS JOIN keeps the index the outer loop, read newest first; only the
# rooms given are kept.
_SEARCH = (
    f"SELECT {_COLUMNS}, k.key FROM search_index "
    "CROSS JOIN search_keys AS k ON k.key = search_index.rowid "
    "CROSS JOIN messages AS m ON m.room = k.room AND m.id = k.id "
    "WHERE search_index MATCH ? AND search_index.rowid < ? "
    "AND k.room IN (SELECT value FROM json_each(?)) "
    "ORDER BY search_index.rowid DESC LIMIT ?"
)


def match_expression(terms: tuple[str, ...]) -> str:
    """The FTS5 query for ``terms``: every term as a quoted string, a prefix
    one from PREFIX_MIN characters on (a shorter prefix would expand to a
    large part of the vocabulary)."""
    return " ".join(
        '"' + term.replace('"', '""') + '"' + ("*" if len(term) >= PREFIX_MIN else "")
        for term in terms
    )


class SqliteSearch:
    """Search through the FTS5 index in the history's file.

    Args:
        db: the history store's connection (one file, one writer).
    """

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self.dirty = False  # deleted words wait for ``purge``

    def search(
        self, terms: tuple[str, ...], rooms: list[str], before: str | None, limit: int
    ) -> SearchPage:
        below = _parse(before) if before is not None else 2**63 - 1
        if not terms or not rooms:
            return SearchPage([], None)
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += _STEPS_CHECKED
            return 1 if steps > STEPS_MAX else 0

        self._db.set_progress_handler(count, _STEPS_CHECKED)
        try:
            rows = self._db.execute(
                _SEARCH, (match_expression(terms), below, json.dumps(rooms), limit + 1)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if steps > STEPS_MAX:
                raise SearchTooBroad(
                    "the search matched too much to finish; "
                    "use longer words, more of them, or one room"
                ) from None
            raise HistoryError(f"cannot search: {exc}") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot search: {exc}") from None
        finally:
            self._db.set_progress_handler(None, 0)
        hits = [_message(row) for row in rows[:limit]]
        more = len(rows) > limit
        return SearchPage(hits, f"k{rows[limit - 1][-1]}" if more else None)

    def forget(self, message: StoredMessage) -> None:
        """The message is no longer found (the trigger saw to that); its words
        leave the file at the next ``purge``."""
        self.dirty = True

    def purge(self) -> None:
        """Rewrite the index without the deleted messages' words.

        FTS5 (before SQLite 3.42's secure-delete) records a delete as a
        marker and keeps the old entry until segments merge; 'optimize'
        merges them all now, the history's ``secure_delete`` zeroes the
        pages freed, and a checkpoint empties the WAL of the old pages. It
        rewrites the whole index (about 0.1 s at 100,000 messages, see
        bench/results/search.md), so deletes share one: the caller decides
        how often (chatcore/searching.py).
        """
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO search_index (search_index) VALUES ('optimize')"
                )
            # The WAL still holds the pages as they were; write them back
            # and empty it.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot clean the search index: {exc}") from None
        self.dirty = False


def _parse(cursor: str) -> int:
    digits = cursor[1:]
    if (
        cursor.startswith("k")
        and digits.isascii()
        and digits.isdigit()
        and len(digits) < 19
    ):
        return int(digits)
    raise BadCursor(f"'{cursor[:40]}' is not a search cursor")


def _message(row: tuple[object, ...]) -> StoredMessage:
    *fields, deleted, rev, reply_to, _key = row
    return StoredMessage(*fields, bool(deleted), rev, reply_to)  # type: ignore[arg-type]
