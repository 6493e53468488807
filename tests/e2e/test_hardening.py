"""End-to-end hardening: hostile bytes against a real server, over raw sockets.

Every test talks to a real ``python chat.py`` process. Frames are written by
hand (tests/e2e/rawws.py) so that they can break RFC 6455 on purpose; the
server must answer each violation with the right close code, keep its memory
and file descriptors bounded, and go on serving everybody else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWS,
    ServerClosed,
    frame_bytes,
    mask_bytes,
    open_raw,
    raw_handshake,
    read_http_answer,
    upgrade_request,
)
from tests.support import (
    MS,
    Client,
    ServerProcess,
    connect,
    healthz,
    http_get,
    poll_until,
    run_server,
    wait_for,
)

Frame = dict[str, Any]
MiB = 1 << 20
ALLOWED_ORIGIN = "https://chat.example.org"
RSS_SLACK = 6 * MiB  # a few MB of noise; a buffered 16 MiB message would show


# -- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that need default limits (--max-frame 65536,
    --max-text 2000, default rates), an allowed origin and a small header cap."""
    log_dir = tmp_path_factory.mktemp("hardening")
    with run_server(
        "--allow-origin", ALLOWED_ORIGIN, "--max-header", "2048", log_dir=log_dir
    ) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()


def raw(
    server: ServerProcess, name: str | None = None, room: str | None = None
) -> RawWS:
    """A raw connection past its greeting (welcome and snapshot)."""
    query = "&".join(f"{k}={v}" for k, v in (("name", name), ("room", room)) if v)
    ws = open_raw(server.port, "/ws" + ("?" + query if query else ""))
    ws.read_greeting()
    return ws


def rss(server: ServerProcess) -> int:
    """The server's resident memory, in bytes."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def open_fds(server: ServerProcess) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def assert_back_to_idle(
    server: ServerProcess, idle_handlers: int, fds_before: int
) -> None:
    """No connection, no extra handler greenlet, no extra descriptor (+5)."""
    poll_until(
        lambda: (
            (status := healthz(server))["connections"] == 0
            and status["handlers"] <= idle_handlers
        ),
        10000 * MS,
    )
    status = healthz(server)
    assert status["connections"] == 0, status
    assert status["handlers"] <= idle_handlers, (idle_handlers, status)
    poll_until(lambda: open_fds(server) <= fds_before + 5, 5000 * MS)
    fds_after = open_fds(server)
    assert fds_after <= fds_before + 5, f"{fds_before} fds before, {fds_after} after"


def round_trip(conn: Client | RawWS, t: str) -> list[Frame]:
    """A chat ping answered by its pong; returns the frames that came before it."""
    if isinstance(conn, RawWS):
        send, recv = conn.send_json, conn.recv_json
    else:
        send, recv = conn.send, conn.recv
    send(type="ping", t=t)
    skipped: list[Frame] = []
    deadline = time.monotonic() + 5000 * MS
    while True:
        frame = recv(max(0.0, deadline - time.monotonic()))
        if frame["type"] == "pong" and frame["t"] == t:
            return skipped
        skipped.append(frame)


def read_to_eof(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; fail if it does not in time."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"still open after {timeout:.1f} s; got {data[:80]!r}"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            continue
        if not chunk:
            return data
        data += chunk


# -- oversize frames (1009) --------------------------------------------------------


@pytest.mark.parametrize("length", [65537, 1 << 32, 1 << 62, (1 << 64) - 1], ids=str)
def test_oversize_header_is_refused_before_its_payload(
    server: ServerProcess, length: int
) -> None:
    """Ensure a header announcing more than --max-frame closes with 1009 at once,
    with nothing of the payload sent and no memory set aside for it."""
    ws = raw(server)
    before = rss(server)
    ws.send_frame(OP_TEXT, length_override=length)  # the header only
    code = ws.expect_close(5000 * MS)
    # A 64-bit length with its top bit set (5.2) may also be called a 1002.
    assert code == 1009 or (length >= 1 << 63 and code == 1002), code
    assert rss(server) - before < RSS_SLACK
    ws.close()


def test_oversize_continuation_header_is_1009(server: ServerProcess) -> None:
    """Ensure the cap also applies to a continuation frame's header."""
    ws = raw(server)
    ws.send_frame(OP_TEXT, b'{"type":', fin=False)
    ws.send_frame(OP_CONTINUATION, length_override=1 << 62)
    assert ws.expect_close(5000 * MS) == 1009
    ws.close()


