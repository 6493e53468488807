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
import struct
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

import gevent
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.resource import WebSocketApplication
from geventwebsocket.websocket import Stream, WebSocket

from chatcore import frames, handshake, protocol
from chatcore.config import Settings
from chatcore.delivery import Delivery
from chatcore.frames import CloseCode
from chatcore.history import HistoryStore
from chatcore.hub import Hub
from chatcore.metrics import ChatMetrics
from chatcore.protocol import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

_SEND_AGAIN = (BlockingIOError, InterruptedError)
READ_BUFFER = 1024  # bytes of pywsgi's read buffer per connection
READ_CHUNK = 4096  # bytes asked of the socket at a time once upgraded


class Flusher:
    """Writes every outbox that got frames during this turn of the event loop."""

    def __init__(self) -> None:
        self._dirty: list[Outbox] = []
        self._loop = gevent.get_hub().loop
        self.slow_closed = 0  # clients closed with 1008 for not reading

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
        "close_code",
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
        self.close_code: int | None = None  # the code of the close frame sent

    def push(self, data: bytes) -> None:
        if self.closing:
            return
        self.pending.append(data)
        self.size += len(data)
        if self.writer is None:
            if not self.marked:
                self.marked = True
                self.flusher.mark(self)
        elif self.size > self.limit:
            # Only a socket that already refused bytes counts against the
            # limit: one big history page to a reader that keeps up is fine.
            self.overflow()

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame after what is pending; then accept nothing more."""
        if self.closing:
            return
        self.push(frames.close_frame(code, reason))
        self.closing = True
        self.close_code = code

    def overflow(self) -> None:
        """The client stopped reading: drop its queue and close it with 1008."""
        log.warning("closing a slow client: %d bytes queued", self.size)
        self.flusher.slow_closed += 1
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

    def finish(self, timeout: float) -> None:
        """End the connection politely: send what is queued (the close frame
        last), stop writing, and read until the peer closes too, at most
        ``timeout`` seconds in all; then cut it."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        if not self.dead:
            try:
                self.sock.shutdown(socket.SHUT_WR)
                with gevent.Timeout(max(0.0, deadline - time.monotonic()), False):
                    while self.sock.recv(65536):
                        pass
            except OSError:
                pass
        self.abort()

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
    """Frame a delivery once and queue the same bytes for every target.

    The first target is written at once: for a chat message that is its
    sender, whose echo (the acknowledgement) then does not wait behind the
    queueing for the rest of the room.
    """
    data = frames.text_frame(delivery.text)
    targets: Any = delivery.targets
    if delivery.close_code is not None:
        for outbox in targets:
            outbox.push(data)
            outbox.close(delivery.close_code, delivery.close_reason)
        return
    if not targets:
        return
    first = targets[0]
    first.push(data)
    first.write_now()
    for outbox in targets[1:]:
        outbox.push(data)


class Dispatcher:
    """Sends the hub's deliveries, holding back stored messages until durable.

    A ``durable`` delivery waits for the end of the current turn of the event
    loop, when one ``history.flush()`` writes every message appended during
    the turn in a single transaction (a group commit); the waiting deliveries
    then go out in their original order. So a message anyone has seen, its
    sender's echo included, is already in the database. Once something waits,
    later deliveries queue behind it, keeping the order the hub produced.
    """

    def __init__(self, history: HistoryStore, metrics: ChatMetrics):
        self.history = history
        self.metrics = metrics
        self.delivered = 0  # frames queued, one per recipient
        self._waiting: list[tuple[Delivery, float | None]] = []
        self._loop = gevent.get_hub().loop

    def __call__(
        self, deliveries: Iterable[Delivery], started: float | None = None
    ) -> None:
        """Send ``deliveries``; ``started`` (perf_counter) times a broadcast."""
        deliveries = list(deliveries)
        if not self._waiting and not (
            self.history.has_pending and any(d.durable for d in deliveries)
        ):
            self._send_all([(d, started) for d in deliveries])
            return
        if not self._waiting:
            self._loop.run_callback(self.commit_now)
        self._waiting += [(d, started) for d in deliveries]

    def commit_now(self) -> None:
        """Store what waits, then send it (or its fallbacks if storing failed)."""
        waiting, self._waiting = self._waiting, []
        began = time.perf_counter()
        try:
            self.history.flush()
            stored = True
        except Exception:
            log.exception("history write failed; %d deliveries refused", len(waiting))
            stored = False
        self.metrics.history_write_seconds.observe(time.perf_counter() - began)
        if not stored:
            waiting = [
                (d.fallback if d.durable else d, started)
                for d, started in waiting
                if not d.durable or d.fallback is not None
            ]
        self._send_all(waiting)

    def _send_all(self, batch: list[tuple[Any, float | None]]) -> None:
        for delivery, started in batch:
            try:
                send(delivery)
            except Exception:
                log.exception("could not send a delivery")
                continue
            self.delivered += len(delivery.targets)
            if started is not None and delivery.durable:
                self.metrics.broadcast_seconds.observe(time.perf_counter() - started)


