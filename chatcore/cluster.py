"""One process or several: how stored messages reach members, chosen once. Pure.

``Solo`` is a chat that runs as one process: a stored message goes to the
room at once, sender first. ``Shared`` is one of several processes on a
shared fan-out (Redis): every process, the sender's included, delivers a
message to its own members only when it comes back from the subscription, so
all send a room's messages in the same order and none sends one twice. It
also keeps what that takes: the newest id delivered per room, and the holds
that keep a joiner's replay ahead of live messages.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from chatcore import protocol
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import Event, Fanout, Published
from chatcore.history import HistoryError, HistoryStore, StoredMessage, kept_above
from chatcore.posting import message_delivery
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.replies import with_quotes
from chatcore.rooms import Room

REPLAY_MAX = 500  # messages replayed by one join with since
# A joiner's replay may race live messages of other processes: it is read
# again (at most this often) until it reaches what was delivered live.
CATCH_UP_READS = 5
_HOLD_ALL = 1 << 62  # hold back every live message while a replay is read


class Cluster(Protocol):
    """What differs between one process and several."""

    origin: str
    epoch: str  # the history's epoch, as this process knows it now
    sent_first: int  # messages sent to the members here as soon as stored

    def publish(self, event: Event) -> None:
        """Tell the other processes of a membership or typing change."""

    def posted(
        self, stored: StoredMessage, room: Room, sender: ConnKey | None
    ) -> list[Delivery]:
        """A message was stored: what this process sends now."""

    def changed(
        self,
        stored: StoredMessage,
        room: Room,
        sender: ConnKey,
        by: dict[str, str] | None,
        waits_for_store: bool,
    ) -> list[Delivery]:
        """A message was edited or deleted: what this process sends now
        (``waits_for_store``: the change is stored only by the next flush)."""

    def reacted(
        self,
        event: dict[str, Any],
        room: Room,
        sender: ConnKey,
        waits_for_store: bool,
    ) -> list[Delivery]:
        """A message's reactions changed (``event``: the ``reacted`` frame's
        fields): what this process sends now."""

    def joining(self, key: ConnKey, room_name: str, replays: bool) -> None:
        """A connection is about to join a room (and read a replay)."""

    def replayed(
        self, key: ConnKey, room_name: str, missed: list[StoredMessage], last: int
    ) -> list[StoredMessage]:
        """A replay was read: the messages to replay, caught up if need be."""

    def left(self, key: ConnKey, room_name: str, room_gone: bool) -> None:
        """A connection left a room (the last one here, if ``room_gone``)."""

    def deliver(self, event: Published) -> list[Delivery]:
        """A stored message from the subscription: what to send here."""

    def recover(self) -> list[Delivery]:
        """The subscription is back: what local rooms missed meanwhile."""


class Solo:
    """A chat that runs as one process: there is nobody else to tell.

    Args:
        epoch: the history's epoch (fixed while this process runs).
    """

    origin = "local"

    def __init__(self, epoch: str):
        self.epoch = epoch
        self.sent_first = 0

    def publish(self, event: Event) -> None:
        pass

    def posted(
        self, stored: StoredMessage, room: Room, sender: ConnKey | None
    ) -> list[Delivery]:
        self.sent_first += 1
        return [message_delivery(stored, room.targets_from(sender), sender=sender)]

    def changed(
        self,
        stored: StoredMessage,
        room: Room,
        sender: ConnKey,
        by: dict[str, str] | None,
        waits_for_store: bool,
    ) -> list[Delivery]:
        targets = room.targets_from(sender)
        return [change_delivery(stored, targets, sender, by, waits_for_store)]

    def reacted(
        self,
        event: dict[str, Any],
        room: Room,
        sender: ConnKey,
        waits_for_store: bool,
    ) -> list[Delivery]:
        targets = room.targets_from(sender)
        return [reacted_delivery(event, targets, sender, waits_for_store)]

    def joining(self, key: ConnKey, room_name: str, replays: bool) -> None:
        pass

    def replayed(
        self, key: ConnKey, room_name: str, missed: list[StoredMessage], last: int
    ) -> list[StoredMessage]:
        return missed

    def left(self, key: ConnKey, room_name: str, room_gone: bool) -> None:
        pass

    def deliver(self, event: Published) -> list[Delivery]:
        return []  # there is no subscription

    def recover(self) -> list[Delivery]:
        return []


class Shared:
    """One of several processes that share rooms through ``fanout``.

    Args:
        fanout: the link to the other processes.
        history: the shared store, read to recover and to catch up.
        rooms: this process's rooms by name (the hub's, read only).
        kept: how many ids of each room the store keeps (``--history-max``).
    """

    def __init__(
        self,
        fanout: Fanout,
        history: HistoryStore,
        rooms: dict[str, Room],
        kept: int,
    ):
        self._fanout = fanout
        self._history = history
        self._kept = kept
        self._rooms = rooms
        self.origin = fanout.origin
        self.epoch = history.epoch()
        # The newest message id delivered from the subscription, per room
        # with members here.
        self.delivered: dict[str, int] = {}
        # room -> conn -> a joiner's replay covers ids up to here: live
        # messages up to it are not delivered to that conn a second time.
        self._holds: dict[str, dict[ConnKey, int]] = {}
        self.sent_first = 0

    def publish(self, event: Event) -> None:
        self._fanout.publish(event)

    def posted(
        self, stored: StoredMessage, room: Room, sender: ConnKey | None
    ) -> list[Delivery]:
        """Sender first, where that keeps the room's order: when every id
        before this one was delivered here already, this message is the
        room's next on the channel too, so it goes to the members here now
        (its sender first) instead of after the round trip through the
        subscription, which then drops it as delivered. Otherwise an earlier
        id is still on its way, and this one waits for the channel like
        everyone else's (docs/architecture.md, "Sender first")."""
        if self.delivered.get(room.name) != stored.id - 1:
            return []
        self.delivered[room.name] = stored.id
        self.sent_first += 1
        targets = self._unheld(room.name, room.targets_from(sender), stored.id)
        if not targets:
            return []
        return [message_delivery(stored, targets, sender=sender)]

    def changed(
        self,
        stored: StoredMessage,
        room: Room,
        sender: ConnKey,
        by: dict[str, str] | None,
        waits_for_store: bool,
    ) -> list[Delivery]:
        return []  # the store published it: delivered like a message

    def reacted(
        self,
        event: dict[str, Any],
        room: Room,
        sender: ConnKey,
        waits_for_store: bool,
    ) -> list[Delivery]:
        return []  # the store published it: delivered like a message

    def joining(self, key: ConnKey, room_name: str, replays: bool) -> None:
        if room_name not in self.delivered:
            # Where live delivery starts, should the subscription need to
            # recover the room later (a read: done before any change).
            with contextlib.suppress(HistoryError):  # then nothing to recover
                self.delivered[room_name] = self._history.last_id(room_name)
        if replays:
            self._holds.setdefault(room_name, {})[key] = _HOLD_ALL

    def replayed(
        self, key: ConnKey, room_name: str, missed: list[StoredMessage], last: int
    ) -> list[StoredMessage]:
        """Complete a replay read while live messages kept arriving, then
        hold back, for this joiner, the live ones the replay contains."""
        covered = max(last, missed[-1].newest_id if missed else 0)
        for _ in range(CATCH_UP_READS):
            if self.delivered.get(room_name, 0) <= covered:
                break
            more = self._history.since(room_name, covered, REPLAY_MAX)
            if not more:
                break
            missed = missed + more
            covered = more[-1].newest_id
        holds = self._holds.get(room_name)
        if holds is not None and key in holds:
            holds[key] = covered
        return missed

    def left(self, key: ConnKey, room_name: str, room_gone: bool) -> None:
        holds = self._holds.get(room_name)
        if holds is not None and holds.pop(key, None) is not None and not holds:
            del self._holds[room_name]
        if room_gone:
            self.delivered.pop(room_name, None)  # read again if someone rejoins

    def deliver(self, event: Published) -> list[Delivery]:
        """A stored message from the subscription: to every member here (its
        sender's echo included) unless delivered already."""
        room = self._rooms.get(event.room)
        if room is None:
            return []  # nobody here: nothing to track either
        if event.id <= self.delivered.get(event.room, 0):
            return []  # a recovery read and the live channel overlapped
        self.delivered[event.room] = event.id
        targets = self._unheld(event.room, room.targets, event.id)
        return [Delivery(targets, event.frame)] if targets else []

    def _unheld(
        self, room_name: str, targets: tuple[ConnKey, ...], message_id: int
    ) -> tuple[ConnKey, ...]:
        """``targets`` without the joiners whose replay already had this
        message; a hold below this id is done with (every later id is
        higher)."""
        holds = self._holds.get(room_name)
        if not holds:
            return targets
        targets = tuple(k for k in targets if holds.get(k, 0) < message_id)
        for key in [k for k, upto in holds.items() if upto < message_id]:
            del holds[key]
        if not holds:
            del self._holds[room_name]
        return targets

    def recover(self) -> list[Delivery]:
        """After the subscription was lost: deliver what every local room
        missed meanwhile, from the store, or a ``gap`` where it cannot."""
        out: list[Delivery] = []
        for name in [n for n in self.delivered if n not in self._rooms]:
            del self.delivered[name]
        epoch = self._history.epoch()
        if epoch != self.epoch:
            # The store lost its history meanwhile (Redis restarted without
            # its data): members drop what they had; what the new epoch has
            # so far follows.
            self.epoch = epoch
            for name, room in self._rooms.items():
                out.append(Delivery(room.targets, reset_frame(name, epoch)))
                self.delivered[name] = 0
        for name in list(self._rooms):
            after = self.delivered.get(name)
            if after is None:
                continue
            last = self._history.last_id(name)
            if last < after:
                # The store went back in time (Redis restarted without its
                # data): its ids count again from there, and must not be
                # taken for ones delivered already.
                self.delivered[name] = last
                continue
            if last == after:
                continue
            start = replay_start(after, last, self._kept)
            missed = self._history.since(name, start, REPLAY_MAX)
            room = self._rooms[name]
            if start > after:
                out.append(Delivery(room.targets, gap_frame(name, after, start + 1)))
                self.delivered[name] = start
            for message in with_quotes(self._history, missed):
                frame = protocol.encode("message", **message.to_wire())
                out += self.deliver(Published(name, message.newest_id, frame))
        return out


