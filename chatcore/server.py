"""The gevent edge: one server on one port for the pages and the WebSocket.

``run(settings, build_pages)`` mounts the chat WebSocketApplication at ``/ws``
and the wheezy.web pages at every other path, through gevent-websocket's
``WebSocketServer`` and ``Resource``, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import random
import re
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from geventwebsocket import Resource, WebSocketServer

from chatcore import __version__
from chatcore.config import Settings
from chatcore.history import HistoryError, HistoryStore, open_history
from chatcore.hub import Hub
from chatcore.wsapp import ChatApplication, ChatHandler, Dispatcher, Flusher

log = logging.getLogger(__name__)

WS_PATH = "/ws"


@dataclass
class ChatContext:
    """What the connection handlers share: settings, the hub, the flusher."""

    settings: Settings
    hub: Hub
    flusher: Flusher
    dispatch: Dispatcher

    def status(self) -> dict[str, Any]:
        return {
            "connections": len(self.hub.conns),
            "users": len(self.hub.users),
            "rooms": len(self.hub.rooms),
        }


class ChatServer(WebSocketServer):
    handler_class = ChatHandler

    def __init__(
        self, listener: Any, application: Any, chat: ChatContext, **kwargs: Any
    ):
        self.chat = chat
        super().__init__(listener, application, **kwargs)


def _is_websocket_upgrade(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_UPGRADE", "").lower() == "websocket"


def websocket_routes(chat: ChatContext) -> list[tuple[str, Any]]:
    bindings = {"hub": chat.hub, "settings": chat.settings, "dispatch": chat.dispatch}
    app = type("ChatApp", (ChatApplication,), bindings)
    return [(f"^{re.escape(WS_PATH)}$", app)]


def build_server(
    settings: Settings,
    build_pages: Callable[..., Any],
    listener: Any = None,
    history: HistoryStore | None = None,
) -> ChatServer:
    history = history or open_history(settings.db, settings.history_max)
    hub = Hub(settings, history, clock=time.time, rng=random.SystemRandom())
    chat = ChatContext(settings, hub, Flusher(), Dispatcher(history))
    ws_routes = websocket_routes(chat)
    pages = build_pages(settings, chat.status, history)
    ws_patterns = [re.compile(pattern) for pattern, _ in ws_routes]

    def pre_start_hook(handler: Any) -> bool:
        # True hands the request to the page app instead of upgrading it:
        # an upgrade to a path with no WebSocket route gets the 404 page,
        # where gevent-websocket would complete the handshake and then fail.
        path = handler.environ.get("PATH_INFO", "")
        return _is_websocket_upgrade(handler.environ) and not any(
            p.match(path) for p in ws_patterns
        )

    resource = Resource([*ws_routes, ("^/", pages)])
    return ChatServer(
        listener or (settings.host, settings.port),
        resource,
        chat,
        pre_start_hook=pre_start_hook,
        log=None,
    )


def _expire_typing(chat: ChatContext) -> None:
    while True:
        gevent.sleep(1.0)
        try:
            chat.dispatch(chat.hub.expire_typing())
        except Exception:
            log.exception("typing expiry failed")


def raise_open_file_limit() -> None:
    """Every connection is a file descriptor: allow as many as the system does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(
    settings: Settings,
    build_pages: Callable[..., Any],
) -> int:
    """Serve until SIGTERM or SIGINT; return the process exit code."""
    configure_logging(settings)
    raise_open_file_limit()
    try:
        server = build_server(settings, build_pages)
        server.init_socket()
    except HistoryError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error(
            "cannot listen on %s:%s: %s", settings.host, settings.port, exc.strerror
        )
        return 1
    host, port = server.address[:2]
    gevent.spawn(_expire_typing, server.chat)
    stopping = gevent.event.Event()

    def stop(signum: int) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop, signum)
    server.start()
    log.info("chat %s listening on http://%s:%d/", __version__, host, port)
    stopping.wait()
    server.stop(timeout=settings.close_timeout)
    server.chat.hub.history.close()
    return 0
