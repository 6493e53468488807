"""A page's WebSockets under the test's control: cut, restored, rewritten.

Playwright's WebSocket routing sits between the page and the real server, so
a test can take the link down while the server stays up, keep frames back,
answer in the server's place, or rewrite what the server sends.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, WebSocketRoute


def storage_error(frame: dict[str, Any]) -> dict[str, Any]:
    """The server's answer to a message it could not store (docs/protocol.md)."""
    return {
        "type": "error",
        "code": "internal",
        "message": "the message could not be stored, so it was not sent; try again",
        "ref": "message",
        "client_id": frame["client_id"],
    }


class Link:
    """Cuts and restores one page's WebSockets, the server staying up.

    Every socket of the page goes through Playwright's WebSocket routing: on
    line it is joined to the real server, and every frame the page sends is
    recorded; off line it is closed at once, as a refused connection would
    be. With ``hold_acks`` the echoes of the page's own messages (frames with
    a client_id) are kept from it, as if the link had died just before; with
    ``refuse`` its messages get the error the server sends when it cannot
    store one; ``rewrite`` may change every frame the server sends.

    Playwright runs these handlers only while the test is inside one of its
    calls: wait with ``page.wait_for_timeout``, never ``time.sleep``.
    """

    def __init__(
        self, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> None:
        self.online = True
        self.rewrite = rewrite
        self.hold_acks = False
        self.refuse = False  # answer messages with the server's storage error
        self.sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.sent: list[dict[str, Any]] = []  # what the page sent, in order
        self.held: list[dict[str, Any]] = []  # acknowledgements kept back

    def route(self, ws: WebSocketRoute) -> None:
        if not self.online:
            ws.close()
            return
        server_side = ws.connect_to_server()

        def upstream(message: str | bytes) -> None:
            if isinstance(message, str):
                frame = json.loads(message)
                self.sent.append(frame)
                if self.refuse and frame.get("type") == "message":
                    ws.send(json.dumps(storage_error(frame)))
                    return
            server_side.send(message)

        def downstream(message: str | bytes) -> None:
            if isinstance(message, str) and (self.hold_acks or self.rewrite):
                frame = json.loads(message)
                if (
                    self.hold_acks
                    and frame.get("type") == "message"
                    and frame.get("client_id")
                ):
                    self.held.append(frame)
                    return
                if self.rewrite:
                    message = json.dumps(self.rewrite(frame))
            ws.send(message)

        ws.on_message(upstream)
        server_side.on_message(downstream)
        self.sockets.append((ws, server_side))

    def install(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"/ws(\?|$)"), self.route)

    def cut(self) -> None:
        self.online = False
        for page_side, server_side in self.sockets:
            with contextlib.suppress(Exception):
                server_side.close()
            with contextlib.suppress(Exception):
                page_side.close()
        self.sockets.clear()