def replay_start(since: int, last: int, kept: int) -> int:
    """Where a replay after ``since`` reads from: at most REPLAY_MAX ids back
    from ``last``, and not below what the store keeps. Above ``since``, the
    ids in between are not replayed (a ``gap``). Ids are not dense (edits
    and deletes take ids too), so the gap is found from ids, not from the
    messages read."""
    return max(since, last - REPLAY_MAX, kept_above(last, kept))


def change_delivery(
    stored: StoredMessage,
    targets: tuple[ConnKey, ...],
    sender: ConnKey,
    by: dict[str, str] | None,
    waits_for_store: bool,
) -> Delivery:
    """The ``edited`` or ``deleted`` frame of a change. One that
    ``waits_for_store`` (a change of a message still pending) goes out once
    the store wrote it, or as an error to its sender if that failed; others
    were written already."""
    kind, fields = stored.change_event(by)
    error = ProtocolError(
        ErrorCode.INTERNAL,
        "the change could not be stored; try again",
        "delete" if stored.deleted else "edit",
    )
    return Delivery(
        targets,
        protocol.encode(kind, **fields),
        durable=waits_for_store,
        fallback=Delivery((sender,), protocol.encode_error(error))
        if waits_for_store
        else None,
        sender_first=bool(targets) and targets[0] == sender,
    )


