"""The classic wheezy.web + gevent-websocket chat, written the tutorial way.

    python bench/peers/naive_wheezy.py --port 8001

One WebSocketServer serves a wheezy.web page at ``/`` and the chat at ``/ws``
through gevent-websocket's ``Resource``. The application keeps a set of
clients per room; ``on_message`` loops over the room and calls ``ws.send`` on
each client directly, with ``json.dumps`` per recipient. No queues, no
batching: a recipient whose socket is full blocks the sender's greenlet.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

from geventwebsocket import Resource, WebSocketApplication, WebSocketServer  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402
from wheezy.http import HTTPResponse, WSGIApplication  # noqa: E402
from wheezy.routing import url  # noqa: E402
from wheezy.web.handlers import BaseHandler  # noqa: E402
from wheezy.web.middleware import (  # noqa: E402
    bootstrap_defaults,
    path_routing_middleware_factory,
)

COLORS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085"]


class IndexHandler(BaseHandler):
    def get(self) -> HTTPResponse:
        response = HTTPResponse()
        response.write("<!doctype html><title>chat</title><p>Connect to /ws</p>")
        return response


pages = WSGIApplication(
    [
        bootstrap_defaults(url_mapping=[url("", IndexHandler)]),
        path_routing_middleware_factory,
    ],
    {},
)

rooms: dict[str, set[ChatApplication]] = defaultdict(set)
message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))


class ChatApplication(WebSocketApplication):
    user: dict[str, str]
    room: str

    def on_open(self) -> None:
        query = parse_qs(self.ws.environ.get("QUERY_STRING", ""))
        name = query.get("name", ["guest"])[0]
        self.room = query.get("room", ["lobby"])[0]
        self.user = {
            "id": uuid.uuid4().hex[:12],
            "name": name,
            "color": COLORS[zlib.crc32(name.encode()) % len(COLORS)],
        }
        rooms[self.room].add(self)
        self.ws.send(
            json.dumps({"type": "welcome", "user": self.user, "rooms": [self.room]})
        )

    def on_message(self, message: Any, *args: Any, **kwargs: Any) -> None:
        if message is None:  # the client went away
            return
        data = json.loads(message)
        if data.get("type") != "message":
            return
        payload = {
            "type": "message",
            "id": next(message_ids[self.room]),
            "room": self.room,
            "user": self.user,
            "text": data["text"],
            "ts": int(time.time() * 1000),
            "client_id": data.get("client_id"),
        }
        for client in list(rooms[self.room]):
            try:
                client.ws.send(json.dumps(payload))
            except WebSocketError:
                pass  # that client is gone; its on_close removes it

    def on_close(self, *args: Any, **kwargs: Any) -> None:
        rooms[self.room].discard(self)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    server = WebSocketServer(
        (args.host, args.port),
        Resource([("^/ws", ChatApplication), ("^/", pages)]),
        log=None,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