def test_16mib_message_is_refused_while_others_are_served(
    server: ServerProcess,
) -> None:
    """Ensure a 16 MiB message, really streamed, ends in 1009 without the server
    holding it in memory, and another client's round trips go on meanwhile."""
    other = connect(server, name="bystander", room="big-upload")
    ws = raw(server, room="big-upload")
    before = rss(server)
    key = b"\x0f\x1e\x2d\x3c"
    total, chunk = 16 * MiB, mask_bytes(b"a" * (256 * 1024), key)
    ws.send_raw(frame_bytes(OP_TEXT, length_override=total, key=key))
    sent = 0
    trips = 0
    try:
        while sent < total:
            ws.sock.settimeout(5000 * MS)
            ws.sock.sendall(chunk)
            sent += len(chunk)
            if sent % (2 * MiB) == 0:
                round_trip(other, f"during-{sent}")
                trips += 1
    except OSError:
        pass  # the server may cut the line once it has said 1009
    assert ws.expect_close(10000 * MS) == 1009
    assert rss(server) - before < RSS_SLACK, f"RSS grew by {rss(server) - before}"
    round_trip(other, "after")
    assert trips >= 1 or sent < 2 * MiB
    ws.close()
    other.close()


def test_frame_of_exactly_max_frame_is_accepted(server: ServerProcess) -> None:
    """Ensure the limit is inclusive: a 65,536-byte frame is read (and refused as
    too_large by the chat), one byte more closes with 1009."""
    ws = raw(server)
    prefix, suffix = '{"type":"message","text":"', '"}'
    text = "x" * (65536 - len(prefix) - len(suffix))
    payload = (prefix + text + suffix).encode()
    assert len(payload) == 65536
    ws.send_frame(OP_TEXT, payload)
    error = ws.recv_json_until("error")
    assert error["code"] == "too_large"
    round_trip(ws, "still-open")
    ws.send_frame(OP_TEXT, payload + b" ")
    assert ws.expect_close(5000 * MS) == 1009
    ws.close()


@pytest.mark.parametrize(
    "sizes", [[30000, 30000, 30000], [1000] * 70], ids=["3x30000", "70x1000"]
)
def test_fragmented_message_over_max_frame_is_1009(
    server: ServerProcess, sizes: list[int]
) -> None:
    """Ensure fragments each under the cap, but over it together, close with 1009."""
    ws = raw(server)
    for index, size in enumerate(sizes):
        opcode = OP_TEXT if index == 0 else OP_CONTINUATION
        ws.send_frame(opcode, b"a" * size, fin=index == len(sizes) - 1)
    assert ws.expect_close(5000 * MS) == 1009
    ws.close()


def test_fragmented_message_with_ping_is_relayed(server: ServerProcess) -> None:
    """Ensure a message in 3 fragments (cut inside UTF-8 characters), with a ping
    between two of them, is reassembled and relayed whole, and the ping gets a
    pong with its payload before the message is handled."""
    other = connect(server, name="fragreader", room="fragments")
    ws = raw(server, name="fragwriter", room="fragments")
    other.recv_until("presence", lambda f: f["event"] == "join")
    text = "fragmented: héllo wörld ✓ ünïcode"
    data = json.dumps(
        {"type": "message", "text": text, "client_id": "frag-1"}, ensure_ascii=False
    ).encode()
    cut1 = data.index("é".encode()) + 1  # inside the 2-byte é
    cut2 = data.index("✓".encode()) + 2  # inside the 3-byte ✓
    ws.send_frame(OP_TEXT, data[:cut1], fin=False)
    ws.send_frame(OP_PING, b"between fragments")
    ws.send_frame(OP_CONTINUATION, data[cut1:cut2], fin=False)
    ws.send_frame(OP_CONTINUATION, data[cut2:], fin=True)
    first = ws.recv_frame(5000 * MS)
    assert (first.opcode, first.payload) == (OP_PONG, b"between fragments")
    echo = ws.recv_json_until("message")
    assert (echo["text"], echo["client_id"]) == (text, "frag-1")
    relayed = other.recv_until("message")
    assert relayed["text"] == text
    assert relayed["user"]["name"] == "fragwriter"
    ws.close()
    other.close()


@pytest.mark.parametrize("payload", [b"", b"p", b"\x00\xff" * 62 + b"!"], ids=len)
def test_ping_is_answered_with_same_payload(
    server: ServerProcess, payload: bytes
) -> None:
    """Ensure WebSocket pings (empty up to 125 bytes, any bytes) are echoed."""
    ws = raw(server)
    ws.send_frame(OP_PING, payload)
    frame = ws.recv_frame(5000 * MS)
    assert (frame.fin, frame.opcode, frame.payload) == (True, OP_PONG, payload)
    ws.close()


