"""Who may enter, end to end: --access invite and proxy on every surface,
invites, sessions, sign-in links and the invite command, on real servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import websocket

from tests.accounts_support import (
    cli,
    connect_as,
    cookie_header,
    first_invite,
    own_origin,
    path_of,
    redeem,
    request,
)
from tests.e2e.rawws import raw_handshake, upgrade_request
from tests.support import MS, Client, ServerProcess, closed_after_the_test, connect

Start = Callable[..., ServerProcess]
GATED = [
    "/",
    "/rooms",
    "/rooms/lobby",
    "/rooms/lobby/transcript.txt",
    "/rooms/lobby/transcript.jsonl",
]


def close_frame(client: Client) -> tuple[int, str]:
    """The code and reason of the close frame the client reads next."""
    opcode, frame = client.ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()


def upgrade(server: ServerProcess, headers: dict[str, str] | None = None):
    return raw_handshake(server.port, upgrade_request(server.port, headers=headers))


def db_of(server: ServerProcess, tmp_path: Path) -> str:
    return str(tmp_path / f"chat-{server.port}.db")


def signed_in_admin(server: ServerProcess, name: str = "Alice") -> str:
    """The first admin's session cookie, through the invite printed at start."""
    return redeem(server, first_invite(server), name)


def test_invite_mode_refuses_every_surface_without_a_session(
    server_with: Start,
) -> None:
    """Ensure that without a valid session the page is a 401 saying an invite
    is needed (no chat script), and the room list, transcripts, downloads and
    the WebSocket upgrade are refused; with a session all of them work."""
    server = server_with("--access", "invite")
    token = signed_in_admin(server)
    alice = connect_as(server, token)
    alice.send(type="message", room="lobby", text="hello")
    alice.recv_until("message")
    for cookie in ({}, cookie_header("forged-" + token), {"Cookie": "chat_session="}):
        status, _, body = request(server, "GET", "/", headers=cookie)
        assert status == 401
        assert "You need an invite to enter this chat" in body
        assert "<script" not in body and "main.js" not in body
        for path in GATED[1:]:
            status, _, body = request(server, "GET", path, headers=cookie)
            assert (status, body) == (401, "You need an invite to enter this chat.\n")
        answer = upgrade(server, cookie)
        assert answer.status == 401
        assert b"You need an invite" in answer.body
    for path in GATED:
        status, _, body = request(server, "GET", path, headers=cookie_header(token))
        assert status == 200, (path, body)
    assert "main.js" in request(server, "GET", "/", headers=cookie_header(token))[2]
    for path in ("/healthz", "/readyz", "/static/chat.css"):
        assert request(server, "GET", path)[0] == 200


def test_an_invite_creates_an_account_that_follows_its_owner(
    server_with: Start,
) -> None:
    """Ensure the invite's account is the user on the WebSocket (its name, no
    key, admin from the invite), names are unique by look across accounts,
    and a rename sticks to the account."""
    server = server_with("--access", "invite")
    token = signed_in_admin(server)
    alice = connect_as(server, token)
    welcome = alice.welcome
    assert welcome["user"]["name"] == "Alice"
    assert welcome["account"] is True and welcome["admin"] is True
    assert "key" not in welcome
    alice.send(type="invite", uses=2)
    invite = alice.recv_until("invite")
    assert invite["uses"] == 2 and invite["url"].startswith("http://localhost:")
    # A taken name, a look-alike, an invalid one: the form says why, 4xx.
    invite_path = path_of(invite["url"])
    for name, status, says in (
        ("alice", 409, "is taken"),
        ("\u0410lice", 409, "is taken"),
        ("guest-1", 400, "given out by the server"),
        ("", 400, "cannot be empty"),
    ):
        found = request(server, "POST", invite_path, {"name": name}, own_origin(server))
        assert found[0] == status and says in found[2], (name, found)
    bob_token = redeem(server, invite["url"], "Bob")
    bob = connect_as(server, bob_token)
    assert "admin" not in bob.welcome and bob.welcome["user"]["name"] == "Bob"
    bob.send(type="nick", name="ALICE")
    assert bob.recv_until("error")["code"] == "name_taken"
    bob.send(type="invite")
    refused = bob.recv_until("error")
    assert (refused["code"], refused["ref"]) == ("forbidden", "invite")
    bob.send(type="nick", name="Robert")
    assert bob.recv_until("renamed")["user"]["name"] == "Robert"
    bob.close()
    again = connect_as(server, bob_token)
    assert again.welcome["user"]["name"] == "Robert"
    # Signed in already: the invite page sends the browser to the chat.
    assert (
        request(server, "GET", invite_path, headers=cookie_header(bob_token))[0] == 303
    )


