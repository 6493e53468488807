"""What a signed-in person asks over the WebSocket about their account. Pure.

``sessions`` lists the account's signed-in browsers, ``revoke`` ends one
(its open connections here are closed; other processes close theirs when
their ``sweep`` finds the session gone), ``signin_link`` makes a one-time
link for another device, and ``invite`` (admins) makes an invite link.
The hub hands these frames here and adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from chatcore import identity, protocol
from chatcore.accounts import (
    INVITE_EXPIRES_DEFAULT,
    INVITE_USES_DEFAULT,
    SIGNIN_CODE_TTL,
    AccountError,
    AccountStore,
    Invite,
    NameTaken,
    Session,
    digest,
    new_secret,
)
from chatcore.config import Settings
from chatcore.delivery import ConnKey, Delivery
from chatcore.frames import CloseCode
from chatcore.protocol import ErrorCode, ProtocolError

SIGNED_OUT = "signed out"
# A sweep asks the store about every session only when a session ended since
# the last one, or on every FULL_SWEEP_EVERY-th (a session that expired
# unused for SESSION_IDLE_MAX does not count as ended).
FULL_SWEEP_EVERY = 30
PROXY_SIGNS_IN = (
    "links are for --access invite; here the authentication proxy signs people in"
)


def public_url(settings: Settings) -> str:
    """Where people open the chat, for the links we hand out."""
    return settings.public_url or f"http://localhost:{settings.port}"


def create_invite(
    store: AccountStore, settings: Settings, now: float, invite: Invite
) -> str:
    """Store a new invite and return its link.

    Raises:
        TooManyInvites: too many are open.
        HistoryError: the store cannot be written.
    """
    token = new_secret()
    store.add_invite(digest(token), invite, now)
    return f"{public_url(settings)}/invite/{token}"


class AccountCommands:
    """The account frames of every connection of this process.

    Args:
        store: the accounts.
        settings: ``public_url`` (and ``port`` for its default).
        clock: seconds since the epoch.
    """

    def __init__(
        self, store: AccountStore, settings: Settings, clock: Callable[[], float]
    ):
        self.store = store
        self._settings = settings
        self._clock = clock
        self._sessions: dict[ConnKey, str] = {}  # connection -> its session's hash
        self._ended_seen: int | None = None
        self._sweeps = 0

    def name_of(self, account_id: str) -> str | None:
        """The name of the account with this id; None if there is none.

        Raises:
            HistoryError: the accounts could not be read.
        """
        account = self.store.account(account_id)
        return account.name if account is not None else None

    def attach(self, key: ConnKey, session: Session | None) -> None:
        """A connection opened with this session (None: the proxy's person)."""
        if session is not None:
            self._sessions[key] = session.token_hash

    def detach(self, key: ConnKey) -> None:
        self._sessions.pop(key, None)

    def handle(
        self, key: ConnKey, account_id: str, admin: bool, command: protocol.Command
    ) -> list[Delivery]:
        """One account frame of connection ``key``; ``admin``: whether its
        account is a server admin (only admins create invites)."""
        match command:
            case protocol.ListSessions():
                return [Delivery((key,), self._session_list(key, account_id))]
            case protocol.Revoke():
                return self._revoke(key, account_id, command.id)
            case protocol.SigninLink():
                self._need_invite_mode("signin_link")
                return [Delivery((key,), self._signin_link(account_id))]
            case protocol.CreateInvite():
                self._need_invite_mode("invite")
                return [Delivery((key,), self._invite(admin, command))]
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def _need_invite_mode(self, ref: str) -> None:
        if self._settings.access != "invite":
            raise ProtocolError(ErrorCode.BAD_REQUEST, PROXY_SIGNS_IN, ref)

    def rename(self, account_id: str, name: str) -> None:
        """Rename the account for good, before the hub renames its user.

        Raises:
            ProtocolError: ``name_taken`` when another account has a like name.
        """
        try:
            self.store.rename(account_id, name, identity.name_key(name))
        except NameTaken:
            raise ProtocolError(
                ErrorCode.NAME_TAKEN, f"the name '{name}' is taken", "nick"
            ) from None

    def sweep(self) -> list[Delivery]:
        """Close this process's connections whose session ended anywhere
        (revoked on another process, or by signing out)."""
        ended = self.store.ended()
        self._sweeps += 1
        if (
            not self._sessions
            or ended == self._ended_seen
            and self._sweeps % FULL_SWEEP_EVERY
        ):
            self._ended_seen = ended
            return []
        self._ended_seen = ended
        live = self.store.live(sorted(set(self._sessions.values())))
        gone = {h for h in self._sessions.values() if h not in live}
        return self._close_sessions(gone)

    def _session_list(self, key: ConnKey, account_id: str) -> str:
        mine = self._sessions.get(key)
        sessions = self.store.sessions(account_id)
        return protocol.encode(
            "sessions", sessions=[s.to_wire(s.token_hash == mine) for s in sessions]
        )

    def _revoke(self, key: ConnKey, account_id: str, session_id: str) -> list[Delivery]:
        ended = self.store.revoke(account_id, session_id)
        if ended is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "you have no session with this id (already signed out?)",
                "revoke",
            )
        own = self._sessions.get(key) == ended.token_hash
        reply = [] if own else [Delivery((key,), self._session_list(key, account_id))]
        return reply + self._close_sessions({ended.token_hash})

    def _close_sessions(self, token_hashes: set[str]) -> list[Delivery]:
        targets = tuple(k for k, h in self._sessions.items() if h in token_hashes)
        for target in targets:
            del self._sessions[target]
        if not targets:
            return []
        frame = protocol.encode(
            "signed_out", message="this browser was signed out of the chat"
        )
        return [
            Delivery(
                targets,
                frame,
                close_code=CloseCode.POLICY_VIOLATION,
                close_reason=SIGNED_OUT,
            )
        ]

    def _signin_link(self, account_id: str) -> str:
        code = new_secret()
        expires = self._clock() + SIGNIN_CODE_TTL
        self.store.add_code(digest(code), account_id, expires)
        return protocol.encode(
            "signin_link",
            url=f"{public_url(self._settings)}/signin/{code}",
            expires=int(expires * 1000),
        )

    def _invite(self, admin: bool, command: protocol.CreateInvite) -> str:
        if not admin:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "only admins can create invites", "invite"
            )
        now = self._clock()
        uses = command.uses or INVITE_USES_DEFAULT
        expires = now + (command.expires or INVITE_EXPIRES_DEFAULT)
        try:
            url = create_invite(
                self.store, self._settings, now, Invite(uses, expires, command.admin)
            )
        except AccountError as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), "invite") from None
        return protocol.encode(
            "invite", url=url, expires=int(expires * 1000), uses=uses
        )


ACCOUNTS_OFF = "accounts are off: the server runs with --access open"
_FRAME_TYPES = {
    protocol.ListSessions: "sessions",
    protocol.Revoke: "revoke",
    protocol.SigninLink: "signin_link",
    protocol.CreateInvite: "invite",
}


class NoAccounts:
    """Where nobody has an account (``--access open``): connections have no
    session, and the account frames are refused."""

    def name_of(self, account_id: str) -> str | None:
        return None

    def attach(self, key: ConnKey, session: Session | None) -> None:
        pass

    def detach(self, key: ConnKey) -> None:
        pass

    def sweep(self) -> list[Delivery]:
        return []

    def rename(self, account_id: str, name: str) -> None:
        pass

    def handle(
        self, key: ConnKey, account_id: str, admin: bool, command: protocol.Command
    ) -> list[Delivery]:
        ref = _FRAME_TYPES.get(type(command))
        raise ProtocolError(ErrorCode.BAD_REQUEST, ACCOUNTS_OFF, ref)
