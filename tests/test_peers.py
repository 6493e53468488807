"""Open connections per address and in all (chatcore/peers.py)."""

from __future__ import annotations

from chatcore.peers import FULL_ADDRESS, FULL_SERVER, OpenConnections


def test_each_address_gets_its_share_and_takes_it_back() -> None:
    """Ensure an address past its cap is refused until one of its
    connections ends, while other addresses are not affected."""
    opened = OpenConnections(per_address=2, total=0)
    alice = ("10.0.0.1", 1000)
    assert opened.admit(alice) is None
    assert opened.admit(("10.0.0.1", 1001)) is None
    assert opened.admit(("10.0.0.1", 1002)) == FULL_ADDRESS
    assert opened.admit(("10.0.0.2", 1000)) is None
    opened.release(alice)
    assert opened[alice] == 1
    assert opened.admit(alice) is None
    assert len(opened) == 3


def test_the_total_is_capped_whatever_the_addresses() -> None:
    """Ensure the server-wide cap refuses the next connection from any
    address, and that releasing every slot leaves nothing behind."""
    opened = OpenConnections(per_address=0, total=3)
    peers = [(f"10.0.0.{n}", 5000) for n in range(3)]
    for peer in peers:
        assert opened.admit(peer) is None
    assert opened.admit(("10.0.0.9", 5000)) == FULL_SERVER
    for peer in peers:
        opened.release(peer)
    assert len(opened) == 0 and opened[peers[0]] == 0
    assert opened.admit(("10.0.0.9", 5000)) is None
