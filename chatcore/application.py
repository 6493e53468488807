"""Runs one chat connection's life: its open, message and close hooks drive the hub.

Each connection's greenlet feeds every message to the hub in arrival order and
yields to the other greenlets after each one, so a pipelining client cannot
starve the rest.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import gevent
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.resource import WebSocketApplication

from chatcore import frames, handshake, protocol
from chatcore.config import Settings
from chatcore.dispatch import Dispatcher
from chatcore.frames import CloseCode
from chatcore.hub import Hub
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.websocket import ChatWebSocket

log = logging.getLogger(__name__)

_connection_ids = itertools.count(1)


class ChatApplication(WebSocketApplication):
    """One chat connection: its open, message and close hooks drive the hub.

    gevent-websocket 0.10.1's own ``handle`` passes ``None`` to ``on_message``
    when the peer closes and runs ``on_close`` only on a WebSocketError, so an
    exception in ``on_message`` would skip cleanup. This ``handle`` runs
    ``on_close`` exactly once, in ``finally``, whatever ended the loop.
    """

    hub: Hub
    settings: Settings
    dispatch: Dispatcher
    connections: set[ChatApplication]

    def __init__(self, ws: ChatWebSocket):
        # Not the library's __init__: it only builds a protocol object that
        # points back at the application, a reference cycle per connection
        # (each closed connection's objects then waited for a full garbage
        # collection), and ``handle`` below never uses it.
        self.ws = ws
        self.id = next(_connection_ids)
        self.outbox = ws.outbox
        self.address = handshake.client_address(ws.environ, self.settings.trusted_proxy)
        self.closed = False

    def handle(self) -> None:
        try:
            self.on_open()
            self._forget_request()
            while not self.ws.closed and not self.outbox.closing:
                try:
                    message = self.ws.receive()
                except WebSocketError:
                    break
                if message is None:
                    break
                self.on_message(message)
                gevent.sleep(0)  # let the other connections have their turn
        finally:
            self.on_close()

    def on_open(self) -> None:
        query = parse_qs(self.ws.environ.get("QUERY_STRING", ""))
        first = {k: v[0] for k, v in query.items() if v}
        # One line per connection at INFO, on close (it has the address, the
        # rooms and the close code); the open one is for debugging.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("open conn=%d addr=%s", self.id, self.address)
        self.connections.add(self)
        self.dispatch(
            self.hub.connect(
                self.outbox,
                name=first.get("name"),
                room=first.get("room"),
                client_key=first.get("key"),
                address=self.address,
                account=self.ws.environ.get("chat.account"),
                session=self.ws.environ.get("chat.session"),
            )
        )

    def _forget_request(self) -> None:
        """Drop what pywsgi keeps of the upgrade request (headers, environ,
        response headers) for the connection's whole life: read by now, and
        a third of an idle connection's memory."""
        environ = self.ws.environ
        websocket = environ.get("wsgi.websocket")
        environ.clear()
        environ["wsgi.websocket"] = websocket
        handler = vars(self.ws.handler)
        handler.pop("headers", None)  # back to pywsgi's empty class default
        handler.pop("response_headers", None)

    def on_message(self, message: Any, *args: Any, **kwargs: Any) -> None:
        if message is None:  # the library's way of saying "the peer closed"
            return
        try:
            if isinstance(message, str):
                started = time.perf_counter()
                self.dispatch(self.hub.receive(self.outbox, message), started)
            else:
                self.dispatch(self.hub.receive_binary(self.outbox))
        except Exception:
            # A bug must cost one frame, not the connection or the server.
            log.exception("conn=%d: error while handling a frame", self.id)
            error = ProtocolError(
                ErrorCode.INTERNAL, "the server failed to handle this frame"
            )
            self.outbox.push(frames.text_frame(protocol.encode_error(error)))

    def on_close(self, *args: Any, **kwargs: Any) -> None:
        if self.closed:
            return
        self.closed = True
        self.connections.discard(self)
        rooms = ",".join(self.hub.rooms_of(self.outbox))
        try:
            self.dispatch(self.hub.disconnect(self.outbox))
        finally:
            if not self.ws.closed:
                self.ws.close(CloseCode.NORMAL)
            self.outbox.finish(self.settings.close_timeout)
            # 1006: no close frame went out (RFC 6455 7.1.5), the peer vanished.
            code = self.outbox.close_code if self.outbox.close_code else 1006
            log.info(
                "close conn=%d addr=%s rooms=%s code=%s",
                self.id,
                self.address,
                rooms,
                code,
                extra={
                    "conn": self.id,
                    "addr": self.address,
                    "rooms": rooms,
                    "code": code,
                },
            )
