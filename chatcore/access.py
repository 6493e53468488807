"""Who may enter: the access gate every surface asks before it serves. Pure.

``--access open``: anyone (no account). ``--access invite``: the browser's
session cookie must name a live session. ``--access proxy``: an
authentication proxy in front (oauth2-proxy, Authelia, nginx auth_request)
names the person in ``--auth-header``; the header is believed only from a
``--trusted-proxy`` address, and anyone else is refused. The gate answers
with an ``Admission`` (the account, the session) or a ``Refusal`` (status
and message); ``apply`` also leaves its answer in the WSGI environ for the
handlers behind it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from chatcore import identity
from chatcore.accounts import (
    SESSION_TOUCH_EVERY,
    Account,
    AccountStore,
    NameTaken,
    Session,
    digest,
    proxy_account_id,
)
from chatcore.config import Settings
from chatcore.handshake import Refusal, check_origin
from chatcore.history import HistoryError

COOKIE = "chat_session"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep one; the store ends it
LOGIN_MAX = 256  # characters of a login the proxy may send

NEED_INVITE = "You need an invite to enter this chat."
PROXY_ONLY = "only the authentication proxy may connect"
STORE_DOWN = "the account store cannot be reached; try again"


@dataclass(frozen=True, slots=True)
class Admission:
    """Let in: as ``account`` (None in open mode), with ``session`` (invite mode)."""

    account: Account | None = None
    session: Session | None = None


class Gate:
    """Decides, from a request's environ, who is asking and whether they may.

    Args:
        settings: ``access``, ``auth_header`` and ``trusted_proxy``.
        store: the accounts (None with ``--access open``).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        store: AccountStore | None,
        clock: Callable[[], float],
    ):
        self.mode = settings.access
        self.store = store
        self._clock = clock
        self._trusted = frozenset(settings.trusted_proxy)
        self._header = "HTTP_" + settings.auth_header.upper().replace("-", "_")
        self._auth_header = settings.auth_header

    def admit(self, environ: Mapping[str, Any]) -> Admission | Refusal:
        if self.mode == "open" or self.store is None:
            return Admission()
        try:
            if self.mode == "proxy":
                return self._from_proxy(environ)
            return self._from_cookie(environ)
        except HistoryError:
            return Refusal("503 Service Unavailable", STORE_DOWN)

    def apply(self, environ: MutableMapping[str, Any]) -> Refusal | None:
        """``admit``, leaving the answer in ``environ``: ``chat.account`` and
        ``chat.session`` (None when absent), and ``chat.user_id`` (the
        account's id; unset in open mode)."""
        answer = self.admit(environ)
        if isinstance(answer, Refusal):
            return answer
        environ["chat.account"] = answer.account
        environ["chat.session"] = answer.session
        if answer.account is not None:
            environ["chat.user_id"] = answer.account.id
        return None

    def _from_cookie(self, environ: Mapping[str, Any]) -> Admission | Refusal:
        assert self.store is not None
        token = session_cookie(environ)
        session = self.store.session(digest(token)) if token else None
        account = self.store.account(session.account_id) if session else None
        if session is None or account is None:
            return Refusal("401 Unauthorized", NEED_INVITE)
        now = self._clock()
        if now - session.last_seen >= SESSION_TOUCH_EVERY:
            self.store.touch(session.token_hash, now)
        return Admission(account, session)

    def _from_proxy(self, environ: Mapping[str, Any]) -> Admission | Refusal:
        if environ.get("REMOTE_ADDR") not in self._trusted:
            return Refusal("403 Forbidden", PROXY_ONLY)
        login = str(environ.get(self._header, "")).strip()
        if not login:
            return Refusal(
                "401 Unauthorized",
                f"the authentication proxy sent no {self._auth_header} header",
            )
        if len(login) > LOGIN_MAX:
            return Refusal(
                "401 Unauthorized",
                f"the {self._auth_header} header is longer than {LOGIN_MAX} characters",
            )
        return Admission(self.proxy_account(login))

    def proxy_account(self, login: str) -> Account:
        """The account of ``login``, created on first sight: named ``login``
        if that is a valid name no one else has, else a guest-style name
        (the person can change it)."""
        assert self.store is not None
        account_id = proxy_account_id(login)
        account = self.store.account(account_id)
        if account is not None:
            return account
        candidates = identity.guest_names(account_id)
        with contextlib.suppress(identity.InvalidName):
            candidates.insert(0, identity.check_name(login))
        for name in candidates:
            with contextlib.suppress(NameTaken):
                return self.store.create(
                    name,
                    identity.name_key(name),
                    self._clock(),
                    admin=False,
                    account_id=account_id,
                )
        raise HistoryError("no name left for a new account")  # pragma: no cover


def session_cookie(environ: Mapping[str, Any]) -> str | None:
    """The session cookie's value, if the request carries one."""
    raw = environ.get("HTTP_COOKIE", "")
    if COOKIE not in raw:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def is_https(environ: Mapping[str, Any], trusted_proxies: frozenset[str]) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a
    trusted proxy that says so in X-Forwarded-Proto."""
    if environ.get("wsgi.url_scheme") == "https":
        return True
    forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).split(",")[0]
    return (
        environ.get("REMOTE_ADDR") in trusted_proxies
        and forwarded.strip().lower() == "https"
    )


def set_cookie(token: str, secure: bool) -> str:
    """The Set-Cookie value that signs this browser in."""
    return (
        f"{COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax"
        + ("; Secure" if secure else "")
    )


def clear_cookie(secure: bool) -> str:
    """The Set-Cookie value that forgets the session cookie."""
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (
        "; Secure" if secure else ""
    )


def cross_site(environ: Mapping[str, Any], settings: Settings) -> Refusal | None:
    """Refuse a form POST sent by another site's page (its Origin is not ours)."""
    refusal = check_origin(
        environ.get("HTTP_ORIGIN"),
        environ.get("HTTP_HOST", ""),
        (
            *settings.allow_origin,
            *((settings.public_url,) if settings.public_url else ()),
        ),
    )
    if refusal is None:
        return None
    return Refusal("403 Forbidden", "this form was sent from another site; refused")
