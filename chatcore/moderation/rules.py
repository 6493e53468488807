"""Who may do what to whom. Pure: standings in, a refusal (or None) out.

- A server admin may do everything, everywhere.
- A room owner appoints and removes moderators, mutes and kicks in the room,
  sets its slow mode, deletes any message there.
- A moderator mutes and kicks in the room, sets slow mode, deletes any
  message there.
- Server-wide mutes and kicks, bans and unbans: admins only.
- Nobody acts on an admin but an admin; a moderator never acts on the owner;
  nobody mutes, kicks or bans themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatcore.moderation import MEMBER, MODERATOR, OWNER

ROOM_ACTIONS = frozenset({"mute", "unmute", "kick", "slow", "delete"})
ADMIN_ACTIONS = frozenset({"ban", "unban"})
AGAINST_SELF = frozenset({"mute", "kick", "ban"})


@dataclass(frozen=True, slots=True)
class Standing:
    """What a user is: server admin or not, and their role in one room."""

    admin: bool = False
    role: str = MEMBER

    @property
    def moderates(self) -> bool:
        return self.admin or self.role in (OWNER, MODERATOR)


def refusal(
    action: str,
    actor: Standing,
    room: str | None,
    target: Standing | None = None,
    *,
    self_target: bool = False,
) -> str | None:
    """Why ``actor`` may not take ``action`` (in ``room``; None: server-wide)
    against ``target``; None when they may."""
    if self_target and action in AGAINST_SELF:
        return f"you cannot {action} yourself"
    if actor.admin:
        return None
    if target is not None and target.admin:
        return "only an admin can act on an admin"
    if room is None or action in ADMIN_ACTIONS:
        return f"only an admin can {action} server-wide"
    if action == "role":
        if actor.role != OWNER:
            return "only the room's owner or an admin can appoint moderators"
        if target is not None and target.role == OWNER:
            return "the owner's role cannot be changed"
        return None
    if action == "modlog":
        return None if actor.role in (OWNER, MODERATOR) else _not_moderator(room)
    if action not in ROOM_ACTIONS or not actor.moderates:
        return _not_moderator(room)
    if target is not None and target.role == OWNER and actor.role != OWNER:
        return "a moderator cannot act on the room's owner"
    return None


def _not_moderator(room: str) -> str:
    return f"you do not moderate #{room}"
