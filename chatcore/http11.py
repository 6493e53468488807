"""Parses a request's head, and checks how it says where its body ends
(RFC 9112 section 6). Pure.

``parse_head`` reads the header fields with llhttp (Node's HTTP parser, as
httptools binds it), an order of magnitude faster than the email parser that
pywsgi uses, and stricter; the edge falls back to pywsgi's parser for what
llhttp refuses, so that parser's answer (a 400, or acceptance) stays what it
was. Either way ``check_framing`` then looks at the fields.

pywsgi quietly prefers Transfer-Encoding over Content-Length, ignores codings
it does not know and reads the first of several Content-Length fields. A
proxy in front may decide otherwise, and the difference lets one request hide
another (request smuggling), so a request whose framing is ambiguous is
refused, and its connection closed, before its body is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import httptools

from chatcore.handshake import Refusal

HEADER_LINES_MAX = 100  # fields in a head, as http.client (pywsgi's parser) allows
HEADER_LINE_MAX = 65536  # bytes in one field line, likewise


class _Fields:
    """llhttp's callbacks: the fields of one head, in order."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.decode("latin-1"), value.decode("latin-1")))


def parse_head(
    request_line: bytes, header_block: bytes
) -> list[tuple[str, str]] | None:
    """The header fields (name, value) of a request head, as llhttp reads
    them; None when llhttp refuses the head (malformed, or outside its
    strict reading of RFC 9112, like a folded line or a repeated
    Content-Length).

    Args:
        request_line: the request line, without its line end.
        header_block: every field line with its CRLF, then the empty line.
    """
    found = _Fields()
    parser = httptools.HttpRequestParser(found)
    try:
        parser.feed_data(request_line + b"\r\n" + header_block)
    except httptools.HttpParserUpgrade:
        pass  # the head of an upgrade: complete
    except httptools.HttpParserError:
        return None
    return found.fields


def _codings(fields: Sequence[str]) -> list[str]:
    return [c.strip().lower() for field in fields for c in field.split(",")]


def check_framing(
    content_lengths: Sequence[str], transfer_encodings: Sequence[str]
) -> Refusal | None:
    """Refuse a request whose body length is ambiguous, saying why.

    Args:
        content_lengths: the value of every Content-Length field, in order.
        transfer_encodings: the value of every Transfer-Encoding field.
    """
    if content_lengths and transfer_encodings:
        return Refusal(
            "400 Bad Request",
            "a request may not carry both Content-Length and Transfer-Encoding",
        )
    if transfer_encodings:
        codings = _codings(transfer_encodings)
        if codings[-1] != "chunked" or codings.count("chunked") > 1:
            # RFC 9112 6.3: the body's end cannot be found; 400 and close.
            return Refusal(
                "400 Bad Request",
                "with Transfer-Encoding, chunked must be the last coding, once",
            )
        if len(codings) > 1:
            return Refusal(
                "501 Not Implemented",
                f"transfer codings {', '.join(codings[:-1])!r} are not supported; "
                "only chunked is",
            )
        return None
    values = {value.strip() for value in content_lengths}
    if len(values) > 1:
        return Refusal(
            "400 Bad Request", "the request has differing Content-Length values"
        )
    for value in values:
        if not (value.isascii() and value.isdigit()):
            return Refusal(
                "400 Bad Request", f"Content-Length {value!r} is not a number"
            )
    return None


def closing_response(refusal: Refusal) -> bytes:
    """The whole HTTP/1.1 response refusing a request, for a connection that
    closes after it: the reason as a plain-text body."""
    body = refusal.reason.encode("utf-8") + b"\n"
    head = [
        f"HTTP/1.1 {refusal.status}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in refusal.headers),
    ]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body
