"""A chat on the ``websockets`` library (asyncio), broadcasting with broadcast().

    python bench/peers/websockets_asyncio.py --port 8003

The handler joins the room named in the query string, sends ``welcome``, then
relays every ``message`` to the room with ``websockets.asyncio.server
.broadcast``, which frames once and writes to every open connection without
waiting (no backpressure: see its documentation).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
import zlib
from collections import defaultdict
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

COLORS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085"]

rooms: dict[str, set[ServerConnection]] = defaultdict(set)
message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))


def only_ws_path(connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path != "/ws":
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    return None


async def chat(websocket: ServerConnection) -> None:
    assert websocket.request is not None
    query = parse_qs(urlsplit(websocket.request.path).query)
    name = query.get("name", ["guest"])[0]
    room = query.get("room", ["lobby"])[0]
    user = {
        "id": uuid.uuid4().hex[:12],
        "name": name,
        "color": COLORS[zlib.crc32(name.encode()) % len(COLORS)],
    }
    members = rooms[room]
    members.add(websocket)
    try:
        await websocket.send(
            json.dumps({"type": "welcome", "user": user, "rooms": [room]})
        )
        async for raw in websocket:
            data = json.loads(raw)
            if data.get("type") != "message":
                continue
            payload = {
                "type": "message",
                "id": next(message_ids[room]),
                "room": room,
                "user": user,
                "text": data["text"],
                "ts": int(time.time() * 1000),
                "client_id": data.get("client_id"),
            }
            broadcast(members, json.dumps(payload))
    finally:
        members.discard(websocket)


async def serve_forever(host: str, port: int) -> None:
    async with serve(chat, host, port, process_request=only_ws_path) as server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    args = parser.parse_args()
    asyncio.run(serve_forever(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
