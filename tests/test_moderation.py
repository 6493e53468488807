"""Roles and moderation in the hub, without a network: the rules, the
frames, their effects on the target, and the checks on the way in."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from chatcore.config import Settings
from chatcore.fanout import Join as FanoutJoin, Moderated, decode, encode
from chatcore.frames import CloseCode
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.hub import Hub
from chatcore.moderating import CACHE_SECONDS, Expiring
from chatcore.moderation import MODERATOR, OWNER, Restriction
from chatcore.moderation.memory import MemoryModeration
from chatcore.moderation.rules import Standing, refusal
from tests.test_hub import START, Conn, HubHarness, Inbox

ADMIN = Standing(admin=True)
OWNS = Standing(role=OWNER)
MODERATES = Standing(role=MODERATOR)
NOBODY = Standing()


# -- the rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "actor", "room", "target", "allowed"),
    [
        ("mute", ADMIN, None, NOBODY, True),
        ("ban", ADMIN, None, ADMIN, True),
        ("mute", MODERATES, "lobby", NOBODY, True),
        ("kick", MODERATES, "lobby", MODERATES, True),
        ("slow", MODERATES, "lobby", None, True),
        ("delete", MODERATES, "lobby", None, True),
        ("mute", NOBODY, "lobby", NOBODY, False),
        ("slow", NOBODY, "lobby", None, False),
        ("mute", MODERATES, None, NOBODY, False),  # server-wide: admins only
        ("kick", OWNS, None, NOBODY, False),
        ("ban", OWNS, "lobby", NOBODY, False),
        ("unban", MODERATES, None, NOBODY, False),
        ("mute", MODERATES, "lobby", ADMIN, False),  # nobody acts on an admin
        ("kick", OWNS, "lobby", ADMIN, False),
        ("mute", MODERATES, "lobby", OWNS, False),  # nor a moderator on the owner
        ("role", OWNS, "lobby", NOBODY, True),
        ("role", MODERATES, "lobby", NOBODY, False),
        ("role", OWNS, "lobby", OWNS, False),
        ("modlog", MODERATES, "lobby", None, True),
        ("modlog", NOBODY, "lobby", None, False),
    ],
)
def test_who_may_do_what(
    action: str,
    actor: Standing,
    room: str | None,
    target: Standing | None,
    allowed: bool,
) -> None:
    """Ensure each role may do what the rules say, and nothing more."""
    assert (refusal(action, actor, room, target) is None) is allowed


def test_nobody_acts_on_themselves() -> None:
    """Ensure even an admin cannot mute, kick or ban themselves."""
    for action in ("mute", "kick", "ban"):
        assert refusal(action, ADMIN, None, ADMIN, self_target=True)


# -- the hub --------------------------------------------------------------------


class Mod(HubHarness):
    """A hub whose moderation store the test can see and seed."""

    def __init__(
        self, settings: Settings | None = None, store: MemoryModeration | None = None
    ):
        self.now = START
        self.settings = settings or Settings()
        self.history = MemoryHistory(self.settings.history_max)
        self.names = MemoryNames()
        self.store = store or MemoryModeration()
        self.hub = Hub(
            self.settings,
            self.history,
            self.names,
            lambda: self.now,
            random.Random(7),
            moderation=self.store,
        )
        self._count = 0

    def admin(self, user_id: str) -> None:
        """Make ``user_id`` an admin, as the command does: in the store, seen
        once the cache time has passed."""
        self.store.set_admin(user_id, True)
        self.step(CACHE_SECONDS)

    def join(self, name: str, room: str = "lobby") -> tuple[Conn, str, Inbox]:
        conn, inbox = self.connect(name, room=room)
        return conn, self.welcome(conn, inbox)["user"]["id"], inbox


@pytest.fixture
def m() -> Mod:
    return Mod()


def test_a_member_gets_forbidden(m: Mod) -> None:
    """Ensure a member's moderation frames are refused with ``forbidden``."""
    ann, _, _ = m.join("ann")
    bob, bob_id, _ = m.join("bob")
    for frame in (
        {"type": "mute", "user": bob_id, "room": "lobby"},
        {"type": "kick", "user": bob_id},
        {"type": "ban", "user": bob_id},
        {"type": "slow", "room": "lobby", "seconds": 5},
        {"type": "role", "room": "lobby", "user": bob_id, "role": "moderator"},
        {"type": "modlog"},
    ):
        error = m.send(ann, **frame).error(ann)
        assert error["code"] == "forbidden" and error["ref"] == frame["type"]
    assert m.store.restrictions(bob_id, m.now) == []


