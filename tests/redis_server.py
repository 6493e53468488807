"""A real redis-server for the tests, on a free loopback port.

Debian's ``redis-server`` (``apt-get install redis-server``; ./scripts/test
installs it where it can). Tests that need one are skipped, saying why, when
it is not on PATH.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import MS, free_port, stop_process

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (apt-get install redis-server)",
)


@dataclass
class RedisProcess:
    proc: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        return (self.directory / "redis.log").read_text(errors="replace")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def run_redis(
    directory: Path, port: int | None = None, persistent: bool = False
) -> Iterator[RedisProcess]:
    """Start redis-server on 127.0.0.1 and stop it afterwards.

    ``persistent`` keeps an append-only file in ``directory``, so a server
    restarted on the same port and directory comes back with its data.
    """
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--appendfsync",
        "always",
        "--logfile",
        "redis.log",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10000 * MS
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = directory / "redis.log"
                raise RuntimeError(
                    f"redis-server did not start on {port}:\n"
                    + (log.read_text() if log.exists() else "")
                )
            time.sleep(0.02)
        yield RedisProcess(proc, port, directory)
    finally:
        stop_process(proc)
