"""Ties one upgraded connection's socket to its frame reader and its outbox.

Each connection's greenlet runs ``ChatApplication.handle``, which asks
``ChatWebSocket.receive`` for the next message: the socket's bytes go to a
``FrameReader``, control frames are answered here, and data messages go up.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket

from chatcore import frames
from chatcore.frames import CloseCode
from chatcore.reader import BinaryMessage, Ping, Pong, TextMessage

log = logging.getLogger(__name__)

READ_CHUNK = 4096  # bytes asked of the socket at a time once upgraded


class ChatWebSocket(WebSocket):
    """gevent-websocket's WebSocket reading through a FrameReader, writing
    through an Outbox.

    Reading replaces the library's ``receive``: bytes from the socket go to
    the connection's ``FrameReader``, which enforces RFC 6455 and the size
    limits; a violation is closed with its code. Pings are answered, pongs
    noted, and the peer's close is echoed with its own code. Writing goes
    through the connection's Outbox: the library writes pongs and close
    frames straight to the socket, which could cut into a frame a writer
    greenlet is halfway through.
    """

    __slots__ = ("outbox", "reader", "last_seen", "ping_sent", "sock")

    def __del__(self) -> None:
        pass  # closing is ChatApplication.on_close's job, not the collector's

    def receive(self) -> str | bytes | None:
        """The next text (str) or binary (bytes) message; None once closed."""
        if self.closed:
            return None
        try:
            return self._next_message()
        except frames.FrameError as error:
            log.info("closing with %d: %s", error.code, error.reason)
            self.close(error.code, error.reason)
        except (OSError, WebSocketError):
            self.outbox.abort()  # the socket broke: nobody left to tell
            self.closed = True
        return None

    def _next_message(self) -> str | bytes | None:
        reader = self.reader
        while True:
            event = reader.next_event()
            if event is None:
                # Straight from the socket, not through pywsgi's buffered
                # file: no buffer kept while the connection waits. The rest
                # of a big frame is asked for at once.
                data = self.sock.recv(max(READ_CHUNK, reader.missing))
                if not data:
                    raise WebSocketError("the peer closed the connection")
                self.last_seen = time.monotonic()
                reader.feed(data)
            elif isinstance(event, TextMessage):
                return event.text
            elif isinstance(event, BinaryMessage):
                return event.data
            elif isinstance(event, Ping):
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
