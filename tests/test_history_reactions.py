"""Contract tests of reactions in the history stores, run against every backend."""

from __future__ import annotations

import pytest

from chatcore.history import HistoryStore
from chatcore.history.memory import MemoryHistory
from chatcore.history.sqlite import SqliteHistory
from chatcore.reactions import (
    EMOJI_PER_MESSAGE_MAX,
    USERS_LISTED,
    USERS_PER_EMOJI_MAX,
    Reaction,
    ReactionRefused,
)
from tests import test_history as contract
from tests.test_history import MakeStore, add, draft, fill, ids

# The contract's fixtures: every backend, started and closed as there.
services, make_store, store = contract.services, contract.make_store, contract.store

ANN, BEN, CARA = ("u-ann", "Ann"), ("u-ben", "Ben"), ("u-cara", "Cara")


def test_a_reaction_toggles_and_takes_the_next_id(store: HistoryStore) -> None:
    """Ensure a first toggle adds the user's reaction, a second removes it,
    and each takes the room's next id as the message's rev."""
    [one, two] = add(store, draft(text="one"), draft(text="two"))
    liked, added = store.react("lobby", 1, "👍", ANN, 10)
    assert added
    assert (liked.id, liked.text, liked.rev) == (1, "one", 3)
    assert liked.reactions == (Reaction("👍", 1, (ANN,)),)
    assert store.last_id("lobby") == 3
    assert store.get("lobby", 1) == liked
    unliked, added = store.react("lobby", 1, "👍", ANN, 11)
    assert not added
    assert (unliked.rev, unliked.reactions) == (4, ())
    assert "reactions" not in unliked.to_wire()
    assert store.get("lobby", 1) == unliked
    [three] = add(store, draft(text="three"))
    assert three.id == 5
    assert store.before("lobby", None, 10)[0] == [unliked, two, three]


def test_reactions_in_every_read(store: HistoryStore) -> None:
    """Ensure get, before, after, since and find show a message's current
    reactions, and the wire form lists them."""
    add(store, draft(text="one", client_id="c-1"), draft(text="two"))
    store.react("lobby", 1, "🎉", ANN, 10)
    now, _ = store.react("lobby", 1, "🎉", BEN, 11)
    assert now.reactions == (Reaction("🎉", 2, (ANN, BEN)),)
    assert store.before("lobby", None, 10)[0][0] == now
    assert store.after("lobby", 0, 10)[0] == now
    assert store.since("lobby", 0, 10)[-1] == now
    assert store.find("u0123456789abcde", "c-1") == now
    assert now.to_wire()["reactions"] == [
        {
            "emoji": "🎉",
            "count": 2,
            "users": [{"id": "u-ann", "name": "Ann"}, {"id": "u-ben", "name": "Ben"}],
        }
    ]
    assert now.reacted_event("🎉", BEN, True) == {
        "room": "lobby",
        "id": 1,
        "emoji": "🎉",
        "by": {"id": "u-ben", "name": "Ben"},
        "added": True,
        "rev": 4,
        "reactions": now.to_wire()["reactions"],
    }


def test_emoji_in_first_reacted_order(store: HistoryStore) -> None:
    """Ensure emoji are ordered by their oldest remaining reaction and users
    by when they reacted."""
    add(store, draft())
    store.react("lobby", 1, "👍", ANN, 1)
    store.react("lobby", 1, "❤️", BEN, 2)
    store.react("lobby", 1, "👍", CARA, 3)
    now, _ = store.react("lobby", 1, "😂", ANN, 4)
    assert [(r.emoji, r.count, r.users) for r in now.reactions] == [
        ("👍", 2, (ANN, CARA)),
        ("❤️", 1, (BEN,)),
        ("😂", 1, (ANN,)),
    ]
    # Ann's 👍 goes: Cara's, after Ben's ❤️, is now the oldest 👍.
    now, _ = store.react("lobby", 1, "👍", ANN, 5)
    assert [r.emoji for r in now.reactions] == ["❤️", "👍", "😂"]
    assert store.get("lobby", 1) == now


def test_since_replays_a_reacted_message_once(store: HistoryStore) -> None:
    """Ensure a message whose reactions changed after an id is replayed
    once, in its current state, at its newest id."""
    fill(store, "lobby", 3)
    store.react("lobby", 1, "👍", ANN, 1)  # rev 4
    [five] = add(store, draft(text="five"))  # id 5
    now, _ = store.react("lobby", 1, "😮", BEN, 2)  # rev 6
    assert [(m.id, m.newest_id) for m in store.since("lobby", 3, 10)] == [
        (5, 5),
        (1, 6),
    ]
    assert store.since("lobby", 5, 10) == [now]
    assert store.since("lobby", 6, 10) == []
    assert ids(store.since("lobby", 0, 10)) == [2, 3, 5, 1]


def test_an_edit_keeps_reactions_and_a_delete_drops_them(
    store: HistoryStore,
) -> None:
    """Ensure an edit keeps a message's reactions; a delete removes them for
    good, and a deleted message takes no more."""
    add(store, draft(text="one"))
    reacted, _ = store.react("lobby", 1, "👍", ANN, 1)
    edited = store.change(reacted, "one!", 2)
    assert edited.reactions == reacted.reactions
    assert store.get("lobby", 1) == edited
    again, _ = store.react("lobby", 1, "👍", BEN, 3)
    assert again.text == "one!"
    assert again.reactions == (Reaction("👍", 2, (ANN, BEN)),)
    gone = store.change(again, None, 4)
    assert gone.reactions == ()
    assert store.get("lobby", 1) == gone
    assert store.since("lobby", 0, 10) == [gone]
    with pytest.raises(ReactionRefused) as refused:
        store.react("lobby", 1, "👍", ANN, 5)
    assert refused.value.reason == "deleted"
    assert store.last_id("lobby") == 5


