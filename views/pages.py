"""Page handlers: the chat page, the health check, static files, error pages."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler
from wheezy.web.handlers.method import MethodHandler

from chatcore import __version__, handshake, identity, metrics, protocol
from chatcore.config import Settings

log = logging.getLogger(__name__)

# No inline script or style anywhere: the page runs under a strict policy.
# connect-src 'self' covers ws:// and wss:// to the page's own host.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)

ERROR_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    429: "Too many requests",
    500: "Server error",
}


class ChatPage(BaseHandler):
    """The chat page, carrying the server's limits for the client to check against."""

    def get(self) -> HTTPResponse:
        settings = self.options["chat_settings"]
        return self.render_response(
            "chat.html",
            title="Chat",
            ws_path=self.path_for("ws"),
            max_text=settings.max_text,
            name_max=identity.NAME_MAX,
            room_max=identity.ROOM_MAX,
            history_initial=protocol.HISTORY_PAGE_DEFAULT,
            history_max=protocol.HISTORY_PAGE_MAX,
            version=__version__,
            # Where people have accounts there is no name to pick; the
            # account panel (sessions, sign-in links) is the invite mode's.
            account=self.request.environ.get("chat.account") is not None,
            account_panel=settings.access == "invite",
        )


class HealthPage(BaseHandler):
    """Liveness: the process answers. Always 200 while it runs."""

    def get(self) -> HTTPResponse:
        status = {"status": "ok", "version": __version__}
        status.update(self.options["chat_context"].status())
        return self.json_response(status)


class ReadyPage(BaseHandler):
    """Readiness: 200 when messages can be stored (and Redis reached), else 503."""

    def get(self) -> HTTPResponse:
        problem = self.options["chat_context"].readiness()
        response = self.json_response(
            {"ready": problem is None, **({"problem": problem} if problem else {})}
        )
        if problem:
            response.status_code = 503
        return response


# Headers a reverse proxy adds: a request carrying one from a peer that is not
# a --trusted-proxy came through a proxy we know nothing of.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
METRICS_REFUSED = (
    "/metrics answers requests from this machine only, or requests with "
    "'Authorization: Bearer <the --metrics-token>'\n"
)


def may_read_metrics(environ: dict[str, Any], settings: Settings) -> bool:
    """Whether a request may read /metrics: it carries the metrics token, or
    it comes from this machine (directly, or through a trusted proxy that
    says so)."""
    token = settings.metrics_token
    if token:
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return True
    if environ.get("REMOTE_ADDR") not in settings.trusted_proxy and any(
        environ.get(header) for header in FORWARDING_HEADERS
    ):
        return False
    client = handshake.client_address(environ, settings.trusted_proxy)
    try:
        return ipaddress.ip_address(client).is_loopback
    except ValueError:
        return False


class MetricsPage(BaseHandler):
    """Prometheus text format; ``?greenlets=1`` adds the (costly) greenlet count.

    Only for monitoring: see ``may_read_metrics``.
    """

    def get(self) -> HTTPResponse:
        if not may_read_metrics(self.request.environ, self.options["chat_settings"]):
            response = HTTPResponse("text/plain; charset=UTF-8")
            response.status_code = 403
            response.write(METRICS_REFUSED)
            return response
        count_greenlets = self.request.query.get("greenlets") == ["1"]
        response = HTTPResponse(metrics.CONTENT_TYPE)
        response.write_bytes(
            self.options["chat_context"].metrics.render(count_greenlets)
        )
        return response


class WebSocketOnlyPage(BaseHandler):
    """``/ws`` asked for without an upgrade: say what the address is for."""

    def get(self) -> HTTPResponse:
        response = HTTPResponse("text/plain; charset=UTF-8")
        response.status_code = 400
        response.write(
            "This address is the chat's WebSocket endpoint: connect "
            "to it with a WebSocket client.\n"
        )
        return response


def static_files(root: str | os.PathLike[str]) -> Callable[[Any], MethodHandler]:
    """A handler factory serving the files under ``root``, and nothing outside it."""
    base = Path(root).resolve()
    return lambda request: StaticFile(request, base)


class StaticFile(MethodHandler):
    """One file below a fixed directory, with ETag revalidation."""

    def __init__(self, request: Any, base: Path):
        self.base = base
        super().__init__(request)

    def get(self) -> HTTPResponse:
        target = (self.base / self.route_args["path"]).resolve()
        if not target.is_relative_to(self.base) or target == self.base:
            return _plain_error(403)
        if not target.is_file():
            return _plain_error(404)
        body = target.read_bytes()
        etag = '"' + hashlib.blake2s(body, digest_size=12).hexdigest() + '"'
        mime, encoding = mimetypes.guess_type(target.name)
        if mime and mime.startswith("text/") or mime == "application/javascript":
            mime = f"{mime}; charset=UTF-8"
        response = HTTPResponse(mime or "application/octet-stream")
        response.headers.append(("ETag", etag))
        if self.request.environ.get("HTTP_IF_NONE_MATCH") == etag:
            response.status_code = 304
            return response
        response.write_bytes(body)
        return response


class HeadResponse:
    """A response's status and headers (Content-Length included), no body."""

    def __init__(self, response: Any):
        self.response = response
        self.status_code = response.status_code
        self.buffer = response.buffer
        self.headers = response.headers

    def __call__(self, start_response: Callable[..., Any]) -> list[bytes]:
        body = self.response(start_response)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return []


def head_middleware_factory(options: dict[str, Any]) -> Callable[..., Any]:
    """HEAD wherever GET works: the GET handler answers, the body is dropped.

    Status and headers are GET's, Content-Length included (a streamed body
    is counted for it, see ``measure_body``). Placed outside the error-page
    middleware, so error pages lose their body too.
    """

    def middleware(request: Any, following: Callable[[Any], Any]) -> Any:
        if request.method != "HEAD":
            return following(request)
        request.method = "GET"
        response = following(request)
        if response is None:
            response = _plain_error(404)
        measure_body = getattr(response, "measure_body", None)
        if measure_body is not None:
            measure_body()
        return HeadResponse(response)

    return middleware


def _plain_error(status_code: int) -> HTTPResponse:
    response = HTTPResponse()
    response.status_code = status_code
    return response


def error_page_middleware_factory(options: dict[str, Any]) -> Callable[..., Any]:
    """Gives every empty 4xx/5xx response a readable page with the same status,
    and every response the security headers."""
    render = options["render_template"]
    path_for = options["path_for"]

    def middleware(request: Any, following: Callable[[Any], Any]) -> HTTPResponse:
        try:
            if request.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                # Only /ws speaks WebSocket; an upgrade anywhere else is a 404.
                response = _plain_error(404)
            else:
                response = following(request)
        except Exception:
            log.exception("error while serving %s", request.path)
            response = _plain_error(500)
        if response is None:
            response = _plain_error(404)
        status = response.status_code
        if status >= 400 and not response.buffer:
            title = ERROR_TITLES.get(status, "Error")
            page = HTTPResponse()
            page.status_code = status
            page.write(
                render(
                    "error.html",
                    {
                        "title": title,
                        "status": status,
                        "path_for": lambda name, **args: (
                            request.root_path + path_for(name, **args)
                        ),
                    },
                )
            )
            response = page
        # A response with its own policy (a served file) keeps it.
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend(
            h for h in SECURITY_HEADERS if h[0].lower() not in present
        )
        return response

    return middleware
