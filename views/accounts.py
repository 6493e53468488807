"""The access gate on the pages, and the pages that sign a browser in or out.

``access_middleware_factory`` asks the gate before any gated page runs (the
chat page, the room list, transcripts, downloads); what stays open is listed
in ``OPEN_PREFIXES``. ``/invite/<token>`` creates an account and signs the
browser in, ``/signin/<code>`` signs in another browser of an account, and
``/signout`` ends this browser's session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from wheezy.http import HTTPResponse
from wheezy.web.handlers import BaseHandler

from chatcore import identity
from chatcore.access import (
    NEED_INVITE,
    clear_cookie,
    cross_site,
    is_https,
    session_cookie,
    set_cookie,
)
from chatcore.accounts import (
    AccountError,
    InviteGone,
    NameTaken,
    digest,
    make_session,
    new_id,
)
from chatcore.handshake import Refusal
from chatcore.history import HistoryError

log = logging.getLogger(__name__)

# Paths every visitor may open whatever the access mode: probes, static
# files, the pages that sign in, the bot API (its own bearer token) and
# /metrics (its own rule). Everything else asks the gate.
OPEN_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/",
    "/vendor/",
    "/invite/",
    "/signin/",
    "/signout",
    "/api/",
)
GONE = 410
INVITE_GONE = "This invite has expired or has been used up."
SIGNIN_GONE = "This sign-in link has expired or has been used already."
ASK_FOR_INVITE = "Ask someone who runs it for an invite link."


def _status_code(status: str) -> int:
    return int(status.split()[0])


def access_middleware_factory(options: dict[str, Any]) -> Callable[..., Any]:
    """Refuse gated pages to whoever the gate refuses; tell the pages behind
    it who is asking (``chat.account``, ``chat.user_id`` in the environ)."""
    chat = options["chat_context"]
    render = options["render_template"]
    path_for = options["path_for"]

    def middleware(request: Any, following: Callable[[Any], Any]) -> Any:
        path = request.environ.get("PATH_INFO", "")
        if path.startswith(OPEN_PREFIXES):
            return following(request)
        refusal = chat.gate.apply(request.environ)
        if refusal is None:
            return following(request)
        return _refusal_page(render, path_for, request, refusal)

    return middleware


def _refusal_page(
    render: Any, path_for: Any, request: Any, refusal: Refusal
) -> HTTPResponse:
    status = _status_code(refusal.status)
    if request.environ.get("PATH_INFO", "") in ("", "/"):
        # The chat page: a page of its own, and no chat UI or script.
        invite = refusal.reason == NEED_INVITE
        response = HTTPResponse()
        response.status_code = status
        response.write(
            render(
                "access.html",
                {
                    "title": "Invite needed" if invite else "Not signed in",
                    "status": status,
                    "message": refusal.reason,
                    "hint": ASK_FOR_INVITE if invite else "",
                    "path_for": lambda name, **args: (
                        request.root_path + path_for(name, **args)
                    ),
                },
            )
        )
        return response
    response = HTTPResponse("text/plain; charset=UTF-8")
    response.status_code = status
    response.write(refusal.reason + "\n")
    return response


class AccountPage(BaseHandler):
    """What the invite, sign-in and sign-out pages share."""

    @property
    def chat(self) -> Any:
        return self.options["chat_context"]

    def plain(self, status: int, text: str) -> HTTPResponse:
        response = HTTPResponse("text/plain; charset=UTF-8")
        response.status_code = status
        response.write(text + "\n")
        return response

    def message_page(self, status: int, title: str, message: str) -> HTTPResponse:
        response = self.render_response(
            "access.html", title=title, status=status, message=message, hint=""
        )
        response.status_code = status
        return response

    def refusal(self) -> HTTPResponse | None:
        """A 404 where invites do not exist, a 403 for another site's form."""
        if self.chat.settings.access != "invite":
            return self.plain(404, "there are no invites: the chat is not invite-only")
        if self.request.method == "POST":
            refused = cross_site(self.request.environ, self.chat.settings)
            if refused is not None:
                return self.plain(403, refused.reason)
        return None

    def signed_in(self) -> bool:
        return not isinstance(self.chat.gate.admit(self.request.environ), Refusal)

    def sign_in(self, account_id: str) -> HTTPResponse:
        """Start a session for this browser and go to the chat."""
        token, session = make_session(account_id, time.time())
        self.chat.accounts.add_session(session)
        response = self.see_other_for("chat")
        secure = is_https(
            self.request.environ, frozenset(self.chat.settings.trusted_proxy)
        )
        response.headers.append(("Set-Cookie", set_cookie(token, secure)))
        response.headers.append(("Cache-Control", "no-store"))
        return response