def test_no_reaction_on_a_message_not_kept(make_store: MakeStore) -> None:
    """Ensure a reaction to an id never sent, a revision id or a trimmed
    message is refused as gone and takes no id; trimming takes reactions
    along."""
    store = make_store(3)
    fill(store, "lobby", 2)
    for missing in (3, 99):
        with pytest.raises(ReactionRefused) as refused:
            store.react("lobby", missing, "👍", ANN, 1)
        assert refused.value.reason == "gone"
    store.react("lobby", 1, "👍", ANN, 1)  # rev 3
    with pytest.raises(ReactionRefused):
        store.react("lobby", 3, "👍", ANN, 1)  # a revision id
    fill(store, "lobby", 1)  # id 4: 1 is trimmed
    with pytest.raises(ReactionRefused) as refused:
        store.react("lobby", 1, "👍", ANN, 1)
    assert refused.value.reason == "gone"
    assert store.last_id("lobby") == 4
    assert [m.reactions for m in store.since("lobby", 0, 10)] == [(), ()]


def test_bounds_per_message(make_store: MakeStore) -> None:
    """Ensure a message takes at most EMOJI_PER_MESSAGE_MAX distinct emoji
    and USERS_PER_EMOJI_MAX users per emoji, lists USERS_LISTED of them with
    the exact count, and a removal is always allowed."""
    store = make_store(5000)  # every reaction takes an id
    add(store, draft())
    palette = [chr(0x1F600 + n) for n in range(EMOJI_PER_MESSAGE_MAX + 1)]
    for emoji in palette[:-1]:
        store.react("lobby", 1, emoji, ANN, 1)
    with pytest.raises(ReactionRefused) as refused:
        store.react("lobby", 1, palette[-1], ANN, 1)
    assert refused.value.reason == "emoji_full"
    store.react("lobby", 1, palette[0], BEN, 1)  # an emoji already there: fine
    for n in range(USERS_PER_EMOJI_MAX - 2):
        now, _ = store.react("lobby", 1, palette[0], (f"u{n}", f"user {n}"), 1)
    assert now.reactions[0].count == USERS_PER_EMOJI_MAX
    assert len(now.reactions[0].users) == USERS_LISTED
    assert now.reactions[0].users[:2] == (ANN, BEN)
    with pytest.raises(ReactionRefused) as refused:
        store.react("lobby", 1, palette[0], CARA, 1)
    assert refused.value.reason == "users_full"
    fewer, added = store.react("lobby", 1, palette[0], ANN, 1)
    assert not added
    # Its oldest reaction is now Ben's, younger than Ann's other emoji.
    assert fewer.reactions[-1].emoji == palette[0]
    assert fewer.reactions[-1].count == USERS_PER_EMOJI_MAX - 1
    assert fewer.reactions[-1].users[0] == BEN
    assert store.get("lobby", 1) == fewer
    # Someone not named among the first 20 is found and taken out too.
    unnamed, added = store.react("lobby", 1, palette[0], ("u500", "user 500"), 1)
    assert not added
    assert unnamed.reactions[-1].count == USERS_PER_EMOJI_MAX - 2


def test_a_message_reacted_before_its_flush(store: HistoryStore) -> None:
    """Ensure a reaction to a message still waiting for a flush is stored
    with it."""
    store.append(draft(text="fresh"))
    reacted, _ = store.react("lobby", 1, "👍", ANN, 5)
    assert store.get("lobby", 1) == reacted
    store.flush()
    assert store.get("lobby", 1) == reacted
    assert store.since("lobby", 0, 10) == [reacted]
    assert store.last_id("lobby") == 2
    [next_one] = add(store, draft(text="next"))
    assert next_one.id == 3


def test_trimmed_and_deleted_reactions_leave_the_store(make_store: MakeStore) -> None:
    """Ensure the rows (SQLite) and hash fields (Redis) of a trimmed or a
    deleted message's reactions are gone, not just hidden."""
    store = make_store(3)
    add(store, draft(), draft())
    store.react("lobby", 1, "👍", ANN, 1)  # rev 3
    two, _ = store.react("lobby", 2, "👍", BEN, 2)  # rev 4: 1 is trimmed
    store.change(two, None, 3)  # rev 5: 2 is deleted
    assert kept_reactions(store) == 0


def test_a_message_reacted_and_deleted_before_its_flush(store: HistoryStore) -> None:
    """Ensure a message deleted while still waiting for a flush takes its
    reactions along."""
    store.append(draft(text="fresh"))
    reacted, _ = store.react("lobby", 1, "👍", ANN, 5)
    gone = store.change(reacted, None, 6)
    store.flush()
    assert store.get("lobby", 1) == gone
    assert gone.reactions == ()
    assert kept_reactions(store) == 0


def kept_reactions(store: HistoryStore) -> int:
    """How many reactions the store holds anywhere, however it keeps them."""
    if isinstance(store, SqliteHistory):
        return store.connection.execute("SELECT COUNT(*) FROM reactions").fetchone()[0]
    if isinstance(store, MemoryHistory):
        return sum(len(kept) for kept in store._reactions.values())  # noqa: SLF001
    keys = store._room_keys("lobby")[4:]  # type: ignore[attr-defined]  # noqa: SLF001
    return sum(store.client.hlen(key) for key in keys)  # type: ignore[attr-defined]
