"""The gevent edge: one server on one port for the pages and the WebSocket.

``run(settings, build_pages)`` mounts the chat WebSocketApplication at ``/ws``
and the wheezy.web pages at every other path, through gevent-websocket's
``WebSocketServer`` and ``Resource``, and serves until SIGTERM or SIGINT, then
shuts down gracefully (every client closed with 1001, history flushed).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import random
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.socket
from gevent.baseserver import parse_address
from gevent.event import Event
from gevent.pool import Pool
from geventwebsocket import Resource, WebSocketServer

from chatcore import __version__, frames
from chatcore.access import Gate
from chatcore.account_commands import AccountCommands, create_invite
from chatcore.accounts import INVITE_EXPIRES_DEFAULT, AccountStore, Invite
from chatcore.accounts.names import AccountNames
from chatcore.application import ChatApplication
from chatcore.config import Settings
from chatcore.directory import open_directory
from chatcore.dispatch import Dispatcher
from chatcore.frames import CloseCode
from chatcore.handler import ChatHandler, HandshakeTimeout
from chatcore.history import (
    MEMORY,
    HistoryError,
    HistoryStore,
    StoreUnreachable,
    kept_above,
    open_history,
)
from chatcore.hub import Hub
from chatcore.metrics import ChatMetrics
from chatcore.moderation.stores import open_moderation
from chatcore.outbox import Flusher
from chatcore.peers import FULL_ADDRESS, OpenConnections, host_of
from chatcore.reads import FLUSH_EVERY, ReadStore, open_reads
from chatcore.search import open_search
from chatcore.uploading import Uploading
from chatcore.uploads import open_uploads
from chatcore.uploads.files import UploadFiles

log = logging.getLogger(__name__)

WS_PATH = "/ws"
# Seconds between checks that the sessions of open connections still exist
# (a session revoked on another process, or signed out, closes them).
SESSION_SWEEP_EVERY = 2.0
# Seconds between sweeps of expired uploads (unused ones live an hour).
UPLOAD_SWEEP_EVERY = 600.0
# Descriptors kept for what is not a client: the listener, the database,
# Redis, logs, the event loop's own.
RESERVED_FILES = 64


def _refusal(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
    )


TOO_MANY = _refusal(
    b"429 Too Many Requests", b"too many open connections from your address\n"
)
SERVER_FULL = _refusal(
    b"503 Service Unavailable", b"the server holds all the connections it can\n"
)


@dataclass
class ChatContext:
    """What the connection handlers share: settings, the hub, the writers."""

    settings: Settings
    hub: Hub
    history: HistoryStore
    flusher: Flusher
    dispatch: Dispatcher
    metrics: ChatMetrics
    connections: set[ChatApplication] = field(default_factory=set)
    # Set by build_server from the settings and the open-file limit.
    open_connections: OpenConnections = field(
        default_factory=lambda: OpenConnections(0, 0)
    )
    handlers: Pool = field(default_factory=Pool)
    redis_up: Callable[[], bool] | None = None  # set when Redis is in use
    fanout: Any = None  # the RedisFanout when Redis is in use
    gate: Gate = field(default_factory=lambda: Gate(Settings(), None, time.time))
    accounts: AccountStore | None = None  # with --access invite or proxy
    uploading: Uploading | None = None  # None: uploads are off (--max-upload 0)
    upload_files: UploadFiles | None = None
    reads: ReadStore | None = None  # read positions (batched in SQLite)

    def status(self) -> dict[str, Any]:
        """Live figures for ``/healthz``."""
        stats = self.hub.stats()
        return {
            "connections": stats.connections,
            "users": stats.users,
            "rooms": stats.rooms,
            "handlers": len(self.handlers),
            "sockets": len(self.open_connections),
        }

    def readiness(self) -> str | None:
        """Why the server cannot take traffic now, or None when it can."""
        problem = self.history.problem()
        if problem:
            return f"history store: {problem}"
        if self.redis_up is not None and not self.redis_up():
            return "Redis is unreachable"
        return None


class ChatServer(WebSocketServer):
    """WebSocketServer with a cap on open connections per client address and
    Nagle's algorithm off on every connection it accepts."""

    handler_class = ChatHandler
    # Connections the kernel may queue before we accept them. gevent's 128
    # is overrun when every client reconnects at once after a restart, and
    # each dropped SYN costs that client a 1 s (then 3 s, 7 s) retry. The
    # kernel caps it at net.core.somaxconn.
    backlog = 4096

    def __init__(
        self, listener: Any, application: Any, chat: ChatContext, **kwargs: Any
    ):
        self.chat = chat
        self.pages = application.apps[-1][1]  # the catch-all: wheezy's app
        self._handed_over: set[Any] = set()  # sockets now a WebSocket's
        super().__init__(listener, application, spawn=chat.handlers, **kwargs)

    def handle(self, sock: Any, address: Any) -> None:
        opened = self.chat.open_connections
        full = opened.admit(address)
        if full is not None:
            try:
                sock.send(TOO_MANY if full == FULL_ADDRESS else SERVER_FULL, 0, 0.0)
            except OSError:
                pass
            sock.close()
            return
        _no_delay(sock)
        handler = self.handler_class(sock, address, self)
        try:
            handler.handle()
        except HandshakeTimeout:
            # Also how idle keep-alive connections end: not worth an INFO line.
            log.debug("dropped %s: no complete request in time", host_of(address))
        finally:
            # An upgraded connection lives on without this greenlet and
            # gives its slot back when it closes (ChatApplication.on_close).
            if not handler.detached:
                opened.release(address)
            else:
                self._handed_over.add(sock)

    def do_close(self, sock: Any, *args: Any) -> None:
        # gevent closes each socket when its handle() returns; an upgraded
        # one is closed by its connection instead (Outbox.release).
        if sock in self._handed_over:
            self._handed_over.discard(sock)
        else:
            sock.close()


