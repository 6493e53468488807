"""The administration commands of ``chat.py``: ``python chat.py COMMAND ...``.

Each command reads the same settings as the server (``--db``, ``--redis``,
``CHAT_*``), acts on the stores and exits with 0, or prints one line to
stderr and exits with 2.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatcore.config import Settings
from chatcore.history import MEMORY, HistoryError, StoreUnreachable

Command = Callable[[Sequence[str], Mapping[str, str]], int]

# name -> (what it does, the function); filled in by the features below.
COMMANDS: dict[str, tuple[str, Command]] = {}


def command(name: str, summary: str) -> Callable[[Command], Command]:
    """Register ``name`` as a ``chat.py`` command."""

    def register(function: Command) -> Command:
        COMMANDS[name] = (summary, function)
        return function

    return register


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Run the command ``argv`` names; None when it names none (serve)."""
    if not argv or argv[0] not in COMMANDS:
        return None
    _, function = COMMANDS[argv[0]]
    return function(argv[1:], environ)


def fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


@dataclass(frozen=True)
class StoreHandle:
    """The server's store, opened by a command while the server may run.

    Exactly one of ``sqlite`` and ``redis`` is set. The SQLite file is opened
    without the server's exclusive lock (SQLite itself keeps the two writers
    apart); the server reads what a command wrote on its next lookup.
    """

    sqlite: sqlite3.Connection | None = None
    redis: Any = None
    prefix: str = "chat:"

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.redis is not None:
            self.redis.close()


def open_store(settings: Settings) -> StoreHandle:
    """The store named by ``--redis`` or ``--db``, for a command.

    Raises:
        HistoryError: the store cannot be opened, or is the memory store
            (which lives inside the server process and nowhere else).
    """
    if settings.redis_url:
        from chatcore.history.redis import DEFAULT_PREFIX, connect

        client = connect(settings.redis_url)
        try:
            client.ping()
        except Exception as exc:  # redis.RedisError, without importing redis here
            client.close()
            raise StoreUnreachable(f"cannot reach Redis: {exc}") from None
        return StoreHandle(redis=client, prefix=DEFAULT_PREFIX)
    if settings.db == MEMORY:
        raise HistoryError(
            "--db :memory: lives inside the server process only; "
            "run this command against a SQLite file or Redis"
        )
    from chatcore.history.sqlite import BUSY_TIMEOUT_MS, migrate

    if not os.path.exists(settings.db):
        raise HistoryError(f"there is no database {settings.db!r} (--db / CHAT_DB)")
    try:
        db = sqlite3.connect(settings.db, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        migrate(db)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open the database {settings.db!r}: {exc}") from None
    return StoreHandle(sqlite=db)


# The features' commands register themselves when imported.
from chatcore.moderation import commands as _moderation_commands  # noqa: E402, F401
