"""Helpers for tests that run the real server: processes, ports, clients."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import websocket

ROOT = Path(__file__).resolve().parent.parent

# Every timeout in the tests is a multiple of MS, scaled on slow machines with
# CHAT_TESTS_TIMEOUT_FACTOR=3 (say). Nothing here asserts on speed.
MS = 0.001 * float(os.environ.get("CHAT_TESTS_TIMEOUT_FACTOR", "1"))


# A path for every kind of page GET serves (and a missing one): HEAD must
# answer each of them like GET.
PAGE_PATHS = [
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/rooms",
    "/rooms/lobby",
    "/rooms/lobby?before=2",
    "/rooms/lobby/transcript.txt",
    "/rooms/lobby/transcript.jsonl",
    "/api/rooms",
    "/ws",
    "/static/chat.css",
    "/static/js/main.js",
    "/vendor/jquery/jquery.min.js",
    "/no-such-page",
    "/rooms/nobody-here",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 15000 * MS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}:\n{log_path.read_text()}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}:\n{log_path.read_text()}")


@contextlib.contextmanager
def run_server(
    *args: str,
    script: str = "chat.py",
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    port: int | None = None,
) -> Iterator[ServerProcess]:
    """Start ``python <script> --port <port> <args>`` and stop it afterwards.

    Without ``port`` a free one is picked; pass the port of an earlier run
    (and the same ``--db``) to restart "the same" server.
    """
    port = port or free_port()
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = log_dir / f"{Path(script).stem}-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, str(ROOT / script), "--port", str(port), *args]
    if script == "chat.py" and "--host" not in args:
        cmd += ["--host", "127.0.0.1"]
    if script == "chat.py" and "--db" not in args:
        cmd += ["--db", str(log_dir / f"chat-{port}.db")]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(proc, port, log_path)
        yield ServerProcess(proc, port, log_path)
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10000 * MS) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http_get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET a URL; return status, headers and body, also for 4xx/5xx."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@dataclass
class Client:
    """A real WebSocket client speaking the chat's JSON protocol."""

    ws: websocket.WebSocket
    welcome: dict[str, Any] = field(default_factory=dict)

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def recv(self, timeout: float = 5000 * MS) -> dict[str, Any]:
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def recv_until(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda frame: True,
        timeout: float = 5000 * MS,
    ) -> dict[str, Any]:
        """Read frames until one of type ``kind`` matches ``where``; skip the rest."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} frame within {timeout:.1f} s")
            frame = self.recv(left)
            if frame["type"] == kind and where(frame):
                return frame

    def drain(self, quiet: float = 200 * MS) -> list[dict[str, Any]]:
        """Everything that arrives until the connection is quiet for ``quiet`` s."""
        frames = []
        while True:
            try:
                frames.append(self.recv(quiet))
            except websocket.WebSocketTimeoutException:
                return frames

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        with contextlib.suppress(Exception):
            self.ws.shutdown()  # the socket, even when the close handshake failed


def connect(
    server: ServerProcess,
    *,
    name: str | None = None,
    room: str | None = None,
    key: str | None = None,
    read_welcome: bool = True,
) -> Client:
    """Open a connection; by default read ``welcome`` and the first snapshot."""
    query = {k: v for k, v in {"name": name, "room": room, "key": key}.items() if v}
    url = server.ws_url + ("?" + urlencode(query) if query else "")
    client = Client(websocket.create_connection(url, timeout=5000 * MS))
    if read_welcome:
        client.welcome = client.recv()
        assert client.welcome["type"] == "welcome", client.welcome
        if client.welcome["rooms"]:
            client.recv_until("presence", lambda f: f["event"] == "snapshot")
    return client


def healthz(server: ServerProcess) -> dict[str, Any]:
    """The server's /healthz answer, which must be a 200, parsed."""
    status, _, body = http_get(server.http_url + "/healthz")
    assert status == 200
    return json.loads(body)


def poll_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; say which."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(20 * MS)
    return True


def wait_for(
    predicate: Callable[[], bool], timeout: float = 5000 * MS, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    assert poll_until(predicate, timeout), f"{what}: not reached in {timeout:.1f} s"


def this_machines_outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


T = TypeVar("T")
_TRACKED: list[Any] = []


def closed_after_the_test(client: T) -> T:
    """Register a client (anything with ``close``) to be closed when the test
    ends, before its servers stop (tests/e2e/conftest.py does it)."""
    _TRACKED.append(client)
    return client


def close_tracked() -> None:
    while _TRACKED:
        with contextlib.suppress(Exception):
            _TRACKED.pop().close()
