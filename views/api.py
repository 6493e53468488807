"""The bot API: post into a room and list rooms over HTTP, with a bearer token.

    curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
         -d '{"text": "Deploy finished", "name": "deploybot"}' \\
         http://localhost:8000/api/rooms/lobby/messages

Messages go through the hub like any other: the same checks and limits, the
same ids and history, broadcast to the room's members.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler

from chatcore import identity
from chatcore.history import HistoryError
from chatcore.limits import TokenBucket
from chatcore.protocol import CLIENT_ID_MAX, ErrorCode, ProtocolError
from chatcore.users import User

BODY_MAX = 64 * 1024
BOT_NAME = "bot"
# One bucket for the whole API: bots post announcements, not floods.
API_RATE, API_BURST = 10.0, 30

_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NAME_TAKEN: 409,
    ErrorCode.FORBIDDEN: 403,  # a private room
    ErrorCode.INTERNAL: 503,  # the store (Redis) refused the message
}


def api_error(status: int, code: str, message: str) -> HTTPResponse:
    response = HTTPResponse("application/json; charset=UTF-8")
    response.status_code = status
    response.write(json.dumps({"error": code, "message": message}))
    return response


def api_json(status: int, body: Any) -> HTTPResponse:
    response = HTTPResponse("application/json; charset=UTF-8")
    response.status_code = status
    response.write(json.dumps(body, ensure_ascii=False))
    return response


class ApiHandler(BaseHandler):
    """Checks the bearer token before any API method runs."""

    def __call__(self) -> HTTPResponse:
        token = self.options["chat_settings"].api_token
        if not token:
            return api_error(
                404, "api_off", "the bot API is off: start the server with --api-token"
            )
        header = self.request.environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = api_error(
                401, "unauthorized", "send the API token as 'Authorization: Bearer ...'"
            )
            response.headers.append(("WWW-Authenticate", 'Bearer realm="chat"'))
            return response
        return super().__call__()

    @property
    def chat(self) -> Any:
        return self.options["chat_context"]


class RoomsApi(ApiHandler):
    def get(self) -> HTTPResponse:
        hub, history = self.chat.hub, self.chat.history
        # A bot is nobody: private rooms are not listed.
        names = hub.visible_rooms(
            sorted(set(hub.room_names()) | set(history.rooms())), None
        )
        rooms = [
            {
                "room": name,
                "members": hub.member_count(name),  # on every process
                "last_id": history.last_id(name),
            }
            for name in names
        ]
        return api_json(200, {"rooms": rooms})


class RoomMessagesApi(ApiHandler):
    def post(self) -> HTTPResponse:
        body = self._json_body()
        if isinstance(body, HTTPResponse):
            return body
        chat = self.chat
        hub = chat.hub
        try:
            room = wsgi_text(self.route_args["room"])
            text = body.get("text")
            if not isinstance(text, str):
                raise ProtocolError(ErrorCode.BAD_REQUEST, "'text' must be a string")
            client_id = body.get("client_id")
            if client_id is not None and (
                not isinstance(client_id, str) or len(client_id) > CLIENT_ID_MAX
            ):
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"'client_id' must be a string of at most {CLIENT_ID_MAX} chars",
                )
            author = self._author(body.get("name", BOT_NAME))
            stored, deliveries = hub.post(
                author, room, text, client_id, self.options["chat_api_bucket"]
            )
        except ProtocolError as error:
            return api_error(
                _STATUS.get(error.code, 400), error.code.value, error.message
            )
        chat.dispatch(deliveries)
        chat.dispatch.commit_now()  # answer only once the message is stored
        return api_json(201, {"type": "message", **stored.to_wire()})

    def _json_body(self) -> dict[str, Any] | HTTPResponse:
        environ = self.request.environ
        if "json" not in environ.get("CONTENT_TYPE", ""):
            return api_error(415, "bad_request", "send the body as application/json")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= BODY_MAX:
            return api_error(
                413 if length > BODY_MAX else 400,
                "bad_request",
                f"the body must be JSON of at most {BODY_MAX} bytes",
            )
        try:
            body = json.loads(environ["wsgi.input"].read(length))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return api_error(400, "bad_json", "the body is not valid JSON")
        if not isinstance(body, dict):
            return api_error(400, "bad_request", "the body must be a JSON object")
        return body

    def _author(self, name: Any) -> User:
        if not isinstance(name, str):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'name' must be a string")
        try:
            name = identity.check_name(name)
        except identity.InvalidName as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc)) from None
        bot_id = identity.bot_id_for(name)
        try:
            refusal = self.chat.hub.name_refusal(bot_id, name)
        except HistoryError:
            raise ProtocolError(
                ErrorCode.INTERNAL, "the name store cannot be reached; try again"
            ) from None
        if refusal is not None:
            raise ProtocolError(
                ErrorCode.NAME_TAKEN,
                f"{refusal}: bots cannot borrow the name of a user",
            )
        return User(bot_id, name, identity.color_for(name))


def new_api_bucket() -> TokenBucket:
    return TokenBucket(API_RATE, API_BURST)


def wsgi_text(value: str) -> str:
    """A path segment as text: WSGI hands the path over as latin-1 (PEP 3333)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
