"""Accounts across two chat processes on one real Redis: a session made on
one works on the other, revoking it on one closes it on the other, and the
invite command writes to the same Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

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
from tests.e2e.test_access import close_frame, upgrade
from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import MS, ServerProcess, close_tracked, run_server

pytestmark = needs_redis


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisProcess, ServerProcess, ServerProcess]]:
    """One redis-server and two invite-only chat processes on it."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(run_redis(tmp_path / "redis"))
        flags = ("--access", "invite", "--redis", redis.url)
        one = stack.enter_context(run_server(*flags, log_dir=tmp_path))
        two = stack.enter_context(run_server(*flags, log_dir=tmp_path))
        yield redis, one, two
        close_tracked()  # before the servers stop


def test_sessions_and_revocations_cross_processes(
    pair: tuple[RedisProcess, ServerProcess, ServerProcess],
) -> None:
    """Ensure an account and session made through process one open process
    two, a sign-in link made on two works on one, names are one across both,
    and revoking on one closes the connection on two."""
    redis, one, two = pair
    token = redeem(one, first_invite(one), "Alice")
    on_two = connect_as(two, token)
    assert on_two.welcome["user"]["name"] == "Alice"
    assert request(two, "GET", "/", headers=cookie_header(token))[0] == 200
    on_two.send(type="signin_link")
    link = on_two.recv_until("signin_link")["url"]
    status, headers, _ = request(one, "POST", path_of(link), {}, own_origin(one))
    assert status == 303
    phone = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    phone_on_two = connect_as(two, phone)
    on_one = connect_as(one, token)
    on_one.send(type="sessions")
    sessions = on_one.recv_until("sessions")["sessions"]
    assert [s["current"] for s in sessions] == [True, False]
    on_one.send(type="revoke", id=sessions[1]["id"])
    on_one.recv_until("sessions")
    assert phone_on_two.recv_until("signed_out", timeout=10000 * MS)
    assert close_frame(phone_on_two) == (1008, "signed out")
    assert upgrade(two, cookie_header(phone)).status == 401
    # The command writes its invite to the same Redis.
    made = cli("invite", "--redis", redis.url, "--public-url", two.http_url)
    assert made.returncode == 0, made.stderr
    bob = connect_as(one, redeem(two, made.stdout.strip(), "Bob"))
    bob.send(type="nick", name="alice")
    assert bob.recv_until("error")["code"] == "name_taken"
    bob.send(type="nick", name="Robert")
    assert bob.recv_until("renamed")["user"]["name"] == "Robert"
    seen = on_two.recv_until("presence", lambda f: f["event"] == "nick")
    assert seen["user"]["name"] == "Robert"
