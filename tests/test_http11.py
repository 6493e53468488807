"""Unit tests of chatcore.http11: which request framings are ambiguous."""

from __future__ import annotations

import pytest

from chatcore.handshake import Refusal
from chatcore.http11 import check_framing, closing_response


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
