"""``python chat.py admin add NAME | admin remove NAME | admin list``.

A name is resolved to a user id through the name store (in open mode the
browser that last used it, where people have accounts the account), against
the server's store while the server runs; the server sees the change within
its cache time (chatcore/moderating.py, CACHE_SECONDS).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence

from chatcore import identity
from chatcore.commands import StoreHandle, command, fail, open_store
from chatcore.config import ConfigError, Settings, from_sources
from chatcore.history import HistoryError, NameStore
from chatcore.moderation import ModerationStore

PROG = "chat.py admin"
USAGE = "usage: python chat.py admin add NAME | admin remove NAME | admin list"
CONSOLE = {"id": "", "name": "console"}  # the actor of a command's changes


def _stores(handle: StoreHandle, accounts: bool) -> tuple[NameStore, ModerationStore]:
    """The names (the accounts' where people have accounts) and moderation."""
    if accounts:
        from chatcore.accounts.names import AccountNames
        from chatcore.invite_command import accounts_in

        names, moderation = _stores(handle, accounts=False)
        return AccountNames(accounts_in(handle)), moderation
    if handle.redis is not None:
        from chatcore.history.redis import RedisNames
        from chatcore.moderation.redis import RedisModeration

        return (
            RedisNames(handle.redis, handle.prefix),
            RedisModeration(handle.redis, handle.prefix),
        )
    from chatcore.history.sqlite import SqliteNames
    from chatcore.moderation.sqlite import SqliteModeration

    if handle.sqlite is None:
        raise HistoryError("no store to open")
    return SqliteNames(handle.sqlite), SqliteModeration(handle.sqlite)


def _name_of(handle: StoreHandle, settings: Settings, user_id: str) -> list[str]:
    """The account's name, where people have accounts (open mode keeps no
    name of a user id)."""
    if settings.access == "open":
        return []
    from chatcore.invite_command import accounts_in

    account = accounts_in(handle).account(user_id)
    return [account.name] if account is not None else []


@command("admin", "server admins: admin add NAME, admin remove NAME, admin list")
def admin(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    if not argv or argv[0] not in ("add", "remove", "list"):
        return fail(PROG, USAGE)
    action, rest = argv[0], list(argv[1:])
    name = ""
    if action != "list":
        if not rest or rest[0].startswith("-"):
            return fail(PROG, f"'admin {action}' needs a NAME; {USAGE}")
        name, rest = rest[0], rest[1:]
    try:
        settings = from_sources(rest, environ, PROG)
        handle = open_store(settings)
    except (ConfigError, HistoryError) as exc:
        return fail(PROG, str(exc))
    try:
        names, moderation = _stores(handle, settings.access != "open")
        if action == "list":
            for user_id in sorted(moderation.admins()):
                print(user_id, *_name_of(handle, settings, user_id))
            return 0
        held = names.holder(identity.name_key(name))
        if held is None:
            why = f"nobody uses the name {name!r}"
            if identity.is_guest(name):
                why += " (guest names are not kept: the person must pick a name)"
            return fail(PROG, why)
        user_id = held[0]
        changed = moderation.set_admin(user_id, action == "add")
        if changed:
            moderation.log(
                time.time(),
                CONSOLE,
                "admin" if action == "add" else "unadmin",
                "",
                {"id": user_id, "name": name},
                {},
            )
        verb = "is now" if action == "add" else "is no longer"
        same = "" if changed else " (no change)"
        print(f"{name} ({user_id}) {verb} an admin{same}", file=sys.stdout)
        return 0
    except HistoryError as exc:
        return fail(PROG, str(exc))
    finally:
        handle.close()
