"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_server import REDIS_SERVER, run_redis
from tests.support import ServerProcess, close_tracked, run_server

# Limits lifted for tests that send quickly, and a quick stop.
FAST = ("--rate", "1000", "--burst", "1000", "--shutdown-timeout", "0.5")

StartServer = Callable[..., contextlib.AbstractContextManager[ServerProcess]]


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with custom flags; every one is stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda *flags: stack.enter_context(run_server(*flags, log_dir=tmp_path))


@pytest.fixture(autouse=True)
def _close_clients(server_with: Callable[..., ServerProcess]) -> Iterator[None]:
    """Close the clients a test registered (support.closed_after_the_test),
    before the servers of ``server_with`` stop."""
    yield
    close_tracked()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def chat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartServer]:
    """Start a chat server on the parametrized store."""
    with contextlib.ExitStack() as stack:
        flags: tuple[str, ...] = ()
        if request.param == "memory":
            flags = ("--db", ":memory:")
        elif request.param == "redis":
            if REDIS_SERVER is None:
                pytest.skip("redis-server is not installed")
            redis = stack.enter_context(run_redis(tmp_path / "redis"))
            flags = ("--redis", redis.url)

        def start(*more: str) -> contextlib.AbstractContextManager[ServerProcess]:
            return run_server(*FAST, *flags, *more, log_dir=tmp_path)

        yield start
