"""Ties one upgraded connection's socket to its frame reader and its outbox.

No greenlet waits on an idle connection: once its application has opened,
``start_reading`` hands the socket to the event loop. A read watcher calls
back (in the loop itself) when bytes arrive; the callback reads what is
there without blocking, feeds the connection's ``FrameReader``, answers
control frames, and passes a complete message, or the end of the
connection, to the application's ``ReadListener``, which runs its hooks in a
greenlet. While the hooks run the watcher is stopped: a connection whose
hooks are busy is not read (the back-pressure), and its messages are handled
in order.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import gevent
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket

from chatcore import frames
from chatcore.frames import CloseCode
from chatcore.outbox import Outbox
from chatcore.reader import BinaryMessage, FrameReader, Ping, Pong, TextMessage

log = logging.getLogger(__name__)

READ_BUFFER_SIZE = 65536  # bytes read at a time, into the one shared buffer
_READ = 1  # libev's EV_READ
_TRY_AGAIN = (BlockingIOError, InterruptedError)

# Every read callback runs in the event loop, one at a time: one buffer
# serves every connection, and only the bytes actually read are copied out.
_buffer = bytearray(READ_BUFFER_SIZE)
_view = memoryview(_buffer)


class ReadListener(Protocol):
    """What a connection's reads are handed to. Both methods are called from
    the event loop: they must not block or switch (spawn a greenlet)."""

    def received(self, message: str | bytes) -> None:
        """A whole data message came; reading is paused until ``resume_reading``."""

    def ended(self) -> None:
        """The peer closed, the socket broke, or the connection is closing."""


class ChatWebSocket(WebSocket):
    """gevent-websocket's WebSocket reading through a FrameReader, writing
    through an Outbox.

    Reading replaces the library's ``receive``: bytes from the socket go to
    the connection's ``FrameReader``, which enforces RFC 6455 and the size
    limits; a violation is closed with its code. Pings are answered, pongs
    noted, and the peer's close is echoed with its own code. Writing goes
    through the connection's Outbox: the library writes pongs and close
    frames straight to the socket, which could cut into a frame being written.
    """

    __slots__ = ("outbox", "reader", "last_seen", "ping_sent", "sock", "watcher")

    def __init__(
        self,
        environ: dict[str, Any],
        handler: Any,
        sock: Any,
        reader: FrameReader,
        outbox: Outbox,
    ):
        # Not the library's __init__: its stream, bound read/write methods
        # and UTF-8 validator would live as long as the connection, unused
        # (the reader checks UTF-8, the outbox writes).
        self.environ = environ
        self.handler = handler
        self.stream = self.raw_read = self.raw_write = self.utf8validator = None
        self.closed = False
        self.sock = sock
        self.reader = reader
        self.outbox = outbox
        self.last_seen = time.monotonic()
        self.ping_sent = 0.0
        self.watcher: Any = None

    def __del__(self) -> None:
        pass  # closing is ChatApplication.on_close's job, not the collector's

    def forget_request(self) -> None:
        """Let go of the upgrade request (environ, pywsgi's handler): read
        by now, and most of what an idle connection would otherwise hold."""
        self.environ = {}
        self.handler = None

    def start_reading(self, listener: ReadListener) -> None:
        """Hand the socket to the event loop: ``listener`` hears of each
        message and of the end. Bytes already buffered are handled first."""
        self.watcher = gevent.get_hub().loop.io(self.sock.fileno(), _READ)
        self._handle_buffered(listener)

    def resume_reading(self, listener: ReadListener) -> None:
        """After ``received``: handle what is buffered, then watch again."""
        self._handle_buffered(listener)

    def stop_reading(self) -> None:
        """Release the watcher; idempotent. Before the socket is closed."""
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def _handle_buffered(self, listener: ReadListener) -> None:
        message = self.next_message()
        if message is not None:
            listener.received(message)
        elif self.closed or self.outbox.closing or self.outbox.dead:
            self.stop_reading()
            listener.ended()
        elif self.watcher is not None:
            self.watcher.start(self._readable, listener)

    def _readable(self, listener: ReadListener) -> None:
        """The watcher's callback, in the event loop: never blocks."""
        watcher = self.watcher
        if watcher is None:
            return
        try:
            count = self.sock._sock.recv_into(_buffer)
        except _TRY_AGAIN:
            return
        except OSError:
            count = 0
        if not count:  # end of file, or the socket broke: nobody to tell
            self.outbox.abort()
            self.closed = True
            self.stop_reading()
            listener.ended()
            return
        self.last_seen = time.monotonic()
        self.reader.feed(bytes(_view[:count]))
        if self.reader.frame_ready() or self.closed or self.outbox.closing:
            watcher.stop()
            self._handle_buffered(listener)

    def next_message(self) -> str | bytes | None:
        """The next text (str) or binary (bytes) message already read; None
        when none is complete yet or the connection is closing (``closed``).
        Never blocks."""
        if self.closed:
            return None
        try:
            return self._next_message()
        except frames.FrameError as error:
            log.info("closing with %d: %s", error.code, error.reason)
            self.close(error.code, error.reason)
        except WebSocketError:
            self.outbox.abort()
            self.closed = True
        return None

    def _next_message(self) -> str | bytes | None:
        reader = self.reader
        while True:
            event = reader.next_event()
            if event is None:
                return None
            if isinstance(event, TextMessage):
                return event.text
            if isinstance(event, BinaryMessage):
                return event.data
            if isinstance(event, Ping):
                self.send_frame(event.payload, frames.Opcode.PONG)
            elif isinstance(event, Pong):
                self.ping_sent = 0.0
            else:
                self.close(event.code or CloseCode.NORMAL, event.reason)
                return None

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
