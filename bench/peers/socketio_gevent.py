"""A python-socketio chat on gevent, deployed the way python-socketio documents.

    python bench/peers/socketio_gevent.py --port 8002

``socketio.Server(async_mode="gevent")`` wrapped in ``socketio.WSGIApp`` and
served by gevent's pywsgi with gevent-websocket's ``WebSocketHandler``.
Clients connect to ``/socket.io/?EIO=4&transport=websocket&name=..&room=..``;
the connect handler joins the room and emits ``welcome``; a ``message`` event
is emitted to the whole room (the sender included).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

import socketio  # noqa: E402
from gevent import pywsgi  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

COLORS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085"]

sio = socketio.Server(async_mode="gevent")
app = socketio.WSGIApp(sio)
message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))


@sio.event
def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    name = query.get("name", ["guest"])[0]
    room = query.get("room", ["lobby"])[0]
    user = {
        "id": uuid.uuid4().hex[:12],
        "name": name,
        "color": COLORS[zlib.crc32(name.encode()) % len(COLORS)],
    }
    sio.save_session(sid, {"user": user, "room": room})
    sio.enter_room(sid, room)
    sio.emit("welcome", {"user": user, "rooms": [room]}, to=sid)


@sio.event
def message(sid: str, data: dict[str, Any]) -> None:
    session = sio.get_session(sid)
    room = session["room"]
    sio.emit(
        "message",
        {
            "id": next(message_ids[room]),
            "room": room,
            "user": session["user"],
            "text": data["text"],
            "ts": int(time.time() * 1000),
            "client_id": data.get("client_id"),
        },
        to=room,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    server = pywsgi.WSGIServer(
        (args.host, args.port), app, handler_class=WebSocketHandler, log=None
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
