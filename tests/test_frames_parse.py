"""Unit tests of chatcore.frames on the reading side: what clients send.

check_first_bytes is compared with a straightforward model of RFC 6455 5.2
over every possible pair of header bytes; unmask with a per-byte XOR on random
data; is_valid_close_code with the list of 7.4 over every 16-bit code.
"""

from __future__ import annotations

import random
import struct

import pytest

from chatcore import frames
from chatcore.frames import CloseCode, FrameError, Opcode

DEFINED_OPCODES = {0x0, 0x1, 0x2, 0x8, 0x9, 0xA}
CONTROL_OPCODES = {0x8, 0x9, 0xA}


def expected_header(first: int, second: int) -> tuple[bool, int, int] | CloseCode:
    """RFC 6455 5.2/5.5 as a client frame header must satisfy it, written
    independently of the code under test: the verdict for two header bytes."""
    fin = first >> 7 == 1
    rsv = (first >> 4) & 0b111
    opcode = first & 0b1111
    masked = second >> 7 == 1
    length7 = second & 0b0111_1111
    if rsv != 0 or opcode not in DEFINED_OPCODES or not masked:
        return CloseCode.PROTOCOL_ERROR
    if opcode in CONTROL_OPCODES and (not fin or length7 > 125):
        return CloseCode.PROTOCOL_ERROR
    return fin, opcode, length7


def naive_unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


# -- check_first_bytes -----------------------------------------------------------


def test_check_first_bytes_matches_the_rfc_for_every_header() -> None:
    """Ensure every one of the 65,536 two-byte headers gets the RFC's verdict."""
    mismatches = []
    for first in range(256):
        for second in range(256):
            expected = expected_header(first, second)
            try:
                got: tuple[bool, int, int] | CloseCode = frames.check_first_bytes(
                    first, second
                )
            except FrameError as error:
                got = error.code
            if got != expected:
                mismatches.append((hex(first), hex(second), got, expected))
    assert not mismatches[:10], f"{len(mismatches)} headers misjudged"


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (0x81, 0x85, (True, Opcode.TEXT, 5)),
        (0x01, 0x80, (False, Opcode.TEXT, 0)),
        (0x82, 0xFE, (True, Opcode.BINARY, 126)),
        (0x00, 0xFF, (False, Opcode.CONTINUATION, 127)),
        (0x89, 0xFD, (True, Opcode.PING, 125)),
        (0x8A, 0x80, (True, Opcode.PONG, 0)),
        (0x88, 0x82, (True, Opcode.CLOSE, 2)),
    ],
)
def test_check_first_bytes_accepts(
    first: int, second: int, expected: tuple[bool, Opcode, int]
) -> None:
    """Ensure valid headers give (fin, opcode, 7-bit length), the opcode typed."""
    result = frames.check_first_bytes(first, second)
    assert result == expected
    assert isinstance(result[1], Opcode)


@pytest.mark.parametrize(
    ("first", "second", "words"),
    [
        (0xC1, 0x85, "reserved bits"),  # RSV1
        (0xA1, 0x85, "reserved bits"),  # RSV2
        (0x91, 0x85, "reserved bits"),  # RSV3
        (0x83, 0x80, "reserved opcode 0x3"),
        (0x87, 0x80, "reserved opcode 0x7"),
        (0x8B, 0x80, "reserved opcode 0xb"),
        (0x8F, 0x80, "reserved opcode 0xf"),
        (0x81, 0x05, "masked"),
        (0x09, 0x80, "control frames"),  # a fragmented ping
        (0x89, 0xFE, "control frames"),  # a ping announcing 126+ bytes
        (0x88, 0xFF, "control frames"),  # a close announcing 64-bit length
        (0x0A, 0x80, "control frames"),  # a fragmented pong
    ],
)
def test_check_first_bytes_refuses_with_1002(
    first: int, second: int, words: str
) -> None:
    """Ensure each violation is a 1002 whose reason names it."""
    with pytest.raises(FrameError) as caught:
        frames.check_first_bytes(first, second)
    assert caught.value.code == CloseCode.PROTOCOL_ERROR
    assert words in caught.value.reason


def test_check_first_bytes_accepts_what_a_client_would_send_of_server_frames() -> None:
    """Ensure a frame built by ``frame()`` passes once its mask bit is set."""
    for opcode in Opcode:
        data = frames.frame(opcode, b"x" * 10)
        assert frames.check_first_bytes(data[0], data[1] | 0x80) == (True, opcode, 10)


# -- unmask ----------------------------------------------------------------------

