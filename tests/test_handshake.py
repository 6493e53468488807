"""Unit tests of chatcore.handshake: RFC 6455 4.2.1 checks and the Origin rule."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chatcore import handshake
from chatcore.handshake import Refusal

KEY = base64.b64encode(b"0123456789abcdef").decode()


def environ(**overrides: Any) -> dict[str, Any]:
    """A valid upgrade request's environ; a value of None removes the entry."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "chat.example.org",
        "HTTP_UPGRADE": "websocket",
        "HTTP_CONNECTION": "Upgrade",
        "HTTP_SEC_WEBSOCKET_KEY": KEY,
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


# -- check_handshake -------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"HTTP_CONNECTION": "keep-alive, Upgrade"},
        {"HTTP_CONNECTION": "UPGRADE"},
        {"HTTP_SEC_WEBSOCKET_VERSION": " 13 "},
        {"HTTP_SEC_WEBSOCKET_KEY": f"  {KEY} "},
        {"HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"\x00" * 16).decode()},
    ],
    ids=[
        "plain",
        "connection-list",
        "upper-case",
        "version-spaces",
        "key-spaces",
        "zero-key",
    ],
)
def test_check_handshake_accepts(overrides: dict[str, Any]) -> None:
    """Ensure a valid request (and harmless variants of it) goes ahead."""
    assert handshake.check_handshake(environ(**overrides)) is None


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"REQUEST_METHOD": "POST"}, "GET"),
        ({"SERVER_PROTOCOL": "HTTP/1.0"}, "HTTP/1.1"),
        ({"SERVER_PROTOCOL": None}, "HTTP/1.1"),
        ({"HTTP_CONNECTION": None}, "Connection"),
        ({"HTTP_CONNECTION": "keep-alive"}, "Connection"),
        ({"HTTP_CONNECTION": "upgraded"}, "Connection"),
        ({"HTTP_HOST": None}, "Host"),
        ({"HTTP_HOST": ""}, "Host"),
        ({"HTTP_SEC_WEBSOCKET_KEY": None}, "Sec-WebSocket-Key"),
        ({"HTTP_SEC_WEBSOCKET_KEY": ""}, "Sec-WebSocket-Key"),
        ({"HTTP_SEC_WEBSOCKET_KEY": "not base64!"}, "Sec-WebSocket-Key"),
        ({"HTTP_SEC_WEBSOCKET_KEY": "abc"}, "Sec-WebSocket-Key"),
        (
            {"HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"x" * 15).decode()},
            "Sec-WebSocket-Key",
        ),
        (
            {"HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"x" * 17).decode()},
            "Sec-WebSocket-Key",
        ),
    ],
    ids=[
        "post",
        "http-1.0",
        "no-protocol",
        "no-connection",
        "connection-keep-alive",
        "connection-not-a-token",
        "no-host",
        "empty-host",
        "no-key",
        "empty-key",
        "key-not-base64",
        "key-too-short-text",
        "key-15-bytes",
        "key-17-bytes",
    ],
)
def test_check_handshake_refuses_with_400(
    overrides: dict[str, Any], words: str
) -> None:
    """Ensure each malformed request is a 400 whose reason says what is wrong."""
    refusal = handshake.check_handshake(environ(**overrides))
    assert isinstance(refusal, Refusal)
    assert refusal.status == "400 Bad Request"
    assert words in refusal.reason
    assert refusal.headers == ()


@pytest.mark.parametrize("version", [None, "", "8", "7", "12", "14", "13, 8"])
def test_check_handshake_other_versions_get_426(version: str | None) -> None:
    """Ensure a missing or unsupported version is a 426 naming version 13."""
    refusal = handshake.check_handshake(environ(HTTP_SEC_WEBSOCKET_VERSION=version))
    assert isinstance(refusal, Refusal)
    assert refusal.status == "426 Upgrade Required"
    assert ("Sec-WebSocket-Version", "13") in refusal.headers
    assert "13" in refusal.reason


