"""A raw-socket WebSocket client for tests that must send malformed bytes.

``websocket-client`` refuses to send reserved opcodes, unmasked frames or a
header that lies about its length; this client writes whatever it is told.
It does the opening handshake by hand (``open_raw``), or sends any request
bytes and reads the HTTP answer (``raw_handshake``), and it reads the
server's frames one by one, control frames included (``recv_frame``).

Everything here is blocking, with explicit timeouts. ``recv_frame`` returns
every frame as it came, a server ping included, and answers nothing;
``recv_json``, which skips control frames, answers pings with a pong unless
told not to (``answer_pings=False``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tests.support import MS

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

NO_STATUS = 1005  # RFC 6455 7.4.1: what a close frame without a body means
DEFAULT_TIMEOUT = 5000 * MS

JsonFrame = dict[str, Any]


class Frame(NamedTuple):
    fin: bool
    opcode: int
    payload: bytes


class ServerClosed(ConnectionError):
    """The server's close frame arrived where a data frame was expected."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"the server closed the connection with {code}: {reason}")
        self.code = code
        self.reason = reason


class HTTPAnswer(NamedTuple):
    """An HTTP response as read off the socket; header names are lower-case."""

    status_line: str
    headers: dict[str, str]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])


def random_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def upgrade_request(
    port: int,
    path: str = "/ws",
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    version: str = "HTTP/1.1",
    omit: Iterable[str] = (),
) -> bytes:
    """The bytes of a valid opening handshake, to spoil at will: ``headers``
    replace or add fields, ``omit`` drops default ones by name, ``version``
    is the HTTP version of the request line."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": random_key(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        fields["Origin"] = origin
    fields.update(headers or {})
    for name in omit:
        fields.pop(name, None)
    lines = [f"GET {path} {version}", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _recv_more(sock: socket.socket, buffer: bytearray, deadline: float) -> bool:
    """Append what arrives to ``buffer``; False at end of file (or a reset)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no data from the server in time")
    sock.settimeout(left)
    try:
        chunk = sock.recv(65536)
    except TimeoutError:
        raise TimeoutError("no data from the server in time") from None
    except ConnectionResetError:
        return False
    if not chunk:
        return False
    buffer += chunk
    return True


def read_http_answer(
    sock: socket.socket, buffer: bytearray, timeout: float = DEFAULT_TIMEOUT
) -> HTTPAnswer:
    """Read one HTTP response; what follows it (WebSocket frames) stays in
    ``buffer``. The body is read by Content-Length, chunks, or up to EOF
    (unless the status is 101, which has no body)."""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buffer:
        if not _recv_more(sock, buffer, deadline):
            raise ConnectionError(
                f"connection closed before a full response: {bytes(buffer)!r}"
            )
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if " 101 " in f"{status_line} ":
        return HTTPAnswer(status_line, headers, b"")
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(buffer) < length:
            if not _recv_more(sock, buffer, deadline):
                break
        body = bytes(buffer[:length])
        buffer[:] = buffer[length:]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(sock, buffer, deadline)
    else:
        while _recv_more(sock, buffer, deadline):
            pass
        body = bytes(buffer)
        buffer.clear()
    return HTTPAnswer(status_line, headers, body)


