"""Unit tests of chatcore.http11: which request framings are ambiguous."""

from __future__ import annotations

import pytest

from chatcore.handshake import Refusal
from chatcore.http11 import check_framing, closing_response, parse_head


@pytest.mark.parametrize(
    ("lengths", "encodings"),
    [
        ([], []),
        (["0"], []),
        (["42"], []),
        (["42", "42"], []),
        ([" 7 "], []),
        ([], ["chunked"]),
        ([], ["Chunked"]),
    ],
)
def test_clear_framing_is_accepted(lengths: list[str], encodings: list[str]) -> None:
    """Ensure one length (repeated alike), or chunked alone, passes."""
    assert check_framing(lengths, encodings) is None


@pytest.mark.parametrize(
    ("lengths", "encodings", "status"),
    [
        (["5"], ["chunked"], "400"),
        (["0"], ["identity"], "400"),
        (["5", "6"], [], "400"),
        (["+5"], [], "400"),
        (["-1"], [], "400"),
        (["5_0"], [], "400"),
        (["٣"], [], "400"),  # a digit, but not an ASCII one
        (["5, 5"], [], "400"),
        ([""], [], "400"),
        ([], ["gzip"], "400"),
        ([], ["chunked, gzip"], "400"),
        ([], ["chunked", "chunked"], "400"),
        ([], ["gzip, chunked"], "501"),
        ([], ["gzip", "chunked"], "501"),
    ],
)
def test_ambiguous_framing_is_refused(
    lengths: list[str], encodings: list[str], status: str
) -> None:
    """Ensure each ambiguous or unsupported framing gets its status."""
    refusal = check_framing(lengths, encodings)
    assert refusal is not None
    assert refusal.status.startswith(status), refusal


def test_closing_response_is_complete_http() -> None:
    """Ensure the refusal is a whole response whose length matches its body."""
    data = closing_response(Refusal("400 Bad Request", "nope ✓"))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert "Connection: close" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body == "nope ✓\n".encode()


def test_parse_head_gives_every_field_in_order() -> None:
    """Ensure llhttp's reading keeps each field, repeats included, in order,
    for an upgrade and for a request with a body."""
    head = (
        b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Cookie: a=1\r\nCookie: b=2\r\nX-Empty:\r\n\r\n"
    )
    assert parse_head(b"GET /ws?room=a HTTP/1.1", head) == [
        ("Host", "x"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("X-Empty", ""),
    ]
    posted = parse_head(b"POST /api HTTP/1.1", b"Content-Length: 5\r\n\r\n")
    assert posted == [("Content-Length", "5")]
    assert parse_head(b"GET / HTTP/1.1", b"Name: caf\xe9\r\n\r\n") == [("Name", "café")]


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"Content-Length: +5\r\n\r\n",
        b"X-A: a\r\n folded\r\n\r\n",
        b"Host : x\r\n\r\n",
        b"no colon\r\n\r\n",
    ],
)
def test_parse_head_refuses_what_llhttp_does_not_read_strictly(head: bytes) -> None:
    """Ensure a head outside llhttp's strict reading gives None (the edge then
    lets pywsgi's parser and check_framing answer, as before)."""
    assert parse_head(b"POST / HTTP/1.1", head) is None
