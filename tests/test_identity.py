"""Unit tests of chatcore.identity: name rules, room rules, colours, user ids."""

from __future__ import annotations

import random
import re

import pytest

from chatcore import identity
from chatcore.identity import InvalidName


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "alice",
        "Alice Smith",
        "O'Brien",
        "j.r.r. tolkien",
        "Jean-Luc",
        "snake_case",
        "R2D2",
        "42",
        "Zoë",
        "Łukasz",
        "Владимир",
        "Σωκράτης",
        "李小龙",
        "안녕",
        "محمد",
        "x" * identity.NAME_MAX,
        "guest",
        "guestbook",
        "my guest-name",
    ],
)
def test_check_name_accepts(name: str) -> None:
    """Ensure valid names (letters and digits of any script) are accepted as is."""
    assert identity.check_name(name) == name


def test_check_name_trims_and_normalises() -> None:
    """Ensure surrounding spaces are trimmed and the name is NFC-normalised."""
    assert identity.check_name("  bob \t") == "bob"
    decomposed = "Zoe\u0308"  # e + combining diaeresis
    assert identity.check_name(decomposed) == "Zoë"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "x" * (identity.NAME_MAX + 1),
        "-alice",
        "alice-",
        ".alice",
        "alice.",
        "'alice'",
        "_alice",
        "alice_",
        "al!ce",
        "a<b>",
        "a@b",
        "a/b",
        "a\x00b",
        "a\x07b",
        "a\nb",
        "a\tb",
        "a\x7fb",
        "a\u200bb",  # zero-width space
        "a\u200db",  # zero-width joiner
        "a\ufeffb",  # zero-width no-break space
        "a\u202eb",  # right-to-left override
        "😀",
        "guest-1234",
        "Guest-1",
        "GUEST-abc",
    ],
)
def test_check_name_rejects(name: str) -> None:
    """Ensure invalid names raise InvalidName with a reason."""
    with pytest.raises(InvalidName) as info:
        identity.check_name(name)
    assert str(info.value)


def test_check_name_reason_for_guest_prefix() -> None:
    """Ensure the guest- prefix refusal says why."""
    with pytest.raises(InvalidName, match="guest-"):
        identity.check_name("guest-7")


@pytest.mark.parametrize("name", ["राम", "मोहन", "مُحَمَّد"])
def test_check_name_accepts_scripts_with_combining_marks(name: str) -> None:
    """Ensure names in scripts that need combining marks are accepted."""
    assert identity.check_name(name) == name


def test_check_name_reserves_guest_prefix_after_normalisation() -> None:
    """Ensure a name whose compared form starts with guest- is reserved too."""
    assert identity.is_guest("ｇｕｅｓｔ-0001")
    with pytest.raises(InvalidName):
        identity.check_name("ｇｕｅｓｔ-0001")


@pytest.mark.parametrize(
    "room",
    [
        "lobby",
        "a",
        "1",
        "Dev",
        "dev-ops",
        "dev_ops",
        "r2-d2_x",
        "café",
        "комната",
        "部屋",
        "x" * identity.ROOM_MAX,
    ],
)
def test_check_room_accepts(room: str) -> None:
    """Ensure valid room names are accepted unchanged."""
    assert identity.check_room(room) == room


@pytest.mark.parametrize(
    "room",
    [
        "",
        "x" * (identity.ROOM_MAX + 1),
        "-dev",
        "_dev",
        "dev ops",
        " dev",
        "dev\n",
        "dev.ops",
        "dev/ops",
        "../etc",
        "dev#1",
        "a\x00",
        "a\u200bb",
        "😀",
    ],
)
def test_check_room_rejects(room: str) -> None:
    """Ensure invalid room names raise InvalidName."""
    with pytest.raises(InvalidName):
        identity.check_room(room)


def test_rooms_are_case_sensitive() -> None:
    """Ensure room names keep their case (Dev and dev are two rooms)."""
    assert identity.check_room("Dev") != identity.check_room("dev")


def test_default_room_is_valid() -> None:
    """Ensure the default room passes the room rules."""
    assert identity.check_room(identity.DEFAULT_ROOM) == "lobby"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("Straße", "STRASSE"),
        ("ａｌｉｃｅ", "alice"),  # full-width
        ("ﬁne", "fine"),  # ligature
        ("Zoe\u0308", "zoë"),  # decomposed vs composed
    ],
)
def test_name_key_case_insensitive_and_nfkc(a: str, b: str) -> None:
    """Ensure name_key equates names differing in case or compatibility form."""
    assert identity.name_key(a) == identity.name_key(b)


def test_name_key_keeps_different_names_apart() -> None:
    """Ensure name_key does not merge genuinely different names."""
    assert identity.name_key("alice") != identity.name_key("alicia")
    assert identity.name_key("zoe") != identity.name_key("zoë")


def test_color_for_is_deterministic_and_in_palette() -> None:
    """Ensure a name always gets the same palette colour, whatever its case."""
    for name in ["alice", "bob", "李小龙", "guest-0001", "x" * 24]:
        color = identity.color_for(name)
        assert color in identity.PALETTE
        assert identity.color_for(name) == color
        assert identity.color_for(name.upper()) == color


