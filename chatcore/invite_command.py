"""``python chat.py invite [--uses N] [--expires SECONDS] [--admin]``: an invite link.

Works while the server runs, against the same ``--db`` file or ``--redis``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence

from chatcore.account_commands import create_invite
from chatcore.accounts import AccountError, AccountStore, Invite, check_invite_terms
from chatcore.commands import StoreHandle, command, fail, open_store
from chatcore.config import ConfigError, from_sources
from chatcore.history import HistoryError

PROG = "chat.py invite"


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print a link that lets people into a --access invite chat.",
        epilog="Every other flag (--db, --redis, --public-url, ...) is the server's.",
        add_help=False,
    )
    parser.add_argument("--uses", type=_whole, help="people it lets in (default 1)")
    parser.add_argument(
        "--expires", type=_whole, help="seconds it works for (default 7 days)"
    )
    parser.add_argument(
        "--admin", action="store_true", help="the accounts it creates are admins"
    )
    return parser


def accounts_in(handle: StoreHandle) -> AccountStore:
    """The account store in the store a command opened."""
    if handle.redis is not None:
        from chatcore.accounts.redis import RedisAccounts

        return RedisAccounts(handle.redis, handle.prefix)
    from chatcore.accounts.sqlite import SqliteAccounts

    assert handle.sqlite is not None
    return SqliteAccounts(handle.sqlite)


@command("invite", "print an invite link (--uses N, --expires SECONDS, --admin)")
def invite(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    parser = _parser()
    if "-h" in argv or "--help" in argv:
        parser.print_help()
        return 0
    try:
        own, rest = parser.parse_known_args(list(argv))
    except SystemExit:  # argparse printed why
        return 2
    except argparse.ArgumentError as exc:
        return fail(PROG, str(exc))
    try:
        uses, expires = check_invite_terms(own.uses, own.expires)
        settings = from_sources(rest, environ, prog=PROG)
    except (ValueError, ConfigError) as exc:
        return fail(PROG, str(exc))
    try:
        handle = open_store(settings)
    except HistoryError as exc:
        return fail(PROG, str(exc))
    try:
        now = time.time()
        url = create_invite(
            accounts_in(handle), settings, now, Invite(uses, now + expires, own.admin)
        )
    except (AccountError, HistoryError) as exc:
        return fail(PROG, str(exc))
    finally:
        handle.close()
    print(url)
    return 0
