"""Accounts kept in this process only (``--db :memory:``): gone on restart."""

from __future__ import annotations

import dataclasses

from chatcore.accounts import (
    INVITES_OPEN_MAX,
    SESSION_IDLE_MAX,
    SESSIONS_PER_ACCOUNT,
    Account,
    Invite,
    InviteGone,
    NameTaken,
    Session,
    TooManyInvites,
)


class MemoryAccounts:
    """Every table of ``AccountStore`` as a dict."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._keys: dict[str, str] = {}  # name key -> account id
        self._invites: dict[str, Invite] = {}
        self._sessions: dict[str, Session] = {}  # token hash -> session
        self._codes: dict[str, tuple[str, float]] = {}
        self._ended = 0

    def count(self) -> int:
        return len(self._accounts)

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def holder(self, name_key: str) -> Account | None:
        account_id = self._keys.get(name_key)
        return self._accounts.get(account_id) if account_id else None

    def create(
        self, name: str, name_key: str, now: float, *, admin: bool, account_id: str
    ) -> Account:
        existing = self._accounts.get(account_id)
        if existing is not None:
            return existing
        if name_key in self._keys:
            raise NameTaken(f"the name '{name}' is taken")
        account = Account(account_id, name, now, admin)
        self._accounts[account_id] = account
        self._keys[name_key] = account_id
        return account

    def rename(self, account_id: str, name: str, name_key: str) -> None:
        holder = self._keys.get(name_key)
        if holder is not None and holder != account_id:
            raise NameTaken(f"the name '{name}' is taken")
        account = self._accounts[account_id]
        for key, owner in list(self._keys.items()):
            if owner == account_id:
                del self._keys[key]
        self._keys[name_key] = account_id
        self._accounts[account_id] = dataclasses.replace(account, name=name)

    def add_invite(self, token_hash: str, invite: Invite, now: float) -> None:
        if len(self._invites) >= INVITES_OPEN_MAX:
            self.purge(now)
            if len(self._invites) >= INVITES_OPEN_MAX:
                raise TooManyInvites()
        self._invites[token_hash] = invite

    def invite(self, token_hash: str, now: float) -> Invite | None:
        invite = self._invites.get(token_hash)
        if invite is None or invite.uses_left < 1 or invite.expires <= now:
            return None
        return invite

    def redeem(
        self, token_hash: str, name: str, name_key: str, now: float, account_id: str
    ) -> Account:
        invite = self.invite(token_hash, now)
        if invite is None:
            raise InviteGone("this invite has expired or has been used up")
        account = self.create(
            name, name_key, now, admin=invite.admin, account_id=account_id
        )
        left = invite.uses_left - 1
        if left:
            self._invites[token_hash] = dataclasses.replace(invite, uses_left=left)
        else:
            del self._invites[token_hash]
        return account

    def add_session(self, session: Session) -> None:
        self._sessions[session.token_hash] = session
        mine = self.sessions(session.account_id)
        for old in mine[: max(0, len(mine) - SESSIONS_PER_ACCOUNT)]:
            del self._sessions[old.token_hash]
            self._ended += 1

    def session(self, token_hash: str) -> Session | None:
        return self._sessions.get(token_hash)

    def touch(self, token_hash: str, now: float) -> None:
        session = self._sessions.get(token_hash)
        if session is not None:
            self._sessions[token_hash] = dataclasses.replace(session, last_seen=now)

    def sessions(self, account_id: str) -> list[Session]:
        mine = [s for s in self._sessions.values() if s.account_id == account_id]
        return sorted(mine, key=lambda s: (s.created, s.id))

    def revoke(self, account_id: str, session_id: str) -> Session | None:
        for session in self.sessions(account_id):
            if session.id == session_id:
                del self._sessions[session.token_hash]
                self._ended += 1
                return session
        return None

    def end(self, token_hash: str) -> None:
        if self._sessions.pop(token_hash, None) is not None:
            self._ended += 1

    def ended(self) -> int:
        return self._ended

    def live(self, token_hashes: list[str]) -> set[str]:
        return {h for h in token_hashes if h in self._sessions}

    def add_code(self, code_hash: str, account_id: str, expires: float) -> None:
        for old, (owner, _) in list(self._codes.items()):
            if owner == account_id:
                del self._codes[old]
        self._codes[code_hash] = (account_id, expires)

    def use_code(self, code_hash: str, now: float) -> str | None:
        account_id, expires = self._codes.pop(code_hash, ("", 0.0))
        return account_id if account_id and expires > now else None

    def purge(self, now: float) -> None:
        self._invites = {
            h: i for h, i in self._invites.items() if i.expires > now and i.uses_left
        }
        self._codes = {h: c for h, c in self._codes.items() if c[1] > now}
        self._sessions = {
            h: s
            for h, s in self._sessions.items()
            if now - s.last_seen < SESSION_IDLE_MAX
        }
