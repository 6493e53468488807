"""The features of a team chat together, on a real invite-only server: the
first admin from the printed invite, invites from the page, the admin
command on accounts, private rooms over HTTP for members only, and a
moderator's delete."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.accounts_support import (
    cli,
    connect_as,
    cookie_header,
    first_invite,
    redeem,
    request,
)
from tests.support import MS, Client, ServerProcess

Start = Callable[..., ServerProcess]


def db_flag(server: ServerProcess) -> list[str]:
    args = server.proc.args
    assert isinstance(args, list)
    return ["--db", str(args[args.index("--db") + 1])]


def invite_from_the_page(admin: Client) -> str:
    admin.send(type="invite")
    return admin.recv_until("invite")["url"]


def test_an_invite_only_team(server_with: Start) -> None:
    """Ensure the printed invite makes an admin who invites Bob from the page;
    the admin command finds Bob's account by name; a private room is listed
    and readable over HTTP by its members only; an admin deletes Bob's
    message and Bob sees it go."""
    server = server_with("--access", "invite")
    alice_token = redeem(server, first_invite(server), "Alice")
    alice = connect_as(server, alice_token)
    assert alice.welcome["admin"] is True  # the printed invite is an admin's

    bob_token = redeem(server, invite_from_the_page(alice), "Bob")
    bob = connect_as(server, bob_token)
    assert "admin" not in bob.welcome and bob.welcome["user"]["name"] == "Bob"

    # The admin command resolves a name to its account while the server runs.
    carol_token = redeem(server, invite_from_the_page(alice), "Carol")
    made = cli("admin", "add", "Carol", "--access", "invite", *db_flag(server))
    assert made.returncode == 0, made.stderr
    assert "Carol" in made.stdout
    listed = cli("admin", "list", "--access", "invite", *db_flag(server))
    names = sorted(line.split(" ", 1)[1] for line in listed.stdout.splitlines())
    assert names == ["Alice", "Carol"], listed
    deadline = time.monotonic() + 10000 * MS
    while not connect_as(server, carol_token).welcome.get("admin"):
        assert time.monotonic() < deadline, "Carol never became an admin"
        time.sleep(300 * MS)

    alice.send(type="create", room="staff", private=True)
    alice.recv_until("presence", lambda f: f["room"] == "staff")
    alice.send(type="message", room="staff", text="salaries are up")
    alice.recv_until("message")
    for token, sees in ((alice_token, True), (bob_token, False)):
        status, _, listing = request(
            server, "GET", "/rooms", None, cookie_header(token)
        )
        assert status == 200 and ("staff" in listing) is sees
        status, _, page = request(
            server, "GET", "/rooms/staff/transcript.txt", None, cookie_header(token)
        )
        assert (status, "salaries" in page) == ((200, True) if sees else (404, False))

    bob.send(type="message", room="lobby", text="something rude")
    posted = bob.recv_until("message")
    alice.recv_until("message", lambda f: f["id"] == posted["id"])
    alice.send(type="delete", room="lobby", id=posted["id"])
    gone = bob.recv_until("deleted")
    assert gone["id"] == posted["id"] and gone["by"]["name"] == "Alice"
