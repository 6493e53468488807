"""Uploads: what is kept about each uploaded file, behind one small interface.

An upload belongs to the person who sent it and to the room it was sent
for. It is *unused* until a message of that person in that room carries it
(``claim``, then ``bind`` once the message has its id); unused ones expire.
The bytes live in the upload directory (chatcore/uploads/files.py); a store
keeps the metadata: memory, the history's SQLite file, or Redis (keys under
``chat:uploads:``). Every backend counts each person's bytes against the
quota in the same step that adds an upload.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from chatcore.history import Attachment

# An upload costs at least this much of its owner's quota (a file's share of
# the disk): the quota then also bounds how many uploads a person keeps.
MIN_COST = 4096
# Unused uploads (never attached to a message) are deleted after this long.
UNUSED_SECONDS = 3600.0
# Claimed for a message that is being stored; not yet bound to its id.
CLAIMED = 0


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    user_id: str
    room: str
    name: str
    size: int  # bytes of the file as uploaded
    type: str  # the type it is served with, sniffed from its bytes
    image: bool
    width: int | None
    height: int | None
    thumb_type: str | None  # the thumbnail's type; None: no thumbnail
    cost: int  # bytes counted against the owner's quota (file and thumbnail)
    created: float
    message_id: int | None = None  # None: unused; CLAIMED; then the message's id

    def attachment(self) -> Attachment:
        return Attachment(
            self.id,
            self.name,
            self.size,
            self.type,
            self.image,
            self.width,
            self.height,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str | bytes) -> Upload:
        return Upload(**json.loads(text))

    def bound(self, message_id: int | None) -> Upload:
        return replace(self, message_id=message_id)


class QuotaExceeded(Exception):
    """Keeping the upload would take its owner past the quota."""

    def __init__(self, used: int):
        super().__init__(used)
        self.used = used  # bytes the owner keeps already


class UploadStore(Protocol):
    """Upload metadata. Raises ``HistoryError`` when the store cannot be used."""

    def add(self, upload: Upload, quota: int) -> None:
        """Keep a new, unused upload.

        Raises:
            QuotaExceeded: its owner's uploads would cost more than ``quota``.
        """

    def get(self, upload_id: str) -> Upload | None: ...

    def claim(self, upload_id: str, user_id: str, room: str) -> Upload | None:
        """Take an unused upload of ``user_id`` for ``room`` for a message, in
        one step (two messages cannot take one upload); return it as it was
        (unused), or None if there is no such unused upload."""

    def bind(self, upload_id: str, room: str, message_id: int) -> None:
        """Record the id of the message that carries a claimed upload."""

    def release(self, upload_id: str) -> None:
        """A claimed upload is unused again (its message was not stored)."""

    def remove(self, upload_id: str) -> Upload | None:
        """Forget an upload (its owner gets its cost back); return what it was."""

    def unused_before(self, created: float, limit: int) -> list[Upload]:
        """Up to ``limit`` uploads never attached, created before ``created``."""

    def attached_rooms(self) -> list[str]:
        """The rooms with uploads attached to messages."""

    def attached_up_to(self, room: str, message_id: int, limit: int) -> list[Upload]:
        """Up to ``limit`` uploads of messages of ``room`` with ids up to
        ``message_id`` (those retention trimmed)."""

    def used(self, user_id: str) -> int:
        """Bytes of quota ``user_id``'s uploads cost now."""

    def secret(self) -> bytes:
        """The key that signs upload tokens, the same in every process of
        the chat (Redis: one key, made by the first process to ask)."""


def open_uploads(history: Any) -> UploadStore:
    """The upload store that lives beside ``history``, in the same store."""
    module = type(history).__module__
    if module == "chatcore.history.sqlite":
        from chatcore.uploads.sqlite import SqliteUploads

        return SqliteUploads(history.connection)
    if module == "chatcore.history.redis":
        from chatcore.uploads.redis import RedisUploads

        return RedisUploads(history.client, history.prefix)
    from chatcore.uploads.memory import MemoryUploads

    return MemoryUploads()
