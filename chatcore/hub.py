"""The chat itself: users, connections, rooms, presence, typing and messages.

Pure logic. The hub is handed events (a connection opened, a text frame
arrived, a connection closed, time passed) and answers with deliveries: one
encoded frame and the connections it goes to. It never touches a socket, so
every rule of docs/protocol.md is testable without a network.

Connections are opaque keys chosen by the caller (any hashable object); the
gevent edge passes its own connection objects, so a delivery's targets need
no lookup.

With a shared fan-out (several processes on one Redis) the hub keeps its own
connections only: a stored message is delivered when it comes back from the
subscription (``deliver_published``), the sender's echo included, so every
process sends a room's messages in the same order and none sends one twice;
members of other processes are merged into presence from their events.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chatcore import identity, protocol
from chatcore.config import Settings
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import (
    Event,
    Fanout,
    Gone,
    Join,
    Leave,
    Nick,
    Published,
    Typing,
    Wire,
)
from chatcore.fanout.local import LocalFanout
from chatcore.frames import CloseCode
from chatcore.history import Draft, HistoryError, HistoryStore, StoredMessage
from chatcore.limits import TokenBucket
from chatcore.protocol import ErrorCode, ProtocolError

ROOMS_PER_CONNECTION_MAX = 20
REPLAY_MAX = 500  # messages replayed by one join with since
FRAME_RATE, FRAME_BURST = 20.0, 60  # frames of any type, per connection
# A connection may have STRIKES_MAX frames refused as rate-limited in a row,
# earning one back every 1/STRIKE_RECOVERY seconds; past that it is closed.
STRIKES_MAX, STRIKE_RECOVERY = 20, 0.5
TYPING_RATE, TYPING_BURST = 2.0, 6
# A joiner's replay may race live messages of other processes: it is read
# again (at most this often) until it reaches what was delivered live.
CATCH_UP_READS = 5
_HOLD_ALL = 1 << 62  # hold back every live message while a replay is read


@dataclass(frozen=True, slots=True)
class HubStats:
    """What the hub holds now, and what it has counted since it started."""

    connections: int
    users: int  # a user's tabs count once
    rooms: int  # rooms with at least one member here
    members: int  # room memberships, summed over rooms
    counters: dict[str, int]  # "messages", "error:<code>"


@dataclass(eq=False, slots=True)
class User:
    id: str
    name: str
    color: str
    conns: set[ConnKey] = field(default_factory=set)
    # to_wire() already encoded, for presence snapshots of many users; reset
    # when the name (and so the colour) changes.
    encoded: Any = field(default=None, repr=False)

    def to_wire(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "color": self.color}

    def to_wire_encoded(self) -> Any:
        if self.encoded is None:
            self.encoded = protocol.preencoded(self.to_wire())
        return self.encoded


@dataclass(eq=False, slots=True)
class Connection:
    key: ConnKey
    user: User
    rooms: list[str]
    messages: TokenBucket  # message frames
    typing: TokenBucket  # typing frames
    frames: TokenBucket  # every frame
    strikes: TokenBucket  # refused frames tolerated before closing with 1008


@dataclass(eq=False, slots=True)
class Room:
    name: str
    # in join order (a dict used as an ordered set)
    conns: dict[ConnKey, None] = field(default_factory=dict)
    # user id -> how many of that user's connections are in the room
    members: dict[str, int] = field(default_factory=dict)
    # user id -> time (seconds) at which the typing indicator expires
    typing: dict[str, float] = field(default_factory=dict)
    _targets: tuple[ConnKey, ...] | None = None

    @property
    def targets(self) -> tuple[ConnKey, ...]:
        # Cached: a broadcast to a big room should not rebuild the tuple.
        if self._targets is None:
            self._targets = tuple(self.conns)
        return self._targets

    def targets_from(self, first: ConnKey | None) -> tuple[ConnKey, ...]:
        """Every connection, starting at ``first`` (a sender gets its echo, the
        acknowledgement, before the room's other thousand frames go out)."""
        targets = self.targets
        if first is None or first not in self.conns:
            return targets
        at = targets.index(first)
        return targets[at:] + targets[:at]

    def add(self, conn: Connection) -> bool:
        """Add a connection; return True if its user is a new member."""
        self.conns[conn.key] = None
        self._targets = None
        count = self.members.get(conn.user.id, 0)
        self.members[conn.user.id] = count + 1
        return count == 0

    def discard(self, conn: Connection) -> bool:
        """Remove a connection; return True if its user is no longer a member."""
        self.conns.pop(conn.key, None)
        self._targets = None
        count = self.members.get(conn.user.id, 0) - 1
        if count > 0:
            self.members[conn.user.id] = count
            return False
        self.members.pop(conn.user.id, None)
        return True


class Hub:
    """All chat state of one server process, driven by calls from the edge.

    Args:
        settings: limits (``max_text``, ``rate``, ``burst``, ``typing_timeout``).
        history: where messages are stored and ids assigned.
        clock: seconds since the epoch, as a float (``time.time`` in production).
        rng: source of guest names and anonymous user ids.
        fanout: how other processes hear of this one (default: there are none).
    """

    def __init__(
        self,
        settings: Settings,
        history: HistoryStore,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        fanout: Fanout | None = None,
    ):
        self.settings = settings
        self.history = history
        self.clock = clock
        self.rng = rng or random.Random()
        self.conns: dict[ConnKey, Connection] = {}
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self._names: dict[str, User] = {}  # name_key -> user holding it
        # Plain event counts ("messages", "error:<code>") for the metrics page.
        self.counters: Counter[str] = Counter()
        self.slow_mode = dict(settings.slow_mode)  # room -> seconds between posts
        self._last_post: dict[tuple[str, str], float] = {}  # (room, user id) -> time
        self.limits = {
            "max_text": settings.max_text,
            "rate": settings.rate,
            "burst": settings.burst,
            "history_page": protocol.HISTORY_PAGE_MAX,
        }
        self.fanout: Fanout = fanout or LocalFanout()
        self.shared = self.fanout.shared
        # Members on other processes: room -> user id -> origin -> user.
        self.remote: dict[str, dict[str, dict[str, Wire]]] = {}
        # The newest message id delivered from the subscription, per room.
        self.delivered: dict[str, int] = {}
        # room -> conn -> a joiner's replay covers ids up to here: live
        # messages up to it are not delivered to that conn a second time.
        self._holds: dict[str, dict[ConnKey, int]] = {}

    # -- events from the edge -------------------------------------------------

    def connect(
        self,
        key: ConnKey,
        name: str | None = None,
        room: str | None = None,
        client_key: str | None = None,
    ) -> list[Delivery]:
        """A connection opened: greet it and join its first room."""
        errors: list[ProtocolError] = []
        issued_key = None
        if not client_key:
            # The browser keeps this secret and sends it back as ``key``: it
            # makes its tabs one user and reserves the user's name.
            client_key = issued_key = identity.new_client_key(self.rng)
        user_id = identity.user_id_for(client_key, self.rng)
        user = self.users.get(user_id)
        if user is None:
            user = User(user_id, "", "")
            elsewhere = self._remote_user(user_id)
            if elsewhere is not None:  # the same user, connected to another process
                name = elsewhere["name"]
            self._set_name(user, self._initial_name(user, name, errors))
            self.users[user_id] = user
        user.conns.add(key)
        conn = Connection(
            key,
            user,
            [],
            messages=TokenBucket(self.settings.rate, self.settings.burst),
            typing=TokenBucket(TYPING_RATE, TYPING_BURST),
            frames=TokenBucket(
                max(FRAME_RATE, 2 * self.settings.rate),
                max(FRAME_BURST, 2 * self.settings.burst),
            ),
            strikes=TokenBucket(STRIKE_RECOVERY, STRIKES_MAX),
        )
        self.conns[key] = conn
        out: list[Delivery] = []
        try:
            first_room = identity.check_room(room or identity.DEFAULT_ROOM)
        except identity.InvalidName as exc:
            errors.append(ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "join"))
            first_room = None
        if first_room:
            out = self._join(conn, first_room, since=None)
        extra = {"key": issued_key} if issued_key else {}
        welcome = protocol.encode(
            "welcome",
            user=user.to_wire(),
            rooms=list(conn.rooms),
            limits=self.limits,
            **extra,
        )
        greeting = [Delivery((key,), welcome)]
        greeting += [Delivery((key,), protocol.encode_error(e)) for e in errors]
        return greeting + out

    def receive(self, key: ConnKey, text: str) -> list[Delivery]:
        """A text frame arrived from a connection."""
        conn = self.conns.get(key)
        if conn is None:
            return []
        try:
            if not conn.frames.take(self.clock()):
                raise ProtocolError(
                    ErrorCode.RATE_LIMITED,
                    "too many frames; slow down",
                    _peek_type(text),
                )
            command = protocol.decode(text)
            try:
                return self._dispatch(conn, command)
            except HistoryError:
                raise ProtocolError(
                    ErrorCode.INTERNAL,
                    "the history store cannot be reached; try again",
                    _peek_type(text),
                ) from None
        except ProtocolError as error:
            self.counters["error:" + error.code.value] += 1
            reply = Delivery((key,), protocol.encode_error(error))
            if error.code is ErrorCode.RATE_LIMITED and not conn.strikes.take(
                self.clock()
            ):
                # Sustained abuse: refusing frames one by one is not enough.
                return [
                    Delivery(
                        (key,),
                        reply.text,
                        close_code=CloseCode.POLICY_VIOLATION,
                        close_reason="too many frames, for too long",
                    )
                ]
            return [reply]

    def receive_binary(self, key: ConnKey) -> list[Delivery]:
        error = ProtocolError(
            ErrorCode.BAD_REQUEST,
            "binary frames are not supported; send JSON as text frames",
        )
        return [Delivery((key,), protocol.encode_error(error))]

    def disconnect(self, key: ConnKey) -> list[Delivery]:
        """A connection closed, for whatever reason. Safe to call twice."""
        conn = self.conns.pop(key, None)
        if conn is None:
            return []
        out: list[Delivery] = []
        for room_name in list(conn.rooms):
            out += self._leave(conn, room_name)
        user = conn.user
        user.conns.discard(key)
        if not user.conns:
            del self.users[user.id]
            if self._names.get(identity.name_key(user.name)) is user:
                del self._names[identity.name_key(user.name)]
            if not identity.is_guest(user.name):  # the ttl counts from last use
                try:
                    self.history.hold_name(
                        identity.name_key(user.name), user.id, self.clock()
                    )
                except HistoryError:
                    pass  # the reservation is refreshed on the next connect
        return out

    def expire_typing(self) -> list[Delivery]:
        """Clear typing indicators whose typist went quiet; call every second or so."""
        now = self.clock()
        out: list[Delivery] = []
        for room in self.rooms.values():
            expired = [uid for uid, until in room.typing.items() if until <= now]
            for user_id in expired:
                out += self._stop_typing(room, self.users.get(user_id), user_id)
        return out

    # -- commands ---------------------------------------------------------------

    def _dispatch(self, conn: Connection, command: protocol.Command) -> list[Delivery]:
        match command:
            case protocol.SendMessage():
                return self._message(conn, command)
            case protocol.Typing():
                return self._typing(conn, command)
            case protocol.Join():
                room = self._valid_room(command.room, "join")
                return self._join(conn, room, command.since)
            case protocol.Leave():
                self._require_member(conn, command.room, "leave")
                return self._leave(conn, command.room) + [
                    Delivery((conn.key,), protocol.encode("left", room=command.room))
                ]
            case protocol.Nick():
                return self._nick(conn, command.name)
            case protocol.History():
                return self._history(conn, command)
            case protocol.Ping():
                return [Delivery((conn.key,), protocol.encode("pong", t=command.t))]
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def _message(
        self, conn: Connection, command: protocol.SendMessage
    ) -> list[Delivery]:
        room_name = command.room
        if room_name is None:
            if not conn.rooms:
                raise ProtocolError(
                    ErrorCode.NOT_IN_ROOM, "join a room before sending", "message"
                )
            room_name = conn.rooms[0]
        self._require_member(conn, room_name, "message")
        _, deliveries = self._post(
            conn.user,
            room_name,
            command.text,
            command.client_id,
            conn.messages,
            conn.key,
        )
        return deliveries

    def post(
        self,
        author: User,
        room_name: str,
        text: str,
        client_id: str | None,
        bucket: TokenBucket,
    ) -> tuple[StoredMessage, list[Delivery]]:
        """A message from outside any connection (the bot API).

        Raises:
            ProtocolError: the same refusals a WebSocket client gets.
        """
        room_name = self._valid_room(room_name, "message")
        return self._post(author, room_name, text, client_id, bucket, None)

    def _post(
        self,
        user: User,
        room_name: str,
        text: str,
        client_id: str | None,
        bucket: TokenBucket,
        sender: ConnKey | None,
    ) -> tuple[StoredMessage, list[Delivery]]:
        """Check, store and broadcast one message: the path every message takes."""
        if not text.strip():
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "the message is empty", "message"
            )
        if len(text) > self.settings.max_text:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"the message is {len(text)} characters; "
                f"the limit is {self.settings.max_text}",
                "message",
            )
        if client_id is not None:
            try:
                earlier = self.history.find(user.id, client_id)
            except HistoryError:
                raise _not_stored(client_id) from None
            if earlier is not None:
                # A resend (say, after a reconnect): ack the sender again with
                # the original id; store and broadcast nothing.
                if sender is None:
                    return earlier, []
                return earlier, [self._message_delivery(earlier, (sender,))]
        now = self.clock()
        if sender is not None:
            self._check_slow_mode(room_name, user, now)
        if not bucket.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"slow down: at most {bucket.rate:g} messages per second "
                f"(try again in {bucket.retry_after():.1f} s)",
                "message",
            )
        stored = self._store(
            Draft(
                room_name,
                user.id,
                user.name,
                user.color,
                text,
                int(now * 1000),
                client_id,
            )
        )
        self.counters["messages"] += 1
        room = self.rooms.get(room_name)
        if room is None:  # a bot may post to a room nobody is in
            return stored, []
        out = self._stop_typing(room, user, user.id)
        if self.shared:  # delivered when it comes back from the subscription
            return stored, out
        out.append(
            self._message_delivery(stored, room.targets_from(sender), sender=sender)
        )
        return stored, out

    def _store(self, draft: Draft) -> StoredMessage:
        try:
            return self.history.append(draft)
        except HistoryError:
            raise _not_stored(draft.client_id) from None

    def _check_slow_mode(self, room_name: str, user: User, now: float) -> None:
        interval = self.slow_mode.get(room_name)
        if interval is None:
            return
        last = self._last_post.get((room_name, user.id))
        if last is not None and now - last < interval:
            wait = interval - (now - last)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"slow mode: one message every {interval:g} s in #{room_name}; "
                f"wait {wait:.0f} s",
                "message",
                retry_after=round(wait, 1),
            )
        self._last_post[(room_name, user.id)] = now

    def _message_delivery(
        self,
        stored: StoredMessage,
        targets: tuple[ConnKey, ...],
        *,
        waits_for_store: bool = True,
        sender: ConnKey | None = None,
    ) -> Delivery:
        """A ``message`` frame. One that ``waits_for_store`` goes out only once
        the store has written it (it may still be pending); a fresh one from a
        sender falls back to an error for that sender if the write fails."""
        fallback = None
        if sender is not None:
            failed = ProtocolError(
                ErrorCode.INTERNAL,
                "the message could not be stored, so it was not sent; try again",
                "message",
                **({"client_id": stored.client_id} if stored.client_id else {}),
            )
            fallback = Delivery((sender,), protocol.encode_error(failed))
        return Delivery(
            targets,
            protocol.encode("message", **stored.to_wire()),
            durable=waits_for_store,
            fallback=fallback,
        )

    def _typing(self, conn: Connection, command: protocol.Typing) -> list[Delivery]:
        self._require_member(conn, command.room, "typing")
        now = self.clock()
        if not conn.typing.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, "too many typing events; slow down", "typing"
            )
        room = self.rooms[command.room]
        user = conn.user
        if not command.active:
            return self._stop_typing(room, user, user.id)
        was_typing = user.id in room.typing
        room.typing[user.id] = now + self.settings.typing_timeout
        if was_typing:
            return []  # a refresh: the others already see the indicator
        if self.shared:
            self.fanout.publish(
                Typing(self.fanout.origin, room.name, user.to_wire(), True)
            )
        return self._to_others(
            room,
            user,
            protocol.encode("typing", room=room.name, user=user.to_wire(), active=True),
        )

    def _join(
        self, conn: Connection, room_name: str, since: int | None
    ) -> list[Delivery]:
        if room_name not in conn.rooms and len(conn.rooms) >= ROOMS_PER_CONNECTION_MAX:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a connection can be in at most {ROOMS_PER_CONNECTION_MAX} rooms",
                "join",
            )
        if self.shared and room_name not in self.delivered:
            # Where live delivery starts, should the subscription need to
            # recover the room later (a read: done before any change).
            with contextlib.suppress(HistoryError):  # then nothing to recover
                self.delivered.setdefault(room_name, self.history.last_id(room_name))
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = Room(room_name)
        out: list[Delivery] = []
        if conn.key not in room.conns:
            conn.rooms.append(room_name)
            if room.add(conn):
                user = conn.user
                if self.shared:
                    self.fanout.publish(
                        Join(self.fanout.origin, room_name, user.to_wire())
                    )
                if not self._remote_member(room_name, user.id):
                    out += self._to_others(
                        room, user, self._presence(room, "join", user)
                    )
        snapshot = protocol.encode(
            "presence",
            room=room_name,
            event="snapshot",
            users=self._member_wires(room),
            count=self.member_count(room_name),
            **(
                {"slow_mode": self.slow_mode[room_name]}
                if room_name in self.slow_mode
                else {}
            ),
            **self._typists(room, conn.user),
        )
        out.append(Delivery((conn.key,), snapshot))
        if since is not None:
            if self.shared:
                self._holds.setdefault(room_name, {})[conn.key] = _HOLD_ALL
            out += self._replay(conn, room_name, since)
        return out

    def _replay(self, conn: Connection, room_name: str, since: int) -> list[Delivery]:
        """The messages after ``since``: the newest REPLAY_MAX, in id order,
        preceded by a ``gap`` frame when older missed ones are not included."""
        last = self.history.last_id(room_name)
        missed = self.history.since(
            room_name, max(since, last - REPLAY_MAX), REPLAY_MAX
        )
        if self.shared:
            missed = self._catch_up(conn, room_name, missed, last)
        first = missed[0].id if missed else last + 1
        out = []
        if first > since + 1:
            gap = protocol.encode(
                "gap",
                room=room_name,
                after=since,
                before=first,
                count=first - since - 1,
            )
            out.append(Delivery((conn.key,), gap))
        out += [
            self._message_delivery(
                m, (conn.key,), waits_for_store=self.history.is_pending(m)
            )
            for m in missed
        ]
        return out

    def _leave(self, conn: Connection, room_name: str) -> list[Delivery]:
        room = self.rooms[room_name]
        conn.rooms.remove(room_name)
        holds = self._holds.get(room_name)
        if holds is not None and holds.pop(conn.key, None) is not None and not holds:
            del self._holds[room_name]
        out: list[Delivery] = []
        if room.discard(conn):
            user = conn.user
            out += self._stop_typing(room, user, user.id)
            if self.shared:
                self.fanout.publish(Leave(self.fanout.origin, room_name, user.id))
            if not self._remote_member(room_name, user.id):
                out += self._to_others(room, user, self._presence(room, "leave", user))
        if not room.conns:
            del self.rooms[room_name]
        return out

    def _nick(self, conn: Connection, requested: str) -> list[Delivery]:
        try:
            name = identity.check_name(requested)
        except identity.InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "nick") from None
        user = conn.user
        refusal = self._name_refusal(user, name)
        if refusal:
            raise ProtocolError(ErrorCode.NAME_TAKEN, refusal, "nick")
        previous = user.name
        self._set_name(user, name)
        out = [
            Delivery(
                tuple(user.conns),
                protocol.encode("renamed", user=user.to_wire(), previous=previous),
            )
        ]
        rooms = self._rooms_of(user)
        for room in rooms:
            out += self._to_others(
                room, user, self._presence(room, "nick", user, previous=previous)
            )
        if self.shared:
            self.fanout.publish(
                Nick(
                    self.fanout.origin,
                    user.to_wire(),
                    previous,
                    tuple(room.name for room in rooms),
                )
            )
            # Rooms where the user is a member through another process only.
            for name, members in self.remote.items():
                room = self.rooms.get(name)
                if room is not None and user.id in members and room not in rooms:
                    out += self._to_others(
                        room,
                        user,
                        self._presence(room, "nick", user, previous=previous),
                    )
        return out

    def _history(self, conn: Connection, command: protocol.History) -> list[Delivery]:
        room_name = self._valid_room(command.room, "history")
        if room_name not in self.rooms and self.history.last_id(room_name) == 0:
            raise ProtocolError(
                ErrorCode.NO_SUCH_ROOM, f"there is no room '{room_name}'", "history"
            )
        messages, more = self.history.before(room_name, command.before, command.limit)
        frame = protocol.encode(
            "history",
            room=room_name,
            messages=[m.to_wire() for m in messages],
            more=more,
        )
        if not any(self.history.is_pending(m) for m in messages):
            return [Delivery((conn.key,), frame)]
        failed = ProtocolError(
            ErrorCode.INTERNAL, "the history could not be read; try again", "history"
        )
        return [
            Delivery(
                (conn.key,),
                frame,
                durable=True,
                fallback=Delivery((conn.key,), protocol.encode_error(failed)),
            )
        ]

    # -- helpers --------------------------------------------------------------

    def _initial_name(
        self, user: User, requested: str | None, errors: list[ProtocolError]
    ) -> str:
        if requested:
            try:
                name = identity.check_name(requested)
            except identity.InvalidName as exc:
                errors.append(ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "nick"))
            else:
                refusal = self._name_refusal(user, name)
                if refusal is None:
                    return name
                errors.append(
                    ProtocolError(
                        ErrorCode.NAME_TAKEN, refusal + "; you got a guest name", "nick"
                    )
                )
        while True:
            guest = identity.guest_name(self.rng)
            if identity.name_key(guest) not in self._names:
                return guest

    def _name_refusal(self, user: User, name: str) -> str | None:
        """Why ``user`` cannot take ``name`` now, or None if it can."""
        key = identity.name_key(name)
        holder = self._names.get(key)
        if holder is not None and holder is not user:
            return f"the name '{name}' is taken"
        reserved = self.history.name_holder(key)
        if reserved is not None:
            owner, last_used = reserved
            if owner != user.id and self.clock() - last_used < self.settings.name_ttl:
                return (
                    f"the name '{name}' is reserved by the browser that used it; "
                    "pick another one"
                )
        return None

    def _set_name(self, user: User, name: str) -> None:
        if user.name and self._names.get(identity.name_key(user.name)) is user:
            del self._names[identity.name_key(user.name)]
            self.history.release_name(identity.name_key(user.name), user.id)
        user.name = name
        user.color = identity.color_for(name)
        user.encoded = None
        self._names[identity.name_key(name)] = user
        if not identity.is_guest(name):
            self.history.hold_name(identity.name_key(name), user.id, self.clock())

    def _valid_room(self, room: str, ref: str) -> str:
        try:
            return identity.check_room(room)
        except identity.InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), ref) from None

    def _require_member(self, conn: Connection, room: str, ref: str) -> None:
        if room not in conn.rooms:
            raise ProtocolError(
                ErrorCode.NOT_IN_ROOM, f"you are not in the room '{room[:40]}'", ref
            )

    def _rooms_of(self, user: User) -> list[Room]:
        names: dict[str, None] = {}
        for key in user.conns:
            names.update(dict.fromkeys(self.conns[key].rooms))
        return [self.rooms[name] for name in names]

    def _presence(self, room: Room, event: str, user: User | Wire, **extra: Any) -> str:
        return protocol.encode(
            "presence",
            room=room.name,
            event=event,
            user=user.to_wire() if isinstance(user, User) else user,
            count=self.member_count(room.name),
            **extra,
        )

    def _to_others(self, room: Room, user: User, text: str) -> list[Delivery]:
        targets = tuple(k for k in room.conns if k not in user.conns)
        return [Delivery(targets, text)] if targets else []

    def _typists(self, room: Room, joiner: User) -> dict[str, list[Wire]]:
        """``typing`` for a snapshot: who is typing now, so that a newcomer
        sees the indicator at once (empty: no field)."""
        typing = [
            self.users[uid].to_wire()
            for uid in room.typing
            if uid != joiner.id and uid in self.users
        ]
        return {"typing": typing} if typing else {}

    def _stop_typing(
        self, room: Room, user: User | None, user_id: str
    ) -> list[Delivery]:
        if room.typing.pop(user_id, None) is None or user is None:
            return []
        if self.shared:
            self.fanout.publish(
                Typing(self.fanout.origin, room.name, user.to_wire(), False)
            )
        return self._to_others(
            room,
            user,
            protocol.encode(
                "typing", room=room.name, user=user.to_wire(), active=False
            ),
        )

    # -- events from other processes (shared fan-out) ----------------------------

    def deliver_published(self, event: Event) -> list[Delivery]:
        """An event arrived from the subscription: what to send to whom here.

        A stored message goes to every local member of its room (its sender's
        echo included) unless it was delivered already; other processes'
        membership and typing changes are merged into presence. This
        process's own membership events are ignored: it acted on them when
        they happened.
        """
        if isinstance(event, Published):
            return self._deliver_message(event)
        if event.origin == self.fanout.origin:
            return []
        match event:
            case Join():
                return self._remote_join(event.origin, event.room, event.user)
            case Leave():
                return self._remote_leave(event.origin, event.room, event.user_id)
            case Nick():
                return self._remote_nick(event)
            case Typing():
                return self._remote_typing(event)
            case Gone():
                return self.replace_remote(event.origin, {})
        return []  # Sync: the edge re-reads that process's members

    def _deliver_message(self, event: Published) -> list[Delivery]:
        if event.id <= self.delivered.get(event.room, 0):
            return []  # a recovery read and the live channel overlapped
        self.delivered[event.room] = event.id
        room = self.rooms.get(event.room)
        if room is None:
            return []
        targets = room.targets
        holds = self._holds.get(event.room)
        if holds:
            # A joiner whose replay already had this message skips it; a hold
            # below this id is done with (every later id is higher).
            targets = tuple(k for k in targets if holds.get(k, 0) < event.id)
            for key in [k for k, upto in holds.items() if upto < event.id]:
                del holds[key]
            if not holds:
                del self._holds[event.room]
        return [Delivery(targets, event.frame)] if targets else []

    def _catch_up(
        self, conn: Connection, room_name: str, missed: list[StoredMessage], last: int
    ) -> list[StoredMessage]:
        """Complete a replay read while live messages kept arriving, then
        hold back, for this joiner, the live ones the replay contains."""
        covered = max(last, missed[-1].id if missed else 0)
        for _ in range(CATCH_UP_READS):
            if self.delivered.get(room_name, 0) <= covered:
                break
            more = self.history.since(room_name, covered, REPLAY_MAX)
            if not more:
                break
            missed = missed + more
            covered = more[-1].id
        holds = self._holds.get(room_name)
        if holds is not None and conn.key in holds:
            holds[conn.key] = covered
        return missed

    def recover(self) -> list[Delivery]:
        """After the subscription was lost: deliver what every local room
        missed meanwhile, from the store, or a ``gap`` where it cannot."""
        out: list[Delivery] = []
        for name in [n for n in self.delivered if n not in self.rooms]:
            del self.delivered[name]  # read again if someone here joins it
        for name in list(self.rooms):
            after = self.delivered.get(name)
            if after is None:
                continue
            last = self.history.last_id(name)
            if last < after:
                # The store went back in time (Redis restarted without its
                # data): its ids count again from there, and must not be
                # taken for ones delivered already.
                self.delivered[name] = last
                continue
            if last == after:
                continue
            missed = self.history.since(name, max(after, last - REPLAY_MAX), REPLAY_MAX)
            room = self.rooms.get(name)
            first = missed[0].id if missed else last + 1
            if room is not None and first > after + 1:
                gap = protocol.encode(
                    "gap", room=name, after=after, before=first, count=first - after - 1
                )
                out.append(Delivery(room.targets, gap))
                self.delivered[name] = first - 1
            for message in missed:
                out += self._deliver_message(
                    Published(
                        name,
                        message.id,
                        protocol.encode("message", **message.to_wire()),
                    )
                )
        return out

    def local_members(self) -> dict[str, dict[str, Wire]]:
        """This process's members, as the other processes should see them."""
        return {
            name: {uid: self.users[uid].to_wire() for uid in room.members}
            for name, room in self.rooms.items()
        }

    def remote_origins(self) -> set[str]:
        """The other processes that have members here, by id."""
        return {
            origin
            for members in self.remote.values()
            for origins in members.values()
            for origin in origins
        }

    def replace_remote(
        self, origin: str, members: dict[str, dict[str, Wire]]
    ) -> list[Delivery]:
        """Set everything known of process ``origin``'s members at once (after
        reading its list, or ``{}`` once it is gone); join and leave events go
        out for the differences."""
        out: list[Delivery] = []
        for name, users in list(self.remote.items()):
            for user_id, origins in list(users.items()):
                if origin in origins and user_id not in members.get(name, {}):
                    out += self._remote_leave(origin, name, user_id)
        for name, users in members.items():
            for wire in users.values():
                out += self._remote_join(origin, name, wire)
        return out

    def _remote_user(self, user_id: str) -> Wire | None:
        for users in self.remote.values():
            origins = users.get(user_id)
            if origins:
                return next(iter(origins.values()))
        return None

    def _remote_member(self, room_name: str, user_id: str) -> bool:
        return bool(self.remote.get(room_name, {}).get(user_id))

    def _is_member(self, room_name: str, user_id: str) -> bool:
        room = self.rooms.get(room_name)
        local = room is not None and user_id in room.members
        return local or self._remote_member(room_name, user_id)

    def member_count(self, room_name: str) -> int:
        """Users in a room, on every process (a user's tabs count once)."""
        room = self.rooms.get(room_name)
        local = room.members if room is not None else {}
        remote = self.remote.get(room_name, {})
        return len(local) + sum(1 for uid in remote if uid not in local)

    def _member_wires(self, room: Room) -> list[Any]:
        """The room's users for a snapshot, local ones pre-encoded."""
        users = self.users
        wires: list[Any] = [users[uid].to_wire_encoded() for uid in room.members]
        for user_id, origins in self.remote.get(room.name, {}).items():
            if user_id not in room.members:
                wires.append(next(iter(origins.values())))
        return wires

    def _remote_join(self, origin: str, room_name: str, wire: Wire) -> list[Delivery]:
        user_id = wire["id"]
        was_member = self._is_member(room_name, user_id)
        self.remote.setdefault(room_name, {}).setdefault(user_id, {})[origin] = wire
        room = self.rooms.get(room_name)
        if was_member or room is None:
            return []
        return [Delivery(room.targets, self._presence(room, "join", wire))]

    def _remote_leave(
        self, origin: str, room_name: str, user_id: str
    ) -> list[Delivery]:
        users = self.remote.get(room_name, {})
        origins = users.get(user_id, {})
        wire = origins.pop(origin, None)
        if wire is None:
            return []
        if not origins:
            del users[user_id]
            if not users:
                del self.remote[room_name]
        room = self.rooms.get(room_name)
        if room is None or self._is_member(room_name, user_id):
            return []
        return [Delivery(room.targets, self._presence(room, "leave", wire))]

    def _remote_nick(self, event: Nick) -> list[Delivery]:
        """Another process renamed a user: every process shows the new name,
        and a user with tabs here too is renamed here as well."""
        user_id, new = event.user["id"], event.user
        before = {
            name: self._wire_in(name, user_id)
            for name in self.rooms
            if self._is_member(name, user_id)
        }
        for users in self.remote.values():
            for origin in users.get(user_id, {}):
                users[user_id][origin] = new
        out: list[Delivery] = []
        local = self.users.get(user_id)
        if local is not None and local.name != new["name"]:
            if self._names.get(identity.name_key(local.name)) is local:
                del self._names[identity.name_key(local.name)]
            local.name, local.color = new["name"], new["color"]
            self._names[identity.name_key(local.name)] = local
            out.append(
                Delivery(
                    tuple(local.conns),
                    protocol.encode(
                        "renamed", user=local.to_wire(), previous=event.previous
                    ),
                )
            )
            rooms = tuple(room.name for room in self._rooms_of(local))
            self.fanout.publish(
                Nick(self.fanout.origin, local.to_wire(), event.previous, rooms)
            )
        for name, shown in before.items():
            room = self.rooms.get(name)
            if room is None or shown["name"] == new["name"]:
                continue
            frame = self._presence(room, "nick", new, previous=shown["name"])
            targets = tuple(
                k for k in room.conns if local is None or k not in local.conns
            )
            if targets:
                out.append(Delivery(targets, frame))
        return out

    def _wire_in(self, room_name: str, user_id: str) -> Wire:
        """How a member of a room is shown there now."""
        room = self.rooms.get(room_name)
        if room is not None and user_id in room.members:
            return self.users[user_id].to_wire()
        return next(iter(self.remote[room_name][user_id].values()))

    def _remote_typing(self, event: Typing) -> list[Delivery]:
        room = self.rooms.get(event.room)
        if room is None:
            return []
        local = self.users.get(event.user["id"])
        targets = tuple(k for k in room.conns if local is None or k not in local.conns)
        frame = protocol.encode(
            "typing", room=event.room, user=event.user, active=event.active
        )
        return [Delivery(targets, frame)] if targets else []

    def rooms_of(self, key: ConnKey) -> list[str]:
        """The rooms a connection is in, in the order it joined them."""
        conn = self.conns.get(key)
        return list(conn.rooms) if conn is not None else []

    def stats(self) -> HubStats:
        """Live figures and event counts, for health checks and metrics."""
        return HubStats(
            connections=len(self.conns),
            users=len(self.users),
            rooms=len(self.rooms),
            members=sum(len(room.members) for room in self.rooms.values()),
            counters=dict(self.counters),
        )

    def name_in_use(self, name: str) -> bool:
        """Whether a connected user holds this name (compared as for ``nick``)."""
        return identity.name_key(name) in self._names

    def room_names(self) -> Iterable[str]:
        return self.rooms.keys()


def _not_stored(client_id: str | None) -> ProtocolError:
    """The error for a message the store refused (then nobody saw it)."""
    return ProtocolError(
        ErrorCode.INTERNAL,
        "the message could not be stored, so it was not sent; try again",
        "message",
        **({"client_id": client_id} if client_id else {}),
    )


def _peek_type(text: str) -> str | None:
    """The frame's type for an error's ``ref``, without decoding the frame."""
    start = text.find('"type"')
    if start < 0:
        return None
    rest = text[start + 6 : start + 60].lstrip(" :")
    if not rest.startswith('"'):
        return None
    end = rest.find('"', 1)
    return rest[1:end] if end > 0 else None