def _no_delay(sock: Any) -> None:
    """Turn Nagle's algorithm off: a response written in pieces (headers, then
    body) would otherwise wait for the ACK of the first piece, which the
    client delays ~40 ms on every request after the first of a keep-alive
    connection; chat frames, small and frequent, would wait the same way."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # a peer already gone: handled next
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _is_websocket_upgrade(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_UPGRADE", "").lower() == "websocket"


def websocket_routes(chat: ChatContext) -> list[tuple[str, Any]]:
    bindings = {
        "hub": chat.hub,
        "settings": chat.settings,
        "dispatch": chat.dispatch,
        "connections": chat.connections,
        "open_connections": chat.open_connections,
    }
    app = type("ChatApp", (ChatApplication,), bindings)
    return [(f"^{re.escape(WS_PATH)}$", app)]


def build_server(
    settings: Settings,
    build_pages: Callable[..., Any],
    listener: Any = None,
) -> ChatServer:
    fanout = None
    if settings.redis_url:
        from chatcore.fanout.redis import open_redis

        history, names, fanout = open_redis(settings)
    else:
        history, names = open_history(settings.db, settings.history_max)
    accounts = open_accounts(settings, history)
    uploading, upload_files = open_upload_dir(settings, history)
    reads = open_reads(history)
    account_commands = None
    if accounts is not None:
        names = AccountNames(accounts)
        account_commands = AccountCommands(accounts, settings, time.time)
    hub = Hub(
        settings,
        history,
        names,
        clock=time.time,
        rng=random.SystemRandom(),
        fanout=fanout,
        directory=open_directory(
            history, dm_per_hour=settings.dm_per_hour, dm_max=settings.dm_max
        ),
        moderation=open_moderation(settings, history),
        accounts=account_commands,
        search=open_search(history, settings.search_scan_max),
        uploads=uploading,
        reads=reads,
    )
    metrics = ChatMetrics()
    chat = ChatContext(
        settings, hub, history, Flusher(), Dispatcher(history, metrics), metrics
    )
    chat.accounts = accounts
    chat.reads = reads
    chat.gate = Gate(settings, accounts, time.time)
    chat.uploading, chat.upload_files = uploading, upload_files
    if fanout is not None:
        chat.fanout = fanout
        chat.redis_up = lambda: fanout.up
    chat.open_connections = OpenConnections(
        settings.max_conn_per_ip, connection_cap(settings)
    )
    metrics.watch(chat)
    ws_routes = websocket_routes(chat)
    pages = build_pages(settings, chat)
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


def upload_dir(settings: Settings) -> Path:
    """Where uploaded files go: ``--upload-dir``, else ``<db>.uploads`` beside
    the database; with ``--db :memory:`` a temporary directory, removed at
    exit (nothing else of such a chat outlives it either)."""
    if settings.upload_dir:
        return Path(settings.upload_dir)
    if settings.db == MEMORY and not settings.redis_url:
        temporary = Path(tempfile.mkdtemp(prefix="chat-uploads-"))
        atexit.register(shutil.rmtree, temporary, ignore_errors=True)
        return temporary
    return Path(settings.db + ".uploads")


def open_upload_dir(
    settings: Settings, history: HistoryStore
) -> tuple[Uploading | None, UploadFiles | None]:
    """The uploads and their directory; (None, None) with ``--max-upload 0``.

    Raises:
        HistoryError: the directory cannot be made.
    """
    if not settings.max_upload:
        return None, None
    root = upload_dir(settings)
    try:
        files = UploadFiles(root)
    except OSError as exc:
        raise HistoryError(
            f"cannot use the upload directory {str(root)!r}: {exc.strerror or exc}"
        ) from None
    return Uploading(open_uploads(history), files, time.time), files


def sweep_uploads(chat: ChatContext) -> None:
    """Delete unused uploads after an hour, those of trimmed messages, and
    bodies a killed process left half-received."""
    if chat.uploading is None or chat.upload_files is None:
        return
    history, keep = chat.history, chat.settings.history_max
    gone = chat.uploading.sweep(lambda room: kept_above(history.last_id(room), keep))
    gone += chat.upload_files.sweep_temp()
    if gone:
        log.info("deleted %d expired uploads", gone)


def open_accounts(settings: Settings, history: HistoryStore) -> AccountStore | None:
    """The accounts, in the history's own store; None with ``--access open``."""
    if settings.access == "open":
        return None
    if settings.redis_url:
        from chatcore.accounts.redis import RedisAccounts

        return RedisAccounts(history.client, history.prefix)  # type: ignore[attr-defined]
    if settings.db == MEMORY:
        from chatcore.accounts.memory import MemoryAccounts

        return MemoryAccounts()
    from chatcore.accounts.sqlite import SqliteAccounts

    return SqliteAccounts(history.connection)  # type: ignore[attr-defined]


