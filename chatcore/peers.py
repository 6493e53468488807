"""Counts open connections, per client address and in all, under caps. Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

FULL_ADDRESS = "address"  # the client's address has its share
FULL_SERVER = "server"  # the server holds all it may


class OpenConnections:
    """Open connections: at most ``per_address`` from one peer address (the
    socket's, not a proxy's forwarded one) and ``total`` in all; 0 means no
    cap.

    A connection takes a slot when accepted and gives it back once, when it
    ends: for a WebSocket that is its close, long after its handler returned.
    """

    def __init__(self, per_address: int, total: int):
        self.per_address = per_address
        self.total = total
        self._open: Counter[str] = Counter()
        self._count = 0

    def admit(self, peer: Any) -> str | None:
        """Take a slot for ``peer`` (an address tuple); None when taken,
        else which cap is full (``FULL_ADDRESS`` or ``FULL_SERVER``)."""
        host = host_of(peer)
        if self.total and self._count >= self.total:
            return FULL_SERVER
        if self.per_address and self._open[host] >= self.per_address:
            return FULL_ADDRESS
        self._open[host] += 1
        self._count += 1
        return None

    def release(self, peer: Any) -> None:
        host = host_of(peer)
        count = self._open[host] - 1
        if count > 0:
            self._open[host] = count
        else:
            del self._open[host]
        self._count -= 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, peer: Any) -> int:
        return self._open.get(host_of(peer), 0)


def host_of(peer: Any) -> str:
    """The host of an address tuple (a Unix socket's address as it is)."""
    return peer[0] if isinstance(peer, tuple) else str(peer)
