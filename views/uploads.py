"""Files and images over HTTP: ``POST /upload`` and ``GET /files/<id>/...``.

The body of an upload is the file's bytes (no multipart), streamed to a
temporary file and cut at ``--max-upload``. Who uploads or reads is the
access gate's account where there are accounts, else the user an upload
token names (asked for on the WebSocket, see docs/protocol.md, Files and
images). Files are served with ``nosniff`` and a sandboxing
Content-Security-Policy; only sniffed images are shown inline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler

from chatcore import identity
from chatcore.access import cross_site
from chatcore.history import HistoryError
from chatcore.uploading import Uploading, clean_name
from chatcore.uploads import CLAIMED, MIN_COST, QuotaExceeded, Upload
from chatcore.uploads.files import CHUNK, TooLarge, UploadFiles, new_upload_id, valid_id
from chatcore.uploads.images import BadImage, Inspected, inspect
from views.api import wsgi_text

log = logging.getLogger(__name__)

TOKEN_HEADER = "HTTP_X_UPLOAD_TOKEN"
TOKEN_COOKIE = "chat_upload"
NAME_HEADER = "HTTP_X_FILENAME"
# Served files: never run as a page of this origin, never sniffed into one.
FILE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; sandbox"),
    ("Cache-Control", "private, max-age=86400"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
NOT_FOUND = "there is no such file (or it is not yours to see)"
STORE_DOWN = "the upload store cannot be reached; try again"


def error(status: int, code: str, message: str) -> HTTPResponse:
    """A JSON error the page shows: ``{"error": code, "message": ...}``."""
    response = HTTPResponse("application/json; charset=UTF-8")
    response.status_code = status
    response.write(json.dumps({"error": code, "message": message}) + "\n")
    response.headers.append(("Cache-Control", "no-store"))
    return response


def size_text(size: int) -> str:
    """A size as people read it: 1.5 MB, 12 KB, 300 bytes (binary units,
    like --max-upload's)."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.0f} KB"
    return f"{size} bytes"


def _inspect(path: Path) -> Inspected | BadImage:
    """``inspect``, its refusal returned (a thread pool would log it raised)."""
    try:
        return inspect(path)
    except BadImage as exc:
        return exc


class UploadMixin:
    options: dict[str, Any]
    request: Any

    @property
    def chat(self) -> Any:
        return self.options["chat_context"]

    @property
    def uploading(self) -> Uploading:
        return self.chat.uploading

    def requester(self) -> str | None:
        """The signed-in account, else the user an upload token names."""
        environ = self.request.environ
        user_id = environ.get("chat.user_id")
        if isinstance(user_id, str) and user_id:
            return user_id
        token = environ.get(TOKEN_HEADER) or _cookie(environ, TOKEN_COOKIE)
        return self.uploading.user_of(token)


def _cookie(environ: dict[str, Any], name: str) -> str | None:
    raw = environ.get("HTTP_COOKIE", "")
    if name not in raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class UploadPage(BaseHandler, UploadMixin):
    """``POST /upload?room=NAME&name=FILE``: the body is the file."""

    def post(self) -> HTTPResponse:
        response = self._upload()
        environ = self.request.environ
        if response.status_code >= 400 and not environ.get("chat.body_read"):
            # Refused before the body was read: not worth reading it now.
            self._refused_unread(response)
        return response

    def _upload(self) -> HTTPResponse:
        settings = self.chat.settings
        environ = self.request.environ
        if self.chat.uploading is None:
            return error(404, "off", "uploads are turned off on this server")
        refused = cross_site(environ, settings)
        if refused is not None:
            return error(403, "forbidden", "uploads come from the chat's own page only")
        user_id = self.requester()
        if user_id is None:
            return error(
                401,
                "unauthorized",
                "no valid upload token: the page asks for one on its connection",
            )
        try:
            # The query is decoded already (UTF-8 percent-escapes).
            room = identity.check_room((self.request.query.get("room") or [""])[-1])
        except identity.InvalidName as exc:
            return error(400, "bad_request", f"room: {exc}")
        header = environ.get(NAME_HEADER)
        name = clean_name(
            wsgi_text(header)
            if header
            else (self.request.query.get("name") or [""])[-1]
        )
        try:
            if not self.chat.hub.room_access(room, user_id).allowed:
                return error(403, "forbidden", f"you are not a member of #{room}")
            used = self.uploading.store.used(user_id)
        except HistoryError:
            return error(503, "unavailable", STORE_DOWN)
        cap = settings.max_upload
        length = _content_length(environ)
        if (
            length is None
            and "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return error(411, "bad_request", "send the file with a Content-Length")
        if length is not None and length > cap:
            return self._too_large(length)
        if used + max(length or 0, MIN_COST) > settings.upload_quota:
            return self._over_quota(used)
        return self._receive(user_id, room, name, length)

    def _too_large(self, size: int | None) -> HTTPResponse:
        """413; ``size``: the announced length (None: a chunked body that
        passed the limit)."""
        limit = size_text(self.chat.settings.max_upload)
        told = f"is {size_text(size)}" if size is not None else "is larger"
        return self._refused_unread(
            error(413, "too_large", f"the file {told}; the limit is {limit}")
        )

    def _refused_unread(self, response: HTTPResponse) -> HTTPResponse:
        """The rest of the body is not read: the connection closes after this."""
        if not self.request.environ.get("chat.unread_body"):
            self.request.environ["chat.unread_body"] = True
            response.headers.append(("Connection", "close"))
        return response

    def _over_quota(self, used: int) -> HTTPResponse:
        quota = self.chat.settings.upload_quota
        return self._refused_unread(
            error(
                413,
                "quota",
                f"your uploads take {size_text(used)} of your {size_text(quota)}; "
                "delete some of your messages with files to make room",
            )
        )

    def _receive(
        self, user_id: str, room: str, name: str, length: int | None
    ) -> HTTPResponse:
        files: UploadFiles = self.chat.upload_files
        settings = self.chat.settings
        body = self.request.environ["wsgi.input"]
        try:
            received, size = files.receive(body.read, length, settings.max_upload)
        except TooLarge:
            return self._too_large(None)
        except OSError as exc:
            log.error("cannot write an upload: %s", exc)
            return error(507, "unavailable", "the server cannot store files now")
        self.request.environ["chat.body_read"] = True
        if length is not None and size < length:
            files.discard(received)
            return error(400, "bad_request", "the body ended before its Content-Length")
        if not size:
            files.discard(received)
            return error(400, "bad_request", "the file is empty")
        # Decoding is CPU work: a thread keeps the event loop serving.
        found = gevent.get_hub().threadpool.apply(_inspect, (received,))
        if isinstance(found, BadImage):
            files.discard(received)
            return error(422, "bad_file", str(found))
        thumb = len(found.thumb) if found.thumb is not None else 0
        upload = Upload(
            new_upload_id(),
            user_id,
            room,
            name,
            size,
            found.type,
            found.image,
            found.width,
            found.height,
            found.thumb_type,
            max(size + thumb, MIN_COST),
            time.time(),
        )
        try:
            self.uploading.store.add(upload, settings.upload_quota)
        except QuotaExceeded as exc:
            files.discard(received)
            return self._over_quota(exc.used)
        except HistoryError:
            files.discard(received)
            return error(503, "unavailable", STORE_DOWN)
        try:
            files.keep(received, upload.id, found.thumb)
        except OSError as exc:
            log.error("cannot keep an upload: %s", exc)
            self.uploading.discard(upload.id)
            return error(507, "unavailable", "the server cannot store files now")
        log.info(
            "upload %s: %d bytes, %s, by %s for #%s",
            upload.id,
            size,
            upload.type,
            user_id,
            room,
        )
        # The ``attachment`` object a message with it will carry.
        response = self.json_response(upload.attachment().to_wire())
        response.status_code = 201
        return response


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


class FilePage(BaseHandler, UploadMixin):
    """``GET /files/<id>/<name>`` and ``/files/<id>/thumb``."""

    def get(self) -> Any:
        if self.chat.uploading is None:
            return error(404, "not_found", NOT_FOUND)
        upload_id = self.route_args["id"]
        thumb = self.route_args.get("thumb") is not None
        if not valid_id(upload_id):
            return error(404, "not_found", NOT_FOUND)
        try:
            upload = self.uploading.store.get(upload_id)
            if upload is None or not self._may_see(upload):
                return error(404, "not_found", NOT_FOUND)
        except HistoryError:
            return error(503, "unavailable", STORE_DOWN)
        files: UploadFiles = self.chat.upload_files
        if thumb:
            if upload.thumb_type is None:
                return error(404, "not_found", "this file has no thumbnail")
            path, kind = files.thumb_path(upload.id), upload.thumb_type
        else:
            path, kind = files.path(upload.id), upload.type
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the response
        except FileNotFoundError:
            return error(404, "not_found", NOT_FOUND)
        disposition = "inline" if upload.image else "attachment"
        return FileResponse(
            kind if upload.image else "application/octet-stream",
            [
                *FILE_HEADERS,
                ("Content-Disposition", content_disposition(disposition, upload.name)),
            ],
            handle,
        )

    def _may_see(self, upload: Upload) -> bool:
        """The uploader, and while it is attached, whoever may read its room."""
        viewer = self.requester()
        if upload.message_id in (None, CLAIMED):
            return viewer == upload.user_id
        return self.chat.hub.room_access(upload.room, viewer).allowed


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback name, and the real one as UTF-8 ``filename*``."""
    fallback = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\;%' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class FileResponse:
    """A file sent a chunk at a time; quacks like wheezy's HTTPResponse for the
    middleware (``status_code``, ``headers``, ``buffer``, ``measure_body``)."""

    def __init__(self, content_type: str, headers: list[tuple[str, str]], handle: Any):
        self.status_code = 200
        size = Path(handle.name).stat().st_size
        self.headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(size)),
            *headers,
        ]
        self.buffer: tuple[bytes, ...] = ()
        self._handle = handle

    def __call__(self, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", self.headers)
        return _FileBody(self._handle)

    def measure_body(self) -> None:
        """HEAD: the headers (Content-Length is known already), no body."""
        self._handle.close()
        self._handle = _Empty()


class _Empty:
    def read(self, size: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _FileBody:
    def __init__(self, handle: Any):
        self._handle = handle

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._handle.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self._handle.close()
