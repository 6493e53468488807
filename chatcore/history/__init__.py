"""Storage: the interfaces every backend implements, and the factory.

A history store assigns each room's message ids (1, 2, 3, ... never reused)
and keeps the newest messages of each room, oldest trimmed first. An edit or
a delete takes the room's next id too, as the message's revision (``rev``):
so a client that knows the newest id it saw can be sent every message and
every change made after it (``since``). Retention counts ids: the messages
kept are those whose id is among the room's newest ``max_per_room`` ids. A name
store keeps display names reserved for the user who last used them. Each
backend (memory, SQLite, Redis) implements both, side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from chatcore.reactions import Reaction, reactions_from_wire


class HistoryError(Exception):
    """The store cannot be used or written; the message says why."""


class StoreUnreachable(HistoryError):
    """The store's server (Redis) does not answer; the message says where."""


class StaleMessage(Exception):
    """A change was refused: the message changed or was trimmed since it was
    read (another process got there first). Read it again and re-check."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """The upload a message carries: what the page shows and links to."""

    id: str
    name: str
    size: int
    type: str  # the sniffed type it is served with
    image: bool
    width: int | None = None
    height: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``attachment`` object of docs/protocol.md (Files and images)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "type": self.type,
            "image": self.image,
            "url": f"/files/{self.id}/{quote(self.name, safe='')}",
        }
        if self.image:
            wire.update(
                width=self.width,
                height=self.height,
                thumb_url=f"/files/{self.id}/thumb",
            )
        return wire

    @staticmethod
    def from_wire(wire: dict[str, Any]) -> Attachment:
        return Attachment(
            wire["id"],
            wire["name"],
            wire["size"],
            wire["type"],
            bool(wire["image"]),
            wire.get("width"),
            wire.get("height"),
        )


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
    edited: int | None = None  # ms since the epoch of the latest edit
    deleted: bool = False  # then ``text`` is "" for good
    rev: int | None = None  # the id of the latest change, None if never changed
    reply_to: int | None = None  # the id of the message this one answers
    # The answered message as it is when this one is sent (chatcore/replies.py):
    # never stored, so a deleted original's text stays nowhere.
    reply: dict[str, Any] | None = field(default=None, compare=False)
    attachment: Attachment | None = None  # gone with a delete
    reactions: tuple[Reaction, ...] = ()  # as shown: per emoji, first reacted first

    @property
    def newest_id(self) -> int:
        """The highest id this message carries: its revision, else its own id.
        Reads after an id order messages by it."""
        return self.id if self.rev is None else max(self.id, self.rev)

    def changed(self, text: str | None, at: int, rev: int) -> StoredMessage:
        """This message after an edit to ``text`` (None: a delete) at ``at``."""
        if text is None:
            return replace(
                self, text="", deleted=True, rev=rev, attachment=None, reactions=()
            )
        return replace(self, text=text, edited=at, rev=rev)

    def change_event(
        self, by: dict[str, str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The ``edited`` or ``deleted`` frame (type, fields) announcing this
        message's latest change; ``by``: who deleted it, if not its author."""
        if self.deleted:
            extra = {"by": by} if by is not None else {}
            return "deleted", {
                "rev": self.rev,
                "room": self.room,
                "id": self.id,
                **extra,
            }
        return "edited", {
            "rev": self.rev,
            "room": self.room,
            "id": self.id,
            "text": self.text,
            "edited": self.edited,
            "user": {"id": self.user_id, "name": self.name, "color": self.color},
        }

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
        if self.edited is not None:
            wire["edited"] = self.edited
        if self.deleted:
            wire["deleted"] = True
        if self.attachment is not None:
            wire["attachment"] = self.attachment.to_wire()
        if self.rev is not None:
            wire["rev"] = self.rev
        if self.reply_to is not None:
            wire["reply_to"] = self.reply_to
        if self.reply is not None:
            wire["reply"] = self.reply
        if self.reactions:
            wire["reactions"] = [reaction.to_wire() for reaction in self.reactions]
        return wire

    def reacted_event(
        self, emoji: str, by: tuple[str, str], added: bool
    ) -> dict[str, Any]:
        """The fields of the ``reacted`` frame: who (``by``: id, name) added or
        took back ``emoji``, and this message's reactions now."""
        return {
            "room": self.room,
            "id": self.id,
            "emoji": emoji,
            "by": {"id": by[0], "name": by[1]},
            "added": added,
            "rev": self.rev,
            "reactions": [reaction.to_wire() for reaction in self.reactions],
        }


