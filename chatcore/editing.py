"""Taking a message back: who may edit or delete it, then the store. Pure.

Only its author may edit a message; its author or a moderator of its room
may delete it. An edit passes the text checks of a new message; edits and
deletes spend the sender's message tokens. Only the current text is kept:
an edit replaces it, a delete removes it for good (docs/protocol.md, Edits
and deletes).
"""

from __future__ import annotations

from collections.abc import Callable

from chatcore.history import HistoryStore, StaleMessage, StoredMessage
from chatcore.limits import TokenBucket
from chatcore.posting import check_text
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.users import User

# Whether a user (by id) moderates a room (by name).
Moderates = Callable[[str, str], bool]
# A change is re-read and re-checked at most this often when another process
# changed the message in between.
STALE_RETRIES = 3


def nobody_moderates(user_id: str, room: str) -> bool:
    """The default: no moderators, so only authors delete."""
    return False


def changed_by(user: User, message: StoredMessage) -> dict[str, str] | None:
    """Who the ``deleted`` event names as having deleted ``message``: the
    user, when not its author (a moderator); None for the author."""
    return None if message.user_id == user.id else user.to_wire()


class Editing:
    """Checks and stores edits and deletes.

    Args:
        max_text: the longest text, in characters.
        history: the store that keeps messages and numbers revisions.
        clock: seconds since the epoch.
        moderates: whether a user moderates a room.
    """

    def __init__(
        self,
        max_text: int,
        history: HistoryStore,
        clock: Callable[[], float],
        moderates: Moderates = nobody_moderates,
    ):
        self.max_text = max_text
        self._history = history
        self._clock = clock
        self._moderates = moderates
        self.changes = 0  # edits and deletes stored since start

    def edit(
        self,
        user: User,
        room: str,
        message_id: int,
        text: str,
        bucket: TokenBucket,
    ) -> StoredMessage | None:
        """Edit a message; return it as stored, or None if the text is the
        same (nothing changes).

        Raises:
            ProtocolError: refused (see docs/protocol.md), or not stored.
            HistoryError: the store could not be read or written.
        """
        check_text(text, self.max_text, "edit")
        return self._change(user, room, message_id, text, bucket)

    def delete(
        self, user: User, room: str, message_id: int, bucket: TokenBucket
    ) -> StoredMessage:
        """Delete a message; return its tombstone.

        Raises:
            ProtocolError: refused (see docs/protocol.md).
            HistoryError: the store could not be read or written.
        """
        deleted = self._change(user, room, message_id, None, bucket)
        if deleted is None:  # pragma: no cover - only an edit can change nothing
            raise AssertionError("a delete changed nothing")
        return deleted

    def _change(
        self,
        user: User,
        room: str,
        message_id: int,
        text: str | None,
        bucket: TokenBucket,
    ) -> StoredMessage | None:
        ref = "delete" if text is None else "edit"
        now = self._clock()
        if not bucket.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"slow down: at most {bucket.rate:g} messages per second "
                f"(try again in {bucket.retry_after():.1f} s)",
                ref,
            )
        for _ in range(STALE_RETRIES):
            current = self._history.get(room, message_id)
            if current is None:
                raise ProtocolError(
                    ErrorCode.NO_SUCH_MESSAGE,
                    f"there is no message {message_id} in '{room}'",
                    ref,
                )
            if current.deleted:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "the message is deleted already", ref
                )
            by = self._check_allowed(user, current, ref)
            if text == current.text:
                return None
            try:
                changed = self._history.change(current, text, int(now * 1000), by)
            except StaleMessage:
                continue  # changed by another process meanwhile: check again
            self.changes += 1
            return changed
        raise ProtocolError(
            ErrorCode.INTERNAL, "the message kept changing; try again", ref
        )

    def _check_allowed(
        self, user: User, message: StoredMessage, ref: str
    ) -> dict[str, str] | None:
        """Refuse a change the user may not make; return who deleted the
        message when not its author (a moderator), else None."""
        if message.user_id == user.id or (
            ref == "delete" and self._moderates(user.id, message.room)
        ):
            return changed_by(user, message)
        raise ProtocolError(
            ErrorCode.FORBIDDEN, f"you can only {ref} your own messages", ref
        )
