"""The page's name and room checks agree with the server's.

The browser checks names and room names as they are typed (static/js/validation.js)
so that a form can say at once what is wrong; the server's rule
(chatcore/identity.py) is the one that counts. This runs the client's module in
Node on samples from many scripts and edge cases and compares the verdicts.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from chatcore import identity
from tests.support import ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

VERDICTS = """
import { checkName, checkRoom } from './static/js/validation.js';
const { limits, names, rooms } = JSON.parse(process.argv[1]);
process.stdout.write(JSON.stringify({
  names: names.map((n) => !checkName(n, limits).error),
  rooms: rooms.map((r) => checkRoom(r, limits) === null),
}));
"""

LONG = "a" * identity.NAME_MAX
SAMPLES = [
    "alice",
    "Bob Smith",
    "o'neil",
    "anne-marie",
    "j.r.r",
    "under_score",
    "Zoë",
    "Zoe\u0308",  # the same, decomposed: NFC makes it one code point
    "Łukasz",
    "Ñandú",
    "王小明",
    "東京",
    "さくら",
    "한국어",
    "Ωmega",
    "Кирилл",
    "نور",
    "हिन्दी",
    "42",
    "7up",
    "٣٤",
    "bob-",
    "bob.",
    "bob_",
    "bob'",
    "-bob",
    "_bob",
    ".",
    "a b",
    " padded ",
    "two  spaces",
    "tab\there",
    "new\nline",
    "\x1fbob\x85",  # Python's strip() takes these, JavaScript's trim() does not
    "\u2003bob\u3000",
    LONG,
    LONG + "a",
    "𝒜" * identity.NAME_MAX,  # astral letters: 24 code points, 48 UTF-16 units
    "𝒜" * (identity.NAME_MAX + 1),
    "a" * identity.ROOM_MAX,
    "a" * (identity.ROOM_MAX + 1),
    "𐐷𐐷",  # Deseret letters (astral)
    "e\u0301\u0301",  # stacked combining marks
    "\u0301abc",  # a mark cannot start
    "ab\u0301",
    "😀",
    "bob😀",
    "👍🏽",
    "❤",
    "a/b",
    "a<b>",
    "bob!",
    "",
    " ",
    "guest-0001",
    "GUEST-x",
    "ｇｕｅｓｔ-x",
    "guest",
    "guesthouse",
]

# Default_Ignorable_Code_Point characters: refused in names and room names.
# Some are letters or marks to the character rule (U+3164, U+115F are Lo;
# U+034F, U+FE0F are Mn): the invisible check alone refuses those.
IGNORABLE_NAMES = [
    "ab\u034fcd",
    "ab\u200bcd",
    "\u200babcd",
    "ab\ufe0f",
    "a\ufe0fb",
    "\u3164",
    "\u3164bob",
    "bob\u3164",
    "\u115fbob",
    "a\u115fb",
    "ab\u00adcd",
    "a\u2060b",
]


def _server_accepts(check, value: str) -> bool:
    try:
        check(value)
    except identity.InvalidName:
        return False
    return True


def _client_verdicts(names: list[str], rooms: list[str]) -> dict[str, list[bool]]:
    limits = {"nameMax": identity.NAME_MAX, "roomMax": identity.ROOM_MAX}
    argument = json.dumps({"limits": limits, "names": names, "rooms": rooms})
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", VERDICTS, argument],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def client() -> dict[str, list[bool]]:
    return _client_verdicts(SAMPLES + IGNORABLE_NAMES, SAMPLES + IGNORABLE_NAMES)


def _disagreements(samples, client_says, check) -> list[str]:
    return [
        f"{value!r}: client {'accepts' if said else 'refuses'}, server "
        f"{'accepts' if not said else 'refuses'}"
        for value, said in zip(samples, client_says, strict=True)
        if said != _server_accepts(check, value)
    ]


def test_client_and_server_agree_on_names(client: dict[str, list[bool]]) -> None:
    """Ensure the client accepts exactly the names the server accepts,
    invisible characters included."""
    samples = SAMPLES + IGNORABLE_NAMES
    assert _disagreements(samples, client["names"], identity.check_name) == []
    assert any(client["names"]) and not all(client["names"])


def test_client_and_server_agree_on_rooms(client: dict[str, list[bool]]) -> None:
    """Ensure the client accepts exactly the room names the server accepts,
    invisible characters included."""
    samples = SAMPLES + IGNORABLE_NAMES
    assert _disagreements(samples, client["rooms"], identity.check_room) == []
    assert any(client["rooms"]) and not all(client["rooms"])


@pytest.mark.parametrize("check", ["names", "rooms"])
def test_invisible_characters_are_refused_by_both(
    client: dict[str, list[bool]], check: str
) -> None:
    """Ensure every default-ignorable sample is refused, by the client and
    by the server (so the agreement above is not two sides accepting)."""
    says = client[check][len(SAMPLES) :]
    assert not any(says)
    server = identity.check_name if check == "names" else identity.check_room
    assert not any(_server_accepts(server, n) for n in IGNORABLE_NAMES)