class ChatWebSocket(WebSocket):
    """gevent-websocket's WebSocket with a guarded read path and queued writes.

    Reading replaces the library's ``receive``: a frame whose header announces
    more than ``max_frame`` bytes is refused with 1009 before its payload is
    read; a reassembled message is capped the same way; payloads are unmasked
    in one operation and text is UTF-8-checked once; every RFC 6455 violation
    closes with its proper code (1002, 1007), and the peer's close is echoed
    with its own code. Writing goes through the connection's Outbox: the
    library writes pongs and close frames straight to the socket, which could
    cut into a frame a writer greenlet is halfway through.
    """

    __slots__ = ("outbox", "max_frame", "last_seen", "ping_sent", "sock", "inbuf")

    def __del__(self) -> None:
        pass  # closing is ChatApplication.on_close's job, not the collector's

    def receive(self) -> str | bytes | None:
        """The next text (str) or binary (bytes) message; None once closed."""
        if self.closed:
            return None
        try:
            return self._read_message()
        except frames.FrameError as error:
            log.info("closing with %d: %s", error.code, error.reason)
            self.close(error.code, error.reason)
        except (OSError, WebSocketError):
            self.outbox.abort()  # the socket broke: nobody left to tell
            self.closed = True
        return None

    def _read_exactly(self, count: int) -> bytes:
        # Straight from the socket, not through pywsgi's buffered file: no
        # buffer kept while the connection waits, and fewer layers on the
        # stack that each waiting greenlet keeps a copy of.
        data = self.inbuf
        if len(data) < count:
            chunks = [data]
            have = len(data)
            while have < count:
                chunk = self.sock.recv(max(count - have, READ_CHUNK))
                if not chunk:
                    raise WebSocketError("connection closed in the middle of a frame")
                chunks.append(chunk)
                have += len(chunk)
            data = b"".join(chunks)
        self.last_seen = time.monotonic()
        if len(data) == count:
            self.inbuf = b""
            return data
        self.inbuf = data[count:]
        return data[:count]

    def _read_frame(self) -> tuple[bool, frames.Opcode, bytes]:
        first, second = self._read_exactly(2)
        fin, opcode, length = frames.check_first_bytes(first, second)
        if length == 126:
            length = struct.unpack("!H", self._read_exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exactly(8))[0]
        if length > self.max_frame:
            raise frames.FrameError(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame of {length} bytes; the limit is {self.max_frame}",
            )
        mask = self._read_exactly(4)
        return fin, opcode, frames.unmask(self._read_exactly(length), mask)

    def _read_message(self) -> str | bytes | None:
        kind: frames.Opcode | None = None
        parts: list[bytes] = []
        size = 0
        while True:
            fin, opcode, payload = self._read_frame()
            if opcode == frames.Opcode.PING:
                self.send_frame(payload, frames.Opcode.PONG)
                continue
            if opcode == frames.Opcode.PONG:
                self.ping_sent = 0.0
                continue
            if opcode == frames.Opcode.CLOSE:
                code, reason = frames.parse_close(payload)
                self.close(code or CloseCode.NORMAL, reason)
                return None
            if opcode == frames.Opcode.CONTINUATION:
                if kind is None:
                    raise frames.FrameError(
                        CloseCode.PROTOCOL_ERROR, "continuation without a first frame"
                    )
            elif kind is not None:
                raise frames.FrameError(
                    CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one"
                )
            else:
                kind = opcode
            size += len(payload)
            if size > self.max_frame:
                raise frames.FrameError(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message of over {self.max_frame} bytes",
                )
            parts.append(payload)
            if fin:
                break
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if kind == frames.Opcode.BINARY:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise frames.FrameError(
                CloseCode.INVALID_DATA, "text message is not valid UTF-8"
            ) from None

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
        # The read side stays open: the peer's own close frame is still due.
        self.closed = True


class HandshakeTimeout(BaseException):
    """Raised in a connection's greenlet when its request headers came too slowly."""