def test_roles_in_the_snapshot(m: Mod) -> None:
    """Ensure a snapshot carries the joiner's role (none for a member) and a
    ``role`` on each member who has one, for badges."""
    ann, ann_id, _ = m.join("ann")
    m.hub.set_role("lobby", ann_id, OWNER)
    bob, inbox = m.connect("bob")
    snapshot = inbox.one(bob, "presence")
    assert "role" not in snapshot
    assert {u["name"]: u.get("role") for u in snapshot["users"]} == {
        "ann": "owner",
        "bob": None,
    }
    m.hub.set_role("dev", ann_id, MODERATOR)
    inbox = m.send(ann, type="join", room="dev")
    assert inbox.one(ann, "presence")["role"] == "moderator"


def test_admin_welcome(m: Mod) -> None:
    """Ensure ``welcome`` has ``admin: true`` for an admin's new connection."""
    ann, inbox = m.connect("ann")
    key = m.welcome(ann, inbox)["key"]
    m.store.set_admin(m.welcome(ann, inbox)["user"]["id"], True)
    m.step(CACHE_SECONDS)
    tab, inbox = m.connect("ann", key=key)
    assert m.welcome(tab, inbox)["admin"] is True


def moderator(m: Mod, room: str = "lobby") -> tuple[Conn, str]:
    """A connection whose user moderates ``room``."""
    conn, user_id, _ = m.join("mo", room)
    m.hub.set_role(room, user_id, MODERATOR)
    return conn, user_id


def test_mute_in_a_room_blocks_messages_and_typing_there_only(m: Mod) -> None:
    """Ensure a muted user gets ``forbidden`` with the time left for messages
    and typing in that room, is told why, and may speak elsewhere."""
    mo, _ = moderator(m)
    bob, bob_id, _ = m.join("bob")
    m.send(bob, type="join", room="dev")
    inbox = m.send(mo, type="mute", user=bob_id, room="lobby", seconds=600)
    told = inbox.one(bob, "moderated")
    assert told["action"] == "mute" and told["room"] == "lobby"
    assert told["by"]["name"] == "mo" and told["seconds"] == 600
    assert inbox.one(mo, "moderation")["entry"]["action"] == "mute"
    error = m.say(bob, "hi", room="lobby").error(bob)
    assert error["code"] == "forbidden" and "10 minutes" in error["message"]
    assert error["retry_after"] == 600
    assert m.send(bob, type="typing", room="lobby", active=True).error(bob)
    assert m.say(bob, "hi", room="dev").of(bob, "message")
    m.step(601)
    assert m.say(bob, "free", room="lobby").of(bob, "message")


def test_server_mute_until_unmuted(m: Mod) -> None:
    """Ensure an admin's server-wide mute holds everywhere until unmute."""
    admin, admin_id, _ = m.join("boss")
    m.admin(admin_id)
    bob, bob_id, _ = m.join("bob")
    m.send(admin, type="mute", user=bob_id)
    m.step(10_000)
    assert "until unmuted" in m.say(bob, "hi").error(bob)["message"]
    inbox = m.send(admin, type="unmute", user=bob_id)
    assert inbox.one(bob, "moderated")["action"] == "unmute"
    assert m.say(bob, "hi").of(bob, "message")


def test_kick_from_a_room_leaves_it_and_blocks_rejoining(m: Mod) -> None:
    """Ensure a room kick takes every tab of the user out of the room, tells
    them, and refuses a rejoin until it ends."""
    mo, _ = moderator(m)
    bob, bob_id, inbox = m.join("bob")
    key = m.welcome(bob, inbox)["key"]
    tab, _ = m.connect("bob", key=key, room="lobby")
    inbox = m.send(mo, type="kick", user=bob_id, room="lobby", seconds=60)
    for conn in (bob, tab):
        assert inbox.types(conn) == ["moderated", "left"]
    assert inbox.one(mo, "presence")["event"] == "leave"
    error = m.send(bob, type="join", room="lobby").error(bob)
    assert error["code"] == "forbidden" and "1 minute" in error["message"]
    m.step(61)
    assert m.send(bob, type="join", room="lobby").one(bob, "presence")


