"""Storage: the interfaces every backend implements, and the factory.

A history store assigns each room's message ids (1, 2, 3, ... never reused)
and keeps the newest messages of each room, oldest trimmed first. A name
store keeps display names reserved for the user who last used them. Each
backend (memory, SQLite, Redis) implements both, side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class HistoryError(Exception):
    """The store cannot be used or written; the message says why."""


class StoreUnreachable(HistoryError):
    """The store's server (Redis) does not answer; the message says where."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    room: str
    user_id: str
    name: str
    color: str
    text: str
    ts: int
    client_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``message`` object of docs/protocol.md, without ``type``."""
        wire: dict[str, Any] = {
            "id": self.id,
            "room": self.room,
            "user": {"id": self.user_id, "name": self.name, "color": self.color},
            "text": self.text,
            "ts": self.ts,
        }
        if self.client_id is not None:
            wire["client_id"] = self.client_id
        return wire


@dataclass(frozen=True, slots=True)
class Draft:
    """A message accepted by the hub, before the store gives it an id."""

    room: str
    user_id: str
    name: str
    color: str
    text: str
    ts: int
    client_id: str | None = None

    def with_id(self, message_id: int) -> StoredMessage:
        return StoredMessage(
            message_id,
            self.room,
            self.user_id,
            self.name,
            self.color,
            self.text,
            self.ts,
            self.client_id,
        )


class HistoryStore(Protocol):
    @property
    def has_pending(self) -> bool:
        """Whether appended messages wait for ``flush`` to be stored."""

    def append(self, draft: Draft) -> StoredMessage:
        """Take a message and return it with the room's next id."""

    def flush(self) -> None:
        """Store what ``append`` took; raise HistoryError if that failed."""

    def is_pending(self, message: StoredMessage) -> bool:
        """Whether a message ``since`` or ``before`` returned still waits for
        ``flush`` (reads see pending messages; whoever sends them on must
        wait for the flush)."""

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``, oldest first."""

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """The newest ``limit`` messages below ``before_id`` (or the newest of
        all), oldest first, and whether older ones are still stored."""

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        """The message a user sent with this ``client_id``, if still kept."""

    def last_id(self, room: str) -> int:
        """The id of the room's newest message ever, 0 for none."""

    def rooms(self) -> list[str]:
        """Every room that has had a message, by name."""

    def epoch(self) -> str:
        """The id of this history's lifetime: ids are comparable only within
        one epoch. It changes when the history is lost (a new database file,
        a memory store restarted, a Redis restarted without its data)."""

    def problem(self) -> str | None:
        """Why the store cannot take writes now, or None when it can."""

    def close(self) -> None:
        """Release what the store holds open."""


class NameStore(Protocol):
    """Display names reserved for the user who last used them.

    Every method raises HistoryError when the backend cannot be used.
    """

    def holder(self, name_key: str) -> tuple[str, float] | None:
        """The user id holding a reserved name and when it was last used."""

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        """Reserve a name for a user (or refresh its reservation) as of ``now``."""

    def release(self, name_key: str, user_id: str) -> None:
        """Drop a user's reservation of a name (they chose another)."""


MEMORY = ":memory:"


def open_history(path: str, max_per_room: int) -> tuple[HistoryStore, NameStore]:
    """The stores for ``--db``: ``:memory:`` keeps everything in this process
    only, anything else is a SQLite file (created if missing, migrated if older).

    Raises:
        HistoryError: the file cannot be opened or is from a newer release.
    """
    if path == MEMORY:
        from chatcore.history.memory import MemoryHistory, MemoryNames

        return MemoryHistory(max_per_room), MemoryNames()
    from chatcore.history.sqlite import SqliteHistory, SqliteNames

    history = SqliteHistory(path, max_per_room)
    return history, SqliteNames(history.connection)