def reacted_delivery(
    event: dict[str, Any],
    targets: tuple[ConnKey, ...],
    sender: ConnKey,
    waits_for_store: bool,
) -> Delivery:
    """The ``reacted`` frame: the message's whole list of reactions now. One
    that ``waits_for_store`` goes out once the store wrote it, or as an
    error to its sender if that failed."""
    error = ProtocolError(
        ErrorCode.INTERNAL, "the reaction could not be stored; try again", "react"
    )
    return Delivery(
        targets,
        protocol.encode("reacted", **event),
        durable=waits_for_store,
        fallback=Delivery((sender,), protocol.encode_error(error))
        if waits_for_store
        else None,
    )


def gap_frame(room_name: str, after: int, before: int) -> str:
    """``gap``: the messages between ``after`` and ``before`` are not sent."""
    count = before - after - 1
    return protocol.encode(
        "gap", room=room_name, after=after, before=before, count=count
    )


def reset_frame(room_name: str, epoch: str) -> str:
    """``reset``: the room's history a client knew is gone; drop it."""
    return protocol.encode("reset", room=room_name, epoch=epoch)


def choose(
    fanout: Fanout | None,
    history: HistoryStore,
    rooms: dict[str, Room],
    kept: int,
) -> Cluster:
    """The cluster for a fan-out: ``Shared`` when it links processes.

    Raises:
        HistoryError: the store's epoch could not be read.
    """
    if fanout is None or not fanout.shared:
        return Solo(history.epoch())
    return Shared(fanout, history, rooms, kept)