def first_admin_invite(chat: ChatContext) -> str | None:
    """With ``--access invite`` and no account yet: an admin invite link,
    printed at start, which is how the first admin gets in."""
    store = chat.accounts
    if chat.settings.access != "invite" or store is None or store.count():
        return None
    now = time.time()
    return create_invite(
        store,
        chat.settings,
        now,
        Invite(1, now + INVITE_EXPIRES_DEFAULT, admin=True),
    )


def _every(seconds: float, task: Callable[[], None]) -> None:
    while True:
        gevent.sleep(seconds)
        try:
            task()
        except Exception:
            log.exception("periodic task %s failed", task.__name__)


def keep_alive(chat: ChatContext) -> None:
    """Ping quiet clients (so proxies keep the line open); drop silent ones."""
    now = time.monotonic()
    interval, timeout = chat.settings.ping_interval, chat.settings.ping_timeout
    for app in list(chat.connections):
        ws = app.ws
        if ws.closed:
            continue
        if ws.ping_sent and now - ws.ping_sent > timeout:
            log.info(
                "conn=%d: no answer to a ping in %.0f s, dropping", app.id, timeout
            )
            app.outbox.abort()
        elif app.outbox.stalled(now, timeout):
            log.info(
                "conn=%d: its socket took nothing in %.0f s, dropping", app.id, timeout
            )
            app.outbox.abort()
        elif not ws.ping_sent and now - ws.last_seen > interval:
            ws.ping_sent = now
            app.outbox.push(frames.frame(frames.Opcode.PING, b"keepalive"))


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor: allow as many as the system
    lets this process have (the hard limit); return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit to %d: %s", hard, exc)
    return soft


def connection_cap(settings: Settings) -> int:
    """The connections this process can hold: ``--max-connections``, or
    fewer when the open-file limit leaves room for fewer."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return settings.max_connections
    return max(1, min(settings.max_connections, soft - RESERVED_FILES))


def report_file_limit(settings: Settings, limit: int) -> None:
    """Log the open-file limit, and warn when it holds fewer connections
    than ``--max-connections`` asks for."""
    cap = connection_cap(settings)
    if cap < settings.max_connections:
        log.warning(
            "the open-file limit is %d: at most %d connections, not the %d of "
            "--max-connections; raise it (systemd LimitNOFILE=, ulimit -n, "
            "fs.nr_open: see docs/deploy.md)",
            limit,
            cap,
            settings.max_connections,
        )
    else:
        log.info("open-file limit %d: up to %d connections", limit, cap)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra`` fields of the record."""

    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in self.STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        formatter: logging.Formatter = JsonLogFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)


