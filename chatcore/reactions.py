"""Reactions on a message: which emoji count as one, their bounds, and the
summary every client sees. Pure.

A reaction is one user's emoji on one message; a user toggles it (adds it
if absent, removes it if present). A message's reactions are shown as one
``Reaction`` per emoji, in the order the emoji was first (still) reacted,
with its exact count and the first ``USERS_LISTED`` users who reacted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import icu

# The palette the page offers; any other single emoji is allowed too.
PALETTE = ("👍", "❤️", "😂", "🎉", "😮", "😢")
EMOJI_PER_MESSAGE_MAX = 20  # distinct emoji on one message
USERS_PER_EMOJI_MAX = 1000  # users reacting with one emoji on one message
USERS_LISTED = 20  # users named per emoji (the count is exact)
# The longest emoji sequence taken, in code points (the longest standard
# ones, family ZWJ sequences with skin tones, have 10; tag flags 7).
EMOJI_CODEPOINTS_MAX = 16

_ZWJ, _VS16, _VS15, _KEYCAP = 0x200D, 0xFE0F, 0xFE0E, 0x20E3
_TAGS = range(0xE0020, 0xE0080)
_KEYCAP_BASES = frozenset("0123456789#*")


def _has(char: str, prop: int) -> bool:
    return bool(icu.Char.hasBinaryProperty(char, prop))


def _pictographic(char: str) -> bool:
    return _has(char, icu.UProperty.EXTENDED_PICTOGRAPHIC) or _has(
        char, icu.UProperty.EMOJI_PRESENTATION
    )


def _part_of_sequence(char: str) -> bool:
    """A code point that may follow the first one inside an emoji."""
    point = ord(char)
    return (
        point in (_ZWJ, _VS16, _VS15, _KEYCAP)
        or point in _TAGS
        or _has(char, icu.UProperty.EMOJI_MODIFIER)
        or _has(char, icu.UProperty.REGIONAL_INDICATOR)
        or _pictographic(char)
    )


def _graphemes(text: str) -> int:
    breaks = icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot())
    breaks.setText(text)
    return sum(1 for _ in breaks)


def emoji_problem(text: str) -> str | None:
    """Why ``text`` is not one emoji (None: it is).

    One emoji is exactly one grapheme (Unicode's user-perceived character)
    made of emoji code points: a pictograph (👍, ❤, ❤️), a keycap (1️⃣), a
    flag (🇫🇷, 🏴 with tags), with skin tones and ZWJ joins (👩🏽‍💻).
    """
    if not text:
        return "the emoji is empty"
    if len(text) > EMOJI_CODEPOINTS_MAX:
        return "that is not one emoji (too long)"
    if _graphemes(text) != 1:
        return "give exactly one emoji"
    first, rest = text[0], text[1:]
    if first in _KEYCAP_BASES:
        if rest in (
            "\N{VARIATION SELECTOR-16}\N{COMBINING ENCLOSING KEYCAP}",
            "\N{COMBINING ENCLOSING KEYCAP}",
        ):
            return None
        return "that is not an emoji"
    if _has(first, icu.UProperty.REGIONAL_INDICATOR):
        flag = len(text) == 2 and _has(rest, icu.UProperty.REGIONAL_INDICATOR)
        return None if flag else "that is not an emoji"
    if not _pictographic(first):
        return "that is not an emoji"
    if not all(_part_of_sequence(char) for char in rest):
        return "that is not an emoji"
    return None


@dataclass(frozen=True, slots=True)
class Reaction:
    """One emoji on a message: how many reacted with it, and the first of them."""

    emoji: str
    count: int
    users: tuple[tuple[str, str], ...]  # (id, name), first reacted first

    def to_wire(self) -> dict[str, Any]:
        return {
            "emoji": self.emoji,
            "count": self.count,
            "users": [{"id": uid, "name": name} for uid, name in self.users],
        }


def reactions_from_wire(wire: Iterable[dict[str, Any]]) -> tuple[Reaction, ...]:
    return tuple(
        Reaction(
            item["emoji"],
            item["count"],
            tuple((user["id"], user["name"]) for user in item["users"]),
        )
        for item in wire
    )


# One user's reaction as a store keeps it: (emoji, user id, name, seq); seq
# orders reactions (the room id the reaction took).
Entry = tuple[str, str, str, int]


def summarize(entries: Iterable[Entry]) -> tuple[Reaction, ...]:
    """The reactions shown for one message's entries: per emoji, its count
    and first ``USERS_LISTED`` users by seq; emoji ordered by their oldest
    remaining reaction."""
    by_emoji: dict[str, list[tuple[int, str, str]]] = {}
    for emoji, user_id, name, seq in entries:
        by_emoji.setdefault(emoji, []).append((seq, user_id, name))
    for users in by_emoji.values():
        users.sort()
    ordered = sorted(by_emoji.items(), key=lambda item: item[1][0][0])
    return tuple(
        Reaction(
            emoji,
            len(users),
            tuple((uid, name) for _, uid, name in users[:USERS_LISTED]),
        )
        for emoji, users in ordered
    )


class ReactionRefused(Exception):
    """A toggle the store would not make; ``reason`` is one of ``gone`` (no
    such message kept), ``deleted``, ``emoji_full``, ``users_full``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def toggle_refusal(
    emoji_count: int, emoji_users: int | None, present: bool
) -> str | None:
    """Whether adding a reaction passes the bounds: ``emoji_users`` is how
    many users reacted with this emoji (None: nobody yet), ``present``
    whether this user did (then it is a removal, always allowed)."""
    if present:
        return None
    if emoji_users is None:
        return "emoji_full" if emoji_count >= EMOJI_PER_MESSAGE_MAX else None
    return "users_full" if emoji_users >= USERS_PER_EMOJI_MAX else None
