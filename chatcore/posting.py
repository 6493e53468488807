"""Posting a message: the checks every message passes, then the store. Pure.

The path is the same for a WebSocket client and a bot of the HTTP API:
length, idempotent resends (``client_id``), slow mode, the sender's rate,
then the history store gives the message its id. How it reaches the room's
members is the cluster's job (chatcore/cluster.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chatcore import protocol
from chatcore.delivery import ConnKey, Delivery
from chatcore.history import (
    Attachment,
    Draft,
    HistoryError,
    HistoryStore,
    StoredMessage,
)
from chatcore.limits import TokenBucket
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.replies import answered, quote
from chatcore.users import User


def not_stored(client_id: str | None) -> ProtocolError:
    """The error for a message the store refused (then nobody saw it)."""
    return ProtocolError(
        ErrorCode.INTERNAL,
        "the message could not be stored, so it was not sent; try again",
        "message",
        **({"client_id": client_id} if client_id else {}),
    )


def check_text(
    text: str, max_text: int, ref: str, *, may_be_empty: bool = False
) -> None:
    """Refuse a blank text (unless ``may_be_empty``: a message with an
    attachment) or one longer than ``max_text`` characters.

    Raises:
        ProtocolError: ``bad_request`` or ``too_large``, with ``ref``.
    """
    if not text.strip() and not may_be_empty:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "the message is empty", ref)
    if len(text) > max_text:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"the message is {len(text)} characters; the limit is {max_text}",
            ref,
        )


def message_delivery(
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
        error = protocol.encode_error(not_stored(stored.client_id))
        fallback = Delivery((sender,), error)
    return Delivery(
        targets,
        protocol.encode("message", **stored.to_wire()),
        durable=waits_for_store,
        fallback=fallback,
        sender_first=sender is not None and bool(targets) and targets[0] == sender,
    )


class Posting:
    """Accepts messages: checks them, applies slow mode, stores them.

    Args:
        max_text: the longest text, in characters.
        slow_mode: room -> seconds each user must wait between messages.
        history: the store that gives ids.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        max_text: int,
        slow_mode: dict[str, float],
        history: HistoryStore,
        clock: Callable[[], float],
    ):
        self.max_text = max_text
        self.slow_mode = slow_mode
        self._history = history
        self._clock = clock
        self._last_post: dict[tuple[str, str], float] = {}  # (room, user) -> time
        self.accepted = 0  # messages stored since start

    def post(
        self,
        user: User,
        room_name: str,
        text: str,
        client_id: str | None,
        bucket: TokenBucket,
        *,
        slow: bool = True,
        reply_to: int | None = None,
        attachment: Attachment | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Check and store one message; return it and whether it is new
        (False: a resend of one already stored, to acknowledge again only).

        ``slow`` applies the room's slow mode (bots are not slowed);
        ``reply_to`` is the id of the kept message it answers (the new one
        comes back with its quote, chatcore/replies.py).

        Raises:
            ProtocolError: the message is refused, or could not be stored.
        """
        check_text(text, self.max_text, "message", may_be_empty=attachment is not None)
        if client_id is not None:
            try:
                earlier = self._history.find(user.id, client_id)
            except HistoryError:
                raise not_stored(client_id) from None
            if earlier is not None:
                return earlier, False
        reply = None
        if reply_to is not None:
            reply = quote(answered(self._history, room_name, reply_to), reply_to)
        now = self._clock()
        if slow:
            self._check_slow_mode(room_name, user, now)
        if not bucket.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"slow down: at most {bucket.rate:g} messages per second "
                f"(try again in {bucket.retry_after():.1f} s)",
                "message",
            )
        draft = Draft(
            room_name,
            user.id,
            user.name,
            user.color,
            text,
            int(now * 1000),
            client_id,
            reply_to,
            reply,
            attachment,
        )
        try:
            stored = replace(self._history.append(draft), reply=reply)
        except HistoryError:
            raise not_stored(client_id) from None
        if slow and room_name in self.slow_mode:
            self._last_post[(room_name, user.id)] = now
        self.accepted += 1
        return stored, True

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

    def forget_expired(self) -> None:
        """Drop the post times that no longer hold anyone back (the table
        would otherwise keep one entry per user and room for ever)."""
        now = self._clock()
        expired = [
            key
            for key, at in self._last_post.items()
            if now - at >= self.slow_mode.get(key[0], 0.0)
        ]
        for key in expired:
            del self._last_post[key]
