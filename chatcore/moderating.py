"""Roles and moderation in the hub: the checks, the actions and their effects. Pure.

The hub hands this part every moderation frame and asks it before a message,
a typing event, a join or a connection goes through. Permissions are
``moderation.rules``; the state lives in a ``ModerationStore``. Whatever the
store holds is read through a short cache (``CACHE_SECONDS``): a message
costs no store round trip, and a change made elsewhere (``python chat.py
admin add`` while the server runs, another process) takes effect within that
time. Changes made by this process, or announced by another one through the
fan-out (``Moderated``), drop the cached entry at once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, TypeVar

from chatcore import identity, protocol
from chatcore.cluster import Cluster
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import Moderated
from chatcore.frames import CloseCode
from chatcore.history import HistoryError
from chatcore.moderation import (
    MEMBER,
    SERVER,
    Ban,
    ModerationStore,
    Restriction,
)
from chatcore.moderation.rules import Standing, refusal
from chatcore.posting import Posting
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.rooms import Connection, Presence
from chatcore.users import User

# Seconds a value read from the store is trusted: how late a change made
# outside this process (the admin command, a lost fan-out event) may apply.
CACHE_SECONDS = 2.0
CACHE_MAX = 10_000  # entries per cache (users, rooms)

T = TypeVar("T")
Leave = Callable[[Connection, str], list[Delivery]]


class Expiring:
    """A bounded map whose values are forgotten ``ttl`` seconds after they
    were stored. Full, it drops what expired, then everything."""

    def __init__(self, clock: Callable[[], float], ttl: float, size: int):
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, load: Callable[[], T]) -> T:
        now = self._clock()
        found = self._values.get(key)
        if found is not None and found[0] > now:
            return found[1]  # type: ignore[no-any-return]
        value = load()
        if len(self._values) >= self._size:
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
            if len(self._values) >= self._size:
                self._values.clear()
        self._values[key] = (now + self._ttl, value)
        return value

    def drop(self, key: Any) -> None:
        self._values.pop(key, None)


def _duration(seconds: float) -> str:
    """``seconds`` as a person says it, rounded: "45 seconds", "10 minutes"."""
    total = max(1, round(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if total >= size:
            n = round(total / size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{total} second{'s' if total != 1 else ''}"


def with_role(wire: dict[str, str], role: str | None) -> dict[str, str]:
    """A user as on the wire, with ``role`` when they have one."""
    return {**wire, "role": role} if role else wire


def _where(room: str) -> str:
    return f"in #{room}" if room else "on this server"


class Moderating:
    """Roles, mutes, kicks, bans, runtime slow mode and the log.

    Args:
        store: where moderation state lives.
        clock: seconds since the epoch.
        presence, users, conns, posting, cluster: the hub's parts (its
            users and connections by key are read only).
        leave: the hub's way to take a connection out of a room.
    """

    def __init__(
        self,
        store: ModerationStore,
        clock: Callable[[], float],
        presence: Presence,
        users: dict[str, User],
        conns: dict[ConnKey, Connection],
        posting: Posting,
        cluster: Cluster,
        leave: Leave,
    ):
        self.store = store
        self._clock = clock
        self._presence = presence
        self._users = users
        self._conns = conns
        self._posting = posting
        self._cluster = cluster
        self._leave = leave
        self._admins = Expiring(clock, CACHE_SECONDS, 1)
        self._roles = Expiring(clock, CACHE_SECONDS, CACHE_MAX)
        self._restrictions = Expiring(clock, CACHE_SECONDS, CACHE_MAX)
        # Who has any restriction at all: one read serves every user's
        # connect, join and message for CACHE_SECONDS; only those in it
        # have their own read (None: too many to keep, read each one).
        self._restricted = Expiring(clock, CACHE_SECONDS, 1)
        self._bans = Expiring(clock, CACHE_SECONDS, 1)  # every ban: admins' only
        self._addresses: dict[ConnKey, str] = {}  # conn -> its client's address
        for room, seconds in store.slow_modes().items():
            self._apply_slow_mode(room, seconds)

    # -- questions from the rest of the server -----------------------------------

    def is_admin(self, user_id: str) -> bool:
        """Whether ``user_id`` is a server admin (as of CACHE_SECONDS ago at most)."""
        return user_id in self._admins.get(None, self.store.admins)

    def grant_admin(self, user: dict[str, str], by: dict[str, str]) -> None:
        """Make ``user`` ({id, name}) a server admin, in the log as done by ``by``."""
        if self.store.set_admin(user["id"], True):
            self.store.log(self._clock(), by, "admin", "", user, {})
        self._admins.drop(None)

    def roles(self, room: str) -> dict[str, str]:
        """user id -> ``owner`` | ``moderator`` in ``room``."""
        return self._roles.get(room, lambda: self.store.roles(room))

    def role(self, room: str, user_id: str) -> str:
        return self.roles(room).get(user_id, MEMBER)

    def standing(self, user_id: str, room: str | None) -> Standing:
        role = self.role(room, user_id) if room else MEMBER
        return Standing(self.is_admin(user_id), role)

    def moderates(self, user_id: str, room: str) -> bool:
        """Whether ``user_id`` may moderate ``room`` (delete any message there)."""
        return self.standing(user_id, room).moderates

    def set_role(self, room: str, user_id: str, role: str) -> None:
        """Give ``user_id`` a role in ``room`` (``owner`` for a room's creator)."""
        self.store.set_role(room, user_id, role)
        self._roles.drop(room)

    def address_banned(self, address: str) -> bool:
        """Whether upgrades from ``address`` are refused."""
        return address in self._banned()[1]

    def _banned(self) -> tuple[dict[str, Ban], frozenset[str]]:
        """Every ban by user id, and every banned address."""

        def load() -> tuple[dict[str, Ban], frozenset[str]]:
            bans = self.store.bans()
            return bans, frozenset(a for b in bans.values() for a in b.addresses)

        return self._bans.get(None, load)

    def _active(self, user_id: str) -> list[Restriction]:
        restricted = self._restricted.get(None, self._load_restricted)
        if restricted is not None and user_id not in restricted:
            return []
        return self._restrictions.get(
            user_id, lambda: self.store.restrictions(user_id, self._clock())
        )

    def _load_restricted(self) -> frozenset[str] | None:
        found = self.store.restricted(self._clock())
        return frozenset(found) if len(found) <= CACHE_MAX else None

    def _restriction(self, kind: str, user_id: str, room: str) -> Restriction | None:
        """The user's ``kind`` that applies in ``room`` now (the room's own or
        a server-wide one, whichever lasts longer)."""
        now = self._clock()
        found = [
            r
            for r in self._active(user_id)
            if r.kind == kind and r.room in (room, SERVER) and r.active(now)
        ]
        if not found:
            return None
        return max(found, key=lambda r: math.inf if r.until is None else r.until)

    # -- checks on the way in -----------------------------------------------------

    def connect_refusal(self, user_id: str) -> Delivery | None:
        """Why a connection of ``user_id`` is refused (its error and close
        code, for no target yet), or None.

        Raises:
            HistoryError: the store could not be read.
        """
        ban = self._banned()[0].get(user_id)
        if ban is not None:
            why = "you are banned from this server"
            if ban.reason:
                why += f": {ban.reason}"
            return self._refusal(why, CloseCode.BANNED, "banned")
        kick = self._restriction("kick", user_id, SERVER)
        if kick is not None:
            left = (kick.until or 0) - self._clock()
            why = f"you were kicked; you may come back in {_duration(left)}"
            return self._refusal(
                why, CloseCode.KICKED, "kicked", retry_after=round(left, 1)
            )
        return None

    def _refusal(self, why: str, code: int, reason: str, **extra: Any) -> Delivery:
        error = ProtocolError(ErrorCode.FORBIDDEN, why, **extra)
        return Delivery(
            (), protocol.encode_error(error), close_code=code, close_reason=reason
        )

    def connected(self, key: ConnKey, address: str | None) -> None:
        """Remember where a connection comes from (for a ban by address)."""
        if address:
            self._addresses[key] = address

    def disconnected(self, key: ConnKey) -> None:
        self._addresses.pop(key, None)

    def check_speak(self, user: User, room: str, ref: str) -> None:
        """Refuse a muted user's message or typing in ``room``.

        Raises:
            ProtocolError: ``forbidden``, with the time left.
        """
        mute = self._restriction("mute", user.id, room)
        if mute is None:
            return
        where = _where(mute.room)
        if mute.until is None:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"you are muted {where} until unmuted", ref
            )
        left = mute.until - self._clock()
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"you are muted {where} for {_duration(left)} more",
            ref,
            retry_after=round(left, 1),
        )

    def check_join(self, user: User, room: str) -> None:
        """Refuse a join of a room the user was kicked from, until the kick ends.

        Raises:
            ProtocolError: ``forbidden``, with the time left.
        """
        kick = self._restriction("kick", user.id, room)
        if kick is None:
            return
        left = (kick.until or 0) - self._clock()
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"you were kicked from #{room}; you may rejoin in {_duration(left)}",
            "join",
            retry_after=round(left, 1),
        )

    # -- the frames ---------------------------------------------------------------

    def handle(self, conn: Connection, command: protocol.Moderation) -> list[Delivery]:
        """A moderation frame from ``conn``: check, store, log, apply, tell.

        Raises:
            ProtocolError: ``forbidden`` or ``bad_request``.
            HistoryError: the store could not be used.
        """
        match command:
            case protocol.Modlog():
                return self._modlog(conn, command)
            case protocol.Slow():
                room = _room(command.room, "slow")
                self._permit(conn, "slow", room)
                self.store.set_slow_mode(room, command.seconds)
                detail = {"seconds": command.seconds}
                return self._act(conn, "slow", "", room, detail)
            case protocol.SetRole():
                room = _room(command.room, "role")
                self._permit(conn, "role", room, command.user)
                self.set_role(room, command.user, command.role)
                return self._act(
                    conn, "role", command.user, room, {"role": command.role}
                )
            case protocol.Mute():
                room = _room(command.room, "mute") if command.room else SERVER
                self._permit(conn, "mute", room, command.user)
                until = (
                    None if command.seconds is None else self._clock() + command.seconds
                )
                restriction = Restriction("mute", command.user, room, until)
                self.store.restrict(restriction, self._clock())
                detail = _timed(until, command.seconds)
                return self._act(conn, "mute", command.user, room, detail)
            case protocol.Unmute():
                room = _room(command.room, "unmute") if command.room else SERVER
                self._permit(conn, "unmute", room, command.user)
                self.store.lift("mute", command.user, room)
                return self._act(conn, "unmute", command.user, room, {})
            case protocol.Kick():
                room = _room(command.room, "kick") if command.room else SERVER
                self._permit(conn, "kick", room, command.user)
                until = self._clock() + command.seconds
                restriction = Restriction("kick", command.user, room, until)
                self.store.restrict(restriction, self._clock())
                detail = _timed(until, command.seconds)
                return self._act(conn, "kick", command.user, room, detail)
            case protocol.Ban():
                self._permit(conn, "ban", SERVER, command.user)
                addresses = self._addresses_of(command.user) if command.address else ()
                self.store.ban(
                    Ban(command.user, command.reason, self._clock(), addresses)
                )
                detail: dict[str, Any] = {"address": command.address}
                if command.reason:
                    detail["reason"] = command.reason
                return self._act(conn, "ban", command.user, SERVER, detail)
            case protocol.Unban():
                self._permit(conn, "unban", SERVER, command.user)
                if not self.store.unban(command.user):
                    raise ProtocolError(
                        ErrorCode.BAD_REQUEST, "that user is not banned", "unban"
                    )
                return self._act(conn, "unban", command.user, SERVER, {})
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def _permit(
        self, conn: Connection, action: str, room: str, target: str | None = None
    ) -> None:
        actor = conn.user
        standing = self.standing(actor.id, room or None)
        target_standing = (
            None if target is None else self.standing(target, room or None)
        )
        why = refusal(
            action,
            standing,
            room or None,
            target_standing,
            self_target=target == actor.id,
        )
        if why is not None:
            raise ProtocolError(ErrorCode.FORBIDDEN, why, action)

    def _act(
        self,
        conn: Connection,
        action: str,
        target_id: str,
        room: str,
        detail: dict[str, Any],
    ) -> list[Delivery]:
        """Log an action that is stored already, tell the other processes,
        apply it here and acknowledge it to the moderator's connections."""
        actor = {"id": conn.user.id, "name": conn.user.name}
        target = (
            {"id": target_id, "name": self._name_of(target_id)} if target_id else {}
        )
        entry = self.store.log(self._clock(), actor, action, room, target, detail)
        told = {**detail, "by": actor}
        event = Moderated(self._cluster.origin, action, target_id, room, told)
        self._cluster.publish(event)
        out = self.effects(event, here=True)
        ack = protocol.encode("moderation", entry=entry.to_wire())
        return out + [Delivery(tuple(conn.user.conns), ack)]

    def _modlog(self, conn: Connection, command: protocol.Modlog) -> list[Delivery]:
        user_id = conn.user.id
        rooms = None
        if not self.is_admin(user_id):
            rooms = self.store.rooms_of(user_id)
            if not rooms:
                raise ProtocolError(
                    ErrorCode.FORBIDDEN,
                    "only admins, owners and moderators can read the moderation log",
                    "modlog",
                )
        entries, more = self.store.entries(command.before, command.limit, rooms)
        frame = protocol.encode(
            "modlog", entries=[e.to_wire() for e in entries], more=more
        )
        return [Delivery((conn.key,), frame)]

    # -- effects, of this process's actions and of the others' ---------------------

    def effects(self, event: Moderated, *, here: bool = False) -> list[Delivery]:
        """Apply an action to this process's connections: forget what was
        cached, tell the target, take them out of the room or close them."""
        action, user_id, room = event.action, event.user_id, event.room
        if action == "slow":
            return self._slow_changed(room, event.detail["seconds"])
        if action == "role":
            self._roles.drop(room)
            return self._role_changed(room, user_id, event.detail["role"])
        if action == "unban":
            self._bans.drop(None)
            return []
        self._restrictions.drop(user_id)
        self._restricted.drop(None)
        user = self._users.get(user_id)
        if action == "ban":
            self._bans.drop(None)
            if not here and event.detail.get("address"):
                # The ban itself is stored: its closes go out even if adding
                # the addresses known here fails.
                with contextlib.suppress(HistoryError):
                    self._add_banned_addresses(user_id)
        if user is None or not user.conns:
            return []
        told = self._moderated_frame(event)
        targets = tuple(user.conns)
        if action == "ban":
            return [
                Delivery(
                    targets, told, close_code=CloseCode.BANNED, close_reason="banned"
                )
            ]
        if action == "kick" and not room:
            return [
                Delivery(
                    targets, told, close_code=CloseCode.KICKED, close_reason="kicked"
                )
            ]
        out = [Delivery(targets, told)]
        if action == "kick":
            left = protocol.encode("left", room=room)
            for key in targets:
                conn = self._conns.get(key)
                if conn is not None and room in conn.rooms:
                    out += self._leave(conn, room)
                    out.append(Delivery((key,), left))
        return out

    def _moderated_frame(self, event: Moderated) -> str:
        detail = {
            k: v
            for k, v in event.detail.items()
            if k in ("until", "seconds", "reason", "by")
        }
        if event.room:
            detail["room"] = event.room
        return protocol.encode("moderated", action=event.action, **detail)

    def _slow_changed(self, room: str, seconds: float) -> list[Delivery]:
        self._apply_slow_mode(room, seconds)
        here = self._presence.rooms.get(room)
        if here is None:
            return []
        frame = protocol.encode("slow_mode", room=room, seconds=seconds)
        return [Delivery(here.targets, frame)]

    def _apply_slow_mode(self, room: str, seconds: float) -> None:
        if seconds > 0:
            self._posting.slow_mode[room] = seconds
        else:
            self._posting.slow_mode.pop(room, None)

    def _role_changed(self, room: str, user_id: str, role: str) -> list[Delivery]:
        here = self._presence.rooms.get(room)
        if here is None:
            return []
        user = {"id": user_id, "name": self._name_of(user_id)}
        frame = protocol.encode("role", room=room, user=user, role=role)
        return [Delivery(here.targets, frame)]

    def _add_banned_addresses(self, user_id: str) -> None:
        addresses = self._addresses_of(user_id)
        ban = self.store.banned(user_id) if addresses else None
        if ban is not None:
            self.store.ban(Ban(user_id, ban.reason, ban.ts, addresses))

    def _addresses_of(self, user_id: str) -> tuple[str, ...]:
        user = self._users.get(user_id)
        if user is None:
            return ()
        found = (self._addresses.get(key) for key in user.conns)
        return tuple(dict.fromkeys(a for a in found if a))

    def _name_of(self, user_id: str) -> str:
        user = self._users.get(user_id)
        if user is not None:
            return user.name
        wire = self._presence.remote_user(user_id)
        return wire["name"] if wire is not None else ""


def _timed(until: float | None, seconds: int | None) -> dict[str, Any]:
    if until is None or seconds is None:
        return {}
    return {"until": int(until * 1000), "seconds": seconds}


def _room(room: str, ref: str) -> str:
    try:
        return identity.check_room(room)
    except identity.InvalidName as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), ref) from None
