"""Unit tests of chatcore.frames: RFC 6455 framing of what the server sends."""

from __future__ import annotations

import struct

import pytest

from chatcore import frames
from chatcore.frames import CloseCode, Opcode


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (1, b"\x81\x01"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_frame_header_for_length(length: int, header: bytes) -> None:
    """Ensure the 7-bit, 16-bit and 64-bit length forms, unmasked, with FIN."""
    payload = b"x" * length
    data = frames.frame(Opcode.TEXT, payload)
    assert data[: len(header)] == header
    assert data[len(header) :] == payload


@pytest.mark.parametrize("opcode", list(Opcode))
def test_frame_opcode_and_fin(opcode: Opcode) -> None:
    """Ensure the first byte is FIN plus the opcode and the mask bit is clear."""
    data = frames.frame(opcode, b"ab")
    assert data == bytes([0x80 | opcode, 2]) + b"ab"


def test_opcode_values() -> None:
    """Ensure the opcodes of RFC 6455 section 5.2."""
    assert [int(o) for o in Opcode] == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]


def test_text_frame_is_utf8() -> None:
    """Ensure text frames carry the UTF-8 bytes and count bytes, not characters."""
    text = "héllo 😀"
    encoded = text.encode("utf-8")
    assert len(encoded) == 11
    assert frames.text_frame(text) == b"\x81\x0b" + encoded
    assert frames.text_frame("") == b"\x81\x00"


def test_text_frame_long_multibyte() -> None:
    """Ensure a text of 60000 characters but 180000 bytes uses the 64-bit length."""
    data = frames.text_frame("€" * 60_000)
    assert data[:2] == b"\x81\x7f"
    assert struct.unpack("!Q", data[2:10])[0] == 180_000


@pytest.mark.parametrize(
    ("code", "packed"),
    [
        (1000, b"\x03\xe8"),
        (1008, b"\x03\xf0"),
        (1011, b"\x03\xf3"),
        (4000, b"\x0f\xa0"),
    ],
)
def test_close_frame_packs_code_big_endian(code: int, packed: bytes) -> None:
    """Ensure the close code is the first two payload bytes, big-endian."""
    assert frames.close_frame(code) == b"\x88\x02" + packed


def test_close_frame_with_reason() -> None:
    """Ensure the reason follows the code as UTF-8."""
    data = frames.close_frame(CloseCode.POLICY_VIOLATION, "too slow")
    assert data == b"\x88\x0a\x03\xf0too slow"


def test_close_frame_truncates_ascii_reason() -> None:
    """Ensure a long reason is cut to 123 bytes so the payload stays ≤ 125."""
    data = frames.close_frame(1000, "r" * 500)
    assert data[:2] == b"\x88\x7d"
    assert data[4:] == b"r" * 123


@pytest.mark.parametrize("reason", ["€" * 60, "a" + "€" * 60, "ab" + "😀" * 40])
def test_close_frame_truncates_without_splitting_a_character(reason: str) -> None:
    """Ensure a long multi-byte reason is cut at a character boundary."""
    data = frames.close_frame(1000, reason)
    length = data[1]
    assert length <= 125
    assert length == len(data) - 2
    assert data[2:4] == b"\x03\xe8"
    kept = data[4:].decode("utf-8")  # would raise if a character were split
    assert reason.startswith(kept)
    assert 123 - 3 <= len(kept.encode("utf-8")) <= 123


def test_close_codes() -> None:
    """Ensure the close codes used by the server have their RFC values."""
    assert CloseCode.NORMAL == 1000
    assert CloseCode.POLICY_VIOLATION == 1008
    assert CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.INTERNAL_ERROR == 1011
