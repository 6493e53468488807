"""Runs one chat connection's life: its open, message and close hooks drive the hub.

The handler's greenlet runs ``on_open`` and returns: an idle connection holds
no greenlet. When the event loop has read a whole message, a greenlet runs
``on_message`` for it and for any that followed it, in arrival order,
yielding to the other greenlets after every ``TURN_MESSAGES`` of them (a
pipelining client cannot starve the rest), then hands the socket back to the
loop and ends.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import gevent
from geventwebsocket.resource import WebSocketApplication

from chatcore import frames, handshake, protocol
from chatcore.config import Settings
from chatcore.dispatch import Dispatcher
from chatcore.frames import CloseCode
from chatcore.hub import Hub
from chatcore.peers import OpenConnections
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.websocket import ChatWebSocket

log = logging.getLogger(__name__)
# Messages one connection's turn handles back to back before the others get
# theirs. A yield after each one cost a turn of the event loop per message
# (the fan-out's per-turn write batching with it): fan-out at 1,000 clients
# fell from ~960k to ~690k deliveries/s and fairness from 1.0 to 0.67.
TURN_MESSAGES = 32

_connection_ids = itertools.count(1)


class ChatApplication(WebSocketApplication):
    """One chat connection: its open, message and close hooks drive the hub.

    gevent-websocket 0.10.1's own ``handle`` loops on ``ws.receive()`` in the
    connection's greenlet for its whole life. This ``handle`` runs
    ``on_open`` and hands the socket to the event loop (``ReadListener``):
    each message then runs ``on_message`` in a short-lived greenlet, and
    ``on_close`` runs exactly once, whatever ended the connection.
    """

    hub: Hub
    settings: Settings
    dispatch: Dispatcher
    connections: set[ChatApplication]
    open_connections: OpenConnections

    def __init__(self, ws: ChatWebSocket):
        # Not the library's __init__: it only builds a protocol object that
        # points back at the application, a reference cycle per connection
        # (each closed connection's objects then waited for a full garbage
        # collection), and ``handle`` below never uses it.
        self.ws = ws
        self.id = next(_connection_ids)
        self.outbox = ws.outbox
        self.address = handshake.client_address(ws.environ, self.settings.trusted_proxy)
        self.peer = ws.handler.client_address
        self.closed = False

    def handle(self) -> None:
        """Open, then leave the reading to the event loop (in the handler's
        greenlet, which returns)."""
        try:
            self.on_open()
            self.ws.forget_request()
            self.ws.start_reading(self)
        except BaseException:
            self.on_close()
            raise

    def received(self, message: str | bytes) -> None:
        gevent.spawn_raw(self._take_turn, message)

    def ended(self) -> None:
        gevent.spawn_raw(self.on_close)

    def _take_turn(self, message: str | bytes) -> None:
        """A greenlet's work: this message and every one already read after
        it, in order; then reading goes back to the event loop."""
        ws = self.ws
        try:
            for handled in itertools.count(1):
                self.on_message(message)
                if handled % TURN_MESSAGES == 0:
                    gevent.sleep(0)  # let the other connections have their turn
                if ws.closed or self.outbox.closing:
                    break
                next_message = ws.next_message()
                if next_message is None:
                    break
                message = next_message
        except BaseException:
            self.on_close()
            raise
        if ws.closed or self.outbox.closing or self.outbox.dead:
            self.on_close()
        else:
            ws.resume_reading(self)

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
        self.ws.stop_reading()
        self.connections.discard(self)
        rooms = ",".join(self.hub.rooms_of(self.outbox))
        try:
            self.dispatch(self.hub.disconnect(self.outbox))
        finally:
            try:
                if not self.ws.closed:
                    self.ws.close(CloseCode.NORMAL)
                self.outbox.finish(self.settings.close_timeout)
            finally:
                self.outbox.release()  # the socket is closed here, and only here
                self.open_connections.release(self.peer)
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
