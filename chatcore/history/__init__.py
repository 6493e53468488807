"""Message history: the interface every store implements, and the factory.

A store assigns each room's message ids (1, 2, 3, ... never reused) and keeps
the newest messages of each room, oldest trimmed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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
    def append(self, draft: Draft) -> StoredMessage:
        """Store a message and return it with the room's next id."""

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``, oldest first."""

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """The newest ``limit`` messages below ``before_id`` (or the newest of
        all), oldest first, and whether older ones are still stored."""

    def last_id(self, room: str) -> int:
        """The id of the room's newest message ever, 0 for none."""

    def close(self) -> None:
        """Release what the store holds open."""
