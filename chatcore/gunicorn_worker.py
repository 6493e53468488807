"""Several chat processes on one port: a gunicorn worker class for the chat.

    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 \\
        gunicorn -w 4 -k chatcore.gunicorn_worker.ChatWorker 'chat:app()' \\
        -b 0.0.0.0:8000

gunicorn binds the port and forks the workers, which accept on the shared
socket. Each worker builds its own chat (``chat.app()``: settings from the
``CHAT_*`` variables, its hub, its Redis link) after the fork, and serves it
with the same ``ChatServer`` and ``ChatHandler`` as ``python chat.py``, so the
hardened handshake, frame limits and outboxes apply unchanged.
geventwebsocket's own gunicorn worker would put its stock WebSocketHandler
in front instead, bypassing them.

Workers share rooms through Redis: more than one worker without
``CHAT_REDIS_URL`` is refused, since each would be a separate chat.
``python chat.py`` stays the simple way to run one process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import gevent
from gunicorn.arbiter import Arbiter
from gunicorn.workers.ggevent import GeventWorker

from chatcore.config import ConfigError, Settings, from_sources
from chatcore.handler import ChatHandler
from chatcore.history import HistoryError


class ChatSite:
    """What ``chat:app()`` gives gunicorn: the WSGI app, with the chat behind it.

    Args:
        settings: the chat's settings (host and port are gunicorn's ``-b``).
        build_pages: builds the wheezy.web pages (``views.build_wsgi_app``).
    """

    def __init__(self, settings: Settings, build_pages: Callable[..., Any]):
        from chatcore.server import build_server

        # Built unbound: the worker hands it gunicorn's listening socket.
        self.server = build_server(settings, build_pages, listener=("127.0.0.1", 0))
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.server.application(environ, start_response)


def build_app(environ: dict[str, str], build_pages: Callable[..., Any]) -> ChatSite:
    """The chat for one worker, configured from ``CHAT_*`` variables only."""
    return ChatSite(from_sources([], environ, prog="gunicorn"), build_pages)


def check_settings(workers: int, environ: Any) -> Settings:
    """The settings from ``environ``, if ``workers`` processes can serve them.

    Raises:
        ConfigError: a bad value, or several workers without Redis.
    """
    settings = from_sources([], environ, prog="gunicorn")
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"{workers} workers would be {workers} separate chats: set "
            "CHAT_REDIS_URL so that they share rooms, or run one worker"
        )
    return settings


class ChatWorker(GeventWorker):
    """gunicorn's gevent worker, serving the chat's own server and handler."""

    wsgi_handler = ChatHandler

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Refuse, in the master and before binding, settings that cannot work."""
        try:
            check_settings(cfg.workers, os.environ)
        except ConfigError as exc:
            log.error("chat: %s", exc)
            sys.exit(2)

    def load_wsgi(self) -> None:
        try:
            check_settings(self.cfg.workers, os.environ)
            super().load_wsgi()
        except (ConfigError, HistoryError) as exc:
            self.log.error("chat: %s", exc)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)  # gunicorn stops, not respawns

    def run(self) -> None:
        from chatcore.server import (
            ChatServer,
            configure_logging,
            shut_down,
            start_background,
        )

        site = self.wsgi
        if not isinstance(site, ChatSite):
            raise TypeError("ChatWorker serves the chat only: use 'chat:app()'")
        configure_logging(site.settings)
        first = site.server
        chat = first.chat
        first.set_listener(self.sockets[0])
        servers = [first] + [
            ChatServer(
                sock,
                first.application,
                chat,
                pre_start_hook=first.pre_start_hook,
                log=None,
            )
            for sock in self.sockets[1:]
        ]
        tasks = start_background(chat)
        for server in servers:
            if self.cfg.workers > 1:
                server.max_accept = 1  # spread new connections over the workers
            server.start()
        while self.alive:
            self.notify()
            gevent.sleep(1.0)
        gevent.killall(tasks)
        for server in servers[1:]:
            server.close()
        shut_down(first)
