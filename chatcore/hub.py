"""The chat itself: events from the edge in, deliveries out. Pure.

The hub is handed events (a connection opened, a text frame arrived, a
connection closed, time passed, another process said something) and answers
with deliveries: one encoded frame and the connections it goes to. It never
touches a socket, so every rule of docs/protocol.md is testable without a
network.

It is a facade over parts with one job each:

- ``users.Names``: who holds which display name, and reservations;
- ``rooms.Presence``: rooms and their members, here and on other processes;
- ``typists.Typists``: typing indicators;
- ``posting.Posting``: the checks every message passes, slow mode, the store;
- ``replay.Replay``: a join's replay and history pages;
- ``editing.Editing``: who may edit or delete a message, and the change;
- ``reacting.Reacting``: reaction toggles;
- ``cluster``: one process (``Solo``) or several (``Shared``), chosen once;
- ``remote.RemoteEvents``: what other processes say (joins, leaves,
  renames, typing) merged into this process's presence;
- ``moderating.Moderating``: roles, mutes, kicks, bans, runtime slow mode
  and the moderation log;
- ``private_rooms.PrivateRooms`` and ``direct_messages.DirectMessages``:
  private rooms and direct conversations.
- ``reading.Reading``: each person's read position per room.

Connections are opaque keys chosen by the caller (any hashable object); the
gevent edge passes its own outboxes, so a delivery's targets need no lookup.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from chatcore import identity, protocol
from chatcore.account_commands import AccountCommands, NoAccounts
from chatcore.accounts import Account, Session
from chatcore.big_rooms import BigRooms
from chatcore.cluster import choose
from chatcore.config import Settings
from chatcore.delivery import ConnKey, Delivery
from chatcore.direct_messages import DirectMessages
from chatcore.directory import Access, PublicOnly, RoomDirectory
from chatcore.editing import Editing, changed_by
from chatcore.fanout import (
    Added,
    Event,
    Fanout,
    Join,
    Leave,
    Nick,
    ReadUpTo,
    Removed,
    Wire,
)
from chatcore.frames import CloseCode
from chatcore.history import HistoryError, HistoryStore, NameStore, StoredMessage
from chatcore.limits import TokenBucket
from chatcore.moderating import Moderating, with_role
from chatcore.moderation import ModerationStore
from chatcore.moderation.memory import MemoryModeration
from chatcore.posting import Posting, message_delivery
from chatcore.private_rooms import NOT_A_MEMBER, PrivateRooms
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.reacting import Reacting
from chatcore.reading import Reading
from chatcore.reads import ReadStore
from chatcore.reads.memory import MemoryReads
from chatcore.remote import RemoteEvents, renamed
from chatcore.replay import Replay
from chatcore.replies import with_quote
from chatcore.rooms import Connection, Presence, Room
from chatcore.search import SearchIndex
from chatcore.search.scan import HistoryScan
from chatcore.searching import Searching
from chatcore.typists import Typists
from chatcore.uploading import Uploading, no_upload
from chatcore.uploads import Upload
from chatcore.users import Names, User

ROOMS_PER_CONNECTION_MAX = 20
FRAME_RATE, FRAME_BURST = 20.0, 60  # frames of any type, per connection
# A connection may have STRIKES_MAX frames refused as rate-limited in a row,
# earning one back every 1/STRIKE_RECOVERY seconds; past that it is closed.
STRIKES_MAX, STRIKE_RECOVERY = 20, 0.5
TYPING_RATE, TYPING_BURST = 2.0, 6
MEMBERS_RATE, MEMBERS_BURST = 2.0, 10  # ``members`` pages, per connection
# Each page reads the whole member list (about 0.3 µs a member): all the
# connections together may have at most this many members read a second.
MEMBER_READS_RATE, MEMBER_READS_BURST = 1_000_000, 2_000_000

STORE_DOWN = "the history store cannot be reached; try again"
UPLOADS_OFF = "uploads are turned off on this server"


@dataclass(frozen=True, slots=True)
class HubStats:
    """What the hub holds now, and what it has counted since it started."""

    connections: int
    users: int  # a user's tabs count once
    rooms: int  # rooms with at least one member here
    members: int  # room memberships, summed over rooms
    counters: dict[str, int]  # "messages", "error:<code>"


class Hub:
    """All chat state of one server process, driven by calls from the edge.

    Args:
        settings: limits (``max_text``, ``rate``, ``burst``, ``typing_timeout``,
            ``name_ttl``, ``slow_mode``).
        history: where messages are stored and ids assigned.
        names: where display names stay reserved.
        clock: seconds since the epoch, as a float (``time.time`` in production).
        rng: source of the keys issued to new clients.
        fanout: how other processes hear of this one (default: there are none).
        directory: private rooms and their members (default: none, every
            room public).
        moderation: where roles, mutes, kicks, bans and the moderation log
            live (default: this process's memory).
        accounts: the account frames, where people have accounts
            (``--access invite`` or ``proxy``; ``names`` is then the accounts).
        search: the search backend (default: a scan of ``history``).
        uploads: files and images (default: none, uploads are off).
        reads: each person's read position per room (default: this
            process's memory).
    """

    def __init__(
        self,
        settings: Settings,
        history: HistoryStore,
        names: NameStore,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        fanout: Fanout | None = None,
        directory: RoomDirectory | None = None,
        moderation: ModerationStore | None = None,
        accounts: AccountCommands | None = None,
        search: SearchIndex | None = None,
        uploads: Uploading | None = None,
        reads: ReadStore | None = None,
    ):
        self.settings = settings
        self._uploads = uploads
        self._accounts = accounts or NoAccounts()
        self._clock = clock
        self._rng = rng or random.Random()
        self._conns: dict[ConnKey, Connection] = {}
        self._users: dict[str, User] = {}
        self._errors: Counter[str] = Counter()
        self._member_reads = TokenBucket(MEMBER_READS_RATE, MEMBER_READS_BURST)
        self._names = Names(names, clock, settings.name_ttl)
        self._presence = Presence(self._users)
        self._big = BigRooms(self._presence, settings.presence_max, clock)
        self._cluster = choose(
            fanout, history, self._presence.rooms, settings.history_max
        )
        self._typists = Typists(
            self._presence,
            self._cluster.publish,
            self._cluster.origin,
            clock,
            settings.typing_timeout,
            self._big,
        )
        self._posting = Posting(
            settings.max_text, dict(settings.slow_mode), history, clock
        )
        self._replay = Replay(history, self._cluster, settings.history_max)
        self._moderating = Moderating(
            moderation if moderation is not None else MemoryModeration(),
            clock,
            self._presence,
            self._users,
            self._conns,
            self._posting,
            self._cluster,
            self._leave,
        )
        self._editing = Editing(
            settings.max_text, history, clock, self._moderating.moderates
        )
        self._reacting = Reacting(history, clock)
        self._remote = RemoteEvents(
            self._presence,
            self._names,
            self._typists,
            self._cluster,
            self._users,
            self._conns,
            self._moderating.effects,
            self._moderating.roles,
            self._big,
        )
        self._history = history
        self._private = PrivateRooms(
            directory or PublicOnly(),
            self._names,
            self._presence,
            self._cluster,
            history,
            self._users,
            self._conns,
            join=self._join,
            leave=self._leave,
            clock=clock,
            rooms_max=ROOMS_PER_CONNECTION_MAX,
            # The creator of a room owns it.
            on_created=lambda room, user_id: self._moderating.set_role(
                room, user_id, "owner"
            ),
        )
        self._searching = Searching(
            search or HistoryScan(history, settings.search_scan_max),
            history,
            self._private,
            clock,
        )
        self._dm = DirectMessages(
            directory or PublicOnly(),
            self._presence,
            self._cluster,
            self._users,
            self._accounts.name_of,
            join=self._join,
            tell_added=self._private.tell_added,
            clock=clock,
            rooms_max=ROOMS_PER_CONNECTION_MAX,
        )
        self._reading = Reading(
            reads if reads is not None else MemoryReads(),
            history,
            self._cluster,
            self._users,
            self._conns,
            clock,
        )
        self.limits = {
            "max_text": settings.max_text,
            "rate": settings.rate,
            "burst": settings.burst,
            "history_page": protocol.HISTORY_PAGE_MAX,
            "typing_rate": TYPING_RATE,
            "typing_burst": TYPING_BURST,
            # 0: uploads are off (the page hides its attach button).
            "max_upload": settings.max_upload if uploads is not None else 0,
            "rooms_max": ROOMS_PER_CONNECTION_MAX,
        }

    # -- events from the edge -------------------------------------------------

    def connect(
        self,
        key: ConnKey,
        name: str | None = None,
        room: str | None = None,
        client_key: str | None = None,
        address: str | None = None,
        account: Account | None = None,
        session: Session | None = None,
    ) -> list[Delivery]:
        """A connection opened: greet it and join its first room.

        With an ``account`` the user is the account: its id and name on every
        device (no guest name, no ``key``).

        If the name store fails, the connection gets an ``internal`` error and
        is closed (1011), and nothing of it is kept; so is a banned or kicked
        user's, with ``forbidden`` (4003 or 4000).
        """
        errors: list[ProtocolError] = []
        issued_key = None
        if account is not None:
            user_id = account.id
        else:
            if not client_key:
                # The browser keeps this secret and sends it back as ``key``:
                # it makes its tabs one user and reserves the user's name.
                client_key = issued_key = identity.new_client_key(self._rng)
            user_id = identity.user_id_for(client_key, self._rng)
        try:
            refused = self._moderating.connect_refusal(user_id)
        except HistoryError:
            return self._refuse_connection(key)
        if refused is not None:
            return [replace(refused, targets=(key,))]
        # Read before the connection is anyone's target: a store that yields
        # (Redis) lets other greenlets deliver, and nothing may reach this
        # connection before its welcome.
        try:
            dms = self._dm.rooms_of(user_id)
        except HistoryError:
            dms = []  # the page keeps its own list; this only adds to it
        user = self._users.get(user_id)
        if user is None:
            user = User(user_id, "", "")
            elsewhere = self._presence.remote_user(user_id)
            if elsewhere is not None:  # the same user, connected to another process
                name = elsewhere["name"]
            try:
                first_name = (
                    account.name
                    if account is not None
                    else self._initial_name(user, name, errors)
                )
                self._names.rename(user, first_name)
            except HistoryError:
                return self._refuse_connection(key)
            self._users[user_id] = user
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
            members=TokenBucket(MEMBERS_RATE, MEMBERS_BURST),
        )
        # Asked before joining: the store may yield (Redis), and a member
        # not yet welcomed must not be sent other people's joins meanwhile.
        admin = self._is_admin(user_id)
        self._conns[key] = conn
        self._moderating.connected(key, address)
        self._accounts.attach(key, session)
        out: list[Delivery] = []
        try:
            first_room = identity.check_room(room or identity.DEFAULT_ROOM)
        except identity.InvalidName as exc:
            errors.append(ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "join"))
            first_room = None
        if first_room:
            try:
                out = self._join(conn, first_room, since=None)
            except ProtocolError as error:
                errors.append(error)
            except HistoryError:
                errors.append(ProtocolError(ErrorCode.INTERNAL, STORE_DOWN, "join"))
        extra: dict[str, object] = {"key": issued_key} if issued_key else {}
        if account is not None:
            extra["account"] = True
        if admin:
            extra["admin"] = True
        if dms:
            extra["dms"] = dms
        welcome = protocol.encode(
            "welcome",
            user=user.to_wire(),
            rooms=list(conn.rooms),
            limits=self.limits,
            epoch=self._cluster.epoch,
            **extra,
        )
        greeting = [Delivery((key,), welcome)]
        greeting += [Delivery((key,), self._error_frame(e)) for e in errors]
        return greeting + out

    def _refuse_connection(self, key: ConnKey) -> list[Delivery]:
        error = ProtocolError(ErrorCode.INTERNAL, STORE_DOWN)
        return [
            Delivery(
                (key,),
                self._error_frame(error),
                close_code=CloseCode.INTERNAL_ERROR,
                close_reason="the history store cannot be reached",
            )
        ]

    def receive(self, key: ConnKey, text: str) -> list[Delivery]:
        """A text frame arrived from a connection."""
        conn = self._conns.get(key)
        if conn is None:
            return []
        try:
            if not conn.frames.take(self._clock()):
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
                    ErrorCode.INTERNAL, STORE_DOWN, _peek_type(text)
                ) from None
        except ProtocolError as error:
            reply = Delivery((key,), self._error_frame(error))
            if error.code is ErrorCode.RATE_LIMITED and not conn.strikes.take(
                self._clock()
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
        conn = self._conns.pop(key, None)
        if conn is None:
            return []
        self._moderating.disconnected(key)
        self._accounts.detach(key)
        self._searching.disconnected(key)
        self._reading.disconnected(key)
        out: list[Delivery] = []
        for room_name in list(conn.rooms):
            out += self._leave(conn, room_name)
        user = conn.user
        user.conns.discard(key)
        if not user.conns:
            del self._users[user.id]
            self._names.forget(user)
        return out

    def sweep_sessions(self) -> list[Delivery]:
        """Close connections whose session ended elsewhere (another process,
        a sign-out); call every few seconds where accounts exist."""
        return self._accounts.sweep()

    def expire_typing(self) -> list[Delivery]:
        """Clear typing indicators whose typist went quiet, and forget what no
        longer matters; call every second or so."""
        self._posting.forget_expired()
        self._searching.tick()  # deleted words leave the search index
        return self._typists.expire()

    def presence_tick(self) -> list[Delivery]:
        """One ``count`` frame per big room whose members or typists changed;
        call every ``--presence-tick`` seconds."""
        return self._big.tick()

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
        room_name = _valid_room(room_name, "message")
        try:
            private = self._private.access(room_name, None).room
        except HistoryError:
            raise ProtocolError(ErrorCode.INTERNAL, STORE_DOWN, "message") from None
        if private is not None or identity.is_dm_room(room_name):
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "a bot may not post to a private room", "message"
            )
        stored, new = self._posting.post(
            author, room_name, text, client_id, bucket, slow=False
        )
        room = self._presence.rooms.get(room_name)
        if not new or room is None:  # a bot may post to a room nobody is in
            return stored, []
        return stored, self._posted(stored, room, author, None)

    # -- commands ---------------------------------------------------------------

    def _dispatch(self, conn: Connection, command: protocol.Command) -> list[Delivery]:
        match command:
            case protocol.SendMessage():
                return self._message(conn, command)
            case protocol.Typing():
                return self._typing(conn, command)
            case protocol.Join():
                room = _valid_room(command.room, "join")
                return self._join(conn, room, command.since, command.epoch)
            case protocol.Leave():
                _require_member(conn, command.room, "leave")
                self._reading.forget(conn.user.id, command.room)
                return self._leave(conn, command.room) + [
                    Delivery((conn.key,), protocol.encode("left", room=command.room))
                ]
            case protocol.Nick():
                return self._nick(conn, command.name)
            case protocol.History():
                return self._history_page(conn, command)
            case protocol.Search():
                return self._searching.search(conn, command)
            case protocol.Ping():
                return [Delivery((conn.key,), protocol.encode("pong", t=command.t))]
            case protocol.Members():
                return self._members(conn, command)
            case protocol.Create() | protocol.Add() | protocol.Remove():
                out = self._private.handle(conn, command)
                if isinstance(command, protocol.Remove):
                    self._reading.forget(command.user, command.room)
                return out
            case protocol.Read():
                return self._reading.read(conn, command)
            case protocol.OpenDm():
                return self._dm.open(conn, command)
            case (
                protocol.SetRole()
                | protocol.Mute()
                | protocol.Unmute()
                | protocol.Kick()
                | protocol.Ban()
                | protocol.Unban()
                | protocol.Slow()
                | protocol.Modlog()
            ):
                return self._moderating.handle(conn, command)
            case protocol.Edit() | protocol.Delete():
                return self._change(conn, command)
            case protocol.React():
                return self._react(conn, command)
            case (
                protocol.ListSessions()
                | protocol.Revoke()
                | protocol.SigninLink()
                | protocol.CreateInvite()
            ):
                user_id = conn.user.id
                admin = self._is_admin(user_id)
                return self._accounts.handle(conn.key, user_id, admin, command)
            case protocol.UploadToken():
                return self._upload_token(conn)
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
        removed = self._private.check_message(conn, room_name)
        if removed:  # no longer a member: out of the room, and refused
            refusal = ProtocolError(
                ErrorCode.FORBIDDEN, NOT_A_MEMBER, "message", room=room_name
            )
            return removed + [Delivery((conn.key,), self._error_frame(refusal))]
        _require_member(conn, room_name, "message")
        self._moderating.check_speak(conn.user, room_name, "message")
        upload = None
        if command.attachment is not None:
            upload = self._claim_upload(conn, room_name, command)
            if upload is None:  # a resend whose upload its first send used
                return [message_delivery(self._resent(conn, command), (conn.key,))]
        try:
            stored, new = self._posting.post(
                conn.user,
                room_name,
                command.text,
                command.client_id,
                conn.messages,
                reply_to=command.reply_to,
                attachment=upload.attachment() if upload is not None else None,
            )
        except ProtocolError:
            if upload is not None and self._uploads is not None:
                self._uploads.release(upload)
            raise
        if upload is not None and self._uploads is not None:
            if new:
                self._uploads.bound(upload, stored.id)
            else:
                self._uploads.release(upload)
        if not new:
            # A resend (say, after a reconnect): ack the sender again with
            # the original id; store and broadcast nothing.
            return [message_delivery(with_quote(self._history, stored), (conn.key,))]
        room = self._presence.rooms[room_name]
        return self._posted(stored, room, conn.user, conn.key)

    def _claim_upload(
        self, conn: Connection, room_name: str, command: protocol.SendMessage
    ) -> Upload | None:
        """The upload a message carries, taken for it; None for a resend
        (same ``client_id``) of a message that has it already.

        Raises:
            ProtocolError: uploads are off, or no such unused upload.
        """
        if self._uploads is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, UPLOADS_OFF, "message")
        upload_id = command.attachment or ""
        upload = self._uploads.claim(conn.user.id, room_name, upload_id)
        if upload is None and self._resent(conn, command) is None:
            raise no_upload(upload_id)
        return upload

    def _resent(
        self, conn: Connection, command: protocol.SendMessage
    ) -> StoredMessage | None:
        if command.client_id is None:
            return None
        return self._history.find(conn.user.id, command.client_id)

    def _upload_token(self, conn: Connection) -> list[Delivery]:
        if self._uploads is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, UPLOADS_OFF, "upload_token")
        token, expires = self._uploads.token(conn.user.id)
        frame = protocol.encode("upload_token", token=token, expires=expires)
        return [Delivery((conn.key,), frame)]

    def _posted(
        self, stored: StoredMessage, room: Room, user: User, sender: ConnKey | None
    ) -> list[Delivery]:
        out = self._typists.stop(room, user, user.id)
        return out + self._cluster.posted(stored, room, sender)

    def _change(
        self, conn: Connection, command: protocol.Edit | protocol.Delete
    ) -> list[Delivery]:
        """An edit or a delete (chatcore/editing.py has the rules)."""
        ref = "edit" if isinstance(command, protocol.Edit) else "delete"
        room_name = _valid_room(command.room, ref)
        _require_member(conn, room_name, ref)
        user, editing = conn.user, self._editing
        if isinstance(command, protocol.Edit):
            changed = editing.edit(
                user, room_name, command.id, command.text, conn.messages
            )
            if changed is None:
                return []  # the same text: nothing changes
        else:
            # Read first: the tombstone no longer names the attachment.
            before = self._history.get(room_name, command.id)
            changed = editing.delete(user, room_name, command.id, conn.messages)
            self._searching.deleted(changed)
            if self._uploads is not None:
                self._uploads.deleted(before)
        room = self._presence.rooms[room_name]
        by = changed_by(user, changed)
        pending = self._history.is_pending(changed)
        return self._cluster.changed(changed, room, conn.key, by, pending)

    def _react(self, conn: Connection, command: protocol.React) -> list[Delivery]:
        """A reaction toggled (chatcore/reacting.py has the rules)."""
        room_name = _valid_room(command.room, "react")
        _require_member(conn, room_name, "react")
        removed = self._private.check_message(conn, room_name)
        if removed:  # no longer a member of the private room: out, and refused
            refusal = ProtocolError(
                ErrorCode.FORBIDDEN, NOT_A_MEMBER, "react", room=room_name
            )
            return removed + [Delivery((conn.key,), self._error_frame(refusal))]
        self._moderating.check_speak(conn.user, room_name, "react")
        user = conn.user
        changed, added = self._reacting.toggle(
            user, room_name, command.id, command.emoji, conn.messages
        )
        room = self._presence.rooms[room_name]
        pending = self._history.is_pending(changed)
        event = changed.reacted_event(command.emoji, (user.id, user.name), added)
        return self._cluster.reacted(event, room, conn.key, pending)

    def _typing(self, conn: Connection, command: protocol.Typing) -> list[Delivery]:
        _require_member(conn, command.room, "typing")
        if not conn.typing.take(self._clock()):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, "too many typing events; slow down", "typing"
            )
        room = self._presence.rooms[command.room]
        user = conn.user
        if not command.active:
            return self._typists.stop(room, user, user.id)
        self._moderating.check_speak(user, command.room, "typing")
        return self._typists.start(room, user)

    def _join(
        self,
        conn: Connection,
        room_name: str,
        since: int | None,
        epoch: str | None = None,
    ) -> list[Delivery]:
        if room_name not in conn.rooms and len(conn.rooms) >= ROOMS_PER_CONNECTION_MAX:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"a connection can be in at most {ROOMS_PER_CONNECTION_MAX} rooms",
                "join",
            )
        private = self._private.check(conn.user.id, room_name, "join").room
        if room_name not in conn.rooms:
            self._moderating.check_join(conn.user, room_name)
        roles = self._moderating.roles(room_name)
        # Read before entering: the store may yield (Redis), and a member not
        # yet greeted must not be sent other people's joins meanwhile.
        read = _read_field(self._reading.on_join(conn.user.id, room_name))
        self._cluster.joining(conn.key, room_name, since is not None)
        presence = self._presence
        room, new_here, new = presence.enter(conn, room_name)
        user = conn.user
        out: list[Delivery] = []
        if new_here:
            self._cluster.publish(Join(self._cluster.origin, room_name, user.to_wire()))
        big = self._big.is_big(room)
        if new and big:
            self._big.changed(room)  # a count at the next tick, not a join now
        elif new:
            joiner = with_role(user.to_wire(), roles.get(user.id))
            out += presence.to_others(room, user, presence.event(room, "join", joiner))
        listed = (
            self._big.snapshot(room, user, roles)
            if big
            else {
                "users": presence.wires(room, roles),
                **self._typists.now_typing(room, user),
            }
        )
        slow_mode = self._posting.slow_mode
        snapshot = protocol.encode(
            "presence",
            room=room_name,
            event="snapshot",
            users=listed.pop("users"),
            count=presence.count(room_name),
            # The joiner's own role; a member (most joiners) has none.
            **({"role": roles[user.id]} if user.id in roles else {}),
            **({"slow_mode": slow_mode[room_name]} if room_name in slow_mode else {}),
            **({"private": True} if private is not None else {}),
            # Who may take people out of it (the client offers that to them
            # only); a direct conversation has nobody who may.
            **(
                {"creator": private.creator}
                if private is not None and not private.is_dm
                else {}
            ),
            **self._dm.snapshot_fields(private),
            **listed,
            **read,
        )
        out.append(Delivery((conn.key,), snapshot))
        if since is not None:
            out += self._replay.since(conn.key, room_name, since, epoch)
        return out

    def _leave(self, conn: Connection, room_name: str) -> list[Delivery]:
        presence = self._presence
        room, gone_here, gone = presence.exit(conn, room_name)
        self._cluster.left(conn.key, room_name, room_name not in presence.rooms)
        out: list[Delivery] = []
        if gone_here:
            user = conn.user
            out += self._typists.stop(room, user, user.id)
            self._cluster.publish(Leave(self._cluster.origin, room_name, user.id))
            if room.big:
                self._big.left(room, user.id)  # counted at the next tick
            elif gone:
                out += presence.to_others(
                    room, user, presence.event(room, "leave", user)
                )
        return out

    def _members(self, conn: Connection, command: protocol.Members) -> list[Delivery]:
        """A page of a room's members, for one of them."""
        _require_member(conn, command.room, "members")
        if not conn.members.take(self._clock()):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "too many member pages; slow down",
                "members",
                retry_after=round(conn.members.retry_after(), 1),
            )
        now, reads = self._clock(), self._presence.count(command.room)
        if not self._member_reads.take(now, reads):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "the server is busy listing members; try again shortly",
                "members",
                retry_after=round(self._member_reads.retry_after(reads), 1),
            )
        roles = self._moderating.roles(command.room)
        members, following = self._big.page(
            command.room, command.after, command.q, command.limit, roles
        )
        frame = protocol.encode(
            "members",
            room=command.room,
            members=members,
            **({"next": following} if following else {}),
            # As asked, so that a client can tell its answers apart.
            **({"after": command.after} if command.after else {}),
            **({"q": command.q} if command.q else {}),
        )
        return [Delivery((conn.key,), frame)]

    def _nick(self, conn: Connection, requested: str) -> list[Delivery]:
        try:
            name = identity.check_name(requested)
        except identity.InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "nick") from None
        user = conn.user
        self._accounts.rename(user.id, name)  # the account's, for good
        refusal = self._names.refusal(user.id, name)
        if refusal:
            raise ProtocolError(ErrorCode.NAME_TAKEN, refusal, "nick")
        previous = user.name
        self._names.rename(user, name)
        self._big.renamed()
        out = [renamed(user, previous)]
        presence = self._presence
        rooms = presence.rooms_of(user, self._conns)
        # And rooms here where the user is a member through another process only.
        elsewhere = [
            room
            for room_name, members in presence.remote.items()
            if user.id in members
            and (room := presence.rooms.get(room_name)) is not None
            and room not in rooms
        ]
        for room in rooms + elsewhere:
            frame = presence.event(room, "nick", user, previous=previous)
            out += presence.to_others(room, user, frame)
        names = tuple(room.name for room in rooms)
        self._cluster.publish(
            Nick(self._cluster.origin, user.to_wire(), previous, names)
        )
        return out

    def _history_page(
        self, conn: Connection, command: protocol.History
    ) -> list[Delivery]:
        room_name = _valid_room(command.room, "history")
        self._private.check(conn.user.id, room_name, "history")
        if (
            room_name not in self._presence.rooms
            and self._history.last_id(room_name) == 0
        ):
            raise ProtocolError(
                ErrorCode.NO_SUCH_ROOM, f"there is no room '{room_name}'", "history"
            )
        return self._replay.page(conn.key, room_name, command.before, command.limit)

    def _initial_name(
        self, user: User, requested: str | None, errors: list[ProtocolError]
    ) -> str:
        """The name a new user starts with: the one asked for if they may
        have it, else their guest name (and an error saying why)."""
        if requested:
            try:
                name = identity.check_name(requested)
            except identity.InvalidName as exc:
                errors.append(ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "nick"))
            else:
                refusal = self._names.refusal(user.id, name)
                if refusal is None:
                    return name
                errors.append(
                    ProtocolError(
                        ErrorCode.NAME_TAKEN, refusal + "; you got a guest name", "nick"
                    )
                )
        return self._names.guest_name(user.id)

    def _error_frame(self, error: ProtocolError) -> str:
        self._errors[error.code.value] += 1
        return protocol.encode_error(error)

    # -- events from other processes (FanoutHandler) ------------------------------

    def deliver_published(self, event: Event) -> list[Delivery]:
        """An event arrived from the subscription: what to send to whom here."""
        if isinstance(event, Added | Removed):
            return self._private.remote(event)
        if isinstance(event, ReadUpTo):
            return self._reading.remote(event)
        return self._remote.deliver(event)

    def recover(self) -> list[Delivery]:
        """After the subscription was lost: what every local room missed."""
        return self._cluster.recover()

    def local_members(self) -> dict[str, dict[str, Wire]]:
        """This process's members, as the other processes should see them."""
        return self._presence.local_members()

    def remote_origins(self) -> set[str]:
        """The other processes that have members here, by id."""
        return self._presence.remote_origins()

    def replace_remote(
        self, origin: str, members: dict[str, dict[str, Wire]]
    ) -> list[Delivery]:
        """Set everything known of process ``origin``'s members at once."""
        return self._remote.replace(origin, members)

    # -- questions from the rest of the server -----------------------------------

    def moderates(self, user_id: str, room: str) -> bool:
        """Whether ``user_id`` may moderate ``room``: an admin, or its owner or
        a moderator (they delete any message there).

        Raises:
            HistoryError: the moderation store could not be read.
        """
        return self._moderating.moderates(user_id, room)

    def is_admin(self, user_id: str) -> bool:
        """Whether ``user_id`` is a server admin.

        Raises:
            HistoryError: the moderation store could not be read.
        """
        return self._moderating.is_admin(user_id)

    def grant_admin(self, user_id: str, name: str) -> None:
        """Make a new account a server admin: it came with an ``--admin`` invite.

        Raises:
            HistoryError: the moderation store could not be written.
        """
        invite = {"id": "", "name": "admin invite"}
        self._moderating.grant_admin({"id": user_id, "name": name}, invite)

    def set_role(self, room: str, user_id: str, role: str) -> None:
        """Give ``user_id`` the role ``owner``, ``moderator`` or ``member`` in
        ``room`` (the creator of a room becomes its owner).

        Raises:
            HistoryError: the moderation store could not be written.
        """
        self._moderating.set_role(room, user_id, role)

    def address_banned(self, address: str) -> bool:
        """Whether WebSocket upgrades from ``address`` are refused (a ban by
        address); False when the store cannot say."""
        try:
            return self._moderating.address_banned(address)
        except HistoryError:
            return False

    def _is_admin(self, user_id: str) -> bool:
        try:
            return self._moderating.is_admin(user_id)
        except HistoryError:
            return False

    def rooms_of(self, key: ConnKey) -> list[str]:
        """The rooms a connection is in, in the order it joined them."""
        conn = self._conns.get(key)
        return list(conn.rooms) if conn is not None else []

    def stats(self) -> HubStats:
        """Live figures and event counts, for health checks and metrics."""
        rooms = self._presence.rooms
        counters = {"error:" + code: n for code, n in self._errors.items()}
        counters["messages"] = self._posting.accepted
        counters["changes"] = self._editing.changes
        counters["reactions"] = self._reacting.toggles
        counters["sent_first"] = self._cluster.sent_first
        return HubStats(
            connections=len(self._conns),
            users=len(self._users),
            rooms=len(rooms),
            members=sum(len(room.members) for room in rooms.values()),
            counters=counters,
        )

    def name_refusal(self, user_id: str, name: str) -> str | None:
        """Why ``user_id`` may not use ``name`` now: held by a connected user
        or reserved for another (None: they may).

        Raises:
            HistoryError: the reservation could not be read.
        """
        return self._names.refusal(user_id, name)

    def member_count(self, room_name: str) -> int:
        """Users in a room, on every process (a user's tabs count once)."""
        return self._presence.count(room_name)

    def room_access(self, room_name: str, user_id: str | None) -> Access:
        """Whether a room is private and ``user_id`` (None: nobody) a member.

        Raises:
            HistoryError: the room directory could not be read.
        """
        return self._private.access(room_name, user_id)

    def visible_rooms(
        self, room_names: Iterable[str], user_id: str | None
    ) -> list[str]:
        """``room_names`` without the private rooms ``user_id`` is not in.

        Raises:
            HistoryError: the room directory could not be read.
        """
        return self._private.visible(room_names, user_id)

    def room_names(self) -> Iterable[str]:
        """The rooms with a member here."""
        return self._presence.rooms.keys()


def _valid_room(room: str, ref: str) -> str:
    try:
        return identity.check_room(room)
    except identity.InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), ref) from None


def _require_member(conn: Connection, room: str, ref: str) -> None:
    if room not in conn.rooms:
        raise ProtocolError(
            ErrorCode.NOT_IN_ROOM, f"you are not in the room '{room[:40]}'", ref
        )


def _read_field(position: int | None) -> dict[str, int]:
    """The snapshot's ``read``: the joiner's read position in the room."""
    return {} if position is None else {"read": position}


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
