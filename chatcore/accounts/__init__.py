"""Accounts, invites, sessions and sign-in codes: the model and the store interface.

Pure. With ``--access invite`` or ``--access proxy`` every person is an
account: a unique display name (compared by ``identity.name_key``, so look-
alikes clash), kept for good. An invite creates one account; a session is
one signed-in browser; a sign-in code lets a signed-in person sign in one
more browser. Secrets (invite tokens, session cookies, sign-in codes) are
random (``secrets.token_urlsafe``) and only their SHA-256 is stored, so a
copy of the store signs nobody in.

Each backend (memory, SQLite, Redis) implements ``AccountStore``; every
method raises ``HistoryError`` when the backend cannot be used.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

# Bounds: what input can make the tables grow by.
SESSIONS_PER_ACCOUNT = 20  # the oldest is dropped past this
SESSION_IDLE_MAX = 90 * 24 * 3600  # seconds unused after which a session ends
INVITE_USES_MAX = 1000
INVITE_EXPIRES_MAX = 30 * 24 * 3600
INVITE_EXPIRES_DEFAULT = 7 * 24 * 3600
INVITE_USES_DEFAULT = 1
SIGNIN_CODE_TTL = 600  # seconds a second-device sign-in code works (once)
SESSION_TOUCH_EVERY = 60  # seconds between writes of a session's last_seen
INVITES_OPEN_MAX = 1000  # invites not yet used up nor expired, in all


class AccountError(Exception):
    """An account action refused for a reason the person can fix."""


class NameTaken(AccountError):
    """Another account has this name, or one that looks like it."""


class InviteGone(AccountError):
    """The invite does not exist, has expired or has been used up."""


class TooManyInvites(AccountError):
    """INVITES_OPEN_MAX invites are open already."""

    def __init__(self) -> None:
        super().__init__(
            f"there are {INVITES_OPEN_MAX} open invites already; "
            "wait for some to be used or to expire"
        )


@dataclass(frozen=True, slots=True)
class Account:
    """A person. ``admin``: the account was made by an ``--admin`` invite,
    which makes it a server admin once, when it is made; who is an admin now
    is the moderation store's to say (``python chat.py admin``)."""

    id: str
    name: str
    created: float
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Invite:
    uses_left: int
    expires: float
    admin: bool


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # public: shown in lists, used to revoke; never signs anyone in
    account_id: str
    created: float
    last_seen: float
    token_hash: str  # the store's key for the cookie; stays on the server

    def to_wire(self, current: bool) -> dict[str, object]:
        return {
            "id": self.id,
            "created": int(self.created * 1000),
            "last_seen": int(self.last_seen * 1000),
            "current": current,
        }


def new_secret() -> str:
    """A fresh secret for a link or a cookie: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_id() -> str:
    """A fresh public id (accounts, sessions)."""
    return secrets.token_hex(8)


def digest(secret: str) -> str:
    """What the store keeps of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def proxy_account_id(login: str) -> str:
    """The account id of the person an authentication proxy calls ``login``:
    the same on every process and every visit."""
    return "p" + hashlib.blake2s(login.encode(), person=b"chat-acc").hexdigest()[:15]


class AccountStore(Protocol):
    """Accounts with unique names, invites, sessions and sign-in codes."""

    def count(self) -> int:
        """How many accounts exist."""

    def account(self, account_id: str) -> Account | None:
        """The account with this id."""

    def holder(self, name_key: str) -> Account | None:
        """The account whose name has this key (``identity.name_key``)."""

    def create(
        self, name: str, name_key: str, now: float, *, admin: bool, account_id: str
    ) -> Account:
        """A new account; an existing one with the same id is returned as is.

        Raises:
            NameTaken: another account's name has this key.
        """

    def rename(self, account_id: str, name: str, name_key: str) -> None:
        """Give an account a new name, for good.

        Raises:
            NameTaken: another account's name has this key.
        """

    def add_invite(self, token_hash: str, invite: Invite, now: float) -> None:
        """Store an invite under its token's hash.

        Raises:
            TooManyInvites: INVITES_OPEN_MAX are open (expired ones do not count).
        """

    def invite(self, token_hash: str, now: float) -> Invite | None:
        """The invite, if it can still be used."""

    def redeem(
        self, token_hash: str, name: str, name_key: str, now: float, account_id: str
    ) -> Account:
        """Use the invite once to create an account, in one atomic step.

        Raises:
            InviteGone: no such invite, expired or used up (nothing changed).
            NameTaken: the name is taken (the invite is not used).
        """

    def add_session(self, session: Session) -> None:
        """Store a session; an account's oldest past SESSIONS_PER_ACCOUNT go."""

    def session(self, token_hash: str) -> Session | None:
        """The session of a cookie."""

    def touch(self, token_hash: str, now: float) -> None:
        """Note that a session was used now."""

    def sessions(self, account_id: str) -> list[Session]:
        """An account's sessions, oldest first."""

    def revoke(self, account_id: str, session_id: str) -> Session | None:
        """End one of an account's sessions; the ended one, or None."""

    def end(self, token_hash: str) -> None:
        """End the session of a cookie (signing out)."""

    def live(self, token_hashes: list[str]) -> set[str]:
        """Which of these sessions still exist."""

    def ended(self) -> int:
        """A number that changes whenever a session is revoked, signed out or
        dropped past SESSIONS_PER_ACCOUNT: one cheap read tells whether
        ``live`` is worth asking."""

    def add_code(self, code_hash: str, account_id: str, expires: float) -> None:
        """Store a one-time sign-in code; it replaces the account's previous
        one (one open code per account)."""

    def use_code(self, code_hash: str, now: float) -> str | None:
        """The account a code signs in, once; None if unknown, used or expired."""

    def purge(self, now: float) -> None:
        """Drop expired invites and codes and long-unused sessions."""


def check_invite_terms(uses: int | None, expires: float | None) -> tuple[int, float]:
    """An invite's uses and seconds to expiry, defaults filled in.

    Raises:
        ValueError: a value out of bounds; the message says which.
    """
    uses = INVITE_USES_DEFAULT if uses is None else uses
    expires = INVITE_EXPIRES_DEFAULT if expires is None else expires
    if not 1 <= uses <= INVITE_USES_MAX:
        raise ValueError(f"an invite's uses must be 1 to {INVITE_USES_MAX}")
    if not 1 <= expires <= INVITE_EXPIRES_MAX:
        raise ValueError(
            f"an invite's expiry must be 1 to {INVITE_EXPIRES_MAX} seconds (30 days)"
        )
    return uses, expires


def make_session(account_id: str, now: float) -> tuple[str, Session]:
    """A new session: the cookie value (the secret) and what the store keeps."""
    token = new_secret()
    return token, Session(new_id(), account_id, now, now, digest(token))
