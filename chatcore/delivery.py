"""What the chat core hands the edge: one frame of text and where it goes. Pure."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

# A connection, as the edge identifies it (the gevent edge passes its outboxes).
ConnKey = Hashable


@dataclass(frozen=True, slots=True)
class Delivery:
    """One frame of JSON text, to be sent unchanged to every target.

    A delivery with a ``close_code`` closes its targets after the frame.
    A ``durable`` delivery announces a stored message: the edge sends it only
    once the history store has written it (``flush``), and sends ``fallback``
    (an error to the sender) instead if that write fails. With
    ``sender_first`` the first target is the sender, whose echo is its
    acknowledgement: the edge writes it at once, before queueing the rest;
    every other frame waits for the end of the loop turn, where a
    connection's frames go out together.
    """

    targets: tuple[ConnKey, ...]
    text: str
    durable: bool = False
    fallback: Delivery | None = None
    close_code: int | None = None  # close the targets after this frame
    close_reason: str = ""
    sender_first: bool = False
