"""The administration commands of ``chat.py``: ``python chat.py COMMAND ...``.

Each command reads the same settings as the server (``--db``, ``--redis``,
``CHAT_*``), acts on the stores and exits with 0, or prints one line to
stderr and exits with 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence

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
