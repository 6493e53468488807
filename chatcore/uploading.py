"""The rules of uploads: who may use one, attaching it, and when it goes. Pure.

A page proves who it is over HTTP with an upload token it asked for on its
WebSocket (``upload_token``): the user id and an expiry, signed with HMAC-SHA256
under the store's key, so every process of the chat accepts it. A message
may carry an upload of its sender, sent for its room, not yet used
(``claim``, then ``bound`` to the message's id). Deleting the message
deletes the upload; so does retention trimming it, and an upload nobody
attached within ``UNUSED_SECONDS`` (``sweep``). See docs/protocol.md, Files
and images.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Protocol

from chatcore.history import HistoryError, StoredMessage
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.uploads import UNUSED_SECONDS, Upload, UploadStore

log = logging.getLogger(__name__)

TOKEN_SECONDS = 3600
NAME_MAX = 200
SWEEP_BATCH = 500
# Control, format and separator characters, and the path separators.
_UNSAFE_NAME = re.compile(
    r"[\x00-\x1f\x7f-\x9f/\\\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


class FileRemover(Protocol):
    def delete(self, upload_id: str) -> None: ...


def clean_name(raw: str | None) -> str:
    """The name a file is shown and downloaded under: no directories, no
    control or direction characters, at most NAME_MAX characters; "file"
    when nothing is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rpartition("/")[2]
    name = _UNSAFE_NAME.sub("", name).strip().lstrip(".")
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: NAME_MAX - len(ext) - 1] + (
            "." + ext if ext else ""
        )
    # "thumb" is the thumbnail's address (/files/<id>/thumb).
    return name if name and name != "thumb" else "file"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


class Uploading:
    """Tokens, attaching and deleting uploads.

    Args:
        store: the uploads' metadata.
        files: removes an upload's bytes.
        clock: seconds since the epoch.
    """

    def __init__(
        self, store: UploadStore, files: FileRemover, clock: Callable[[], float]
    ):
        self.store = store
        self._files = files
        self._clock = clock

    # -- tokens --------------------------------------------------------------

    def _mac(self, payload: str) -> str:
        key = self.store.secret()
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def token(self, user_id: str) -> tuple[str, int]:
        """A token naming ``user_id``, and when it expires (ms since the epoch)."""
        expires = int(self._clock()) + TOKEN_SECONDS
        payload = f"{expires}.{_b64(user_id)}"
        return f"{payload}.{self._mac(payload)}", expires * 1000

    def user_of(self, token: str | None) -> str | None:
        """The user a token names, if it is genuine and current."""
        if not token or len(token) > 512:
            return None
        payload, _, mac = token.rpartition(".")
        expires, _, user = payload.partition(".")
        try:
            good = hmac.compare_digest(mac.encode(), self._mac(payload).encode())
            if not good or int(expires) < self._clock():
                return None
            return _unb64(user)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None

    # -- messages --------------------------------------------------------------

    def claim(self, user_id: str, room: str, upload_id: str) -> Upload | None:
        """Take an upload for a message of ``user_id`` in ``room``; None when
        there is no such upload unused (a resend may have used it).

        Raises:
            HistoryError: the store cannot be used.
        """
        return self.store.claim(upload_id, user_id, room)

    def bound(self, upload: Upload, message_id: int) -> None:
        self.store.bind(upload.id, upload.room, message_id)

    def release(self, upload: Upload) -> None:
        """The message was not stored: the upload may be used again."""
        try:
            self.store.release(upload.id)
        except HistoryError:
            pass  # still claimed: the sweep deletes it within the hour

    def deleted(self, message: StoredMessage | None) -> None:
        """A message was deleted: so is its upload, file and all."""
        if message is not None and message.attachment is not None:
            try:
                self.discard(message.attachment.id)
            except HistoryError:
                # The message is gone; its upload stays until retention
                # trims the message's id (``sweep``).
                log.warning("could not delete upload %s", message.attachment.id)

    def discard(self, upload_id: str) -> Upload | None:
        """Forget an upload and delete its files."""
        upload = self.store.remove(upload_id)
        self._files.delete(upload_id)
        return upload

    def sweep(self, trimmed_up_to: Callable[[str], int]) -> int:
        """Delete uploads nobody attached within the hour, and those of
        messages retention trimmed (``trimmed_up_to(room)``: the id at and
        below which the room keeps nothing). Returns how many went."""
        gone = 0
        for upload in self.store.unused_before(
            self._clock() - UNUSED_SECONDS, SWEEP_BATCH
        ):
            self.discard(upload.id)
            gone += 1
        for room in self.store.attached_rooms():
            floor = trimmed_up_to(room)
            if floor > 0:
                for upload in self.store.attached_up_to(room, floor, SWEEP_BATCH):
                    self.discard(upload.id)
                    gone += 1
        return gone


def no_upload(upload_id: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.BAD_REQUEST,
        f"there is no unused upload '{upload_id}' of yours for this room; "
        "upload the file again",
        "message",
    )