def test_frames_sent_with_the_handshake_are_read(server: ServerProcess) -> None:
    """Ensure frames that arrive in the same write as the upgrade request
    (read ahead with the request) are handled, in order, not lost."""
    early = frame_bytes(OP_PING, b"early") + frame_bytes(
        OP_TEXT, json.dumps({"type": "ping"}).encode()
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(upgrade_request(server.port, "/ws?name=early&room=lobby") + early)
        buffer = bytearray()
        answer = read_http_answer(sock, buffer, 5)
        assert answer.status == 101
        ws = RawWS(sock, answer, buffer)
        ws.read_greeting()
        pong = ws.recv_frame(5000 * MS)
        assert (pong.opcode, pong.payload) == (OP_PONG, b"early")
        assert ws.recv_json_until("pong")["type"] == "pong"


def test_unsolicited_pong_and_binary_frame_keep_the_connection(
    server: ServerProcess,
) -> None:
    """Ensure an unasked pong is ignored and a binary frame only gets an error."""
    ws = raw(server)
    ws.send_frame(OP_PONG, b"unasked")
    ws.send_frame(OP_BINARY, b"\x00\x01")
    error = ws.recv_json_until("error")
    assert error["code"] == "bad_request"
    round_trip(ws, "alive")
    ws.close()


# -- protocol errors (1002) and invalid data (1007) --------------------------------

TEXT = b'{"type":"ping"}'
PROTOCOL_ERRORS: dict[str, list[bytes]] = {
    "rsv1": [frame_bytes(OP_TEXT, TEXT, rsv=0b100)],
    "rsv2": [frame_bytes(OP_TEXT, TEXT, rsv=0b010)],
    "rsv3": [frame_bytes(OP_TEXT, TEXT, rsv=0b001)],
    "opcode-3": [frame_bytes(0x3, TEXT)],
    "opcode-0xB": [frame_bytes(0xB, b"")],
    "unmasked": [frame_bytes(OP_TEXT, TEXT, mask=False)],
    "unmasked-close": [frame_bytes(OP_CLOSE, struct.pack("!H", 1000), mask=False)],
    "fragmented-ping": [frame_bytes(OP_PING, b"x", fin=False)],
    "ping-126-bytes": [frame_bytes(OP_PING, b"x" * 126)],
    "close-126-bytes": [frame_bytes(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 124)],
    "continuation-without-start": [frame_bytes(OP_CONTINUATION, TEXT)],
    "text-inside-fragmented": [
        frame_bytes(OP_TEXT, b'{"type":', fin=False),
        frame_bytes(OP_TEXT, TEXT),
    ],
    "binary-inside-fragmented": [
        frame_bytes(OP_TEXT, b'{"type":', fin=False),
        frame_bytes(OP_BINARY, b"x"),
    ],
    "close-1005": [frame_bytes(OP_CLOSE, struct.pack("!H", 1005))],
    "close-1006": [frame_bytes(OP_CLOSE, struct.pack("!H", 1006))],
    "close-999": [frame_bytes(OP_CLOSE, struct.pack("!H", 999))],
    "close-2000": [frame_bytes(OP_CLOSE, struct.pack("!H", 2000))],
    "close-5000": [frame_bytes(OP_CLOSE, struct.pack("!H", 5000))],
    "close-1-byte": [frame_bytes(OP_CLOSE, b"\x03")],
}


@pytest.mark.parametrize("frames", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS)
def test_protocol_violation_closes_with_1002(
    server: ServerProcess, frames: list[bytes]
) -> None:
    """Ensure each RFC 6455 violation closes the connection with 1002."""
    ws = raw(server)
    for data in frames:
        ws.send_raw(data)
    assert ws.expect_close(5000 * MS) == 1002
    ws.close()


INVALID_DATA: dict[str, list[bytes]] = {
    "text-0xff": [frame_bytes(OP_TEXT, b'{"type":"ping","t":"\xff"}')],
    "text-surrogate": [frame_bytes(OP_TEXT, b'{"type":"ping","t":"\xed\xa0\x80"}')],
    "text-overlong": [frame_bytes(OP_TEXT, b'{"type":"ping","t":"\xc0\xaf"}')],
    "fragments-end-mid-character": [
        frame_bytes(OP_TEXT, b'{"type":"ping","t":"', fin=False),
        frame_bytes(OP_CONTINUATION, b'"}\xe2\x9c'),
    ],
    "close-reason": [frame_bytes(OP_CLOSE, struct.pack("!H", 1000) + b"bye \xff")],
}


@pytest.mark.parametrize("frames", INVALID_DATA.values(), ids=INVALID_DATA)
def test_invalid_utf8_closes_with_1007(
    server: ServerProcess, frames: list[bytes]
) -> None:
    """Ensure text or a close reason that is not UTF-8 closes with 1007."""
    ws = raw(server)
    for data in frames:
        ws.send_raw(data)
    assert ws.expect_close(5000 * MS) == 1007
    ws.close()


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, ""), (1001, "tab closed"), (3001, "see you, été")]
)
def test_client_close_is_echoed(server: ServerProcess, code: int, reason: str) -> None:
    """Ensure the server answers a close with the same code (and reason), then
    ends the TCP connection."""
    ws = raw(server)
    ws.send_close(code, reason)
    assert ws.expect_close(5000 * MS) == code
    assert ws.close_reason == reason
    assert read_to_eof(ws.sock, 5000 * MS) == b""
    ws.close()