def shut_down(server: ChatServer) -> None:
    """Stop accepting, close every client with 1001, wait, flush history."""
    chat = server.chat
    server.close()  # the listening socket: no new connections
    for app in list(chat.connections):
        if not app.ws.closed:
            app.ws.close(CloseCode.GOING_AWAY, "the server is shutting down")
    deadline = time.monotonic() + chat.settings.shutdown_timeout
    while chat.connections and time.monotonic() < deadline:
        gevent.sleep(0.05)
    for app in list(chat.connections):
        app.outbox.abort()
    server.stop(timeout=1.0)
    if chat.fanout is not None:
        chat.fanout.stop()
    if chat.reads is not None:
        try:
            chat.reads.flush()
        except HistoryError as exc:
            log.warning("%s", exc)
    chat.history.close()


def start_background(chat: ChatContext) -> list[gevent.Greenlet]:
    """Start the periodic tasks, and the Redis link when there is one."""
    if chat.fanout is not None:
        chat.fanout.start(chat.hub, chat.dispatch)
    tick = min(chat.settings.ping_interval, chat.settings.ping_timeout) / 4
    tasks = [
        gevent.spawn(_every, 1.0, lambda: chat.dispatch(chat.hub.expire_typing())),
        gevent.spawn(
            _every,
            chat.settings.presence_tick,
            lambda: chat.dispatch(chat.hub.presence_tick()),
        ),
        gevent.spawn(_every, tick, lambda: keep_alive(chat)),
    ]
    if chat.reads is not None:
        reads = chat.reads
        tasks += [
            gevent.spawn(_every, FLUSH_EVERY, reads.flush),
            gevent.spawn(_every, 3600.0, lambda: reads.purge(time.time())),
        ]
    if chat.accounts is not None:
        accounts = chat.accounts
        tasks += [
            gevent.spawn(
                _every,
                SESSION_SWEEP_EVERY,
                lambda: chat.dispatch(chat.hub.sweep_sessions()),
            ),
            gevent.spawn(_every, 3600.0, lambda: accounts.purge(time.time())),
        ]
    if chat.uploading is not None:
        tasks.append(
            gevent.spawn(_every, UPLOAD_SWEEP_EVERY, lambda: sweep_uploads(chat))
        )
    return tasks


def run(settings: Settings, build_pages: Callable[..., Any]) -> int:
    """Serve until SIGTERM or SIGINT; return the process exit code."""
    configure_logging(settings)
    file_limit = raise_open_file_limit()
    # A write past RLIMIT_FSIZE (a file-size quota) raises SIGXFSZ, whose
    # default action kills the process. Ignored, the write fails with EFBIG
    # instead, like a full disk: reported to the senders and by /readyz.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # Bind before opening the store, so a busy port leaves no database
    # behind; listen only once the store is open, so whoever can connect
    # finds the server ready.
    try:
        family, address = parse_address((settings.host, settings.port))
        listener = gevent.socket.socket(family, gevent.socket.SOCK_STREAM)
        listener.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as exc:
        log.error(
            "cannot listen on %s:%s: %s",
            settings.host,
            settings.port,
            exc.strerror or exc,
        )
        return 1
    try:
        server = build_server(settings, build_pages, listener=listener)
    except HistoryError as exc:
        listener.close()
        log.error("%s", exc)
        return 2 if isinstance(exc, StoreUnreachable) else 1
    report_file_limit(settings, file_limit)
    listener.listen(ChatServer.backlog)
    listener.setblocking(False)
    server.init_socket()
    chat = server.chat
    stopping = Event()

    def stop(signum: int) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop, signum)
    tasks = start_background(chat)
    server.start()
    host, port = server.address[:2]
    log.info("chat %s listening on http://%s:%d/", __version__, host, port)
    try:
        invite = first_admin_invite(chat)
    except HistoryError as exc:
        log.error("cannot create the first admin invite: %s", exc)
        invite = None
    if invite:
        # stdout, not only the log: it is what the operator opens first.
        print(f"No accounts yet. The first admin signs in with: {invite}", flush=True)
        log.info("no accounts yet: the first admin's invite was printed")
    stopping.wait()
    gevent.killall(tasks)
    shut_down(server)
    log.info("stopped")
    return 0
