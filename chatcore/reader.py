"""Reads what a client sends into WebSocket messages and control events. Pure.

``FrameReader`` does no I/O: the edge feeds it whatever the socket gave
(``feed``) and takes complete events out (``next_event``), one at a time, so
the frames before a violation are still handled before the violation closes
the connection. Every rule on what a client may send is here: the header
checks, the size limits (decided from the header, before the payload is
buffered), fragment sequencing, unmasking, UTF-8 and close-frame parsing. A
violation raises ``frames.FrameError`` with the close code to answer with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from chatcore import frames
from chatcore.frames import CloseCode, FrameError, Opcode

_MASK_SIZE = 4


@dataclass(frozen=True, slots=True)
class TextMessage:
    text: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """The peer's close frame; ``code`` is None when it carried no body."""

    code: int | None
    reason: str


Event = TextMessage | BinaryMessage | Ping | Pong | Close


class _Header(NamedTuple):
    fin: bool
    opcode: Opcode
    length: int
    size: int  # bytes of the header, mask key included


class FrameReader:
    """Sans-I/O reader of one client's frames: bytes in, events out.

    An idle reader holds no buffer: the bytes of an unfinished frame are kept
    only until it completes, and a fragmented message only until its last
    fragment. At most ``max_frame`` payload bytes are buffered for a frame or
    a message, plus the few bytes of a header.
    """

    __slots__ = (
        "max_frame",
        "_buffer",
        "_start",
        "_later",
        "_later_size",
        "_kind",
        "_parts",
        "_size",
        "_error",
        "_frame_end",
    )

    def __init__(self, max_frame: int):
        self.max_frame = max_frame
        self._buffer = b""  # bytes ready to parse, from offset _start
        self._start = 0
        self._later: list[bytes] | None = None  # chunks not joined into _buffer yet
        self._later_size = 0
        # An unfinished fragmented message: its kind, its payloads, their size.
        self._kind: Opcode | None = None
        self._parts: list[bytes] | None = None
        self._size = 0
        self._error: FrameError | None = None  # once refused, always refused
        self._frame_end = 0  # bytes the frame in progress takes, once known

    def feed(self, data: bytes) -> None:
        """Take bytes as they came off the socket, any amount, any boundary."""
        if not data:
            return
        if self._start == len(self._buffer) and self._later is None:
            self._buffer, self._start = data, 0
        elif self._later is None:
            self._later = [data]
            self._later_size = len(data)
        else:
            self._later.append(data)
            self._later_size += len(data)

    @property
    def buffered(self) -> int:
        """Bytes fed but not consumed yet."""
        return len(self._buffer) - self._start + self._later_size

    @property
    def missing(self) -> int:
        """Bytes still to come for the frame in progress (0 if not known yet):
        a hint for how much to read at once, never more than a frame."""
        return max(0, self._frame_end - self.buffered)

    def frame_ready(self) -> bool:
        """Whether a whole frame (or a violation) waits: ``next_event`` would
        consume something. Cheap while a big frame is still arriving."""
        if self._error is not None:
            return True
        try:
            header = self._header()
        except FrameError:
            return True
        return header is not None and self._ensure(header.size + header.length)

    def events(self) -> list[Event]:
        """Every event complete in what was fed so far."""
        found = []
        while (event := self.next_event()) is not None:
            found.append(event)
        return found

    def next_event(self) -> Event | None:
        """The next complete event, or None until more bytes are fed.

        Raises:
            FrameError: the client broke RFC 6455 or a limit; the bytes after
                the violation are dropped unread, and every later call
                raises the same error.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except FrameError as error:
            self._error = error
            self._buffer, self._start = b"", 0
            self._later, self._later_size = None, 0
            self._kind, self._parts, self._size = None, None, 0
            self._frame_end = 0
            raise

    def _next_event(self) -> Event | None:
        while True:
            header = self._header()
            if header is None:
                return None
            if not self._ensure(header.size + header.length):
                self._frame_end = header.size + header.length
                return None
            self._frame_end = 0
            body = self._take(header.size + header.length)
            mask = body[header.size - _MASK_SIZE : header.size]
            payload = frames.unmask(body[header.size :], mask)
            event = self._event(header, payload)
            if event is not None:
                return event

    def _header(self) -> _Header | None:
        """The next frame's header once it is whole and allowed, else None."""
        if not self._ensure(2):
            return None
        buffer, start = self._buffer, self._start
        fin, opcode, length = frames.check_first_bytes(buffer[start], buffer[start + 1])
        size = 2
        if length == 126:
            size = 4
            if not self._ensure(size):
                return None
            length = struct.unpack_from("!H", self._buffer, self._start + 2)[0]
        elif length == 127:
            size = 10
            if not self._ensure(size):
                return None
            length = struct.unpack_from("!Q", self._buffer, self._start + 2)[0]
        self._check_sequence(opcode, length)
        return _Header(fin, opcode, length, size + _MASK_SIZE)

    def _check_sequence(self, opcode: Opcode, length: int) -> None:
        """Refuse, from its header alone, a frame that cannot be accepted."""
        if length > self.max_frame:
            raise FrameError(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame of {length} bytes; the limit is {self.max_frame}",
            )
        if opcode == Opcode.CONTINUATION:
            if self._kind is None:
                raise FrameError(
                    CloseCode.PROTOCOL_ERROR, "continuation without a first frame"
                )
            if self._size + length > self.max_frame:
                raise FrameError(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message of over {self.max_frame} bytes",
                )
        elif opcode in (Opcode.TEXT, Opcode.BINARY) and self._kind is not None:
            raise FrameError(
                CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one"
            )

    def _event(self, header: _Header, payload: bytes) -> Event | None:
        """What a frame means; None for a fragment that does not end its message."""
        opcode = header.opcode
        if opcode == Opcode.PING:
            return Ping(payload)
        if opcode == Opcode.PONG:
            return Pong(payload)
        if opcode == Opcode.CLOSE:
            return Close(*frames.parse_close(payload))
        if opcode != Opcode.CONTINUATION:
            if header.fin:
                return self._message(opcode, payload)
            self._kind, self._parts, self._size = opcode, [payload], len(payload)
            return None
        parts, kind = self._parts, self._kind
        if parts is None or kind is None:  # _check_sequence refused it already
            raise FrameError(CloseCode.PROTOCOL_ERROR, "continuation without a start")
        parts.append(payload)
        self._size += len(payload)
        if not header.fin:
            return None
        self._kind, self._parts, self._size = None, None, 0
        return self._message(kind, b"".join(parts))

    @staticmethod
    def _message(kind: Opcode, data: bytes) -> TextMessage | BinaryMessage:
        if kind == Opcode.BINARY:
            return BinaryMessage(data)
        try:
            return TextMessage(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise FrameError(
                CloseCode.INVALID_DATA, "text message is not valid UTF-8"
            ) from None

    def _ensure(self, count: int) -> bool:
        """Whether ``count`` bytes are ready, joining later chunks only once
        enough have come (so a big frame is copied once, not per chunk)."""
        ready = len(self._buffer) - self._start
        if ready >= count:
            return True
        if self._later is None or ready + self._later_size < count:
            return False
        self._buffer = b"".join([self._buffer[self._start :], *self._later])
        self._start = 0
        self._later = None
        self._later_size = 0
        return True

    def _take(self, count: int) -> bytes:
        start = self._start
        end = start + count
        if start == 0 and end == len(self._buffer):
            data = self._buffer
        else:
            data = self._buffer[start:end]
        if end == len(self._buffer):
            self._buffer, self._start = b"", 0
        else:
            self._start = end
        return data