def test_close_without_body_is_answered(server: ServerProcess) -> None:
    """Ensure an empty close (no status) is answered with 1000 or an empty close."""
    ws = raw(server)
    ws.send_close(None)
    assert ws.expect_close(5000 * MS) in (1000, 1005)
    ws.close()


def test_close_inside_fragmented_message_is_echoed(server: ServerProcess) -> None:
    """Ensure a close between fragments (a control frame) is honoured."""
    ws = raw(server)
    ws.send_frame(OP_TEXT, b'{"type":', fin=False)
    ws.send_close(4000, "changed my mind")
    assert ws.expect_close(5000 * MS) == 4000
    ws.close()


# -- the opening handshake ---------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "status"),
    [
        (lambda p: upgrade_request(p, omit=["Sec-WebSocket-Key"]), 400),
        (lambda p: upgrade_request(p, headers={"Sec-WebSocket-Key": "abc"}), 400),
        (
            lambda p: upgrade_request(
                p, headers={"Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFiY2RlZmc="}
            ),
            400,
        ),
        (lambda p: upgrade_request(p, omit=["Sec-WebSocket-Version"]), 426),
        (lambda p: upgrade_request(p, headers={"Sec-WebSocket-Version": "8"}), 426),
        (lambda p: upgrade_request(p, version="HTTP/1.0"), 400),
        (lambda p: upgrade_request(p, headers={"Connection": "keep-alive"}), 400),
    ],
    ids=[
        "no-key",
        "key-not-16-bytes",
        "key-17-bytes",
        "no-version",
        "version-8",
        "http-1.0",
        "no-connection-upgrade",
    ],
)
def test_bad_handshake_is_refused(
    server: ServerProcess, build: Callable[[int], bytes], status: int
) -> None:
    """Ensure each malformed upgrade gets its HTTP refusal with a readable body."""
    answer = raw_handshake(server.port, build(server.port))
    assert answer.status == status, answer
    assert len(answer.body.strip()) > 10
    if status == 426:
        assert answer.headers["sec-websocket-version"] == "13"


def test_foreign_origin_is_403_with_reason(server: ServerProcess) -> None:
    """Ensure a page from another site cannot open the WebSocket, and is told why."""
    answer = raw_handshake(
        server.port, upgrade_request(server.port, origin="http://evil.example")
    )
    assert answer.status == 403
    body = answer.body.decode()
    assert "http://evil.example" in body and "not allowed" in body


@pytest.mark.parametrize(
    "origin",
    [None, "own-http", "own-https", ALLOWED_ORIGIN, ALLOWED_ORIGIN + ":443"],
)
def test_allowed_origins_are_upgraded(
    server: ServerProcess, origin: str | None
) -> None:
    """Ensure no Origin, the page's own (either scheme) and --allow-origin entries
    get a WebSocket, and a working one."""
    if origin == "own-http":
        origin = f"http://127.0.0.1:{server.port}"
    elif origin == "own-https":
        origin = f"https://127.0.0.1:{server.port}"
    ws = open_raw(server.port, origin=origin)
    assert ws.handshake.status == 101
    ws.read_greeting()
    round_trip(ws, "origin-ok")
    ws.close()


def test_headers_over_max_header_get_431(server: ServerProcess) -> None:
    """Ensure a request with more than --max-header (2048) bytes of headers is
    refused with 431, for an upgrade and for a page."""
    for path in ("/ws", "/"):
        request = upgrade_request(server.port, path, headers={"X-Pad": "a" * 3000})
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(request)
            data = read_to_eof(sock, 5000 * MS)
        assert data.startswith(b"HTTP/1.1 431 "), data[:80]
        assert b"2048" in data


