"""Who is who: display-name and room-name rules, guest names, colours, user ids.

Pure: randomness comes in as a ``random.Random`` so tests can seed it.

Names that look the same are the same name: two names are compared by their
confusable skeleton (Unicode TS #39, computed by ICU) after NFKC and case
folding, so ``Аlice`` with a Cyrillic А is ``alice``; and code points that
render as nothing (Default_Ignorable_Code_Point: joiners, variation selectors,
fillers) are refused in names and room names alike.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Iterable

import icu

NAME_MAX = 24
ROOM_MAX = 32
DEFAULT_ROOM = "lobby"

# Letters (with their combining marks) and digits of any script; a few
# separators may stand inside a name or room name, never at its start.
_NAME_INNER = frozenset(" .'-_")
_ROOM_INNER = frozenset("-_")

# Twelve hues, each with a contrast of at least 4:1 against both the light
# (#ffffff) and the dark (#1e1e1e) background: WCAG AA for large text on
# either theme, so a name keeps its colour whatever the theme. (No colour
# reaches 4.5:1 on both; the client nudges lightness for small text.)
PALETTE = (
    "#da4e4e",
    "#bf6729",
    "#977a20",
    "#548b1d",
    "#1f9145",
    "#1e8d7a",
    "#2487a8",
    "#407ed6",
    "#7f6ce0",
    "#a65bdc",
    "#d331d3",
    "#d7448e",
)


# A direct conversation's room is named by its members: DM_PREFIX and a hash
# of their sorted user ids. No name a ``join`` or ``create`` can make starts
# with DM_PREFIX (a room name starts with a letter or digit), so the form is
# reserved; the hash makes the same people find the same room on any process.
DM_PREFIX = "@"
_DM_HEX = 30  # 120 bits: no two member sets meet by chance

GUEST_PREFIX = "guest-"
GUEST_DIGITS_MIN = 4  # guest-1234; longer only where a shorter one is in use

_SPOOF = icu.SpoofChecker()
_INVISIBLE = icu.UnicodeSet("[:Default_Ignorable_Code_Point:]")
_INVISIBLE.freeze()


class InvalidName(ValueError):
    """A display name or room name breaks the rules; the message says which."""


def _invisible(text: str) -> str | None:
    """The first code point of ``text`` that renders as nothing, if any."""
    for ch in text:
        if _INVISIBLE.contains(ch):
            return ch
    return None


def _refuse_invisible(text: str, what: str) -> None:
    ch = _invisible(text)
    if ch is not None:
        raise InvalidName(
            f"a {what} cannot contain invisible characters (U+{ord(ch):04X})"
        )


def _is_word(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def _well_formed(text: str, inner: frozenset[str], end_with_word: bool) -> bool:
    """Starts with a letter or digit; then letters, marks, digits or ``inner``."""
    if not text or unicodedata.category(text[0])[0] not in "LN":
        return False
    if end_with_word and not _is_word(text[-1]):
        return False
    return all(_is_word(ch) or ch in inner for ch in text)


def check_name(name: str) -> str:
    """Return the display name to use, or raise InvalidName saying why not."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise InvalidName("a name cannot be empty")
    if len(name) > NAME_MAX:
        raise InvalidName(f"a name can be at most {NAME_MAX} characters")
    _refuse_invisible(name, "name")
    if not _well_formed(name, _NAME_INNER, end_with_word=True):
        raise InvalidName(
            "a name may use letters, digits, spaces and . ' - _ inside, "
            "and must start and end with a letter or digit"
        )
    if is_guest(name):
        raise InvalidName(
            f"names starting with '{GUEST_PREFIX}' are given out by the server"
        )
    return name


def check_room(room: str) -> str:
    """Return the room name, or raise InvalidName saying why it is invalid.

    A direct conversation's name (``dm_room``) is valid too: only the
    directory decides whether such a room exists and who is in it.
    """
    if is_dm_room(room):
        return room
    if not room:
        raise InvalidName("a room name cannot be empty")
    if len(room) > ROOM_MAX:
        raise InvalidName(f"a room name can be at most {ROOM_MAX} characters")
    _refuse_invisible(room, "room name")
    if not _well_formed(room, _ROOM_INNER, end_with_word=False):
        raise InvalidName(
            "a room name may use letters, digits, '-' and '_', "
            "and must start with a letter or digit"
        )
    return room


def dm_room(user_ids: Iterable[str]) -> str:
    """The room name of the direct conversation of exactly these users (the
    order and repeats of ``user_ids`` do not matter)."""
    members = "\n".join(sorted(set(user_ids)))
    digest = hashlib.blake2s(
        members.encode(), person=b"chat-dm", digest_size=_DM_HEX // 2
    )
    return DM_PREFIX + digest.hexdigest()


def is_dm_room(room: str) -> bool:
    """Whether ``room`` has the form of a direct conversation's name."""
    return (
        len(room) == len(DM_PREFIX) + _DM_HEX
        and room.startswith(DM_PREFIX)
        and all(ch in "0123456789abcdef" for ch in room[len(DM_PREFIX) :])
    )


def _folded(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def name_key(name: str) -> str:
    """The form in which two names are compared for uniqueness: names with
    the same key look alike (TS #39 skeleton of the NFKC case-folded name)."""
    # Folded again after: the skeleton maps 0 to O, and names ignore case.
    return _SPOOF.getSkeleton(0, _folded(name)).casefold()


def color_for(name: str) -> str:
    digest = hashlib.blake2s(_folded(name).encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def is_guest(name: str) -> bool:
    return _folded(name).startswith(GUEST_PREFIX)


def new_client_key(rng: random.Random) -> str:
    """A fresh client secret: 128 random bits as hex."""
    return f"{rng.getrandbits(128):032x}"


def guest_names(user_id: str) -> list[str]:
    """The guest names of a user, shortest first: the first one not in use is
    theirs. Derived from the user id, so a browser keeps its guest name across
    reloads; the last one holds the whole id, so the list never runs out."""
    digits = str(int(hashlib.blake2s(user_id.encode()).hexdigest()[:24], 16))
    shorter = [
        GUEST_PREFIX + digits[:width]
        for width in range(GUEST_DIGITS_MIN, len(digits) + 1, 2)
    ]
    return [*shorter, GUEST_PREFIX + user_id]


def user_id_for(key: str | None, rng: random.Random) -> str:
    """A stable public id for a client key, or a fresh one without a key.

    The key is the client's secret (one per browser); the id is derived from it
    one way, so showing the id to others never reveals the key.
    """
    if key:
        return "u" + hashlib.blake2s(key.encode(), person=b"chat-uid").hexdigest()[:15]
    return "u" + "".join(rng.choice("0123456789abcdef") for _ in range(15))


def bot_id_for(name: str) -> str:
    """The user id of a bot posting through the HTTP API under ``name``."""
    return (
        "bot-"
        + hashlib.blake2s(name_key(name).encode(), person=b"chat-bot").hexdigest()[:12]
    )
