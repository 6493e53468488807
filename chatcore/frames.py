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
