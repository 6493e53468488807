"""The upload directory: uploaded bytes on disk, under random ids.

``<dir>/<id>`` is the file as uploaded, ``<dir>/<id>.thumb`` an image's
thumbnail, ``<dir>/tmp/`` bodies being received. Every chat process of one
chat must see the same directory (a shared volume): the process that serves
a file, or deletes it with its message, may not be the one that received it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
# Bodies left half-received by a process that died are deleted after this.
STALE_TEMP_SECONDS = 3600.0


class TooLarge(Exception):
    """The body passed the cap; reading stopped there."""


def new_upload_id() -> str:
    return secrets.token_urlsafe(18)


def valid_id(upload_id: str) -> bool:
    return _ID.fullmatch(upload_id) is not None


class UploadFiles:
    """The files of one upload directory.

    Args:
        root: the directory; made (with ``tmp/``) if missing.
    """

    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def receive(
        self, read: Callable[[int], bytes], length: int | None, cap: int
    ) -> tuple[Path, int]:
        """Copy a request body into a temporary file; return it and its size.

        ``length``: the announced Content-Length (None: chunked). Reading
        stops at the end, or as soon as more than ``cap`` bytes came.

        Raises:
            TooLarge: more than ``cap`` bytes (the file is deleted).
            OSError: the disk refused (the file is deleted).
        """
        path = self._tmp / (new_upload_id() + ".part")
        size = 0
        try:
            with open(path, "xb") as out:
                while length is None or size < length:
                    want = CHUNK if length is None else min(CHUNK, length - size)
                    chunk = read(want)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > cap:
                        raise TooLarge(size)
                    out.write(chunk)
        except BaseException:
            self.discard(path)
            raise
        return path, size

    def keep(self, received: Path, upload_id: str, thumb: bytes | None) -> None:
        """Move a received body to its id, with its thumbnail if any.

        Raises:
            OSError: the disk refused (nothing is left behind).
        """
        target = self.path(upload_id)
        try:
            if thumb is not None:
                part = self._tmp / (upload_id + ".thumb.part")
                part.write_bytes(thumb)
                os.replace(part, self.thumb_path(upload_id))
            os.replace(received, target)
        except OSError:
            self.delete(upload_id)
            self.discard(received)
            raise

    def path(self, upload_id: str) -> Path:
        return self.root / upload_id

    def thumb_path(self, upload_id: str) -> Path:
        return self.root / (upload_id + ".thumb")

    def delete(self, upload_id: str) -> None:
        """Remove an upload's file and thumbnail (gone already: nothing to do)."""
        if not valid_id(upload_id):
            return
        for path in (
            self.path(upload_id),
            self.thumb_path(upload_id),
            self._tmp / (upload_id + ".thumb.part"),
        ):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def discard(self, received: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            received.unlink()

    def sweep_temp(self, now: float | None = None) -> int:
        """Delete bodies abandoned in ``tmp/`` (a process killed while
        receiving); return how many."""
        now = time.time() if now is None else now
        gone = 0
        for path in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    path.unlink()
                    gone += 1
        return gone
