"""The gevent edge: gevent-websocket connections wired to the hub.

Reading: each connection's greenlet runs ``ChatApplication.handle``, which
feeds every text frame to the hub in arrival order and yields to the other
greenlets after each one, so a pipelining client cannot starve the rest.

Writing: every byte a connection sends goes through its ``Outbox``. A
broadcast appends the same pre-framed bytes to each recipient's outbox; one
callback per event-loop turn then writes each dirty outbox with a single
non-blocking ``send``, coalescing whatever frames piled up meanwhile. Only a
client whose socket buffer is full gets a writer greenlet, and one whose queue
passes ``outbox_max`` bytes is closed with 1008. A recipient's send error never
reaches the greenlet that broadcast.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

import gevent
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.resource import WebSocketApplication
from geventwebsocket.websocket import Stream, WebSocket

from chatcore import frames, protocol
from chatcore.config import Settings
from chatcore.frames import CloseCode
from chatcore.history import HistoryError, HistoryStore
from chatcore.hub import Delivery, Hub
from chatcore.protocol import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

_SEND_AGAIN = (BlockingIOError, InterruptedError)


class Flusher:
    """Writes every outbox that got frames during this turn of the event loop."""

    def __init__(self) -> None:
        self._dirty: list[Outbox] = []
        self._loop = gevent.get_hub().loop

    def mark(self, outbox: Outbox) -> None:
        if not self._dirty:
            self._loop.run_callback(self._flush)
        self._dirty.append(outbox)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.write_now()


class Outbox:
    """The bounded queue of bytes waiting to go out on one connection."""

    __slots__ = (
        "sock",
        "flusher",
        "limit",
        "close_timeout",
        "pending",
        "size",
        "marked",
        "writer",
        "closing",
        "dead",
    )

    def __init__(self, sock: Any, flusher: Flusher, settings: Settings):
        self.sock = sock
        self.flusher = flusher
        self.limit = settings.outbox_max
        self.close_timeout = settings.close_timeout
        self.pending: list[bytes] = []
        self.size = 0
        self.marked = False  # waiting for the flusher
        self.writer: gevent.Greenlet | None = None  # only while the socket is full
        self.closing = False  # a close frame is queued: accept nothing more
        self.dead = False  # the socket failed or was shut down

    def push(self, data: bytes) -> None:
        if self.closing:
            return
        self.pending.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.overflow()
        elif not self.marked and self.writer is None:
            self.marked = True
            self.flusher.mark(self)

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame after what is pending; then accept nothing more."""
        if self.closing:
            return
        self.push(frames.close_frame(code, reason))
        self.closing = True

    def overflow(self) -> None:
        """The client stopped reading: drop its queue and close it with 1008."""
        log.warning("closing a slow client: %d bytes queued", self.size)
        self.pending.clear()
        self.size = 0
        self.close(CloseCode.POLICY_VIOLATION, "too slow: messages piled up")
        gevent.spawn_later(self.close_timeout, self.abort)

    def write_now(self) -> None:
        """Send what is pending without blocking; runs in the event loop's callback."""
        self.marked = False
        if self.writer is not None or self.dead or not self.pending:
            return
        data = self._take()
        try:
            sent = self.sock.send(data, 0, 0.0)  # timeout 0.0: never block
        except _SEND_AGAIN:
            sent = 0
        except OSError:
            self._fail()
            return
        if sent < len(data):
            self.pending.insert(0, data[sent:])
            self.size += len(data) - sent
            self.writer = gevent.spawn(self._drain)

    def _take(self) -> bytes:
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending.clear()
        self.size = 0
        return data

    def _drain(self) -> None:
        """Writer greenlet: block on a full socket until the queue is empty."""
        try:
            while self.pending and not self.dead:
                self.sock.sendall(self._take())
        except OSError:
            self._fail()
        finally:
            self.writer = None

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for everything queued to be sent."""
        if self.writer is None and self.pending and not self.dead:
            self.writer = gevent.spawn(self._drain)
        if self.writer is not None:
            self.writer.join(timeout)

    def abort(self) -> None:
        """Cut the connection; its reader sees end of file and cleans up."""
        if self.dead:
            return
        self._fail()

    def _fail(self) -> None:
        self.dead = True
        self.pending.clear()
        self.size = 0
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def send(delivery: Delivery) -> None:
    """Frame a delivery once and queue the same bytes for every target."""
    data = frames.text_frame(delivery.text)
    for outbox in delivery.targets:
        outbox.push(data)  # type: ignore[attr-defined]


class Dispatcher:
    """Sends the hub's deliveries, holding back stored messages until durable.

    A ``durable`` delivery waits for the end of the current turn of the event
    loop, when one ``history.flush()`` writes every message appended during
    the turn in a single transaction (a group commit); the waiting deliveries
    then go out in their original order. So a message anyone has seen, its
    sender's echo included, is already in the database. Once something waits,
    later deliveries queue behind it, keeping the order the hub produced.
    """

    def __init__(self, history: HistoryStore):
        self.history = history
        self._waiting: list[Delivery] = []
        self._loop = gevent.get_hub().loop

    def __call__(self, deliveries: Iterable[Delivery]) -> None:
        deliveries = list(deliveries)
        if not self._waiting and not (
            self.history.has_pending and any(d.durable for d in deliveries)
        ):
            for delivery in deliveries:
                send(delivery)
            return
        if not self._waiting:
            self._loop.run_callback(self._commit)
        self._waiting += deliveries

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            self.history.flush()
            stored = True
        except HistoryError:
            log.exception("history write failed; %d deliveries refused", len(waiting))
            stored = False
        except Exception:
            log.exception("history write failed unexpectedly")
            stored = False
        for delivery in waiting:
            if delivery.durable and not stored:
                if delivery.fallback is None:
                    continue
                delivery = delivery.fallback
            try:
                send(delivery)
            except Exception:
                log.exception("could not send a delivery")


class ChatWebSocket(WebSocket):
    """gevent-websocket's WebSocket with every write routed through an Outbox.

    The library writes pongs and close frames straight to the socket; a writer
    greenlet may be halfway through a frame at that moment, so those writes go
    through the same queue. ``close`` sends the code it is given (0.10.1 drops
    it and always sends an empty close frame).
    """

    __slots__ = ("outbox",)

    def __del__(self) -> None:
        pass  # closing is ChatApplication.on_close's job, not the collector's

    def send_frame(self, message: Any, opcode: int) -> None:
        if self.closed:
            raise WebSocketError("the connection is closed")
        if isinstance(message, str):
            message = message.encode("utf-8")
        self.outbox.push(frames.frame(frames.Opcode(opcode), bytes(message or b"")))

    def close(self, code: int = CloseCode.NORMAL, message: Any = b"") -> None:
        if self.closed:
            return
        if isinstance(message, bytes | bytearray):
            message = bytes(message).decode("utf-8", "replace")
        self.outbox.close(code, message or "")
        self.closed = True
        self.stream = self.raw_read = self.raw_write = None


class ChatHandler(WebSocketHandler):
    """Upgrades to ChatWebSocket and turns off Nagle for every connection."""

    def upgrade_connection(self) -> Any:
        refusal = super().upgrade_connection()
        stock = getattr(self, "websocket", None)
        if refusal is None and stock is not None:
            # Retire the library's WebSocket before it is dropped: its __del__
            # would otherwise write an empty close frame to the socket.
            stock.closed = True
            ws = ChatWebSocket(self.environ, Stream(self), self)
            ws.outbox = Outbox(
                self.socket, self.server.chat.flusher, self.server.chat.settings
            )
            self.websocket = ws
            self.environ["wsgi.websocket"] = ws
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return refusal


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

    def __init__(self, ws: ChatWebSocket):
        super().__init__(ws)
        self.id = next(_connection_ids)
        self.outbox = ws.outbox
        self.address = ws.environ.get("REMOTE_ADDR", "?")
        self.closed = False

    def handle(self) -> None:
        try:
            self.on_open()
            while not self.ws.closed:
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
        log.info("open conn=%d addr=%s", self.id, self.address)
        self.dispatch(
            self.hub.connect(
                self.outbox,
                name=first.get("name"),
                room=first.get("room"),
                client_key=first.get("key"),
            )
        )

    def on_message(self, message: Any, *args: Any, **kwargs: Any) -> None:
        if message is None:  # the library's way of saying "the peer closed"
            return
        try:
            if isinstance(message, str):
                self.dispatch(self.hub.receive(self.outbox, message))
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
        try:
            rooms = (
                self.hub.conns[self.outbox].rooms
                if self.outbox in self.hub.conns
                else []
            )
            log.info(
                "close conn=%d addr=%s rooms=%s", self.id, self.address, ",".join(rooms)
            )
            self.dispatch(self.hub.disconnect(self.outbox))
        finally:
            if not self.ws.closed:
                self.ws.close(CloseCode.NORMAL)
            self.outbox.flush(self.settings.close_timeout)
            self.outbox.abort()