class ChatHandler(WebSocketHandler):
    """gevent-websocket's handler with guarded handshakes.

    Each request must arrive whole within ``--handshake-timeout`` (slowloris),
    with at most ``--max-header`` bytes of headers; an upgrade must follow RFC
    6455 4.2.1 and come from the page's own origin (or an allowed one). A
    successful upgrade gets a ChatWebSocket and Nagle turned off.
    """

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None):
        # pywsgi reads through an 8 KiB buffer that lives as long as the
        # connection: for thousands of mostly idle chat connections that is
        # the biggest cost of each. A small one holds a handshake (a longer
        # request takes a few more reads) and a typical chat frame.
        if rfile is None:
            rfile = sock.makefile("rb", READ_BUFFER)
        super().__init__(sock, address, server, rfile)

    def handle_one_request(self) -> Any:
        settings = self.server.chat.settings
        self._deadline = gevent.Timeout.start_new(
            settings.handshake_timeout, HandshakeTimeout
        )
        try:
            return super().handle_one_request()
        finally:
            self._deadline.cancel()

    def log_request(self) -> None:
        # One access line per HTTP request, at DEBUG: behind a proxy its own
        # access log already has them, and upgrades are logged on close.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.format_request())

    def _handle_client_error(self, ex: BaseException) -> Any:
        # pywsgi's hook for a request it could not read. A peer that reset
        # the connection gets no 400 (there is nobody to read it) and costs
        # no traceback; malformed requests still get pywsgi's 400.
        if isinstance(ex, OSError) and not isinstance(ex, ValueError):
            log.info(
                "connection from %s lost mid-request: %s", self.client_address[0], ex
            )
            return None
        return super()._handle_client_error(ex)

    def run_application(self) -> Any:
        # The request line and headers are in: the deadline is done. A request
        # with a body (the bot API) has each socket operation bounded while
        # the application reads it; a response is never cut for being slow to
        # download. Afterwards pywsgi discards any body left unread: the same
        # bound applies there (its socket errors are swallowed quietly), so a
        # body announced but never sent cannot hold the greenlet.
        settings = self.server.chat.settings
        self._deadline.cancel()
        has_body = (self.environ.get("CONTENT_LENGTH") or "0") != "0" or (
            "chunked" in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        )
        self.socket.settimeout(settings.handshake_timeout if has_body else None)
        try:
            header_bytes = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
            if header_bytes > settings.max_header:
                return self._refuse(
                    handshake.Refusal(
                        "431 Request Header Fields Too Large",
                        f"the request headers take {header_bytes} bytes; "
                        f"the limit is {settings.max_header}",
                    )
                )
            return super().run_application()
        finally:
            if getattr(self, "websocket", None) is None:
                self.socket.settimeout(settings.handshake_timeout)

    def upgrade_websocket(self) -> Any:
        environ = self.environ
        if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return None  # a plain HTTP request, for the pages
        refusal = handshake.check_handshake(environ) or handshake.check_origin(
            environ.get("HTTP_ORIGIN"),
            environ.get("HTTP_HOST", ""),
            self.server.chat.settings.allow_origin,
        )
        if refusal is not None:
            log.info(
                "refused upgrade from %s: %s",
                handshake.client_address(
                    environ, self.server.chat.settings.trusted_proxy
                ),
                refusal.reason,
            )
            self.start_response(
                refusal.status,
                [("Content-Type", "text/plain; charset=utf-8"), *refusal.headers],
            )
            return [refusal.reason.encode("utf-8") + b"\n"]
        return super().upgrade_websocket()

    def _refuse(self, refusal: handshake.Refusal) -> None:
        body = refusal.reason.encode("utf-8") + b"\n"
        self.start_response(
            refusal.status,
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        self.close_connection = True
        self.write(body)

    def upgrade_connection(self) -> Any:
        # upgrade_websocket has checked the request (check_handshake); the
        # library's version would check it again and build a WebSocket of
        # its own for this one to replace.
        chat = self.server.chat
        ws = ChatWebSocket(self.environ, Stream(self), self)
        ws.max_frame = chat.settings.max_frame
        ws.last_seen = time.monotonic()
        ws.ping_sent = 0.0
        ws.outbox = Outbox(self.socket, chat.flusher, chat.settings)
        ws.sock = self.socket
        ws.inbuf = _take_buffered(self.rfile, self.socket)
        self.websocket = ws
        self.environ["wsgi.websocket_version"] = handshake.SUPPORTED_VERSION
        self.environ["wsgi.websocket"] = ws
        key = self.environ["HTTP_SEC_WEBSOCKET_KEY"]
        self.start_response(
            "101 Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", handshake.accept_key(key)),
            ],
        )
        self.socket.settimeout(None)  # liveness is the pings' job now
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return None


def _take_buffered(rfile: Any, sock: Any) -> bytes:
    """What the client sent after its handshake and pywsgi's buffered file
    already read, without waiting for more (the socket is non-blocking for
    that one peek)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        early = rfile.peek()
    except OSError:
        early = b""
    finally:
        sock.settimeout(timeout)
    return rfile.read(len(early)) if early else b""


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
        super().__init__(ws)
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
        log.info("open conn=%d addr=%s", self.id, self.address)
        self.connections.add(self)
        self.dispatch(
            self.hub.connect(
                self.outbox,
                name=first.get("name"),
                room=first.get("room"),
                client_key=first.get("key"),
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
