"""Upload metadata in this process's memory (``--db :memory:``)."""

from __future__ import annotations

import secrets
from collections import Counter

from chatcore.uploads import CLAIMED, QuotaExceeded, Upload


class MemoryUploads:
    """Uploads in dicts; the quota bounds them per person."""

    def __init__(self) -> None:
        self._uploads: dict[str, Upload] = {}
        self._used: Counter[str] = Counter()
        self._secret = secrets.token_bytes(32)

    def add(self, upload: Upload, quota: int) -> None:
        used = self._used[upload.user_id]
        if used + upload.cost > quota:
            raise QuotaExceeded(used)
        self._uploads[upload.id] = upload
        self._used[upload.user_id] += upload.cost

    def get(self, upload_id: str) -> Upload | None:
        return self._uploads.get(upload_id)

    def claim(self, upload_id: str, user_id: str, room: str) -> Upload | None:
        upload = self._uploads.get(upload_id)
        if (
            upload is None
            or upload.message_id is not None
            or upload.user_id != user_id
            or upload.room != room
        ):
            return None
        self._uploads[upload_id] = upload.bound(CLAIMED)
        return upload

    def bind(self, upload_id: str, room: str, message_id: int) -> None:
        upload = self._uploads.get(upload_id)
        if upload is not None:
            self._uploads[upload_id] = upload.bound(message_id)

    def release(self, upload_id: str) -> None:
        upload = self._uploads.get(upload_id)
        if upload is not None and upload.message_id == CLAIMED:
            self._uploads[upload_id] = upload.bound(None)

    def remove(self, upload_id: str) -> Upload | None:
        upload = self._uploads.pop(upload_id, None)
        if upload is not None:
            self._used[upload.user_id] -= upload.cost
            if self._used[upload.user_id] <= 0:
                del self._used[upload.user_id]
        return upload

    def unused_before(self, created: float, limit: int) -> list[Upload]:
        found = [
            u
            for u in self._uploads.values()
            if u.message_id in (None, CLAIMED) and u.created < created
        ]
        return found[:limit]

    def attached_rooms(self) -> list[str]:
        return sorted({u.room for u in self._uploads.values() if u.message_id})

    def attached_up_to(self, room: str, message_id: int, limit: int) -> list[Upload]:
        found = [
            u
            for u in self._uploads.values()
            if u.room == room and u.message_id and u.message_id <= message_id
        ]
        return found[:limit]

    def used(self, user_id: str) -> int:
        return self._used[user_id]

    def secret(self) -> bytes:
        return self._secret
