"""The access gate and the account frames, without sockets: every mode's
answer to a request, cookies, and the hub with accounts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatcore import identity
from chatcore.access import (
    NEED_INVITE,
    PROXY_ONLY,
    Admission,
    Gate,
    clear_cookie,
    cross_site,
    is_https,
    set_cookie,
)
from chatcore.account_commands import ACCOUNTS_OFF, FULL_SWEEP_EVERY, AccountCommands
from chatcore.accounts import (
    SESSION_TOUCH_EVERY,
    Account,
    Session,
    make_session,
)
from chatcore.accounts.memory import MemoryAccounts
from chatcore.accounts.names import AccountNames
from chatcore.config import Settings
from chatcore.delivery import Delivery
from chatcore.handshake import Refusal
from chatcore.history import HistoryError
from chatcore.history.memory import MemoryHistory
from chatcore.hub import Hub

NOW = 1_800_000_000.0
INVITE = Settings(access="invite", public_url="https://chat.example.org")
PROXY = Settings(access="proxy", trusted_proxy=("10.0.0.1",), auth_header="X-User")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def signed_in(store: MemoryAccounts, name: str, admin: bool = False):
    account = store.create(
        name, identity.name_key(name), NOW, admin=admin, account_id="a-" + name
    )
    token, session = make_session(account.id, NOW)
    store.add_session(session)
    return account, token, session


def test_open_mode_lets_everyone_in_as_no_one() -> None:
    """Ensure --access open admits any request and leaves no user id."""
    environ: dict[str, Any] = {}
    assert Gate(Settings(), None, Clock()).apply(environ) is None
    assert environ["chat.account"] is None and "chat.user_id" not in environ


def test_invite_mode_needs_a_live_session_cookie() -> None:
    """Ensure the cookie must name a stored session: none, forged, empty or
    revoked is a 401; a live one is its account, noted in the environ, and
    its last_seen is written at most every SESSION_TOUCH_EVERY seconds."""
    store, clock = MemoryAccounts(), Clock()
    account, token, session = signed_in(store, "Alice")
    gate = Gate(INVITE, store, clock)
    refused = Refusal("401 Unauthorized", NEED_INVITE)
    for cookie in ("", "chat_session=forged", "chat_session=", "other=" + token):
        assert gate.admit({"HTTP_COOKIE": cookie}) == refused, cookie
    environ: dict[str, Any] = {"HTTP_COOKIE": f"theme=dark; chat_session={token}"}
    assert gate.apply(environ) is None
    assert environ["chat.account"] == account and environ["chat.user_id"] == account.id
    clock.now += SESSION_TOUCH_EVERY - 1
    gate.admit(environ)
    assert store.session(session.token_hash).last_seen == NOW
    clock.now += 1
    gate.admit(environ)
    assert store.session(session.token_hash).last_seen == clock.now
    store.revoke(account.id, session.id)
    assert gate.admit(environ) == refused


def test_proxy_mode_believes_the_header_from_the_trusted_proxy_only() -> None:
    """Ensure another peer is refused (403) even with the header, a missing
    or overlong header is a 401, and a login becomes the same account on
    every request, named by the login when it is a free valid name."""
    store = MemoryAccounts()
    gate = Gate(PROXY, store, Clock())
    header = {"HTTP_X_USER": "carol"}
    assert gate.admit({"REMOTE_ADDR": "10.0.0.2", **header}) == Refusal(
        "403 Forbidden", PROXY_ONLY
    )
    assert gate.admit({"REMOTE_ADDR": "10.0.0.1"}).status == "401 Unauthorized"
    too_long = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_USER": "x" * 257}
    assert gate.admit(too_long).status == "401 Unauthorized"
    first = gate.admit({"REMOTE_ADDR": "10.0.0.1", **header})
    again = gate.admit({"REMOTE_ADDR": "10.0.0.1", **header})
    assert isinstance(first, Admission) and first == again
    assert first.account is not None and first.account.name == "carol"
    look_alike = gate.admit({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_USER": "CAROL"})
    odd = gate.admit({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_USER": "d@example.org"})
    for admitted in (look_alike, odd):
        assert isinstance(admitted, Admission) and admitted.account is not None
        assert identity.is_guest(admitted.account.name)
        assert admitted.account.id != first.account.id
    assert store.count() == 3


def test_a_store_that_fails_is_a_503() -> None:
    """Ensure a store error refuses with 503 rather than raising."""

    class Broken(MemoryAccounts):
        def session(self, token_hash: str) -> Session | None:
            raise HistoryError("down")

    gate = Gate(INVITE, Broken(), Clock())
    answer = gate.admit({"HTTP_COOKIE": "chat_session=x"})
    assert isinstance(answer, Refusal) and answer.status.startswith("503")


def test_cookies_are_http_only_lax_and_secure_over_https() -> None:
    """Ensure the session cookie's flags, and Secure exactly when the browser
    came over HTTPS (directly, or by a trusted proxy's X-Forwarded-Proto)."""
    assert set_cookie("t", False).split("; ")[0] == "chat_session=t"
    for flag in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in set_cookie("t", False) and flag in clear_cookie(False)
    assert "Secure" not in set_cookie("t", False)
    assert set_cookie("t", True).endswith("; Secure")
    assert "Max-Age=0" in clear_cookie(True)
    trusted = frozenset({"10.0.0.1"})
    assert is_https({"wsgi.url_scheme": "https"}, trusted)
    forwarded = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_PROTO": "https"}
    assert is_https(forwarded, trusted)
    assert not is_https({**forwarded, "REMOTE_ADDR": "10.0.0.9"}, trusted)
    assert not is_https({"wsgi.url_scheme": "http"}, trusted)


def test_forms_from_other_sites_are_refused() -> None:
    """Ensure a POST whose Origin is another site's is refused; our own host
    (either scheme), the public URL, or no Origin at all pass."""
    host = {"HTTP_HOST": "chat.local:8000"}
    assert cross_site({**host, "HTTP_ORIGIN": "http://evil.test"}, INVITE) is not None
    assert (
        cross_site({**host, "HTTP_ORIGIN": "https://chat.local:8000"}, INVITE) is None
    )
    assert (
        cross_site({**host, "HTTP_ORIGIN": "https://chat.example.org"}, INVITE) is None
    )
    assert cross_site(host, INVITE) is None


# -- the hub with accounts -------------------------------------------------------


def frames(deliveries: list[Delivery], conn: object) -> list[dict[str, Any]]:
    return [json.loads(d.text) for d in deliveries if conn in d.targets]


def account_hub() -> tuple[Hub, MemoryAccounts, Clock]:
    store, clock = MemoryAccounts(), Clock()
    hub = Hub(
        INVITE,
        MemoryHistory(100),
        AccountNames(store),
        clock,
        accounts=AccountCommands(store, INVITE, clock),
    )
    return hub, store, clock


def connect(hub: Hub, account: Account, session: Session) -> tuple[object, dict]:
    conn = object()
    welcome = frames(hub.connect(conn, account=account, session=session), conn)[0]
    return conn, welcome


def test_an_account_is_its_user_on_every_device() -> None:
    """Ensure a connection with an account is the account (id, name, admin,
    no key, ignoring a requested name), and two devices are one user."""
    hub, store, _ = account_hub()
    alice, _, session = signed_in(store, "Alice", admin=True)
    hub.grant_admin(alice.id, alice.name)  # as redeeming an --admin invite does
    _, laptop = connect(hub, alice, session)
    phone_conn = object()
    phone = frames(
        hub.connect(phone_conn, name="Mallory", account=alice, session=session),
        phone_conn,
    )[0]
    assert laptop["user"] == phone["user"]
    assert laptop["user"]["id"] == alice.id and laptop["user"]["name"] == "Alice"
    assert (laptop["account"], laptop["admin"], "key" in laptop) == (True, True, False)
    assert hub.stats().users == 1


def test_nick_renames_the_account_for_good_and_refuses_look_alikes() -> None:
    """Ensure nick renames the account in the store, and a name like another
    account's (even one not connected) is name_taken, changing nothing."""
    hub, store, _ = account_hub()
    alice, _, session = signed_in(store, "Alice")
    signed_in(store, "Bob")  # not connected
    conn, _ = connect(hub, alice, session)
    reply = frames(hub.receive(conn, '{"type":"nick","name":"B\u03bfb"}'), conn)
    assert reply[0]["code"] == "name_taken"
    assert store.account(alice.id).name == "Alice"
    hub.receive(conn, '{"type":"nick","name":"Alicia"}')
    assert store.account(alice.id).name == "Alicia"
    assert store.holder(identity.name_key("alice")) is None


def test_revoke_closes_that_sessions_connections_and_sweep_the_rest() -> None:
    """Ensure revoke deletes the session and closes its connections here with
    1008 "signed out" after a signed_out frame; sweep closes connections
    whose session ended elsewhere (another process, a sign-out)."""
    hub, store, _ = account_hub()
    alice, _, laptop_session = signed_in(store, "Alice")
    _, phone_session = make_session(alice.id, NOW + 1)
    store.add_session(phone_session)
    laptop, _ = connect(hub, alice, laptop_session)
    phone, _ = connect(hub, alice, phone_session)
    listed = frames(hub.receive(laptop, '{"type":"sessions"}'), laptop)[0]
    assert [s["current"] for s in listed["sessions"]] == [True, False]
    out = hub.receive(laptop, json.dumps({"type": "revoke", "id": phone_session.id}))
    closing = [d for d in out if phone in d.targets]
    assert len(closing) == 1 and closing[0].close_code == 1008
    assert closing[0].close_reason == "signed out"
    assert json.loads(closing[0].text)["type"] == "signed_out"
    assert store.session(phone_session.token_hash) is None
    assert hub.sweep_sessions() == []
    store.end(laptop_session.token_hash)
    swept = hub.sweep_sessions()
    assert [d.targets for d in swept] == [(laptop,)] and swept[0].close_code == 1008


def test_invites_from_the_page_are_for_admins_only() -> None:
    """Ensure an admin's invite frame makes a working invite link at the
    public URL, and anyone else gets forbidden."""
    hub, store, _ = account_hub()
    admin, _, admin_session = signed_in(store, "Root", admin=True)
    hub.grant_admin(admin.id, admin.name)
    user, _, user_session = signed_in(store, "User")
    root, _ = connect(hub, admin, admin_session)
    plain, _ = connect(hub, user, user_session)
    made = frames(hub.receive(root, '{"type":"invite","uses":3}'), root)[0]
    assert made["type"] == "invite" and made["uses"] == 3
    assert made["url"].startswith("https://chat.example.org/invite/")
    assert made["expires"] == int((NOW + 7 * 24 * 3600) * 1000)
    refused = frames(hub.receive(plain, '{"type":"invite"}'), plain)[0]
    assert (refused["code"], refused["ref"]) == ("forbidden", "invite")


@pytest.mark.parametrize("kind", ["sessions", "signin_link", "invite"])
def test_open_mode_refuses_the_account_frames(kind: str) -> None:
    """Ensure a hub without accounts answers the account frames with
    bad_request saying accounts are off."""
    hub = Hub(Settings(), MemoryHistory(100), AccountNames(MemoryAccounts()), Clock())
    conn = object()
    hub.connect(conn)
    reply = frames(hub.receive(conn, json.dumps({"type": kind})), conn)[0]
    assert (reply["code"], reply["message"], reply["ref"]) == (
        "bad_request",
        ACCOUNTS_OFF,
        kind,
    )


@pytest.mark.parametrize("kind", ["signin_link", "invite"])
def test_links_are_for_invite_mode_only(kind: str) -> None:
    """Ensure that behind an authentication proxy the hub makes no sign-in or
    invite links (the proxy signs people in): bad_request saying so."""
    store, clock = MemoryAccounts(), Clock()
    hub = Hub(
        PROXY,
        MemoryHistory(100),
        AccountNames(store),
        clock,
        accounts=AccountCommands(store, PROXY, clock),
    )
    root, _, session = signed_in(store, "Root", admin=True)
    conn, _ = connect(hub, root, session)
    reply = frames(hub.receive(conn, json.dumps({"type": kind})), conn)[0]
    assert (reply["code"], reply["ref"]) == ("bad_request", kind)
    assert "authentication proxy" in reply["message"]


def test_sweep_asks_about_every_session_only_after_one_ended() -> None:
    """Ensure a sweep reads the whole session list only when a session ended
    since the last sweep (or on every FULL_SWEEP_EVERY-th), so an idle
    server costs the store one read per sweep."""

    class Counting(MemoryAccounts):
        asked = 0

        def live(self, token_hashes: list[str]) -> set[str]:
            self.asked += 1
            return super().live(token_hashes)

    store, clock = Counting(), Clock()
    commands = AccountCommands(store, INVITE, clock)
    alice, _, session = signed_in(store, "Alice")
    commands.attach("conn", session)
    commands.sweep()
    assert store.asked == 1  # the first sweep knows nothing yet
    for _ in range(FULL_SWEEP_EVERY - 2):
        assert commands.sweep() == []
    assert store.asked == 1
    commands.sweep()
    assert store.asked == 2  # the periodic full one
    _, other = make_session(alice.id, NOW)
    store.add_session(other)
    store.end(other.token_hash)
    assert commands.sweep() == [] and store.asked == 3
