"""Users and their display names: who holds which name, here and in reserve. Pure.

A display name is held by one connected user at a time, and stays reserved in
the name store for the user who last used it (``--name-ttl``). Every rename,
a user's own or one heard from another process, goes through
``Names.rename``, so the live index, the reservation and the user's cached
wire form never disagree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatcore import identity, protocol
from chatcore.delivery import ConnKey
from chatcore.history import HistoryError, NameStore


@dataclass(eq=False, slots=True)
class User:
    id: str
    name: str
    color: str
    conns: set[ConnKey] = field(default_factory=set)
    # to_wire() already encoded, for presence snapshots of many users; reset
    # by every rename (the name and so the colour change).
    encoded: Any = field(default=None, repr=False)

    def to_wire(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "color": self.color}

    def to_wire_encoded(self) -> Any:
        if self.encoded is None:
            self.encoded = protocol.preencoded(self.to_wire())
        return self.encoded


class Names:
    """The names held by this process's users, and the rules for taking one.

    Args:
        store: where names stay reserved between visits.
        clock: seconds since the epoch.
        ttl: seconds an unused name stays reserved for its last user.
    """

    def __init__(self, store: NameStore, clock: Callable[[], float], ttl: float):
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._live: dict[str, User] = {}  # name key -> the user holding it here
        # (name key, user id) of the last reservation read that the user
        # holds with more than half its time left: renaming them to it
        # again (a reconnect) writes nothing.
        self._held_fresh: tuple[str, str] | None = None

    def in_use(self, name: str) -> bool:
        """Whether a user connected here holds this name (or one like it)."""
        return identity.name_key(name) in self._live

    def refusal(self, user_id: str, name: str) -> str | None:
        """Why user ``user_id`` cannot take ``name`` now, or None if they can.

        Raises:
            HistoryError: the reservation could not be read.
        """
        key = identity.name_key(name)
        holder = self._live.get(key)
        if holder is not None and holder.id != user_id:
            return f"the name '{name}' is taken"
        reserved = self._store.holder(key)
        if reserved is not None:
            owner, last_used = reserved
            age = self._clock() - last_used
            if owner == user_id and age < self._ttl / 2:
                self._held_fresh = (key, user_id)
            if owner != user_id and age < self._ttl:
                return (
                    f"the name '{name}' is reserved by the browser that used it; "
                    "pick another one"
                )
        return None

    def holder(self, name: str) -> str | None:
        """The user id that goes by ``name`` (or a name like it) now: a user
        connected here, else the holder of its unexpired reservation.

        Raises:
            HistoryError: the reservation could not be read.
        """
        key = identity.name_key(name)
        live = self._live.get(key)
        if live is not None:
            return live.id
        reserved = self._store.holder(key)
        if reserved is not None and self._clock() - reserved[1] < self._ttl:
            return reserved[0]
        return None

    def guest_name(self, user_id: str) -> str:
        """The user's own guest name: the same on every visit, unless a user
        here holds it, then a longer one (the list is finite and ends with
        one no one else can have)."""
        names = identity.guest_names(user_id)
        for name in names:
            if identity.name_key(name) not in self._live:
                return name
        return names[-1]

    def rename(self, user: User, name: str, *, reserve: bool = True) -> None:
        """Give ``user`` the name ``name``, freeing the one they had.

        ``reserve`` writes the reservation first (a rename heard from another
        process was reserved there already).

        Raises:
            HistoryError: the reservation could not be written; nothing changed.
        """
        key = identity.name_key(name)
        held_fresh, self._held_fresh = self._held_fresh, None
        if reserve and not identity.is_guest(name) and held_fresh != (key, user.id):
            self._store.hold(key, user.id, self._clock())
        if user.name:
            old_key = identity.name_key(user.name)
            if self._live.get(old_key) is user:
                del self._live[old_key]
            if reserve and old_key != key and not identity.is_guest(user.name):
                # Kept reserved until the ttl if this fails: harmless.
                with contextlib.suppress(HistoryError):
                    self._store.release(old_key, user.id)
        user.name = name
        user.color = identity.color_for(name)
        user.encoded = None
        self._live[key] = user

    def forget(self, user: User) -> None:
        """The user's last connection here closed: the name is free here, and
        its reservation counts from now."""
        key = identity.name_key(user.name)
        if self._live.get(key) is user:
            del self._live[key]
        if not identity.is_guest(user.name):
            # Refreshed on the user's next connect if this fails.
            with contextlib.suppress(HistoryError):
                self._store.hold(key, user.id, self._clock())
