"""Queues each connection's outgoing bytes and writes them without blocking the sender.

Every byte a connection sends goes through its ``Outbox``. A broadcast appends
the same pre-framed bytes to each recipient's outbox; one callback per
event-loop turn (the ``Flusher``) then writes each dirty outbox with a single
non-blocking ``send``, coalescing whatever frames piled up meanwhile. A
client whose socket buffer is full gets a write watcher (no greenlet): the
event loop sends the rest as the socket drains. One whose queue passes
``outbox_max`` bytes is closed with 1008, and one whose socket takes nothing
for too long (``stalled``) is dropped by the keep-alive sweep. A recipient's
send error never reaches the greenlet that broadcast.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import gevent
from gevent.event import Event

from chatcore import frames
from chatcore.config import Settings
from chatcore.frames import CloseCode

log = logging.getLogger(__name__)

_SEND_AGAIN = (BlockingIOError, InterruptedError)
_WRITE = 2  # libev's EV_WRITE


class Flusher:
    """Writes every outbox that got frames during this turn of the event loop."""

    def __init__(self) -> None:
        self._dirty: list[Outbox] = []
        self.loop = gevent.get_hub().loop
        self.slow_closed = 0  # clients closed with 1008 for not reading

    def mark(self, outbox: Outbox) -> None:
        if not self._dirty:
            self.loop.run_callback(self._flush)
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
        "blocked_since",
        "drained",
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
        self.writer: Any = None  # a write watcher, only while the socket is full
        self.blocked_since = 0.0  # monotonic time of the last progress while full
        self.drained: Event | None = None  # set when the writer is done (flush)
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
        """Queue a close frame after what is pending; then accept nothing
        more. A peer that has not closed too within ``close_timeout`` seconds
        is cut (a timer in the event loop: nobody waits for an idle peer)."""
        if self.closing:
            return
        self.push(frames.close_frame(code, reason))
        self.closing = True
        self.close_code = code
        self.flusher.loop.timer(self.close_timeout).start(self.abort)

    def overflow(self) -> None:
        """The client stopped reading: drop its queue and close it with 1008."""
        log.warning("closing a slow client: %d bytes queued", self.size)
        self.flusher.slow_closed += 1
        self.pending.clear()
        self.size = 0
        self.close(CloseCode.POLICY_VIOLATION, "too slow: messages piled up")

    def write_now(self) -> None:
        """Send what is pending without blocking; runs in the event loop's callback."""
        self.marked = False
        if self.writer is not None or self.dead or not self.pending:
            return
        self._send()

    def _send(self) -> None:
        """One non-blocking send of everything queued; a write watcher sends
        the rest when the socket can take it."""
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
            if self.writer is None:
                self.writer = self.flusher.loop.io(self.sock.fileno(), _WRITE)
                self.writer.start(self._writable)
                self.blocked_since = time.monotonic()
            elif sent:
                self.blocked_since = time.monotonic()
        elif self.writer is not None:
            self._stop_writer()

    def _writable(self) -> None:
        """The write watcher's callback, in the event loop."""
        if self.dead or not self.pending:
            self._stop_writer()
            return
        self._send()

    def _stop_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.stop()
            writer.close()
        self.blocked_since = 0.0
        if self.drained is not None:
            self.drained.set()

    def stalled(self, now: float, timeout: float) -> bool:
        """Whether the socket has taken nothing for ``timeout`` seconds while
        bytes wait: the client stopped reading, below the queue's limit."""
        return bool(self.blocked_since) and now - self.blocked_since > timeout

    def _take(self) -> bytes:
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending.clear()
        self.size = 0
        return data

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for everything queued to be sent."""
        if self.writer is None and self.pending and not self.dead:
            self._send()
        if self.writer is not None:
            if self.drained is None:
                self.drained = Event()
            self.drained.wait(timeout)

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

    def release(self) -> None:
        """After ``finish``: close the socket (the connection's last step)."""
        self.abort()
        self.sock.close()

    def _fail(self) -> None:
        self.dead = True
        self.pending.clear()
        self.size = 0
        self._stop_writer()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
