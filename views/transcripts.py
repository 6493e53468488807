"""Read-only transcripts of a room: a paged page without JavaScript, and downloads."""

from __future__ import annotations

import json
import time
from typing import Any

from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler

from chatcore import identity
from chatcore.history import HistoryStore, StoredMessage
from views.api import wsgi_text

PAGE_SIZE = 100
DOWNLOAD_BATCH = 1000


def format_ts(ts: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(ts / 1000)) + " UTC"


class TranscriptMixin:
    """Finds the room named in the path; an invalid or empty room is a 404."""

    options: dict[str, Any]
    route_args: dict[str, Any]

    @property
    def history(self) -> HistoryStore:
        return self.options["chat_context"].history

    def room(self) -> str | None:
        try:
            room = identity.check_room(wsgi_text(self.route_args["room"]))
        except identity.InvalidName:
            return None
        return room if self.history.last_id(room) else None

    def all_messages(self, room: str) -> Any:
        after = 0
        while True:
            batch = self.history.since(room, after, DOWNLOAD_BATCH)
            if not batch:
                return
            yield from batch
            after = batch[-1].id


def _int_arg(request: Any, name: str) -> int | None:
    values = request.query.get(name)
    if not values:
        return None
    try:
        value = int(values[-1])
    except ValueError:
        return None
    return value if value >= 0 else None


class RoomListPage(BaseHandler):
    def get(self) -> HTTPResponse:
        history: HistoryStore = self.options["chat_context"].history
        rooms = [(room, history.last_id(room)) for room in history.rooms()]
        return self.render_response("rooms.html", title="Rooms", rooms=rooms)


class TranscriptPage(BaseHandler, TranscriptMixin):
    def get(self) -> HTTPResponse:
        room = self.room()
        if room is None:
            return _not_found()
        after = _int_arg(self.request, "after")
        if after is not None:
            messages = self.history.since(room, after, PAGE_SIZE)
            older = bool(messages) and self.history.before(room, messages[0].id, 1)[0]
        else:
            messages, older = self.history.before(
                room, _int_arg(self.request, "before"), PAGE_SIZE
            )
        last = self.history.last_id(room)
        return self.render_response(
            "transcript.html",
            title=f"#{room} transcript",
            room=room,
            messages=[_row(m) for m in messages],
            older_before=messages[0].id if messages and older else None,
            newer_after=messages[-1].id
            if messages and messages[-1].id < last
            else None,
        )


class TranscriptDownload(BaseHandler, TranscriptMixin):
    """The whole stored transcript, as JSON Lines or as plain text."""

    def get(self) -> HTTPResponse:
        room = self.room()
        if room is None:
            return _not_found()
        as_jsonl = self.route_args["format"] == "jsonl"
        if as_jsonl:
            response = HTTPResponse("application/jsonl; charset=UTF-8")
            for message in self.all_messages(room):
                response.write(json.dumps(message.to_wire(), ensure_ascii=False) + "\n")
        else:
            response = HTTPResponse("text/plain; charset=UTF-8")
            for message in self.all_messages(room):
                response.write(_plain_line(message))
        filename = f"{room}.{self.route_args['format']}".encode("ascii", "replace")
        response.headers.append(
            (
                "Content-Disposition",
                f'attachment; filename="{filename.decode().replace("?", "_")}"',
            )
        )
        return response


def _row(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "name": message.name,
        "color": message.color,
        "text": message.text,
        "time": format_ts(message.ts, "%H:%M"),
        "datetime": format_ts(message.ts),
    }


def _plain_line(message: StoredMessage) -> str:
    # Continuation lines are indented so a multi-line message stays one entry.
    text = message.text.replace("\r\n", "\n").replace("\n", "\n    ")
    return f"[{format_ts(message.ts)}] #{message.id} <{message.name}> {text}\n"


def _not_found() -> HTTPResponse:
    response = HTTPResponse()
    response.status_code = 404
    return response