def _read_chunked(sock: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    body = bytearray()
    while True:
        while b"\r\n" not in buffer:
            if not _recv_more(sock, buffer, deadline):
                raise ConnectionError("connection closed inside a chunked body")
        size_line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        buffer[:] = rest
        while len(buffer) < size + 2:
            if not _recv_more(sock, buffer, deadline):
                raise ConnectionError("connection closed inside a chunk")
        body += buffer[:size]
        buffer[:] = buffer[size + 2 :]
        if size == 0:
            return bytes(body)


def raw_handshake(
    port: int, request: bytes, timeout: float = DEFAULT_TIMEOUT
) -> HTTPAnswer:
    """Send ``request`` as is on a new connection; return the server's answer.

    The connection is closed afterwards (also after a 101).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_http_answer(sock, bytearray(), timeout)


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key (RFC 6455 5.3)."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(payload), "big")


def frame_bytes(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length_override: int | None = None,
    key: bytes | None = None,
) -> bytes:
    """A client frame, as bytes; with ``length_override`` only the header
    (mask key included) announcing that length, without the payload."""
    length = len(payload) if length_override is None else length_override
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0x0F
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask:
        key = key or os.urandom(4)
        header += key
    if length_override is not None:
        return header
    return header + (mask_bytes(payload, key) if mask and key else payload)


@dataclass
class RawWS:
    """One WebSocket connection over a plain socket, after the handshake."""

    sock: socket.socket
    handshake: HTTPAnswer
    buffer: bytearray = field(default_factory=bytearray)
    close_reason: str | None = None  # of the last close frame read

    # -- sending --------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.settimeout(DEFAULT_TIMEOUT)
        self.sock.sendall(data)

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
        length_override: int | None = None,
    ) -> None:
        """Send one frame, however malformed it is asked to be.

        ``rsv`` is the 3-bit RSV1-RSV3 field (0b100 sets RSV1); ``mask=False``
        sends the payload unmasked; ``length_override`` announces that length
        and sends only the header (mask key included), no payload.
        """
        self.send_raw(frame_bytes(opcode, payload, fin, rsv, mask, length_override))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_json(self, **fields: Any) -> None:
        self.send_text(json.dumps(fields))

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        body = b"" if code is None else struct.pack("!H", code) + reason.encode()
        self.send_frame(OP_CLOSE, body)

    # -- receiving ------------------------------------------------------------

    def _fill(self, count: int, deadline: float) -> None:
        while len(self.buffer) < count:
            if not _recv_more(self.sock, self.buffer, deadline):
                raise EOFError("the server closed the TCP connection")

    def _take(self, count: int, deadline: float) -> bytes:
        self._fill(count, deadline)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def recv_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame from the server, control frames included.

        Raises:
            TimeoutError: no whole frame within ``timeout`` seconds.
            EOFError: the TCP connection ended (or was reset).
        """
        deadline = time.monotonic() + timeout
        first, second = self._take(2, deadline)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2, deadline))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8, deadline))[0]
        key = self._take(4, deadline) if second & 0x80 else None
        payload = self._take(length, deadline)
        if key is not None:
            payload = mask_bytes(payload, key)
        return Frame(bool(first & 0x80), first & 0x0F, payload)

    def expect_close(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """Read frames until the server's close frame; return its code
        (``NO_STATUS``, 1005, for an empty one), or None at end of file.
        The reason is kept in ``close_reason``.

        Raises:
            TimeoutError: neither came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            except EOFError:
                return None
            if frame.opcode == OP_CLOSE:
                return self._close_code(frame.payload)

    def _close_code(self, payload: bytes) -> int:
        if len(payload) < 2:
            self.close_reason = ""
            return NO_STATUS
        self.close_reason = payload[2:].decode("utf-8", "replace")
        return int(struct.unpack("!H", payload[:2])[0])

    def recv_json(
        self, timeout: float = DEFAULT_TIMEOUT, answer_pings: bool = True
    ) -> JsonFrame:
        """The next text frame as JSON; control frames are skipped (pings
        answered with a pong unless told otherwise).

        Raises:
            ServerClosed: a close frame came first.
        """
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                code = self._close_code(frame.payload)
                raise ServerClosed(code, self.close_reason or "")
            parts.append(frame.payload)
            if frame.fin:
                return json.loads(b"".join(parts).decode("utf-8"))

    def recv_json_until(
        self,
        kind: str,
        where: Callable[[JsonFrame], bool] = lambda frame: True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> JsonFrame:
        """Read JSON frames until one of type ``kind`` matches ``where``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} frame within {timeout:.1f} s")
            frame = self.recv_json(left)
            if frame.get("type") == kind and where(frame):
                return frame

    def read_greeting(self, timeout: float = DEFAULT_TIMEOUT) -> JsonFrame:
        """Read ``welcome`` and, when a room was joined, its snapshot."""
        welcome = self.recv_json(timeout)
        assert welcome["type"] == "welcome", welcome
        if welcome["rooms"]:
            self.recv_json_until(
                "presence", lambda f: f["event"] == "snapshot", timeout
            )
        return welcome

    # -- ending ---------------------------------------------------------------

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), no close frame."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawWS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_raw(
    port: int,
    path: str = "/ws",
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RawWS:
    """Connect and upgrade by hand; fail unless the server answers 101."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(upgrade_request(port, path, headers, origin))
        buffer = bytearray()
        answer = read_http_answer(sock, buffer, timeout)
        if answer.status != 101:
            raise ConnectionError(f"upgrade refused: {answer.status_line}")
    except BaseException:
        sock.close()
        raise
    return RawWS(sock, answer, buffer)