def test_server_kick_closes_and_refuses_connects(m: Mod) -> None:
    """Ensure a server kick closes the user's connections with 4000 and
    refuses new ones (error + 4000) until it ends."""
    admin, admin_id, _ = m.join("boss")
    m.admin(admin_id)
    bob, bob_id, inbox = m.join("bob")
    key = m.welcome(bob, inbox)["key"]
    deliveries = m.hub.receive(
        admin, json.dumps({"type": "kick", "user": bob_id, "seconds": 30})
    )
    closing = [d for d in deliveries if bob in d.targets]
    assert [(d.close_code, d.close_reason) for d in closing] == [
        (CloseCode.KICKED, "kicked")
    ]
    assert json.loads(closing[0].text)["action"] == "kick"
    m.disconnect(bob)
    again = Conn("again")
    refused = m.hub.connect(again, name="bob", client_key=key)
    assert [d.close_code for d in refused] == [CloseCode.KICKED]
    assert json.loads(refused[0].text)["code"] == "forbidden"
    m.step(31)
    assert Inbox(m.hub.connect(Conn("later"), client_key=key))


def test_ban_closes_refuses_and_remembers_the_address(m: Mod) -> None:
    """Ensure a ban closes with 4003, refuses the user's connects, bans the
    address they came from when asked, and unban lifts all of it."""
    admin, admin_id, _ = m.join("boss")
    m.admin(admin_id)
    bob = Conn("bob")
    inbox = Inbox(m.hub.connect(bob, name="bob", address="10.1.2.3"))
    bob_id, key = m.welcome(bob, inbox)["user"]["id"], m.welcome(bob, inbox)["key"]
    deliveries = m.hub.receive(
        admin,
        json.dumps({"type": "ban", "user": bob_id, "address": True, "reason": "spam"}),
    )
    assert [d.close_code for d in deliveries if bob in d.targets] == [CloseCode.BANNED]
    assert m.hub.address_banned("10.1.2.3")
    assert not m.hub.address_banned("10.1.2.4")
    refused = m.hub.connect(Conn("x"), client_key=key)
    assert "spam" in json.loads(refused[0].text)["message"]
    m.send(admin, type="unban", user=bob_id)
    assert not m.hub.address_banned("10.1.2.3")
    assert m.hub.connect(Conn("y"), client_key=key)[0].close_code is None


def test_moderators_cannot_touch_admins_or_owners(m: Mod) -> None:
    """Ensure a moderator's mute of the owner or an admin is refused."""
    mo, _ = moderator(m)
    owner, owner_id, _ = m.join("own")
    m.hub.set_role("lobby", owner_id, OWNER)
    assert m.send(mo, type="mute", user=owner_id, room="lobby").error(mo)
    boss, boss_id, _ = m.join("boss")
    m.admin(boss_id)
    error = m.send(mo, type="kick", user=boss_id, room="lobby").error(mo)
    assert error["code"] == "forbidden"


def test_owner_appoints_a_moderator_and_everyone_sees_it(m: Mod) -> None:
    """Ensure an owner's ``role`` frame reaches the room and the new
    moderator may then mute."""
    owner, owner_id, _ = m.join("own")
    m.hub.set_role("lobby", owner_id, OWNER)
    bob, bob_id, _ = m.join("bob")
    cat, cat_id, _ = m.join("cat")
    inbox = m.send(owner, type="role", room="lobby", user=bob_id, role="moderator")
    assert inbox.one(cat, "role") == {
        "type": "role",
        "room": "lobby",
        "user": {"id": bob_id, "name": "bob"},
        "role": "moderator",
    }
    assert m.hub.moderates(bob_id, "lobby") and not m.hub.moderates(bob_id, "dev")
    assert m.send(bob, type="mute", user=cat_id, room="lobby").of(cat, "moderated")
    m.send(owner, type="role", room="lobby", user=bob_id, role="member")
    assert m.store.roles("lobby") == {owner_id: OWNER}
    assert m.hub.moderates(bob_id, "lobby") is False


def test_slow_mode_at_runtime_is_announced_and_enforced(m: Mod) -> None:
    """Ensure ``slow`` announces the new pacing to the room, applies it, is
    kept in the store, and 0 turns it off."""
    mo, _ = moderator(m)
    bob, _, _ = m.join("bob")
    inbox = m.send(mo, type="slow", room="lobby", seconds=30)
    assert inbox.one(bob, "slow_mode") == {
        "type": "slow_mode",
        "room": "lobby",
        "seconds": 30,
    }
    assert m.say(bob, "one").of(bob, "message")
    assert m.say(bob, "two").error(bob)["code"] == "rate_limited"
    assert m.store.slow_modes() == {"lobby": 30}
    m.send(mo, type="slow", room="lobby", seconds=0)
    assert m.say(bob, "three").of(bob, "message")