def test_color_for_uses_the_palette() -> None:
    """Ensure different names spread over more than one colour."""
    colors = {identity.color_for(f"user{n}") for n in range(100)}
    assert len(colors) > len(identity.PALETTE) // 2


def test_palette_is_valid_hex_colours() -> None:
    """Ensure every palette entry is a #rrggbb colour, without duplicates."""
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in identity.PALETTE)
    assert len(set(identity.PALETTE)) == len(identity.PALETTE)


def test_guest_names_are_stable_per_user_and_never_run_out() -> None:
    """Ensure a user's guest names are the same on every call, start with four
    digits, grow longer, and end with one that holds the whole user id."""
    rng = random.Random(1)
    user_ids = [
        identity.user_id_for(identity.new_client_key(rng), rng) for _ in range(200)
    ]
    for user_id in user_ids:
        names = identity.guest_names(user_id)
        assert names == identity.guest_names(user_id)
        assert re.fullmatch(r"guest-\d{4}", names[0])
        widths = [len(n) for n in names[:-1]]
        assert widths == sorted(set(widths))
        assert names[-1] == "guest-" + user_id
        assert all(identity.is_guest(n) for n in names)
    assert len({identity.guest_names(u)[-1] for u in user_ids}) == len(user_ids)


def test_guest_name_is_refused_as_chosen_name() -> None:
    """Ensure nobody can pick a generated guest name themselves."""
    for name in identity.guest_names("u0123456789abcde")[:2]:
        with pytest.raises(InvalidName):
            identity.check_name(name)


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u0410lice",  # Cyrillic capital A
        "\u0391lice",  # Greek capital Alpha
        "A1ice",  # digit one for l
        "ALICE",
        "ａｌｉｃｅ",  # fullwidth
    ],
)
def test_names_that_look_alike_have_one_key(lookalike: str) -> None:
    """Ensure look-alike names (TS #39 skeleton) compare as the same name."""
    assert identity.check_name(lookalike) == lookalike
    assert identity.name_key(lookalike) == identity.name_key("Alice")


@pytest.mark.parametrize(
    "invisible", ["\u034f", "\ufe0f", "\u3164", "\u115f", "\u200b", "\u00ad"]
)
def test_invisible_code_points_are_refused(invisible: str) -> None:
    """Ensure Default_Ignorable code points are refused in names and rooms,
    at the end, inside and (where the name rules would let them) at the start."""
    for name in ("Alice" + invisible, "Al" + invisible + "ice", invisible + "Alice"):
        with pytest.raises(InvalidName):
            identity.check_name(name)
    with pytest.raises(InvalidName, match="invisible"):
        identity.check_name("Al" + invisible + "ice")
    with pytest.raises(InvalidName):
        identity.check_room("lobby" + invisible)


def test_user_id_for_key_is_stable() -> None:
    """Ensure the same key always gives the same id, whatever the rng."""
    first = identity.user_id_for("my-secret-key", random.Random(1))
    assert identity.user_id_for("my-secret-key", random.Random(2)) == first
    assert re.fullmatch(r"u[0-9a-f]{15}", first)


def test_user_id_for_different_keys_differ() -> None:
    """Ensure different keys give different ids."""
    rng = random.Random(0)
    ids = {identity.user_id_for(f"key-{n}", rng) for n in range(1000)}
    assert len(ids) == 1000


def test_user_id_never_contains_the_key() -> None:
    """Ensure the public id does not reveal the secret key."""
    for key in ["secret-key-1234567890", "SECRET", "zzzz", "0123456789abcdef"]:
        user_id = identity.user_id_for(key, random.Random(0))
        assert key not in user_id
        assert key.lower() not in user_id


def test_user_id_without_key_is_random() -> None:
    """Ensure connections without a key get fresh ids from the rng."""
    rng = random.Random(5)
    ids = {identity.user_id_for(None, rng) for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"u[0-9a-f]{15}", i) for i in ids)
    assert identity.user_id_for("", random.Random(5)) == identity.user_id_for(
        None, random.Random(5)
    )


def test_a_direct_conversation_is_named_by_its_member_set() -> None:
    """Ensure the name depends on the set of members only, and has the
    reserved form that room names check_room accepts but create refuses."""
    room = identity.dm_room(["u2", "u1"])
    assert room == identity.dm_room(["u1", "u2", "u1"])
    assert room != identity.dm_room(["u1", "u2", "u3"])
    assert room != identity.dm_room(["u1", "u3"])
    # Joined ids could collide without a separator ("ab"+"c" vs "a"+"bc").
    assert identity.dm_room(["ab", "c"]) != identity.dm_room(["a", "bc"])
    assert room.startswith(identity.DM_PREFIX) and len(room) == 31
    assert len(room) <= identity.ROOM_MAX
    assert identity.is_dm_room(room) and identity.check_room(room) == room


def test_no_other_name_has_the_reserved_form() -> None:
    for name in ("@" + "0" * 29, "@" + "0" * 31, "@" + "G" * 30, "@" + "A" * 30):
        assert not identity.is_dm_room(name), name
        with pytest.raises(identity.InvalidName):
            identity.check_room(name)
    assert not identity.is_dm_room("lobby")
