"""Display names where accounts exist: the name store is the accounts. Pure.

With ``--access invite`` or ``proxy`` a name belongs to the account that has
it, for good, on every device: no browser reservation and no expiry. The
account itself is renamed by ``AccountCommands.rename`` (which knows the
name, not just its key) before the hub's ``Names`` records the change, so
``hold`` and ``release`` have nothing left to write.
"""

from __future__ import annotations

import math

from chatcore.accounts import AccountStore


class AccountNames:
    """``NameStore`` answered from the accounts: a name is held forever."""

    def __init__(self, store: AccountStore):
        self._store = store

    def holder(self, name_key: str) -> tuple[str, float] | None:
        account = self._store.holder(name_key)
        # Last used "in the future": never old enough to be given up.
        return (account.id, math.inf) if account is not None else None

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        """Nothing to write: the account was renamed first."""

    def release(self, name_key: str, user_id: str) -> None:
        """Nothing to write: the rename moved the account's name key."""
