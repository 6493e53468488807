"""Fixtures shared by every test: a running chat server and client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Client, ServerProcess, connect, run_server


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real ``python chat.py`` on a free loopback port, with default settings."""
    with run_server(log_dir=tmp_path) as server:
        yield server


@pytest.fixture
def clients(chat_server: ServerProcess) -> Iterator[Callable[..., Client]]:
    """Open clients on ``chat_server``; every one is closed after the test."""
    opened: list[Client] = []

    def open_client(**kwargs: Any) -> Client:
        client = connect(chat_server, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
