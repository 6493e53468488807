"""Guards the HTTP side of a connection: deadline, header cap, framing, upgrade."""

from __future__ import annotations

import io
import logging
from typing import Any

import gevent
from gevent.pywsgi import OldMessage
from geventwebsocket.handler import WebSocketHandler

from chatcore import handshake, http11
from chatcore.outbox import Outbox
from chatcore.reader import FrameReader
from chatcore.websocket import ChatWebSocket

log = logging.getLogger(__name__)

READ_BUFFER = 1024  # bytes of pywsgi's read buffer per connection


class HandshakeTimeout(BaseException):
    """Raised in a connection's greenlet when its request headers came too slowly."""


class AmbiguousFraming(ValueError):
    """A request's body length cannot be told for sure: refuse it and close."""

    def __init__(self, refusal: handshake.Refusal):
        super().__init__(refusal.reason)
        self.refusal = refusal


class ChatHandler(WebSocketHandler):
    """gevent-websocket's handler with guarded handshakes.

    Each request must arrive whole within ``--handshake-timeout`` (slowloris),
    with at most ``--max-header`` bytes of headers and an unambiguous body
    length (RFC 9112 6); an upgrade must follow RFC 6455 4.2.1 and come from
    the page's own origin (or an allowed one). A successful upgrade gets a
    ChatWebSocket, and its socket is the connection's from then on: this
    handler and its greenlet end once the application has opened it.
    """

    detached = False  # True once an upgraded connection's socket is its own

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None):
        # pywsgi reads through an 8 KiB buffer that lives as long as the
        # connection: for thousands of mostly idle chat connections that is
        # the biggest cost of each. A small one holds a handshake (a longer
        # request takes a few more reads) and a typical chat frame.
        if rfile is None:
            rfile = sock.makefile("rb", READ_BUFFER)
        super().__init__(sock, address, server, rfile)

    def handle_one_request(self) -> Any:
        settings = self.server.chat.settings
        self._deadline = gevent.Timeout.start_new(
            settings.handshake_timeout, HandshakeTimeout
        )
        try:
            return super().handle_one_request()
        finally:
            self._deadline.cancel()

    def MessageClass(self, rfile: Any, *args: Any) -> Any:
        # pywsgi parses the header block here, then keeps one Content-Length
        # or drops it for chunked: the only place to see every field.
        headers = self._parse_headers(rfile)
        refusal = http11.check_framing(
            headers.get_all("Content-Length") or [],
            headers.get_all("Transfer-Encoding") or [],
        )
        if refusal is not None:
            raise AmbiguousFraming(refusal)
        return headers

    def _parse_headers(self, rfile: Any) -> Any:
        """The request's header fields, in pywsgi's headers object: parsed by
        llhttp (http11.parse_head); a head llhttp refuses, or one past the
        limits of pywsgi's parser, goes to pywsgi's parser as it would have,
        which refuses it with its reason or accepts it as before."""
        lines = []
        complete = False
        for _ in range(http11.HEADER_LINES_MAX + 1):
            line = rfile.readline(http11.HEADER_LINE_MAX + 1)
            lines.append(line)
            if len(line) > http11.HEADER_LINE_MAX or not line.endswith(b"\n"):
                break  # too long, or the peer stopped mid-line
            if line in (b"\r\n", b"\n"):
                complete = True
                break
        head = b"".join(lines)
        if complete:
            request_line = self.requestline.encode("latin-1")
            fields = http11.parse_head(request_line, head)
            if fields is not None:
                headers = OldMessage()
                headers._headers = fields
                return headers
        return super().MessageClass(_Replay(head, rfile), 0)

    def log_request(self) -> None:
        # One access line per HTTP request, at DEBUG: behind a proxy its own
        # access log already has them, and upgrades are logged on close.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.format_request())

    def _handle_client_error(self, ex: BaseException) -> Any:
        # pywsgi's hook for a request it could not read. A peer that reset
        # the connection gets no 400 (there is nobody to read it) and costs
        # no traceback; ambiguous framing gets its reason, and the connection
        # closes without reading what follows; other malformed requests still
        # get pywsgi's 400.
        if isinstance(ex, AmbiguousFraming):
            log.info(
                "refused a request from %s: %s",
                self.client_address[0],
                ex.refusal.reason,
            )
            self.close_connection = True
            return ex.refusal.status[:3], http11.closing_response(ex.refusal)
        if isinstance(ex, OSError) and not isinstance(ex, ValueError):
            log.info(
                "connection from %s lost mid-request: %s", self.client_address[0], ex
            )
            return None
        return super()._handle_client_error(ex)

    def run_application(self) -> Any:
        # The request line and headers are in: the deadline is done. A request
        # with a body (the bot API) has each socket operation bounded while
        # the application reads it; a response is never cut for being slow to
        # download. Afterwards pywsgi discards any body left unread: the same
        # bound applies there (its socket errors are swallowed quietly), so a
        # body announced but never sent cannot hold the greenlet.
        settings = self.server.chat.settings
        self._deadline.cancel()
        has_body = (self.environ.get("CONTENT_LENGTH") or "0") != "0" or (
            "chunked" in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        )
        self.socket.settimeout(settings.handshake_timeout if has_body else None)
        try:
            header_bytes = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
            if header_bytes > settings.max_header:
                return self._refuse(
                    handshake.Refusal(
                        "431 Request Header Fields Too Large",
                        f"the request headers take {header_bytes} bytes; "
                        f"the limit is {settings.max_header}",
                    )
                )
            return super().run_application()
        finally:
            if self.environ.get("chat.unread_body"):
                # A body refused unread (an upload over the limit): close
                # instead of reading the rest to find the next request.
                self.close_connection = True
                self.wsgi_input._chunked_input_error = True
            if getattr(self, "websocket", None) is None:
                self.socket.settimeout(settings.handshake_timeout)

    def upgrade_websocket(self) -> Any:
        environ = self.environ
        if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return None  # a plain HTTP request, for the pages
        refusal = (
            handshake.check_handshake(environ)
            or handshake.check_origin(
                environ.get("HTTP_ORIGIN"),
                environ.get("HTTP_HOST", ""),
                self.server.chat.settings.allow_origin,
            )
            or self._banned_address()
            # Who is asking: refused before the 101 (no session, untrusted peer).
            or self.server.chat.gate.apply(environ)
        )
        if refusal is not None:
            log.info(
                "refused upgrade from %s: %s",
                handshake.client_address(
                    environ, self.server.chat.settings.trusted_proxy
                ),
                refusal.reason,
            )
            self.start_response(
                refusal.status,
                [("Content-Type", "text/plain; charset=utf-8"), *refusal.headers],
            )
            return [refusal.reason.encode("utf-8") + b"\n"]
        return super().upgrade_websocket()

    def _banned_address(self) -> handshake.Refusal | None:
        chat = self.server.chat
        address = handshake.client_address(self.environ, chat.settings.trusted_proxy)
        if address and chat.hub.address_banned(address):
            return handshake.Refusal("403 Forbidden", "this address is banned")
        return None

    def _refuse(self, refusal: handshake.Refusal) -> None:
        body = refusal.reason.encode("utf-8") + b"\n"
        self.start_response(
            refusal.status,
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        self.close_connection = True
        self.write(body)

    def run_websocket(self) -> None:
        # The application opens the connection and hands its socket to the
        # event loop (ChatApplication.handle), then this greenlet ends: the
        # socket is the connection's now, so pywsgi must neither close it
        # nor read another request from it. The library's version would
        # close the WebSocket here.
        try:
            self.application(self.environ, _no_response)
        finally:
            self.socket = None
            self.rfile = None
            self.detached = True

    def upgrade_connection(self) -> Any:
        # upgrade_websocket has checked the request (check_handshake); the
        # library's version would check it again and build a WebSocket of
        # its own for this one to replace.
        chat = self.server.chat
        reader = FrameReader(chat.settings.max_frame)
        reader.feed(_take_buffered(self.rfile, self.socket))
        outbox = Outbox(self.socket, chat.flusher, chat.settings)
        ws = ChatWebSocket(self.environ, self, self.socket, reader, outbox)
        self.websocket = ws
        self.environ["wsgi.websocket_version"] = handshake.SUPPORTED_VERSION
        self.environ["wsgi.websocket"] = ws
        key = self.environ["HTTP_SEC_WEBSOCKET_KEY"]
        self.start_response(
            "101 Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", handshake.accept_key(key)),
            ],
        )
        # The 101 is queued, not written: the welcome and the room's snapshot
        # follow in the same turn of the event loop, and the three go out in
        # one system call.
        self.finalize_headers()
        head = b"".join(
            [b"HTTP/1.1 ", self.status, b"\r\n"]
            + [b"%s: %s\r\n" % field for field in self.response_headers]
            + [b"\r\n"]
        )
        self.headers_sent = True
        self.response_length = len(head)
        ws.outbox.push(head)
        self.socket.settimeout(None)  # liveness is the pings' job now
        return None


def _no_response(status: str, headers: Any, exc_info: Any = None) -> None:
    """start_response for an upgraded request: the 101 went out already."""


class _Replay:
    """A file whose lines are the bytes already read, then the socket's: for
    pywsgi's own parser, after llhttp's refusal."""

    def __init__(self, head: bytes, rfile: Any):
        self._head = io.BytesIO(head)
        self._rest = rfile

    def readline(self, limit: int = -1) -> bytes:
        line = self._head.readline(limit)
        if line.endswith(b"\n") or (limit >= 0 and len(line) >= limit):
            return line
        more = self._rest.readline(limit - len(line) if limit >= 0 else -1)
        return line + more


def _take_buffered(rfile: Any, sock: Any) -> bytes:
    """What the client sent after its handshake and pywsgi's buffered file
    already read, without waiting for more (the socket is non-blocking for
    that one peek)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        early = rfile.peek()
    except OSError:
        early = b""
    finally:
        sock.settimeout(timeout)
    return rfile.read(len(early)) if early else b""