def test_431_is_a_complete_http_response(server: ServerProcess) -> None:
    """Ensure a standard HTTP client can read the 431 answer to its end."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5000 * MS)
    try:
        conn.request("GET", "/", headers={"X-Pad": "a" * 3000})
        response = conn.getresponse()
        assert response.status == 431
        assert b"2048" in response.read()
    finally:
        conn.close()


# -- slow clients (slowloris) and the per-address cap ------------------------------


@pytest.fixture(scope="module")
def impatient_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """A server that gives clients 1 s to send their request headers."""
    log_dir = tmp_path_factory.mktemp("impatient")
    with run_server("--handshake-timeout", "1", log_dir=log_dir) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()


def test_slowloris_is_cut_while_others_chat(impatient_server: ServerProcess) -> None:
    """Ensure clients stalling inside their request line (20 of them) are
    disconnected after about --handshake-timeout, and a normal client connects
    and chats meanwhile."""
    port = impatient_server.port
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    started = time.monotonic()
    for sock in stalled:
        sock.sendall(b"GET /ws HT")
    alice = connect(impatient_server, name="alice", room="slow")
    alice.send(type="message", text="still here", client_id="s1")
    assert alice.recv_until("message")["text"] == "still here"
    for sock in stalled:
        assert read_to_eof(sock, 5000 * MS) == b""
        sock.close()
    assert time.monotonic() - started >= 0.5  # not cut before the deadline
    round_trip(alice, "after-slowloris")
    alice.close()


def test_dribbling_headers_are_cut_too(impatient_server: ServerProcess) -> None:
    """Ensure the deadline covers the whole header block, not each read: a
    client sending a byte every few hundred milliseconds, never idle for the
    1 s timeout, is cut about 1 s after it connected while still sending."""
    sock = socket.create_connection(("127.0.0.1", impatient_server.port))
    padding = {"X-Padding": "p" * 2000}  # more bytes than the test has time for
    request = upgrade_request(impatient_server.port, headers=padding)
    gap = min(100 * MS, 0.5)  # well under the timeout, however slow the machine
    limit = 1.0 + 5000 * MS  # the deadline plus slack for a busy machine
    started = time.monotonic()
    cut_at = None
    for byte in request[:-2]:  # never the final CRLF
        if time.monotonic() - started > limit:
            break
        try:
            sock.sendall(bytes([byte]))
            sock.settimeout(gap)
            if sock.recv(1) == b"":
                cut_at = time.monotonic() - started
                break
        except TimeoutError:
            continue  # still open: keep dribbling
        except OSError:
            cut_at = time.monotonic() - started
            break
    sock.close()
    assert cut_at is not None, f"still open after {limit:.1f} s of dribbling"
    assert cut_at >= 0.5, cut_at  # not before the deadline


def test_idle_keep_alive_connection_is_cut(impatient_server: ServerProcess) -> None:
    """Ensure a connection kept alive after a page, then idle, is not held."""
    sock = socket.create_connection(("127.0.0.1", impatient_server.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_to_eof(sock, 5000 * MS)
    assert data.startswith(b"HTTP/1.1 200")
    sock.close()


def test_request_with_missing_body_is_cut(tmp_path: Path) -> None:
    """Ensure a request that announces a body and never sends it is cut after
    --handshake-timeout, frees its handler, and costs no traceback."""
    with run_server("--handshake-timeout", "1", log_dir=tmp_path) as srv:
        idle_handlers = healthz(srv)["handlers"]
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            data = read_to_eof(sock, 3000 * MS)
        assert data.startswith(b"HTTP/1.1 405")
        wait_for(lambda: healthz(srv)["handlers"] <= idle_handlers, 5000 * MS, "idle")
        log = srv.log()
    assert "Traceback" not in log, log[-3000:]


def test_slow_download_is_not_cut_by_the_handshake_deadline(tmp_path: Path) -> None:
    """Ensure a big page (a 4 MB transcript) read by a slow client arrives whole:
    --handshake-timeout bounds receiving the request, not sending the answer."""
    flags = ("--handshake-timeout", "1", "--rate", "100000", "--burst", "100000")
    with run_server(*flags, log_dir=tmp_path) as srv:
        ws = raw(srv, room="archive")
        for index in range(2000):
            ws.send_json(type="message", text="x" * 2000, client_id=f"m{index}")
            if index % 250 == 249:  # stay in step with the server
                ws.recv_json_until(
                    "message",
                    lambda f, last=f"m{index}": f.get("client_id") == last,
                    10000 * MS,
                )
        ws.close()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(
            b"GET /rooms/archive/transcript.txt HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        started = time.monotonic()
        sock.settimeout(5000 * MS)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
                if time.monotonic() - started < 2.0:  # slow past the deadline
                    time.sleep(30 * MS)
        sock.close()
        log = srv.log()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    # The download is streamed in chunks: whole means up to the last chunk.
    assert b"transfer-encoding: chunked" in head.lower()
    text = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        text, body = text + body[:size], body[size + 2 :]
        if size == 0:
            break
    else:
        raise AssertionError(f"cut after {len(text)} bytes")
    assert len(text) > 4_000_000
    assert text.count(b"\n[") == 1999
    assert "Traceback" not in log, log[-3000:]


def test_per_address_cap(tmp_path: Path) -> None:
    """Ensure the 6th connection from one address gets a 429, and a slot freed by
    a closed connection is given to the next one."""
    with run_server("--max-conn-per-ip", "5", log_dir=tmp_path) as srv:
        opened = [raw(srv, room="capped") for _ in range(5)]
        answer = raw_handshake(srv.port, upgrade_request(srv.port))
        assert answer.status == 429
        assert b"too many" in answer.body
        page = raw_handshake(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert page.status == 429  # pages count too: it is per connection
        first = opened.pop(0)
        first.send_close(1000)
        assert first.expect_close(5000 * MS) == 1000
        first.close()
        deadline = time.monotonic() + 5000 * MS
        while True:
            try:
                opened.append(raw(srv, room="capped"))
                break
            except ConnectionError:
                assert time.monotonic() < deadline, "the freed slot was never reused"
                time.sleep(50 * MS)
        round_trip(opened[-1], "admitted")
        with pytest.raises(ConnectionError, match="429"):
            open_raw(srv.port)
        for ws in opened:
            ws.close()
        assert "Traceback" not in srv.log()


# -- liveness: pings from the server -----------------------------------------------


@pytest.fixture(scope="module")
def lively_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that pings after 1 s of silence and waits 1 s for the pong."""
    log_dir = tmp_path_factory.mktemp("lively")
    with run_server(
        "--ping-interval", "1", "--ping-timeout", "1", log_dir=log_dir
    ) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()


