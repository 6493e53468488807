"""Helpers for tests of the invite and proxy modes: invites, forms, cookies."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from urllib.parse import urlencode, urlsplit

import websocket

from tests.support import (
    MS,
    ROOT,
    Client,
    ServerProcess,
    closed_after_the_test,
    wait_for,
)

FIRST_INVITE = re.compile(r"first admin signs in with: (\S+)")
COOKIE = re.compile(r"chat_session=([^;]*)")


def first_invite(server: ServerProcess) -> str:
    """The admin invite a server with no accounts prints at start."""
    wait_for(lambda: FIRST_INVITE.search(server.log()) is not None, what="invite")
    match = FIRST_INVITE.search(server.log())
    assert match is not None
    return match.group(1)


def path_of(url: str) -> str:
    return urlsplit(url).path


def request(
    server: ServerProcess,
    method: str,
    path: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed; header names lower-case."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5000 * MS)
    body = urlencode(fields).encode() if fields is not None else None
    all_headers = dict(headers or {})
    if body is not None:
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        found = {k.lower(): v for k, v in response.getheaders()}
        return response.status, found, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def own_origin(server: ServerProcess) -> dict[str, str]:
    return {"Origin": server.http_url}


def redeem(server: ServerProcess, invite_url: str, name: str) -> str:
    """Use an invite as a browser would; return the session cookie's value."""
    status, headers, body = request(
        server, "POST", path_of(invite_url), {"name": name}, own_origin(server)
    )
    assert status == 303, (status, body)
    match = COOKIE.search(headers["set-cookie"])
    assert match is not None
    return match.group(1)


def cookie_header(token: str) -> dict[str, str]:
    return {"Cookie": f"chat_session={token}"}


def connect_as(
    server: ServerProcess,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    room: str | None = None,
) -> Client:
    """A WebSocket client with the session cookie (or other headers); the
    welcome and first snapshot read."""
    all_headers = {**(cookie_header(token) if token else {}), **(headers or {})}
    url = server.ws_url + ("?" + urlencode({"room": room}) if room else "")
    client = Client(
        websocket.create_connection(
            url,
            timeout=5000 * MS,
            header=[f"{k}: {v}" for k, v in all_headers.items()],
        )
    )
    closed_after_the_test(client)
    client.welcome = client.recv()
    assert client.welcome["type"] == "welcome", client.welcome
    if client.welcome["rooms"]:
        client.recv_until("presence", lambda f: f["event"] == "snapshot")
    return client


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python chat.py ARGS``, its output as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30000 * MS,
        check=False,
    )