def test_invites_are_used_up_expire_and_refuse_other_sites(
    server_with: Start, tmp_path: Path
) -> None:
    """Ensure an invite from the command works its number of uses only, not
    after it expires (410), and a form posted from another site is a 403."""
    server = server_with("--access", "invite")
    db = db_of(server, tmp_path)
    once = cli("invite", "--db", db, "--public-url", server.http_url)
    assert once.returncode == 0, once.stderr
    url = once.stdout.strip()
    assert url.startswith(server.http_url + "/invite/")
    status, _, _ = request(
        server, "POST", path_of(url), {"name": "Eve"}, {"Origin": "http://evil.test"}
    )
    assert status == 403
    assert request(server, "GET", path_of(url))[0] == 200
    redeem(server, url, "Carol")
    for method in ("GET", "POST"):
        status, _, body = request(
            server, method, path_of(url), {"name": "Dan"}, own_origin(server)
        )
        assert status == 410 and "expired or has been used up" in body
    short = cli("invite", "--db", db, "--expires", "1").stdout.strip()
    time.sleep(1.2)  # past its one second
    assert request(server, "GET", path_of(short))[0] == 410
    forged = "/invite/" + "A" * 43
    assert request(server, "GET", forged)[0] == 410


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--uses", "0"], "uses must be 1 to 1000"),
        (["--uses", "1001"], "uses must be 1 to 1000"),
        (["--expires", "0"], "expiry must be 1 to"),
        (["--expires", "2592001"], "expiry must be 1 to"),
        (["--uses", "two"], "not a whole number"),
        (["--db", ":memory:"], "lives inside the server process"),
        (["--db", "/nonexistent/chat.db"], "there is no database"),
        (["--port", "x"], "--port"),
    ],
)
def test_the_invite_command_refuses_bad_values(
    args: list[str], says: str, tmp_path: Path
) -> None:
    """Ensure a bad value costs one line on stderr and exit code 2."""
    db = tmp_path / "chat.db"
    db.touch()
    result = cli("invite", *(["--db", str(db)] if "--db" not in args else []), *args)
    assert result.returncode == 2, result
    assert says in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) <= 2  # argparse adds its usage