def test_runtime_slow_mode_outlives_a_restart_over_the_setting() -> None:
    """Ensure a hub starts with the store's slow modes over --slow-mode."""
    store = MemoryModeration()
    store.set_slow_mode("lobby", 0)
    store.set_slow_mode("dev", 12)
    settings = Settings(slow_mode=(("lobby", 10.0),))
    hub = Hub(
        settings, MemoryHistory(10), MemoryNames(), lambda: START, moderation=store
    )
    conn = Conn("a")
    inbox = Inbox(hub.connect(conn, room="dev"))
    assert inbox.one(conn, "presence")["slow_mode"] == 12
    inbox = Inbox(hub.receive(conn, json.dumps({"type": "join", "room": "lobby"})))
    assert "slow_mode" not in inbox.one(conn, "presence")


def test_modlog_lists_actions_for_admins_and_their_rooms_for_moderators(
    m: Mod,
) -> None:
    """Ensure every action is logged; an admin reads all of it, a moderator
    only their rooms'."""
    admin, admin_id, _ = m.join("boss")
    m.admin(admin_id)
    mo, mo_id = moderator(m, "dev")
    bob, bob_id, _ = m.join("bob", "dev")
    m.send(mo, type="mute", user=bob_id, room="dev", seconds=60)
    m.send(admin, type="slow", room="lobby", seconds=5)
    m.send(admin, type="ban", user=bob_id)
    log = m.send(admin, type="modlog").one(admin, "modlog")
    assert [e["action"] for e in log["entries"]] == ["ban", "slow", "mute"]
    assert log["more"] is False
    mute = log["entries"][2]
    assert mute["actor"] == {"id": mo_id, "name": "mo"}
    assert mute["target"] == {"id": bob_id, "name": "bob"}
    assert mute["room"] == "dev" and mute["detail"]["seconds"] == 60
    mine = m.send(mo, type="modlog").one(mo, "modlog")
    assert [e["action"] for e in mine["entries"]] == ["mute"]
    page = m.send(admin, type="modlog", limit=1).one(admin, "modlog")
    assert len(page["entries"]) == 1 and page["more"] is True


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "mute", "user": ""},
        {"type": "mute", "user": "x" * 65},
        {"type": "mute", "user": "u", "seconds": 0},
        {"type": "kick", "user": "u", "seconds": -1},
        {"type": "slow", "room": "lobby", "seconds": 3601},
        {"type": "slow", "room": "lobby"},
        {"type": "role", "room": "lobby", "user": "u", "role": "owner"},
        {"type": "ban", "user": "u", "reason": "r" * 201},
        {"type": "modlog", "limit": 0},
        {"type": "mute", "user": "u", "room": "no spaces"},
    ],
)
def test_bad_moderation_frames_get_bad_request(m: Mod, frame: dict[str, Any]) -> None:
    """Ensure malformed moderation frames are refused before any rule runs."""
    admin, admin_id, _ = m.join("boss")
    m.admin(admin_id)
    assert m.send(admin, **frame).error(admin)["code"] == "bad_request"


def test_another_process_action_applies_here(m: Mod) -> None:
    """Ensure a ``Moderated`` event from another process (as the channel
    carries it) closes, tells and updates this process's connections."""
    bob, bob_id, _ = m.join("bob")
    cat, _, _ = m.join("cat")
    by = {"id": "u-x", "name": "X"}
    ban = decode(encode(Moderated("other", "ban", bob_id, "", {"by": by})))
    deliveries = m.hub.deliver_published(ban)
    assert [d.close_code for d in deliveries] == [CloseCode.BANNED]
    slow = Moderated("other", "slow", "", "lobby", {"seconds": 9, "by": by})
    assert Inbox(m.hub.deliver_published(slow)).one(cat, "slow_mode")["seconds"] == 9
    own = Moderated(m.hub._moderating._cluster.origin, "slow", "", "lobby", {})
    assert m.hub.deliver_published(own) == []


def test_the_cache_expires_and_stays_bounded() -> None:
    """Ensure a cached value is read again after its time, and a full cache
    drops what expired, then everything, instead of growing."""
    now = [0.0]
    cache = Expiring(lambda: now[0], ttl=2.0, size=3)
    reads = []

    def load(value: int) -> Callable[[], int]:
        return lambda: reads.append(value) or value

    assert cache.get("a", load(1)) == 1
    assert cache.get("a", load(2)) == 1  # cached
    now[0] = 2.0
    assert cache.get("a", load(3)) == 3  # expired: read again
    for key in "bcde":
        cache.get(key, load(0))
    assert len(cache._values) <= 3
    assert reads == [1, 3, 0, 0, 0, 0]