def test_quiet_client_is_pinged_and_stays_if_it_answers(
    lively_server: ServerProcess,
) -> None:
    """Ensure a quiet client gets WebSocket pings and, answering each with a
    pong, stays connected well past interval + timeout."""
    ws = raw(lively_server, room="quiet")
    deadline = time.monotonic() + 10000 * MS
    pings = 0
    while pings < 3:  # the third comes well after interval + timeout (2 s)
        frame = ws.recv_frame(max(0.0, deadline - time.monotonic()))
        assert frame.opcode == OP_PING, frame
        ws.send_frame(OP_PONG, frame.payload)
        pings += 1
    round_trip(ws, "still-connected")
    ws.close()


def test_silent_client_is_dropped_and_others_see_it_leave(
    lively_server: ServerProcess,
) -> None:
    """Ensure a client that stops reading and answering is dropped after the ping
    timeout, and the other members get its presence leave promptly."""
    watcher = connect(lively_server, name="watcher", room="liveness")
    silent = raw(lively_server, name="silent", room="liveness")
    joined = time.monotonic()
    watcher.recv_until("presence", lambda f: f["event"] == "join")
    leave = watcher.recv_until(
        "presence",
        lambda f: f["event"] == "leave" and f["user"]["name"] == "silent",
        timeout=6000 * MS,
    )
    assert leave["count"] == 1
    assert time.monotonic() - joined < 6000 * MS + 1
    first = silent.recv_frame(5000 * MS)  # what was queued: the ping
    assert first.opcode == OP_PING
    assert silent.expect_close(5000 * MS) in (None, 1001, 1008, 1011)
    silent.close()
    round_trip(watcher, "watcher-alive")
    watcher.close()


# -- abuse -------------------------------------------------------------------------


