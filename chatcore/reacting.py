"""Reacting to a message: the checks a toggle passes, then the store. Pure.

A member of a room who may speak there (not muted) toggles one emoji on a
kept, not deleted message of the room. Toggles spend the connection's
message tokens. The store decides the toggle and its bounds in one step
(docs/protocol.md, Reactions).
"""

from __future__ import annotations

from collections.abc import Callable

from chatcore.history import HistoryStore, StoredMessage
from chatcore.limits import TokenBucket
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.reactions import (
    EMOJI_PER_MESSAGE_MAX,
    USERS_PER_EMOJI_MAX,
    ReactionRefused,
)
from chatcore.users import User

REF = "react"


class Reacting:
    """Checks and stores reaction toggles.

    Args:
        history: the store that keeps reactions and numbers revisions.
        clock: seconds since the epoch.
    """

    def __init__(self, history: HistoryStore, clock: Callable[[], float]):
        self._history = history
        self._clock = clock
        self.toggles = 0  # reactions added or removed since start

    def toggle(
        self, user: User, room: str, message_id: int, emoji: str, bucket: TokenBucket
    ) -> tuple[StoredMessage, bool]:
        """Add ``user``'s reaction ``emoji`` to a message, or remove it if
        they had it; return the message as it is now, and whether it was
        added.

        Raises:
            ProtocolError: refused (see docs/protocol.md).
            HistoryError: the store could not be read or written.
        """
        now = self._clock()
        if not bucket.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"slow down: at most {bucket.rate:g} messages per second "
                f"(try again in {bucket.retry_after():.1f} s)",
                REF,
            )
        try:
            changed, added = self._history.react(
                room, message_id, emoji, (user.id, user.name), int(now * 1000)
            )
        except ReactionRefused as refused:
            raise _refusal(refused.reason, room, message_id) from None
        self.toggles += 1
        return changed, added


def _refusal(reason: str, room: str, message_id: int) -> ProtocolError:
    if reason == "gone":
        return ProtocolError(
            ErrorCode.NO_SUCH_MESSAGE,
            f"there is no message {message_id} in '{room}'",
            REF,
        )
    message = {
        "deleted": "the message is deleted",
        "emoji_full": f"a message takes at most {EMOJI_PER_MESSAGE_MAX} "
        "different emoji",
        "users_full": f"at most {USERS_PER_EMOJI_MAX} people can react with one emoji",
    }.get(reason, "the reaction was refused")
    return ProtocolError(ErrorCode.BAD_REQUEST, message, REF)