def test_joins_carry_the_joiner_role_here_and_from_other_processes(m: Mod) -> None:
    """Ensure a ``join`` event shows a joiner's role, for badges, whether
    they joined on this process or another."""
    bob, _, _ = m.join("bob")
    cat = Conn("cat")
    inbox = Inbox(m.hub.connect(cat, name="cat", client_key="cat-key-0123456789"))
    cat_id = m.welcome(cat, inbox)["user"]["id"]
    m.hub.set_role("dev", cat_id, MODERATOR)
    m.send(bob, type="join", room="dev")
    inbox = m.send(cat, type="join", room="dev")
    assert inbox.one(bob, "presence")["user"]["role"] == "moderator"
    m.hub.set_role("dev", "u-far", OWNER)
    far = {"id": "u-far", "name": "far", "color": "#123456"}
    inbox = Inbox(m.hub.deliver_published(FanoutJoin("other", "dev", far)))
    assert inbox.one(bob, "presence")["user"] == {**far, "role": "owner"}


# -- what a connection costs the store ----------------------------------------------


class CountingModeration(MemoryModeration):
    """The memory store, counting the reads of restrictions."""

    def __init__(self) -> None:
        super().__init__()
        self.per_user = 0  # restrictions(user) reads
        self.everyone = 0  # restricted() reads

    def restrictions(self, user_id: str, now: float) -> list[Restriction]:
        self.per_user += 1
        return super().restrictions(user_id, now)

    def restricted(self, now: float) -> set[str]:
        self.everyone += 1
        return super().restricted(now)


def test_one_read_says_who_is_restricted_for_every_connect() -> None:
    """Ensure new users with no restriction connect, join and speak without a
    read of their own: one read of who is restricted serves them all for the
    cache's time; a restricted user still has theirs read."""
    store = CountingModeration()
    m = Mod(store=store)
    store.restrict(Restriction("mute", "u-nobody-here", "lobby", None), m.now)
    conns = [m.join(f"user{i}")[0] for i in range(50)]
    m.say(conns[0], "hi")
    assert (store.everyone, store.per_user) == (1, 0)
    m.step(CACHE_SECONDS)
    mo, _ = moderator(m)
    bob, bob_id, _ = m.join("bob")
    m.send(mo, type="mute", user=bob_id, room="lobby", seconds=600)
    assert m.say(bob, "hi").error(bob)["code"] == "forbidden"
    assert store.per_user == 1  # bob's, once he was restricted


def test_a_mute_lands_at_once_on_a_cached_no_restrictions_answer(m: Mod) -> None:
    """Ensure a user cached as having no restriction is refused as soon as a
    mute is made here or announced by another process, and within the cache's
    time when it only reached the store (no event)."""
    mo, _ = moderator(m)
    bob, bob_id, _ = m.join("bob")
    assert m.say(bob, "cached as free").of(bob, "message")
    m.send(mo, type="mute", user=bob_id, room="lobby", seconds=600)
    assert m.say(bob, "hi").error(bob)["code"] == "forbidden"

    cat, cat_id, _ = m.join("cat")
    assert m.say(cat, "cached as free").of(cat, "message")
    m.store.restrict(Restriction("mute", cat_id, "lobby", None), m.now)
    by = {"id": "u-x", "name": "X"}
    m.hub.deliver_published(Moderated("other", "mute", cat_id, "lobby", {"by": by}))
    assert m.say(cat, "hi").error(cat)["code"] == "forbidden"

    dan, dan_id, _ = m.join("dan")
    assert m.say(dan, "cached as free").of(dan, "message")
    m.store.restrict(Restriction("mute", dan_id, "", None), m.now)  # no event
    m.step(CACHE_SECONDS / 2)
    assert m.say(dan, "still cached").of(dan, "message")
    m.step(CACHE_SECONDS / 2)
    assert m.say(dan, "hi").error(dan)["code"] == "forbidden"


class WatchingModeration(MemoryModeration):
    """The memory store, noting how many were in the lobby at each read (a
    read through Redis lets other connections run meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.hub: Hub | None = None
        self.seen: list[int] = []

    def _note(self) -> None:
        if self.hub is not None:
            self.seen.append(self.hub.member_count("lobby"))

    def admins(self) -> set[str]:
        self._note()
        return super().admins()

    def restricted(self, now: float) -> set[str]:
        self._note()
        return super().restricted(now)

    def roles(self, room: str) -> dict[str, str]:
        self._note()
        return super().roles(room)


def test_a_connect_reads_the_store_before_joining_its_room() -> None:
    """Ensure every moderation read of a connect happens before the
    connection is in its room, so no join of another connection (which a
    read may let run) reaches it before its welcome."""
    store = WatchingModeration()
    m = Mod(store=store)
    store.hub = m.hub
    m.join("ann")
    assert store.seen and set(store.seen) == {0}
