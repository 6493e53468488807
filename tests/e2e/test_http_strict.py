"""End-to-end: HTTP/1.1 at the socket, against a real server over raw sockets.

Every accepted connection has Nagle off (checked on the accepted socket, in a
real server process), and a request whose body length is ambiguous (RFC 9112
6.1 and 6.3, the stuff of request smuggling) is refused with a reason and its
connection closed, without reading the bytes that follow it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rawws import HTTPAnswer, read_http_answer
from tests.support import MS, ServerProcess, poll_until, run_server

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
LAST_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the bot API on, so that a POST with a body has a taker."""
    log_dir = tmp_path_factory.mktemp("http")
    with run_server("--api-token", "s3cret", log_dir=log_dir) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()


def read_rest(sock: socket.socket, buffer: bytearray) -> bytes:
    """What else the server sends until it closes; fail if it stays open."""
    sock.settimeout(5000 * MS)
    data = bytes(buffer)
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(server: ServerProcess, request: bytes) -> tuple[HTTPAnswer, bytes]:
    """Send ``request`` (and a plain GET behind it, in the same packet); the
    first answer, and everything after it until the server closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request + LAST_HEALTHZ)
        buffer = bytearray()
        answer = read_http_answer(sock, buffer, 5000 * MS)
        return answer, read_rest(sock, buffer)


def post(*fields: str, body: bytes = b"") -> bytes:
    head = "\r\n".join(["POST /api/rooms HTTP/1.1", "Host: x", *fields])
    return head.encode("latin-1") + b"\r\n\r\n" + body


SMUGGLING = [
    (
        "Content-Length and Transfer-Encoding",
        post("Content-Length: 5", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    (
        "differing Content-Length fields",
        post("Content-Length: 0", "Content-Length: 5", body=b"hello"),
        400,
        "differing Content-Length",
    ),
    (
        "signed Content-Length",
        post("Content-Length: +5", body=b"hello"),
        400,
        "is not a number",
    ),
    (
        "Transfer-Encoding without chunked",
        post("Transfer-Encoding: gzip", body=b"0\r\n\r\n"),
        400,
        "chunked must be the last coding",
    ),
    (
        "chunked twice",
        post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        400,
        "chunked must be the last coding",
    ),
    (
        "an unknown coding before chunked",
        post("Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
        501,
        "'gzip' are not supported",
    ),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [case[1:] for case in SMUGGLING],
    ids=[case[0] for case in SMUGGLING],
)
def test_ambiguous_body_length_is_refused_and_closed(
    server: ServerProcess, request_bytes: bytes, status: int, reason: str
) -> None:
    """Ensure an ambiguous framing gets its status and reason, the connection
    closes, and the request sent behind it is never answered."""
    answer, rest = exchange(server, request_bytes)
    assert answer.status == status, answer
    assert reason in answer.body.decode(), answer.body
    assert answer.headers.get("connection") == "close"
    assert rest == b"", rest


def test_repeated_equal_content_length_is_accepted(server: ServerProcess) -> None:
    """Ensure the same length twice is no ambiguity: both requests answered."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
    answer, rest = exchange(server, request + b"Content-Length: 0\r\n\r\n")
    assert answer.status == 200, answer
    assert rest.startswith(b"HTTP/1.1 200"), rest[:80]


def test_chunked_alone_is_accepted(server: ServerProcess) -> None:
    """Ensure a plain chunked body still reaches the application (a 401 from
    the bot API, which needs a token), and the next request is answered."""
    answer, rest = exchange(
        server,
        post("Transfer-Encoding: chunked", "Connection: keep-alive", body=b"0\r\n\r\n"),
    )
    assert answer.status == 401, answer
    assert b"HTTP/1.1 200" in rest, rest[:200]


def test_every_accepted_connection_has_nagle_off(tmp_path: Path) -> None:
    """Ensure TCP_NODELAY is set when a connection is accepted, so a page
    request (not only an upgrade) is not held back by Nagle: two requests on
    one keep-alive connection, each answered, on sockets that had it set."""
    probe = "tests/e2e/nodelay_probe.py"
    db = str(tmp_path / "chat.db")
    with run_server("--host", "127.0.0.1", "--db", db, script=probe) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            buffer = bytearray()
            for _ in range(2):
                sock.sendall(HEALTHZ)
                assert read_http_answer(sock, buffer, 5000 * MS).status == 200

        def reports() -> list[str]:
            lines = server.log().splitlines()
            return [line for line in lines if line.startswith("accepted nodelay=")]

        # The port probe before the test and the keep-alive connection.
        assert poll_until(lambda: len(reports()) >= 2, 5000 * MS), server.log()
        assert set(reports()) == {"accepted nodelay=1"}, reports()


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        (b"Host: x\r\n", 101),  # llhttp reads it
        (b"Host: x\r\nX-Note: a\r\n folded\r\n", 101),  # llhttp refuses, pywsgi reads
        (b"Host : x\r\n", 400),  # both refuse: no Host for pywsgi
    ],
    ids=["plain", "folded line", "space before the colon"],
)
def test_upgrades_get_the_answer_pywsgi_gave(
    server: ServerProcess, fields: bytes, status: int
) -> None:
    """Ensure an upgrade whose head llhttp refuses gets what pywsgi's own
    parser made of it before (a 101, or its 400), and one llhttp reads
    upgrades as usual."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(UPGRADE + fields + b"\r\n")
        answer = read_http_answer(sock, bytearray(), 5000 * MS)
    assert answer.status == status, answer
