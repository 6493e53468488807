"""Replies: a message that answers another, and the quote sent with it. Pure.

A message may carry ``reply_to``, the id of a kept message of the same room.
The store keeps only that id. Whenever the message is sent (live, in a
replay, in a history page), it goes out with ``reply``: the original as it is
at that moment, read from the store, an excerpt of its text or a note that
it was deleted or is no longer kept. Quotes are never stored, so a deleted
original's text is nowhere.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chatcore.history import HistoryStore, StoredMessage
from chatcore.protocol import ErrorCode, ProtocolError

EXCERPT_MAX = 140  # characters of the original a quote carries


def quote(original: StoredMessage | None, reply_to: int) -> dict[str, Any]:
    """The ``reply`` object of docs/protocol.md: the original's current state
    (``None``: no longer kept)."""
    if original is None:
        return {"id": reply_to, "gone": True}
    wire: dict[str, Any] = {
        "id": original.id,
        "user": {
            "id": original.user_id,
            "name": original.name,
            "color": original.color,
        },
        "text": original.text[:EXCERPT_MAX],
    }
    if original.deleted:
        wire["deleted"] = True
    return wire


def answered(history: HistoryStore, room: str, reply_to: int) -> StoredMessage:
    """The message a new one in ``room`` answers, if it may be answered.

    Raises:
        ProtocolError: ``no_such_message`` (not kept in ``room``) or
            ``bad_request`` (deleted).
        HistoryError: the store could not be read.
    """
    original = history.get(room, reply_to)
    if original is None:
        raise ProtocolError(
            ErrorCode.NO_SUCH_MESSAGE,
            f"there is no message {reply_to} in '{room[:40]}' to reply to",
            "message",
        )
    if original.deleted:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            "that message was deleted; it cannot be answered",
            "message",
        )
    return original


def with_quote(history: HistoryStore, message: StoredMessage) -> StoredMessage:
    """``message`` with its quote, read now (unchanged if it answers nothing).

    Raises:
        HistoryError: the store could not be read.
    """
    if message.reply_to is None or message.deleted:
        return message
    original = history.get(message.room, message.reply_to)
    return replace(message, reply=quote(original, message.reply_to))


def with_quotes(
    history: HistoryStore, messages: list[StoredMessage]
) -> list[StoredMessage]:
    """Every message of a replay or a page with its quote; each original is
    read once.

    Raises:
        HistoryError: the store could not be read.
    """
    known: dict[tuple[str, int], dict[str, Any]] = {}
    out = []
    for message in messages:
        if message.reply_to is None or message.deleted:
            out.append(message)
            continue
        key = (message.room, message.reply_to)
        if key not in known:
            known[key] = quote(history.get(*key), message.reply_to)
        out.append(replace(message, reply=known[key]))
    return out
