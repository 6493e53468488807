"""Fan-out: how events of one chat process reach members connected to others.

One process alone needs nothing of this (``local.LocalFanout``). Several
processes sharing a Redis (``redis.RedisFanout``) each keep their own
connections and learn the rest from one pub/sub channel that carries two
kinds of events:

- a stored message, published by the history store in the same atomic step
  that gave it its id, so publication order is id order in every room;
- a membership or typing change of one process (``Join``, ``Leave``,
  ``Nick``, ``Typing``), a moderator's action (``Moderated``), or a note
  that a process's member list must be re-read (``Sync``) or is gone
  (``Gone``).

This module holds the interface and the wire form of those events; it does
no I/O, so the hub can use it and stay pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatcore.delivery import Delivery

Wire = dict[str, str]  # a user as on the wire: {"id", "name", "color"}

# A published message is "m<id> <room> <frame>": cheap to split, and the frame
# goes to the clients unchanged. Room names never contain a space.
MESSAGE_MARK = "m"
EVENT_MARK = "e"


class Fanout(Protocol):
    """Where the hub reports changes that other processes must hear of."""

    #: True when messages reach this process back through a subscription (and
    #: must be delivered only then); False when the hub delivers them itself.
    shared: bool
    #: This process's id in events, so it can ignore its own.
    origin: str

    def publish(self, event: Event) -> None:
        """Send a membership or typing change to the other processes, without
        blocking (a change that cannot be sent is repaired by a later
        ``Sync``)."""


class FanoutHandler(Protocol):
    """What a shared fan-out calls back into (the hub implements it): the
    backend hands over what it hears and sends the deliveries it gets back,
    without knowing who answers."""

    def deliver_published(self, event: Event) -> list[Delivery]:
        """An event from the channel: what to send to whom in this process."""

    def replace_remote(
        self, origin: str, members: dict[str, dict[str, Wire]]
    ) -> list[Delivery]:
        """Everything known of process ``origin``'s members, at once."""

    def recover(self) -> list[Delivery]:
        """The subscription is back: what every local room missed meanwhile."""

    def local_members(self) -> dict[str, dict[str, Wire]]:
        """This process's members, as the other processes should see them."""

    def remote_origins(self) -> set[str]:
        """The other processes that have members here, by id."""


@dataclass(frozen=True, slots=True)
class Published:
    """A stored message, as every process receives it."""

    room: str
    id: int
    frame: str  # the ``message`` frame, ready to send


@dataclass(frozen=True, slots=True)
class Join:
    """A user became a member of a room on process ``origin``."""

    origin: str
    room: str
    user: Wire


@dataclass(frozen=True, slots=True)
class Leave:
    """A user stopped being a member of a room on process ``origin``."""

    origin: str
    room: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Nick:
    """A user took a new name; ``rooms`` are theirs on process ``origin``."""

    origin: str
    user: Wire
    previous: str
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Typing:
    """A user started or stopped typing in a room."""

    origin: str
    room: str
    user: Wire
    active: bool


@dataclass(frozen=True, slots=True)
class Sync:
    """Process ``origin`` rewrote its member list: re-read it."""

    origin: str


@dataclass(frozen=True, slots=True)
class Gone:
    """Process ``origin`` stopped: its users are no longer members."""

    origin: str


@dataclass(frozen=True, slots=True)
class Added:
    """User ``user_id`` was made a member of private room ``room`` by ``by``;
    ``detail``: more of what ``room_added`` says (a direct conversation's
    ``kind`` and ``members``)."""

    origin: str
    room: str
    user_id: str
    by: Wire
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Removed:
    """User ``user_id`` is no longer a member of private room ``room``."""

    origin: str
    room: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Moderated:
    """A moderator acted on process ``origin`` (the store has the change):
    every process applies its live effects to its own connections.

    ``action`` is mute, unmute, kick, ban, unban, role or slow; ``user_id``
    its target ("" for slow); ``room`` "" when server-wide; ``detail`` what
    the target is told (``by``, ``until``, ``seconds``, ``role``, ...).
    """

    origin: str
    action: str
    user_id: str
    room: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReadUpTo:
    """User ``user_id`` read ``room`` up to ``id`` on process ``origin``:
    their connections elsewhere clear their unread badges."""

    origin: str
    user_id: str
    room: str
    id: int


Event = (
    Published
    | Join
    | Leave
    | Nick
    | Typing
    | Sync
    | Gone
    | Added
    | Removed
    | Moderated
    | ReadUpTo
)
_KINDS: dict[str, type[Any]] = {
    "added": Added,
    "removed": Removed,
    "mod": Moderated,
    "join": Join,
    "leave": Leave,
    "nick": Nick,
    "typing": Typing,
    "sync": Sync,
    "gone": Gone,
    "read": ReadUpTo,
}
_NAMES = {kind: name for name, kind in _KINDS.items()}


class BadEvent(ValueError):
    """A payload on the channel that is not an event of this format."""


def message_payload(room: str, message_id: int, frame: str) -> str:
    return f"{MESSAGE_MARK}{message_id} {room} {frame}"


def encode(event: Event) -> str:
    """The channel payload of an event."""
    if isinstance(event, Published):
        return message_payload(event.room, event.id, event.frame)
    fields = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in (
            (name, getattr(event, name))
            for name in event.__slots__  # type: ignore[union-attr]
        )
    }
    body = json.dumps(
        {"k": _NAMES[type(event)], **fields}, ensure_ascii=False, separators=(",", ":")
    )
    return EVENT_MARK + body


def decode(payload: str) -> Event:
    """The event a channel payload carries.

    Raises:
        BadEvent: the payload is not one this module wrote.
    """
    try:
        if payload.startswith(MESSAGE_MARK):
            number, room, frame = payload[1:].split(" ", 2)
            return Published(room, int(number), frame)
        if payload.startswith(EVENT_MARK):
            fields = json.loads(payload[1:])
            kind = _KINDS[fields.pop("k")]
            if "rooms" in fields:
                fields["rooms"] = tuple(fields["rooms"])
            return kind(**fields)  # type: ignore[no-any-return]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadEvent(f"not a chat event: {payload[:80]!r}") from exc
    raise BadEvent(f"not a chat event: {payload[:80]!r}")