def test_check_handshake_version_is_checked_before_the_key() -> None:
    """Ensure an old client with no valid key learns the version it needs."""
    refusal = handshake.check_handshake(
        environ(HTTP_SEC_WEBSOCKET_VERSION="8", HTTP_SEC_WEBSOCKET_KEY=None)
    )
    assert refusal is not None and refusal.status.startswith("426")


# -- check_origin ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (None, "chat.example.org"),
        ("http://chat.example.org", "chat.example.org"),
        ("https://chat.example.org", "chat.example.org"),  # behind a TLS proxy
        ("http://chat.example.org:80", "chat.example.org"),
        ("http://chat.example.org", "chat.example.org:80"),
        ("https://chat.example.org:443", "chat.example.org"),
        ("https://chat.example.org", "chat.example.org:443"),
        ("http://chat.example.org:8000", "chat.example.org:8000"),
        ("https://chat.example.org:8000", "chat.example.org:8000"),
        ("HTTP://Chat.Example.ORG", "chat.example.org"),
        ("http://chat.example.org", "CHAT.example.org"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
        (" http://chat.example.org ", "chat.example.org"),
    ],
)
def test_check_origin_accepts_own_origin(origin: str | None, host: str) -> None:
    """Ensure no Origin, or the page's own host with either scheme and with or
    without an explicit default port, is let through."""
    assert handshake.check_origin(origin, host, ()) is None


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://evil.example", "chat.example.org"),
        ("http://chat.example.org.evil.example", "chat.example.org"),
        ("http://evil.example/chat.example.org", "chat.example.org"),
        ("http://chat.example.org:8001", "chat.example.org:8000"),
        ("http://chat.example.org", "chat.example.org:8000"),
        ("http://chat.example.org:8000", "chat.example.org"),
        ("https://chat.example.org", "chat.example.org:80"),
        ("http://localhost:8000", "127.0.0.1:8000"),
        ("null", "chat.example.org"),
        ("", "chat.example.org"),
        ("file://", "chat.example.org"),
        ("ftp://chat.example.org", "chat.example.org"),
        ("http://chat.example.org:notaport", "chat.example.org"),
        ("http://chat.example.org:99999", "chat.example.org"),
        ("http://", ""),
        ("http://chat.example.org", ""),
    ],
)
def test_check_origin_refuses_foreign_origin(origin: str, host: str) -> None:
    """Ensure any other origin (or a malformed one) is a 403 that says why."""
    refusal = handshake.check_origin(origin, host, ())
    assert isinstance(refusal, Refusal)
    assert refusal.status == "403 Forbidden"
    assert repr(origin) in refusal.reason
    assert "--allow-origin" in refusal.reason


ALLOWED = ("https://app.example.com", "http://localhost:3000/")


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com",
        "https://app.example.com:443",
        "https://APP.example.com",
        "http://localhost:3000",
    ],
)
def test_check_origin_accepts_allow_list(origin: str) -> None:
    """Ensure an --allow-origin entry is accepted, default port or not."""
    assert handshake.check_origin(origin, "chat.example.org", ALLOWED) is None


@pytest.mark.parametrize(
    "origin",
    [
        "http://app.example.com",  # the scheme is part of the origin
        "https://app.example.com:8443",
        "https://other.example.com",
        "http://localhost:3001",
        "http://localhost",
    ],
)
def test_check_origin_allow_list_is_exact(origin: str) -> None:
    """Ensure the allow list does not let in neighbours of its entries."""
    refusal = handshake.check_origin(origin, "chat.example.org", ALLOWED)
    assert refusal is not None and refusal.status == "403 Forbidden"


def test_check_origin_own_origin_with_allow_list() -> None:
    """Ensure an allow list adds to the page's own origin, never replaces it."""
    assert (
        handshake.check_origin("http://chat.example.org", "chat.example.org", ALLOWED)
        is None
    )


def test_accept_key_matches_the_rfc_example() -> None:
    """Ensure the accept value is the one RFC 6455 1.3 computes for its key."""
    assert handshake.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == (
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    )