class InvitePage(AccountPage):
    """``/invite/<token>``: pick a name, get an account, enter the chat."""

    def get(self) -> HTTPResponse:
        refused = self.refusal()
        if refused is not None:
            return refused
        if self.signed_in():
            return self.see_other_for("chat")
        try:
            invite = self.chat.accounts.invite(self._token_hash(), time.time())
        except HistoryError:
            return self.plain(503, "the account store cannot be reached; try again")
        if invite is None:
            return self.message_page(GONE, "Invite gone", INVITE_GONE)
        return self._form("", None, 200)

    def post(self) -> HTTPResponse:
        refused = self.refusal()
        if refused is not None:
            return refused
        if self.signed_in():
            return self.see_other_for("chat")
        requested = (self.request.form.get("name") or [""])[0]
        try:
            name = identity.check_name(requested)
        except identity.InvalidName as exc:
            return self._form(requested, str(exc), 400)
        try:
            account = self.chat.accounts.redeem(
                self._token_hash(),
                name,
                identity.name_key(name),
                time.time(),
                new_id(),
            )
            log.info("a new account %s joined through an invite", account.id)
            if account.admin:
                self.chat.hub.grant_admin(account.id, account.name)
            return self.sign_in(account.id)
        except InviteGone:
            return self.message_page(GONE, "Invite gone", INVITE_GONE)
        except NameTaken:
            return self._form(
                requested,
                f"The name '{name}' is taken (or looks like one that is); "
                "pick another one.",
                409,
            )
        except (AccountError, HistoryError):
            return self.plain(503, "the account store cannot be reached; try again")

    def _token_hash(self) -> str:
        return digest(self.route_args["token"])

    def _form(self, name: str, error: str | None, status: int) -> HTTPResponse:
        response = self.render_response(
            "invite.html",
            title="Join the chat",
            action=self.request.environ.get("PATH_INFO", ""),
            name=name,
            error=error,
            name_max=identity.NAME_MAX,
        )
        response.status_code = status
        response.headers.append(("Cache-Control", "no-store"))
        return response


class SigninPage(AccountPage):
    """``/signin/<code>``: sign this browser in as the account that made the
    link. GET asks (a link preview must not use the code up), POST signs in."""

    def get(self) -> HTTPResponse:
        refused = self.refusal()
        if refused is not None:
            return refused
        response = self.render_response(
            "signin.html",
            title="Sign in",
            action=self.request.environ.get("PATH_INFO", ""),
        )
        response.headers.append(("Cache-Control", "no-store"))
        return response

    def post(self) -> HTTPResponse:
        refused = self.refusal()
        if refused is not None:
            return refused
        try:
            account_id = self.chat.accounts.use_code(
                digest(self.route_args["code"]), time.time()
            )
            if account_id is None or self.chat.accounts.account(account_id) is None:
                return self.message_page(GONE, "Link gone", SIGNIN_GONE)
            return self.sign_in(account_id)
        except HistoryError:
            return self.plain(503, "the account store cannot be reached; try again")


class SignoutPage(AccountPage):
    """``POST /signout``: end this browser's session (its connections close)."""

    def post(self) -> HTTPResponse:
        refused = self.refusal()
        if refused is not None:
            return refused
        token = session_cookie(self.request.environ)
        if token:
            try:
                self.chat.accounts.end(digest(token))
            except HistoryError:
                return self.plain(503, "the account store cannot be reached; try again")
        response = self.see_other_for("chat")
        secure = is_https(
            self.request.environ, frozenset(self.chat.settings.trusted_proxy)
        )
        response.headers.append(("Set-Cookie", clear_cookie(secure)))
        return response