def test_flooder_is_rate_limited_then_closed_while_others_chat(
    server: ServerProcess,
) -> None:
    """Ensure a client flooding messages gets rate_limited errors and then a 1008
    close, while another member keeps receiving and its round trips work."""
    watcher = connect(server, name="calm", room="flood")
    flooder = raw(server, name="flooder", room="flood")
    watcher.recv_until("presence", lambda f: f["event"] == "join")
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        with contextlib.suppress(OSError):
            for index in range(120):
                if stop.is_set():
                    return
                flooder.send_json(type="message", text=f"spam {index}")
                sent[0] += 1
                time.sleep(4 * MS)

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    relayed: list[Frame] = []
    trips = 0
    try:
        while thread.is_alive() or trips < 3:
            relayed += round_trip(watcher, f"calm-{trips}")
            trips += 1
            time.sleep(100 * MS)  # the watcher stays well within its own limits
    finally:
        stop.set()
        thread.join(10000 * MS)
    kinds: dict[str, int] = {}
    try:
        while True:
            frame = flooder.recv_json(5000 * MS)
            key = frame["type"] + ":" + frame.get("code", "")
            kinds[key] = kinds.get(key, 0) + 1
    except ServerClosed as closed:
        assert closed.code == 1008
    assert kinds.get("error:rate_limited", 0) >= 1, kinds
    accepted = kinds.get("message:", 0)
    assert 1 <= accepted < sent[0]
    relayed += round_trip(watcher, "calm-after")
    got = [f for f in relayed if f["type"] == "message"]
    assert len(got) == accepted  # every accepted message, and only those
    flooder.close()
    watcher.close()


def test_too_large_message_broadcasts_nothing(server: ServerProcess) -> None:
    """Ensure text over --max-text gets too_large for the sender and nothing for
    anyone; text of exactly --max-text goes through."""
    watcher = connect(server, name="reader", room="sizes")
    sender = raw(server, name="writer", room="sizes")
    watcher.recv_until("presence", lambda f: f["event"] == "join")
    sender.send_json(type="message", text="y" * 2001, client_id="big")
    error = sender.recv_json_until("error")
    assert (error["code"], error["ref"]) == ("too_large", "message")
    assert not [f for f in round_trip(sender, "s") if f["type"] == "message"]
    assert not [f for f in round_trip(watcher, "w") if f["type"] == "message"]
    sender.send_json(type="message", text="z" * 2000, client_id="max")
    assert len(watcher.recv_until("message")["text"]) == 2000
    sender.close()
    watcher.close()


# -- graceful shutdown -------------------------------------------------------------


@pytest.mark.parametrize("answering", [True, False], ids=["answering", "silent"])
def test_sigterm_closes_everyone_with_1001(tmp_path: Path, answering: bool) -> None:
    """Ensure SIGTERM sends 1001 to every client, exits 0 within
    --shutdown-timeout (plus a margin, even if a client never answers), and a
    message acknowledged just before is in the SQLite file."""
    shutdown_timeout = 2.0
    with run_server(
        "--shutdown-timeout", str(shutdown_timeout), log_dir=tmp_path
    ) as srv:
        clients = [raw(srv, name=f"member{i}", room="closing") for i in range(3)]
        clients[0].send_json(type="message", text="last words", client_id="last")
        ack = clients[0].recv_json_until("message")
        assert ack["client_id"] == "last"
        srv.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for ws in clients:
            assert ws.expect_close(5000 * MS + shutdown_timeout) == 1001
            if answering:
                ws.send_close(1001)
        returncode = srv.proc.wait(timeout=shutdown_timeout + 5000 * MS + 2)
        elapsed = time.monotonic() - started
        assert returncode == 0, srv.log()
        assert elapsed < shutdown_timeout + 5000 * MS + 2
        for ws in clients:
            ws.close()
        log = srv.log()
    assert "Traceback" not in log, log
    db = sqlite3.connect(tmp_path / f"chat-{srv.port}.db")
    try:
        rows = db.execute(
            "SELECT room, text FROM messages WHERE client_id = 'last'"
        ).fetchall()
    finally:
        db.close()
    assert rows == [("closing", "last words")]


# -- page security headers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/healthz", 200),
        ("/static/chat.css", 200),
        ("/static/js/main.js", 200),
        ("/static/favicon.svg", 200),
        ("/no/such/page", 404),
        ("/static/missing.css", 404),
        ("/ws", 400),
        ("/rooms", 200),
    ],
)
def test_pages_carry_security_headers(
    server: ServerProcess, path: str, status: int
) -> None:
    """Ensure every page, static file and error page has a strict CSP,
    nosniff and a Referrer-Policy."""
    got, headers, _ = http_get(server.http_url + path)
    assert got == status
    lower = {k.lower(): v for k, v in headers.items()}
    csp = lower["content-security-policy"]
    directives = {
        part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()
    }
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == ["'none'"]
    assert lower["x-content-type-options"] == "nosniff"
    assert lower["referrer-policy"]


def test_upgrade_to_unknown_path_is_a_404_page_with_headers(
    server: ServerProcess,
) -> None:
    """Ensure an upgrade anywhere but /ws gets the 404 page, headers included."""
    answer = raw_handshake(server.port, upgrade_request(server.port, "/nope"))
    assert answer.status == 404
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


# -- no leaks after a thousand abusive connections ---------------------------------