LENGTHS = sorted(
    {*range(0, 300), 1021, 4095, 4096, 4097, 65535, 65536, 65537, 69999, 70000}
    | {random.Random(6455).randrange(300, 70001) for _ in range(40)}
)


@pytest.mark.parametrize("length", LENGTHS, ids=str)
def test_unmask_matches_per_byte_xor(length: int) -> None:
    """Ensure unmask equals the per-byte XOR of 5.3 on random data and keys."""
    rng = random.Random(length)
    payload = rng.randbytes(length)
    mask = rng.randbytes(4)
    result = frames.unmask(payload, mask)
    assert isinstance(result, bytes)
    assert len(result) == length
    assert result == naive_unmask(payload, mask)


@pytest.mark.parametrize(
    ("payload", "mask"),
    [
        (b"\x00\x00\x00hello", b"\x00\x00\x00\x01"),  # leading zero bytes stay
        (b"abc", b"abc\x00"),  # a result that starts with zero bytes
        (b"\xff" * 9, b"\xff\xff\xff\xff"),  # all zeros out
        (b"\x00" * 5, b"\x00\x00\x00\x00"),
    ],
)
def test_unmask_keeps_zero_bytes(payload: bytes, mask: bytes) -> None:
    """Ensure the big-integer trick never drops leading or trailing zeros."""
    assert frames.unmask(payload, mask) == naive_unmask(payload, mask)


def test_unmask_is_its_own_inverse_and_zero_mask_is_identity() -> None:
    """Ensure masking twice gives the payload back, and a zero key changes nothing."""
    rng = random.Random(7)
    for length in (0, 1, 3, 4, 5, 126, 65536):
        payload = rng.randbytes(length)
        mask = rng.randbytes(4)
        assert frames.unmask(frames.unmask(payload, mask), mask) == payload
        assert frames.unmask(payload, b"\x00" * 4) == payload


# -- is_valid_close_code ---------------------------------------------------------


def test_is_valid_close_code_over_every_code() -> None:
    """Ensure exactly the codes of RFC 6455 7.4.1/7.4.2 that may be sent pass."""
    allowed = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011}
    allowed |= set(range(3000, 5000))
    wrong = [
        code
        for code in range(1 << 16)
        if frames.is_valid_close_code(code) != (code in allowed)
    ]
    assert wrong == []


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1012, 1015, 2000, 2999])
def test_is_valid_close_code_refuses_reserved(code: int) -> None:
    """Ensure reserved and never-sent codes are refused (1005/1006/1015 included)."""
    assert not frames.is_valid_close_code(code)


# -- parse_close -----------------------------------------------------------------


def close_body(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def test_parse_close_empty_body() -> None:
    """Ensure a close without a body has no code and no reason."""
    assert frames.parse_close(b"") == (None, "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (close_body(1000), (1000, "")),
        (close_body(1001, b"bye"), (1001, "bye")),
        (close_body(3001, "au revoir, été".encode()), (3001, "au revoir, été")),
        (close_body(4999, b"x" * 123), (4999, "x" * 123)),
    ],
)
def test_parse_close_valid(body: bytes, expected: tuple[int, str]) -> None:
    """Ensure the code and the UTF-8 reason come back."""
    assert frames.parse_close(body) == expected


@pytest.mark.parametrize(
    "body",
    [b"\x03", close_body(1005), close_body(1006), close_body(999), close_body(2000)],
    ids=["one-byte", "1005", "1006", "999", "2000"],
)
def test_parse_close_protocol_errors(body: bytes) -> None:
    """Ensure a one-byte body and invalid codes are 1002."""
    with pytest.raises(FrameError) as caught:
        frames.parse_close(body)
    assert caught.value.code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "reason", [b"\xff", b"\xc3", b"ok\xed\xa0\x80", b"\xf4\x90\x80\x80"]
)
def test_parse_close_reason_not_utf8_is_1007(reason: bytes) -> None:
    """Ensure a reason that is not UTF-8 (truncated, surrogate, > U+10FFFF) is 1007."""
    with pytest.raises(FrameError) as caught:
        frames.parse_close(close_body(1000, reason))
    assert caught.value.code == CloseCode.INVALID_DATA


def test_parse_close_reads_what_close_frame_writes() -> None:
    """Ensure close_frame's body parses back, a long reason cut on a character."""
    reason = "é" * 100  # 200 bytes: cut to at most 123, never inside a character
    data = frames.close_frame(1001, reason)
    assert data[0] == 0x88
    assert data[1] <= 125
    code, parsed = frames.parse_close(data[2:])
    assert code == 1001
    assert reason.startswith(parsed)
    assert len(parsed.encode()) <= 123
