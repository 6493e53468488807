"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, close_tracked, run_server


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