def _abuse(port: int, kind: str) -> str:
    """One abusive connection of the given kind; returns what the server did."""
    if kind == "bad-handshake":
        answer = raw_handshake(port, upgrade_request(port, omit=["Sec-WebSocket-Key"]))
        return str(answer.status)
    if kind in ("huge-length", "unmasked", "garbage-frame"):
        ws = open_raw(port)
        try:
            if kind == "huge-length":
                ws.send_frame(OP_TEXT, length_override=1 << 62)
            elif kind == "unmasked":
                ws.send_frame(OP_TEXT, b'{"type":"ping"}', mask=False)
            else:  # random bytes, the first with a reserved bit set
                ws.send_raw(bytes([0x70 | os.urandom(1)[0]]) + os.urandom(63))
            return str(ws.expect_close(5000 * MS))
        finally:
            ws.close()
    if kind in ("rst-after-upgrade", "rst-mid-frame"):
        ws = open_raw(port)
        if kind == "rst-mid-frame":
            ws.send_raw(frame_bytes(OP_TEXT, b"x" * 1000)[:100])
        ws.reset()
        return "reset"
    sock = socket.create_connection(("127.0.0.1", port), timeout=5000 * MS)
    try:
        if kind == "garbage-request":
            sock.sendall(os.urandom(300) + b"\r\n\r\n")
            data = read_to_eof(sock, 5000 * MS)
            return data.split(b" ", 2)[1].decode() if data else "eof"
        if kind == "half-request":
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
            return "eof" if read_to_eof(sock, 5000 * MS) == b"" else "answered"
        if kind in ("rst-mid-request-line", "rst-mid-headers"):
            if kind == "rst-mid-request-line":
                sock.sendall(b"GET /ws HTTP/1.1")
            else:
                sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(20 * MS)  # let the server start reading it
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            return "reset"
        raise AssertionError(kind)
    finally:
        sock.close()


ABUSE_KINDS = {
    "bad-handshake": {"400"},
    "huge-length": {"1009"},
    "unmasked": {"1002"},
    "garbage-frame": {"1002"},
    "rst-after-upgrade": {"reset"},
    "rst-mid-frame": {"reset"},
    "garbage-request": {"400", "eof"},
    "half-request": {"eof"},
    "rst-mid-request-line": {"reset"},
    "rst-mid-headers": {"reset"},
}


def test_a_thousand_abusive_connections_leak_nothing(tmp_path: Path) -> None:
    """Ensure after 1,000 abusive connections the server is back to no
    connections, its idle handler count and its file descriptors (+5), with
    no traceback in its log."""
    with run_server(
        "--handshake-timeout", "1", "--max-conn-per-ip", "0", log_dir=tmp_path
    ) as srv:
        warm = connect(srv, name="warmup")
        round_trip(warm, "warm")
        warm.close()
        wait_for(lambda: healthz(srv)["connections"] == 0, 5000 * MS, "warm-up")
        idle_handlers = healthz(srv)["handlers"]
        fds_before = open_fds(srv)
        kinds = list(ABUSE_KINDS) * (1000 // len(ABUSE_KINDS) + 1)
        kinds = kinds[:1000]
        with ThreadPoolExecutor(max_workers=64) as pool:
            outcomes = list(pool.map(lambda kind: _abuse(srv.port, kind), kinds))
        unexpected = [
            (kind, got)
            for kind, got in zip(kinds, outcomes, strict=True)
            if got not in ABUSE_KINDS[kind]
        ]
        assert not unexpected, unexpected[:10]
        assert_back_to_idle(srv, idle_handlers, fds_before)
        assert healthz(srv)["users"] == 0
        survivor = connect(srv, name="survivor")
        round_trip(survivor, "after-abuse")
        survivor.close()
        log = srv.log()
    assert "Traceback" not in log, log[-3000:]


def test_reset_inside_request_headers_logs_no_traceback(tmp_path: Path) -> None:
    """Ensure clients that reset the connection in the middle of their headers
    leak nothing and leave no traceback in the log."""
    with run_server("--max-conn-per-ip", "0", log_dir=tmp_path) as srv:
        idle_handlers = healthz(srv)["handlers"]
        fds_before = open_fds(srv)
        with ThreadPoolExecutor(max_workers=10) as pool:
            outcomes = list(
                pool.map(lambda _: _abuse(srv.port, "rst-mid-headers"), range(20))
            )
        assert set(outcomes) == {"reset"}
        assert_back_to_idle(srv, idle_handlers, fds_before)
        log = srv.log()
    assert "Traceback" not in log, log[-3000:]
