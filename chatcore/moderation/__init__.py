"""Roles and moderation: what the stores keep, and the interface they share.

A moderation store keeps the server admins (user ids), room roles (owner,
moderator), restrictions (a mute or a kick, in one room or server-wide, until
a time or for ever), bans (a user, and optionally the addresses they came
from), slow mode set at runtime per room, and the moderation log (the newest
``LOG_MAX`` entries). Memory, SQLite and Redis backends sit next to this
module; none of them imports the hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SERVER = ""  # the scope of a server-wide mute or kick (no room)
LOG_MAX = 10_000  # moderation log entries kept, newest first
LOG_PAGE_MAX = 100
LOG_PAGE_DEFAULT = 50

Kind = Literal["mute", "kick"]
OWNER, MODERATOR, MEMBER = "owner", "moderator", "member"
ROLES = (OWNER, MODERATOR)  # the roles a store keeps (member: no row)


@dataclass(frozen=True, slots=True)
class Restriction:
    """A mute or a kick of ``user_id`` in ``room`` (SERVER: everywhere),
    until ``until`` (seconds since the epoch; None: until lifted)."""

    kind: str
    user_id: str
    room: str
    until: float | None

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True, slots=True)
class Ban:
    user_id: str
    reason: str
    ts: float
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One moderation action: who did what to whom, where and when."""

    id: int
    ts: float
    actor: dict[str, str]  # {"id", "name"}
    action: str
    room: str  # "" for server-wide
    target: dict[str, str]  # {"id", "name"}
    detail: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "ts": int(self.ts * 1000),
            "actor": self.actor,
            "action": self.action,
        }
        if self.target:
            wire["target"] = self.target
        if self.room:
            wire["room"] = self.room
        if self.detail:
            wire["detail"] = self.detail
        return wire


class ModerationStore(Protocol):
    """Where roles, restrictions, bans, runtime slow mode and the log live.

    Every method raises HistoryError when the backend cannot be used.
    """

    def admins(self) -> set[str]:
        """The server admins' user ids."""

    def set_admin(self, user_id: str, admin: bool) -> bool:
        """Make a user an admin or not; return whether that changed anything."""

    def roles(self, room: str) -> dict[str, str]:
        """user id -> ``owner`` | ``moderator`` in ``room``."""

    def rooms_of(self, user_id: str) -> list[str]:
        """The rooms where ``user_id`` is owner or moderator."""

    def set_role(self, room: str, user_id: str, role: str) -> None:
        """Give a user a role in a room; ``member`` removes theirs."""

    def restrictions(self, user_id: str, now: float) -> list[Restriction]:
        """The user's mutes and kicks still in force at ``now``."""

    def restricted(self, now: float) -> set[str]:
        """Every user with a mute or a kick (of any room) that may still be
        in force at ``now``: a superset is fine, ``restrictions`` decides."""

    def restrict(self, restriction: Restriction, now: float) -> None:
        """Add or replace the user's ``kind`` in ``room`` (and drop what
        expired before ``now``, so the table stays bounded)."""

    def lift(self, kind: str, user_id: str, room: str) -> bool:
        """Remove a mute or kick; return whether there was one."""

    def ban(self, ban: Ban) -> None:
        """Ban a user (a second ban replaces the first, addresses merged)."""

    def unban(self, user_id: str) -> bool:
        """Lift a user's ban and their addresses'; return whether there was one."""

    def banned(self, user_id: str) -> Ban | None:
        """The user's ban, if any."""

    def bans(self) -> dict[str, Ban]:
        """Every ban, by user id (few: only admins ban)."""

    def slow_modes(self) -> dict[str, float]:
        """Room -> seconds set at runtime (0: turned off)."""

    def set_slow_mode(self, room: str, seconds: float) -> None:
        """Set a room's slow mode (0 turns it off, also over ``--slow-mode``)."""

    def log(
        self,
        ts: float,
        actor: dict[str, str],
        action: str,
        room: str,
        target: dict[str, str],
        detail: dict[str, Any],
    ) -> LogEntry:
        """Append an entry (the oldest beyond LOG_MAX are dropped)."""

    def entries(
        self, before: int | None, limit: int, rooms: list[str] | None = None
    ) -> tuple[list[LogEntry], bool]:
        """The newest ``limit`` entries below id ``before``, newest first, only
        in ``rooms`` if given; and whether older ones match."""