def from_wire(wire: dict[str, Any]) -> StoredMessage:
    """A message from its ``to_wire`` form."""
    user = wire["user"]
    return StoredMessage(
        wire["id"],
        wire["room"],
        user["id"],
        user["name"],
        user["color"],
        wire["text"],
        wire["ts"],
        wire.get("client_id"),
        wire.get("edited"),
        bool(wire.get("deleted", False)),
        wire.get("rev"),
        wire.get("reply_to"),
        attachment=(
            Attachment.from_wire(wire["attachment"]) if "attachment" in wire else None
        ),
        reactions=reactions_from_wire(wire.get("reactions", ())),
    )


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
    reply_to: int | None = None
    # The quote a store that publishes messages itself (Redis) sends with
    # this one; never stored.
    reply: dict[str, Any] | None = field(default=None, compare=False)
    attachment: Attachment | None = None

    def with_id(self, message_id: int) -> StoredMessage:
        """The message as stored: with its id, without the quote."""
        return StoredMessage(
            message_id,
            self.room,
            self.user_id,
            self.name,
            self.color,
            self.text,
            self.ts,
            self.client_id,
            reply_to=self.reply_to,
            attachment=self.attachment,
        )


def kept_above(last_id: int, max_per_room: int) -> int:
    """The id at and below which a room's messages are no longer kept."""
    return max(0, last_id - max_per_room)


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
        """The ``limit`` messages first new or changed after ``after_id``: those
        whose ``newest_id`` is above it, in their current state, by
        ``newest_id``."""

    def after(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``, in id
        order, in their current state (a transcript read forwards)."""

    def get(self, room: str, message_id: int) -> StoredMessage | None:
        """One kept message in its current state, None if not kept (never
        sent, trimmed, or a revision id)."""

    def change(
        self,
        current: StoredMessage,
        text: str | None,
        at: int,
        by: dict[str, str] | None = None,
    ) -> StoredMessage:
        """Edit a message to ``text``, or delete it (``text`` None: its text is
        gone from the store for good), at ``at`` (ms); the change takes the
        room's next id as its ``rev``. Return the message as it is now. A
        store shared by processes publishes the change (``change_event``,
        with ``by``) in the same step, as it does messages.

        Raises:
            StaleMessage: ``current`` is no longer the message's state.
            HistoryError: the store could not be written.
        """

    def react(
        self, room: str, message_id: int, emoji: str, user: tuple[str, str], at: int
    ) -> tuple[StoredMessage, bool]:
        """Toggle ``user``'s (id, name) reaction ``emoji`` on a kept message
        at ``at`` (ms): add it if absent, else remove it. The toggle takes the
        room's next id as the message's ``rev``. Return the message as it is
        now, and whether the reaction was added. A store shared by processes
        publishes the ``reacted`` event in the same step. A deleted message's
        reactions are gone with its text; trimmed messages take theirs along.

        Raises:
            ReactionRefused: no such message, deleted, or past a bound.
            HistoryError: the store could not be written.
        """

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """The newest ``limit`` messages below ``before_id`` (or the newest of
        all), oldest first, in their current state, and whether older ones
        are still stored."""

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        """The message a user sent with this ``client_id``, if still kept."""

    def last_id(self, room: str) -> int:
        """The room's newest id ever (a message's or a revision's), 0 for none."""

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
