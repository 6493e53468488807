"""Unit tests of chatcore.reader: client bytes in, events out, no sockets.

The frames are built here by hand (header bytes, mask key, masked payload),
independently of the code under test, and fed whole, split at every byte
boundary, or several to a chunk.
"""

from __future__ import annotations

import struct
import sys

import pytest

from chatcore.frames import CloseCode, FrameError
from chatcore.reader import (
    BinaryMessage,
    Close,
    Event,
    FrameReader,
    Ping,
    Pong,
    TextMessage,
)
from tests.e2e.rawws import frame_bytes

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
MAX = 1000


def client_frame(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    announce: int | None = None,
) -> bytes:
    """A client frame; with ``announce`` only its header claiming that length."""
    return frame_bytes(opcode, payload, fin, rsv, masked, announce)


def close_body(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


def read_all(data: bytes, max_frame: int = MAX) -> list[Event]:
    reader = FrameReader(max_frame)
    reader.feed(data)
    return reader.events()


def read_bytewise(data: bytes, max_frame: int = MAX) -> list[Event]:
    reader = FrameReader(max_frame)
    found: list[Event] = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        found += reader.events()
    return found


def refusal(data: bytes, max_frame: int = MAX) -> tuple[int, str]:
    with pytest.raises(FrameError) as caught:
        read_all(data, max_frame)
    return caught.value.code, caught.value.reason


# -- what a well-behaved client sends ----------------------------------------------

CONVERSATION = [
    (client_frame(TEXT, "héllo".encode()), TextMessage("héllo")),
    (client_frame(BINARY, b"\x00\xff"), BinaryMessage(b"\x00\xff")),
    (client_frame(PING, b"p1"), Ping(b"p1")),
    (client_frame(PONG, b"keepalive"), Pong(b"keepalive")),
    (client_frame(TEXT, b""), TextMessage("")),
    (client_frame(TEXT, b"x" * 125), TextMessage("x" * 125)),
    (client_frame(TEXT, b"y" * 126), TextMessage("y" * 126)),  # 16-bit length
    (client_frame(BINARY, b"z" * MAX), BinaryMessage(b"z" * MAX)),
    (client_frame(CLOSE, close_body(1000, "bye ✓")), Close(1000, "bye ✓")),
    (client_frame(CLOSE), Close(None, "")),
]


def test_each_frame_alone_gives_its_event() -> None:
    """Ensure every kind of frame, each length encoding, becomes its event."""
    for data, event in CONVERSATION:
        assert read_all(data) == [event]


def test_a_64_bit_length_is_read() -> None:
    """Ensure the 8-byte extended length is decoded."""
    payload = b"q" * 70000
    assert read_all(client_frame(TEXT, payload), 1 << 17) == [TextMessage("q" * 70000)]


def test_frames_in_one_chunk_give_every_event_in_order() -> None:
    """Ensure several frames in one chunk all come out, in order."""
    data = b"".join(frame for frame, _ in CONVERSATION)
    assert read_all(data) == [event for _, event in CONVERSATION]


def test_frames_split_at_every_byte_boundary() -> None:
    """Ensure a cut anywhere (two chunks) or a byte at a time changes nothing."""
    data = b"".join(frame for frame, _ in CONVERSATION)
    expected = [event for _, event in CONVERSATION]
    for cut in range(len(data) + 1):
        reader = FrameReader(MAX)
        reader.feed(data[:cut])
        found = reader.events()
        reader.feed(data[cut:])
        assert found + reader.events() == expected, cut
    assert read_bytewise(data) == expected


def test_an_event_needs_its_whole_frame() -> None:
    """Ensure nothing comes out until the last byte of a frame is in."""
    data = client_frame(TEXT, b"abcdef")
    reader = FrameReader(MAX)
    reader.feed(data[:-1])
    assert reader.next_event() is None
    reader.feed(data[-1:])
    assert reader.next_event() == TextMessage("abcdef")
    assert reader.next_event() is None


def test_fragments_are_joined_with_control_frames_between() -> None:
    """Ensure a fragmented message is one event, and pings, pongs and a
    close inside it come out as they arrive."""
    data = (
        client_frame(TEXT, b"he", fin=False)
        + client_frame(PING, b"a")
        + client_frame(CONT, b"ll", fin=False)
        + client_frame(PONG, b"b")
        + client_frame(CONT, b"o")
        + client_frame(BINARY, b"1", fin=False)
        + client_frame(CONT, b"2")
        + client_frame(CLOSE, close_body(1001))
    )
    expected = [
        Ping(b"a"),
        Pong(b"b"),
        TextMessage("hello"),
        BinaryMessage(b"12"),
        Close(1001, ""),
    ]
    assert read_all(data) == expected
    assert read_bytewise(data) == expected


def test_utf8_split_across_fragments_is_one_valid_message() -> None:
    """Ensure UTF-8 is checked on the whole message, not per fragment."""
    encoded = "é".encode()
    data = client_frame(TEXT, encoded[:1], fin=False) + client_frame(CONT, encoded[1:])
    assert read_all(data) == [TextMessage("é")]


def test_events_before_a_violation_still_come_out() -> None:
    """Ensure the frames before a violation are handed out, then the error."""
    reader = FrameReader(MAX)
    reader.feed(client_frame(TEXT, b"ok") + client_frame(TEXT, b"x", rsv=0b100))
    assert reader.next_event() == TextMessage("ok")
    with pytest.raises(FrameError):
        reader.next_event()


# -- violations and their close codes ----------------------------------------------

VIOLATIONS = [
    ("reserved bit", client_frame(TEXT, b"x", rsv=0b100), 1002),
    ("reserved opcode", client_frame(0x3, b"x"), 1002),
    ("reserved control opcode", client_frame(0xB, b"x"), 1002),
    ("unmasked", client_frame(TEXT, b"x", masked=False), 1002),
    ("fragmented ping", client_frame(PING, b"x", fin=False), 1002),
    ("ping over 125 bytes", client_frame(PING, b"x" * 126), 1002),
    ("lone continuation", client_frame(CONT, b"x"), 1002),
    (
        "text inside a fragmented message",
        client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"),
        1002,
    ),
    (
        "binary inside a fragmented message",
        client_frame(BINARY, b"a", fin=False) + client_frame(BINARY, b"b"),
        1002,
    ),
    ("invalid UTF-8", client_frame(TEXT, b"\xff\xfe"), 1007),
    (
        "invalid UTF-8 over fragments",
        client_frame(TEXT, b"ok", fin=False) + client_frame(CONT, b"\xc3"),
        1007,
    ),
    ("close with 1 byte", client_frame(CLOSE, b"\x03"), 1002),
    ("close code 1005", client_frame(CLOSE, close_body(1005)), 1002),
    ("close code 999", client_frame(CLOSE, close_body(999)), 1002),
    ("close reason not UTF-8", client_frame(CLOSE, close_body(1000) + b"\xff"), 1007),
    ("frame over max_frame", client_frame(BINARY, b"b" * (MAX + 1)), 1009),
    (
        "message over max_frame",
        client_frame(TEXT, b"a" * 600, fin=False) + client_frame(CONT, b"a" * 401),
        1009,
    ),
]


@pytest.mark.parametrize(
    ("data", "code"),
    [(data, code) for _, data, code in VIOLATIONS],
    ids=[name for name, _, _ in VIOLATIONS],
)
def test_violation_raises_its_close_code(data: bytes, code: int) -> None:
    """Ensure each RFC 6455 violation or limit gives its close code, fed
    whole or a byte at a time."""
    assert refusal(data)[0] == code
    with pytest.raises(FrameError) as caught:
        read_bytewise(data)
    assert caught.value.code == code


def test_violation_reasons_say_what_was_wrong() -> None:
    """Ensure the reason names the problem and the limit."""
    assert refusal(client_frame(BINARY, announce=5000)) == (
        CloseCode.MESSAGE_TOO_BIG,
        f"frame of 5000 bytes; the limit is {MAX}",
    )
    assert "UTF-8" in refusal(client_frame(TEXT, b"\xff"))[1]
    assert "continuation" in refusal(client_frame(CONT, b"x"))[1]


@pytest.mark.parametrize("announced", [MAX + 1, 1 << 16, 1 << 24, (1 << 63) - 1])
def test_oversize_is_refused_from_the_header_alone(announced: int) -> None:
    """Ensure a length over the limit is refused as soon as the length is
    read, before the mask key or any payload byte arrives."""
    header = client_frame(BINARY, announce=announced)[:-4]  # no mask key
    reader = FrameReader(MAX)
    reader.feed(header)
    with pytest.raises(FrameError) as caught:
        reader.next_event()
    assert caught.value.code == CloseCode.MESSAGE_TOO_BIG


def test_oversize_continuation_is_refused_from_its_header() -> None:
    """Ensure the message cap also applies before a continuation's payload."""
    reader = FrameReader(MAX)
    reader.feed(client_frame(TEXT, b"a" * 900, fin=False))
    assert reader.events() == []
    reader.feed(client_frame(CONT, announce=101)[:-4])
    with pytest.raises(FrameError) as caught:
        reader.next_event()
    assert caught.value.code == CloseCode.MESSAGE_TOO_BIG


def test_frame_and_message_of_exactly_max_frame_are_accepted() -> None:
    """Ensure the limit is inclusive, for a frame and for a message."""
    assert read_all(client_frame(TEXT, b"a" * MAX)) == [TextMessage("a" * MAX)]
    data = client_frame(TEXT, b"a" * 600, fin=False) + client_frame(CONT, b"a" * 400)
    assert read_all(data) == [TextMessage("a" * MAX)]


@pytest.mark.parametrize(
    "bad",
    [client_frame(CONT, b"x"), client_frame(TEXT, b"\xff")],
    ids=["continuation", "utf-8"],
)
def test_nothing_after_a_violation_is_read(bad: bytes) -> None:
    """Ensure a reader that refused a frame refuses again, whatever follows,
    and drops what it had buffered."""
    reader = FrameReader(MAX)
    reader.feed(bad + client_frame(TEXT, b"ok"))
    with pytest.raises(FrameError) as first:
        reader.next_event()
    assert reader.buffered == 0
    reader.feed(client_frame(TEXT, b"later"))
    with pytest.raises(FrameError) as again:
        reader.next_event()
    assert again.value is first.value


# -- what the reader keeps ---------------------------------------------------------


def test_an_idle_reader_keeps_no_buffer() -> None:
    """Ensure nothing is held once every frame fed was consumed, and an
    idle reader is small (no per-instance dict)."""
    reader = FrameReader(MAX)
    reader.feed(client_frame(TEXT, b"a" * 500, fin=False) + client_frame(CONT, b"b"))
    assert reader.events() == [TextMessage("a" * 500 + "b")]
    assert reader.buffered == 0
    assert not hasattr(reader, "__dict__")
    held = [getattr(reader, name) for name in FrameReader.__slots__]
    assert all(not isinstance(v, bytes | list) or len(v) == 0 for v in held), held
    assert sys.getsizeof(reader) < 200


def test_a_partial_frame_is_kept_until_it_completes() -> None:
    """Ensure bytes of an unfinished frame wait, and only those."""
    data = client_frame(TEXT, b"x" * 300)
    reader = FrameReader(MAX)
    assert reader.missing == 0  # nothing known yet
    for i in range(0, len(data) - 1, 7):
        reader.feed(data[i : min(i + 7, len(data) - 1)])
        assert reader.next_event() is None
    assert reader.buffered == len(data) - 1
    assert reader.missing == 1
    reader.feed(data[-1:])
    assert reader.next_event() == TextMessage("x" * 300)
    assert reader.buffered == 0
    assert reader.missing == 0


# -- frame_ready: whether the event loop has a whole frame to hand over ------------


def test_frame_ready_only_once_a_whole_frame_is_fed() -> None:
    """Ensure frame_ready stays False while a frame's bytes are still coming
    (header or payload) and turns True with its last byte."""
    data = client_frame(TEXT, b"x" * 300)
    reader = FrameReader(MAX)
    for i in range(len(data) - 1):
        reader.feed(data[i : i + 1])
        assert not reader.frame_ready(), i
    reader.feed(data[-1:])
    assert reader.frame_ready()
    assert reader.events() == [TextMessage("x" * 300)]
    assert not reader.frame_ready()


def test_frame_ready_for_a_violation_so_it_gets_answered() -> None:
    """Ensure a header the reader refuses counts as ready (the loop hands it
    over and the connection is closed with its code), before any payload."""
    reader = FrameReader(MAX)
    reader.feed(client_frame(TEXT, announce=MAX + 1))
    assert reader.frame_ready()
    with pytest.raises(FrameError):
        reader.next_event()
    assert reader.frame_ready()
