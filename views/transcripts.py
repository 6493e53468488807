"""Read-only transcripts of a room: a paged page without JavaScript, and downloads."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler

from chatcore import identity
from chatcore.handshake import client_address
from chatcore.history import HistoryStore, StoredMessage
from chatcore.protocol import INT_MAX
from views.api import wsgi_text

PAGE_SIZE = 100
# Messages read, encoded and sent at a time: a download holds one batch.
DOWNLOAD_BATCH = 200
# Transcript downloads one client address may have running at once.
DOWNLOADS_PER_CLIENT = 3

# Line breaks other than \n: each starts a continuation line, like \n.
_LINE_BREAKS = re.compile("\r\n?|[\x85\u2028\u2029]")
# Controls a terminal acts on (C0 but tab and newline, DEL, C1) and the bidi
# controls that reorder what a terminal shows (a name could seem to say
# something else): shown as visible escapes, never written raw.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def format_ts(ts: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(ts / 1000)) + " UTC"


def viewer(environ: dict[str, Any]) -> str | None:
    """The signed-in user's id, set by the access gate; None in open mode or
    when nobody is signed in (then only public rooms are shown)."""
    user_id = environ.get("chat.user_id")
    return user_id if isinstance(user_id, str) and user_id else None


class TranscriptMixin:
    """Finds the room named in the path; an invalid or empty room is a 404,
    and so is a private room the viewer is not a member of (the same answer,
    so that the page does not tell that it exists)."""

    options: dict[str, Any]
    route_args: dict[str, Any]
    request: Any

    @property
    def history(self) -> HistoryStore:
        return self.options["chat_context"].history

    def room(self) -> str | None:
        try:
            room = identity.check_room(wsgi_text(self.route_args["room"]))
        except identity.InvalidName:
            return None
        if not self.history.last_id(room):
            return None
        hub = self.options["chat_context"].hub
        if not hub.room_access(room, viewer(self.request.environ)).allowed:
            return None
        return room

    def batches(self, room: str) -> Iterator[list[StoredMessage]]:
        """Every stored message of ``room``, oldest first, a batch at a time."""
        after = 0
        while True:
            batch = self.history.after(room, after, DOWNLOAD_BATCH)
            if not batch:
                return
            yield batch
            after = batch[-1].id


class BadQuery(ValueError):
    """A query parameter that cannot be used; the message says why."""


def _int_arg(request: Any, name: str) -> int | None:
    values = request.query.get(name)
    if not values:
        return None
    try:
        value = int(values[-1])
    except ValueError:
        value = -1
    if not 0 <= value <= INT_MAX:
        raise BadQuery(f"'{name}' must be a whole number from 0 to {INT_MAX}")
    return value


def _bad_request(message: str) -> HTTPResponse:
    response = HTTPResponse("text/plain; charset=UTF-8")
    response.status_code = 400
    response.write(message + "\n")
    return response


class RoomListPage(BaseHandler):
    def get(self) -> HTTPResponse:
        history: HistoryStore = self.options["chat_context"].history
        hub = self.options["chat_context"].hub
        shown = hub.visible_rooms(history.rooms(), viewer(self.request.environ))
        rooms = [(room, history.last_id(room)) for room in shown]
        return self.render_response("rooms.html", title="Rooms", rooms=rooms)


class TranscriptPage(BaseHandler, TranscriptMixin):
    def get(self) -> HTTPResponse:
        room = self.room()
        if room is None:
            return _not_found()
        try:
            after = _int_arg(self.request, "after")
            before = _int_arg(self.request, "before")
        except BadQuery as error:
            return _bad_request(str(error))
        history = self.history
        if after is not None:
            messages = history.after(room, after, PAGE_SIZE)
            older = bool(messages) and history.before(room, messages[0].id, 1)[0]
        else:
            messages, older = history.before(room, before, PAGE_SIZE)
        # Not from last_id: ids are not dense (edits and deletes take some).
        newer = bool(messages) and history.after(room, messages[-1].id, 1)
        return self.render_response(
            "transcript.html",
            title=f"#{room} transcript",
            room=room,
            messages=[_row(m) for m in messages],
            older_before=messages[0].id if messages and older else None,
            newer_after=messages[-1].id if newer else None,
        )


class TranscriptDownload(BaseHandler, TranscriptMixin):
    """The whole stored transcript, as JSON Lines or as plain text, sent a
    batch at a time; a few downloads at once per client address."""

    def get(self) -> Any:
        room = self.room()
        if room is None:
            return _not_found()
        address = client_address(
            self.request.environ, self.options["chat_settings"].trusted_proxy
        )
        release = self.options["chat_downloads"].take(address)
        if release is None:
            return _too_many_downloads()
        fmt = self.route_args["format"]
        if fmt == "jsonl":
            content_type, encode = "application/jsonl; charset=UTF-8", _jsonl_line
        else:
            content_type, encode = "text/plain; charset=UTF-8", _plain_line
        chunks = (
            "".join(map(encode, batch)).encode("utf-8") for batch in self.batches(room)
        )
        filename = f"{room}.{fmt}".encode("ascii", "replace").decode()
        return StreamedResponse(
            content_type,
            [
                (
                    "Content-Disposition",
                    f'attachment; filename="{filename.replace("?", "_")}"',
                )
            ],
            chunks,
            release,
        )


class DownloadSlots:
    """How many downloads each client address has running, capped."""

    def __init__(self, per_client: int = DOWNLOADS_PER_CLIENT):
        self.per_client = per_client
        self.running: Counter[str] = Counter()

    def take(self, address: str) -> Callable[[], None] | None:
        """A slot for ``address``: the function that gives it back (safe to
        call more than once), or None when the address has none left."""
        if self.running[address] >= self.per_client:
            return None
        self.running[address] += 1
        given_back = False

        def release() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            self.running[address] -= 1
            if not self.running[address]:
                del self.running[address]

        return release


class StreamedResponse:
    """A 200 whose body is made while it is sent, chunk by chunk.

    Quacks like wheezy's HTTPResponse for the middleware (``status_code``,
    ``headers``, ``buffer``). ``on_close`` runs once whatever ends the
    response: the last chunk sent, the client gone, or a HEAD request.
    """

    def __init__(
        self,
        content_type: str,
        headers: list[tuple[str, str]],
        chunks: Iterator[bytes],
        on_close: Callable[[], None],
    ):
        self.status_code = 200
        self.headers = [
            ("Content-Type", content_type),
            ("Cache-Control", "private"),
            *headers,
        ]
        self.buffer: tuple[bytes, ...] = ()  # nothing is held ahead of sending
        self.chunks = chunks
        self.on_close = on_close

    def __call__(self, start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", self.headers)
        return _Body(self.chunks, self.on_close)

    def measure_body(self) -> None:
        """Turn this into the answer to HEAD: the Content-Length the body has
        now, counted a chunk at a time, and no body."""
        try:
            length = sum(len(chunk) for chunk in self.chunks)
        finally:
            self.on_close()
        self.headers.append(("Content-Length", str(length)))
        self.chunks = iter(())


class _Body:
    """A WSGI body iterable that runs ``on_close`` when the server closes it."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]):
        self.chunks = chunks
        self.on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        try:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()


