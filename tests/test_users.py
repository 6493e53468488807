"""Names and their reservations (chatcore/users.py), without a network."""

from __future__ import annotations

from chatcore.history.memory import MemoryNames
from chatcore.users import Names, User

TTL = 100.0


class CountingNames(MemoryNames):
    """Memory reservations, counting the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        self.writes += 1
        super().hold(name_key, user_id, now)


def take(names: Names, user: User, name: str) -> None:
    """What a connect does: ask whether the name is free, then take it."""
    assert names.refusal(user.id, name) is None
    names.rename(user, name)


def test_a_reconnect_leaves_a_fresh_reservation_unwritten() -> None:
    """Ensure taking a name the user holds, reserved with more than half its
    time left, writes nothing; an older one, or a new name, is written."""
    now = [1000.0]
    store = CountingNames()
    names = Names(store, lambda: now[0], TTL)
    first = User("u-ann", "", "")
    take(names, first, "ann")
    assert store.writes == 1  # a new reservation
    names.forget(first)  # the tab closed: reserved from now
    writes = store.writes
    take(names, User("u-ann", "", ""), "ann")  # a reconnect, at once
    assert store.writes == writes
    now[0] += TTL / 2 + 1
    take(names, User("u-ann", "", ""), "ann")  # the reservation is getting old
    assert store.writes == writes + 1
    assert store.holder("ann") == ("u-ann", now[0])
    take(names, User("u-bob", "", ""), "bob")
    assert store.writes == writes + 2


def test_a_fresh_reservation_of_someone_else_is_still_refused() -> None:
    """Ensure the shortcut applies to the user's own reservation only."""
    now = [1000.0]
    store = CountingNames()
    names = Names(store, lambda: now[0], TTL)
    store.hold("ann", "u-ann", now[0])
    assert names.refusal("u-bob", "ann") is not None
    names.rename(User("u-bob", "", ""), "bob")
    assert store.holder("bob") == ("u-bob", now[0])
