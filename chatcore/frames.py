"""WebSocket framing (RFC 6455 section 5) for what the server sends. Pure.

The server builds each outgoing frame once, as bytes, and hands the same bytes
to every recipient: a broadcast costs one JSON encoding and one frame header,
whatever the size of the room.
"""

from __future__ import annotations

import struct
from enum import IntEnum


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    KICKED = 4000  # a moderator kicked the user off the server (ext)
    BANNED = 4003  # an admin banned the user (ext)


_FIN = 0x80


def frame(opcode: Opcode, payload: bytes) -> bytes:
    """One unmasked, unfragmented frame (servers never mask, 5.1)."""
    length = len(payload)
    first = _FIN | opcode
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def text_frame(text: str) -> bytes:
    return frame(Opcode.TEXT, text.encode("utf-8"))


def close_frame(code: int, reason: str = "") -> bytes:
    # 5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
    encoded = reason.encode("utf-8")[:123]
    while True:
        try:
            encoded.decode("utf-8")
            break
        except UnicodeDecodeError:  # cut inside a character: drop its tail
            encoded = encoded[:-1]
    return frame(Opcode.CLOSE, struct.pack("!H", code) + encoded)


class FrameError(Exception):
    """The peer broke RFC 6455 (or a limit): close the connection with ``code``."""

    def __init__(self, code: CloseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


_DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
_CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
CONTROL_PAYLOAD_MAX = 125


def check_first_bytes(first: int, second: int) -> tuple[bool, Opcode, int]:
    """Validate the two fixed header bytes of a client frame (5.2).

    Returns:
        ``(fin, opcode, length7)``: ``length7`` is 126 or 127 when an extended
        length follows.

    Raises:
        FrameError: 1002 for reserved bits (no extension was negotiated), a
            reserved opcode, an unmasked client frame (5.1), or a fragmented
            or oversized control frame (5.5).
    """
    if first & 0x70:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set")
    try:
        opcode = Opcode(first & 0x0F)
    except ValueError:
        raise FrameError(
            CloseCode.PROTOCOL_ERROR, f"reserved opcode {first & 0x0F:#x}"
        ) from None
    if not second & 0x80:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
    fin = bool(first & _FIN)
    length7 = second & 0x7F
    if opcode in _CONTROL_OPCODES and (not fin or length7 > CONTROL_PAYLOAD_MAX):
        raise FrameError(
            CloseCode.PROTOCOL_ERROR,
            "control frames must be whole and at most 125 bytes",
        )
    return fin, opcode, length7


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR the payload with the 4-byte mask (5.3), as one big-integer operation.

    Python has no vectorised XOR on bytes, but ints of any size XOR in C: this
    is about a thousand times faster than a loop over the bytes.
    """
    length = len(payload)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(length, "big")


def is_valid_close_code(code: int) -> bool:
    """Codes a peer may send (7.4.1, 7.4.2); 1004-1006 and 1015 never travel."""
    return (
        code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1011 or 3000 <= code <= 4999
    )


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """The status code and reason of a close frame (5.5.1).

    Raises:
        FrameError: 1002 for a one-byte body or an invalid code, 1007 for a
            reason that is not UTF-8.
    """
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "a close frame body needs 2 bytes")
    code = struct.unpack("!H", payload[:2])[0]
    if not is_valid_close_code(code):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CloseCode.INVALID_DATA, "close reason is not UTF-8") from None
    return code, reason
