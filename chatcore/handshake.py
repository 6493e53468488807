"""Checks on a WebSocket opening handshake (RFC 6455 section 4.2.1). Pure.

``check_handshake`` looks at the request headers (a WSGI environ) and answers
with the HTTP refusal to send, or None when the upgrade may go ahead;
``accept_key`` computes the answer to a valid request's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SUPPORTED_VERSION = "13"
# RFC 6455 1.3: appended to the client's key before hashing.
KEY_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: str
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


def _origin_key(origin: str) -> str | None:
    """``scheme://host:port`` of an Origin header, lower-case; None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _host_key(host: str, scheme: str) -> str | None:
    return _origin_key(f"{scheme}://{host}") if host else None


def check_origin(
    origin: str | None, host: str, allowed: Iterable[str]
) -> Refusal | None:
    """Refuse a browser page from another site (cross-site WebSocket hijacking).

    A request without Origin comes from a non-browser client, which a
    malicious page cannot drive, so it is let through. Otherwise the origin
    must be this server's own (its Host, with either scheme, since a TLS proxy
    may sit in front) or one listed with ``--allow-origin``.
    """
    if origin is None:
        return None
    key = _origin_key(origin)
    own = {_host_key(host, scheme) for scheme in ("http", "https")}
    listed = {_origin_key(entry) for entry in allowed}
    if key is not None and (key in own or key in listed):
        return None
    return Refusal(
        "403 Forbidden",
        f"WebSocket connections from the page {origin!r} are not allowed: only "
        f"pages served from {host!r} may connect. An operator can allow another "
        "origin with --allow-origin.",
    )


def check_handshake(environ: Mapping[str, Any]) -> Refusal | None:
    """Refuse an upgrade request that breaks RFC 6455 4.2.1, saying why."""
    if environ.get("REQUEST_METHOD") != "GET":
        return Refusal("400 Bad Request", "a WebSocket upgrade must be a GET request")
    if environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        return Refusal("400 Bad Request", "a WebSocket upgrade needs HTTP/1.1")
    if "upgrade" not in _tokens(environ.get("HTTP_CONNECTION", "")):
        return Refusal("400 Bad Request", "the Connection header must include Upgrade")
    if not environ.get("HTTP_HOST"):
        return Refusal("400 Bad Request", "the Host header is missing")
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip()
    if version != SUPPORTED_VERSION:
        return Refusal(
            "426 Upgrade Required",
            f"unsupported WebSocket version {version or '(none)'!r}; "
            f"this server speaks version {SUPPORTED_VERSION}",
            (("Sec-WebSocket-Version", SUPPORTED_VERSION),),
        )
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid_key = False
    if not valid_key:
        return Refusal(
            "400 Bad Request",
            "Sec-WebSocket-Key must be 16 random bytes in base64",
        )
    return None


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key.strip() + KEY_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def client_address(environ: Mapping[str, Any], trusted_proxies: Iterable[str]) -> str:
    """The client's address: the peer, or, when the peer is a trusted reverse
    proxy, the address that proxy appended to X-Forwarded-For."""
    peer = environ.get("REMOTE_ADDR", "?")
    if peer in trusted_proxies:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return peer