def test_a_second_device_signs_in_and_sessions_can_be_revoked(
    server_with: Start,
) -> None:
    """Ensure a sign-in link signs another browser in as the same person, once;
    sessions are listed with the current one marked; revoking one closes its
    connection (1008, "signed out") and its cookie no longer opens anything."""
    server = server_with("--access", "invite")
    first = signed_in_admin(server)
    laptop = connect_as(server, first)
    laptop.send(type="signin_link")
    link = laptop.recv_until("signin_link")
    assert link["expires"] > time.time() * 1000
    assert request(server, "GET", path_of(link["url"]))[0] == 200  # asks first
    status, headers, _ = request(
        server, "POST", path_of(link["url"]), {}, own_origin(server)
    )
    assert status == 303
    second = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert (
        "HttpOnly" in headers["set-cookie"] and "SameSite=Lax" in headers["set-cookie"]
    )
    again = request(server, "POST", path_of(link["url"]), {}, own_origin(server))
    assert again[0] == 410
    phone = connect_as(server, second)
    assert phone.welcome["user"] == laptop.welcome["user"]
    laptop.send(type="sessions")
    sessions = laptop.recv_until("sessions")["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions] == [True, False]
    laptop.send(type="revoke", id=sessions[1]["id"])
    listed = laptop.recv_until("sessions")["sessions"]
    assert [s["id"] for s in listed] == [sessions[0]["id"]]
    assert phone.recv_until("signed_out")["message"]
    assert close_frame(phone) == (1008, "signed out")
    assert upgrade(server, cookie_header(second)).status == 401
    assert request(server, "GET", "/", headers=cookie_header(second))[0] == 401
    laptop.send(type="revoke", id=sessions[1]["id"])
    assert laptop.recv_until("error")["code"] == "bad_request"


def test_signing_out_ends_the_session_and_its_connections(server_with: Start) -> None:
    """Ensure POST /signout clears the cookie, ends the session in the store
    and closes that browser's open connections."""
    server = server_with("--access", "invite")
    token = signed_in_admin(server)
    client = connect_as(server, token)
    status, headers, _ = request(
        server, "POST", "/signout", {}, {**cookie_header(token), **own_origin(server)}
    )
    assert status == 303 and "Max-Age=0" in headers["set-cookie"]
    assert client.recv_until("signed_out", timeout=10000 * MS)
    assert close_frame(client) == (1008, "signed out")
    assert request(server, "GET", "/", headers=cookie_header(token))[0] == 401


def test_proxy_mode_believes_only_the_trusted_proxy(server_with: Start) -> None:
    """Ensure --access proxy takes the person from --auth-header when the
    peer is a trusted proxy (creating the account on first sight), refuses
    a request without the header (401), and refuses every other peer (403)."""
    server = server_with(
        "--access", "proxy", "--trusted-proxy", "127.0.0.1", "--auth-header", "X-User"
    )
    status, _, body = request(server, "GET", "/", headers={"X-User": "carol"})
    assert status == 200 and "main.js" in body
    carol = connect_as(server, headers={"X-User": "carol"})
    assert carol.welcome["user"]["name"] == "carol" and carol.welcome["account"]
    again = connect_as(server, headers={"X-User": "carol"})
    assert again.welcome["user"]["id"] == carol.welcome["user"]["id"]
    odd = connect_as(server, headers={"X-User": "dave@example.org"})
    assert odd.welcome["user"]["name"].startswith("guest-")
    assert request(server, "GET", "/", headers={"X-User": "CAROL"})[0] == 200
    upper = connect_as(server, headers={"X-User": "CAROL"})
    assert upper.welcome["user"]["name"] != "carol"  # a like name: a guest-style one
    for path in GATED:
        assert request(server, "GET", path)[0] == 401
    assert upgrade(server).status == 401
    elsewhere = server_with("--access", "proxy", "--trusted-proxy", "10.9.9.9")
    for path in GATED:
        status, _, body = request(
            elsewhere, "GET", path, headers={"Remote-User": "carol"}
        )
        assert status == 403 and "only the authentication proxy" in body
    refused = upgrade(elsewhere, {"Remote-User": "carol"})
    assert refused.status == 403 and b"only the authentication proxy" in refused.body
    assert request(elsewhere, "GET", "/healthz")[0] == 200


def test_open_mode_is_unchanged_and_has_no_account_frames(
    server_with: Start,
) -> None:
    """Ensure --access open (the default) lets anyone in as before, with no
    invite pages, and the account frames get a clear bad_request."""
    server = server_with()
    assert request(server, "GET", "/")[0] == 200
    assert request(server, "GET", "/invite/whatever")[0] == 404
    client = connect(server)
    closed_after_the_test(client)
    assert "account" not in client.welcome and "key" in client.welcome
    for kind in ("sessions", "signin_link", "invite"):
        client.send(type=kind)
        error = client.recv_until("error")
        assert (error["code"], error["ref"]) == ("bad_request", kind)
        assert "--access open" in error["message"]


def test_a_memory_store_prints_the_first_admin_invite(server_with: Start) -> None:
    """Ensure that with --db :memory: (which no command can reach) the server
    prints an admin invite at start, and it leads in; no second one is
    printed once an account exists (a restart would start empty anyway)."""
    server = server_with("--access", "invite", "--db", ":memory:")
    token = signed_in_admin(server, "Root")
    root = connect_as(server, token)
    assert root.welcome["admin"] is True
    assert server.log().count("first admin signs in with") == 1
