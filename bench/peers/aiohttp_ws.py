"""A chat on aiohttp's web server and its WebSocketResponse.

    python bench/peers/aiohttp_ws.py --port 8005

``GET /ws`` upgrades to a WebSocket, joins the room named in the query
string and sends ``welcome``; each ``message`` is serialized once and sent to
every member of the room with ``await send_str`` in turn, the way aiohttp's
own chat example relays.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator

from aiohttp import WSMsgType, web

COLORS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085"]

ROOMS = web.AppKey("rooms", dict[str, set[web.WebSocketResponse]])
MESSAGE_IDS = web.AppKey("message_ids", dict[str, Iterator[int]])


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text="<!doctype html><title>chat</title><p>Connect to /ws</p>",
        content_type="text/html",
    )


async def chat(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    name = request.query.get("name", "guest")
    room = request.query.get("room", "lobby")
    user = {
        "id": uuid.uuid4().hex[:12],
        "name": name,
        "color": COLORS[zlib.crc32(name.encode()) % len(COLORS)],
    }
    members = request.app[ROOMS][room]
    ids = request.app[MESSAGE_IDS][room]
    members.add(ws)
    try:
        await ws.send_json({"type": "welcome", "user": user, "rooms": [room]})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") != "message":
                continue
            text = json.dumps(
                {
                    "type": "message",
                    "id": next(ids),
                    "room": room,
                    "user": user,
                    "text": data["text"],
                    "ts": int(time.time() * 1000),
                    "client_id": data.get("client_id"),
                }
            )
            for member in list(members):
                if member.closed:
                    continue
                try:
                    await member.send_str(text)
                except ConnectionResetError:
                    pass  # it is closing; its own handler removes it
    finally:
        members.discard(ws)
    return ws


def build_app() -> web.Application:
    app = web.Application()
    app[ROOMS] = defaultdict(set)
    app[MESSAGE_IDS] = defaultdict(lambda: itertools.count(1))
    app.router.add_get("/", index)
    app.router.add_get("/ws", chat)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8005)
    args = parser.parse_args()
    web.run_app(build_app(), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