def _too_many_downloads() -> HTTPResponse:
    response = HTTPResponse("text/plain; charset=UTF-8")
    response.status_code = 429
    response.headers.append(("Retry-After", "10"))
    response.write(
        f"at most {DOWNLOADS_PER_CLIENT} transcript downloads at once from one "
        "address: wait for one to finish\n"
    )
    return response


DELETED = "message deleted"  # what a deleted message shows instead of its text


def _row(message: StoredMessage) -> dict[str, Any]:
    edited, attachment = message.edited, message.attachment
    return {
        "id": message.id,
        "name": message.name,
        "color": message.color,
        "text": message.text,
        "deleted": DELETED if message.deleted else "",
        "edited": format_ts(edited) if edited is not None else "",
        "time": format_ts(message.ts, "%H:%M"),
        "datetime": format_ts(message.ts),
        # A message's file (docs/protocol.md, Files and images): its link.
        "file": attachment.name if attachment is not None else "",
        "file_url": attachment.to_wire()["url"] if attachment is not None else "",
    }


def _jsonl_line(message: StoredMessage) -> str:
    return json.dumps(message.to_wire(), ensure_ascii=False) + "\n"


def _plain_line(message: StoredMessage) -> str:
    # Continuation lines are indented so a multi-line message stays one entry.
    text = terminal_safe(message.text).replace("\n", "\n    ")
    if message.deleted:
        text = f"({DELETED})"
    elif message.edited is not None:
        text += f" (edited {format_ts(message.edited)})"
    if message.attachment is not None and not message.deleted:
        file = message.attachment.to_wire()
        text += f" [file: {terminal_safe(file['name'])} {file['url']}]"
    name = terminal_safe(message.name).replace("\n", " ")
    return f"[{format_ts(message.ts)}] #{message.id} <{name}> {text}\n"


def terminal_safe(text: str) -> str:
    """``text`` with every line break as \\n and every control a terminal or a
    line-based tool would act on written as a visible escape (``\\x1b``)."""
    text = _LINE_BREAKS.sub("\n", text)
    return _UNSAFE.sub(_visible_escape, text)


def _visible_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _not_found() -> HTTPResponse:
    response = HTTPResponse()
    response.status_code = 404
    return response
