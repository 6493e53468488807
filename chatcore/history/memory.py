"""History and name reservations kept in this process only: fast, gone on restart."""

from __future__ import annotations

import bisect
import secrets
from collections import OrderedDict
from dataclasses import replace

from chatcore.history import Draft, StaleMessage, StoredMessage, kept_above
from chatcore.reactions import ReactionRefused, summarize, toggle_refusal

# How many (user, client_id) pairs are remembered for idempotent sends.
CLIENT_IDS_KEPT = 100_000


class MemoryHistory:
    """Keeps each room's messages among its newest ``max_per_room`` ids in memory."""

    has_pending = False

    def __init__(self, max_per_room: int):
        self._max = max_per_room
        self._rooms: dict[str, dict[int, StoredMessage]] = {}
        self._ids: dict[str, list[int]] = {}  # room -> its kept ids, ascending
        self._changed: dict[str, dict[int, int]] = {}  # room -> id -> rev
        self._last: dict[str, int] = {}
        # room -> message id -> emoji -> user id -> (name, seq), oldest first
        self._reactions: dict[str, dict[int, dict[str, dict[str, tuple[str, int]]]]]
        self._reactions = {}
        self._by_client: OrderedDict[tuple[str, str], StoredMessage] = OrderedDict()
        self._epoch = secrets.token_hex(8)  # a new one on every start

    def append(self, draft: Draft) -> StoredMessage:
        next_id = self._last.get(draft.room, 0) + 1
        self._last[draft.room] = next_id
        stored = draft.with_id(next_id)
        self._rooms.setdefault(draft.room, {})[next_id] = stored
        self._ids.setdefault(draft.room, []).append(next_id)
        self._trim(draft.room)
        if stored.client_id is not None:
            self._by_client[(stored.user_id, stored.client_id)] = stored
            if len(self._by_client) > CLIENT_IDS_KEPT:
                self._by_client.popitem(last=False)
        return stored

    def change(
        self,
        current: StoredMessage,
        text: str | None,
        at: int,
        by: dict[str, str] | None = None,
    ) -> StoredMessage:
        room = current.room
        if self.get(room, current.id) != current:
            raise StaleMessage(f"message {current.id} changed meanwhile")
        rev = self._last[room] + 1
        self._last[room] = rev
        changed = current.changed(text, at, rev)
        self._rooms[room][current.id] = changed
        if changed.deleted:
            self._reactions.get(room, {}).pop(current.id, None)
        self._changed.setdefault(room, {})[current.id] = rev
        if changed.client_id is not None:
            key = (changed.user_id, changed.client_id)
            if key in self._by_client:
                self._by_client[key] = changed
        self._trim(room)
        return changed

    def react(
        self, room: str, message_id: int, emoji: str, user: tuple[str, str], at: int
    ) -> tuple[StoredMessage, bool]:
        current = self.get(room, message_id)
        if current is None:
            raise ReactionRefused("gone")
        if current.deleted:
            raise ReactionRefused("deleted")
        kept = self._reactions.setdefault(room, {}).setdefault(message_id, {})
        users = kept.get(emoji)
        user_id, name = user
        present = users is not None and user_id in users
        refusal = toggle_refusal(
            len(kept), None if users is None else len(users), present
        )
        if refusal is not None:
            if not kept:
                del self._reactions[room][message_id]
            raise ReactionRefused(refusal)
        rev = self._last[room] + 1
        self._last[room] = rev
        if users is not None and present:
            del users[user_id]
            if not users:
                del kept[emoji]
        else:
            kept.setdefault(emoji, {})[user_id] = (name, rev)
        entries = [
            (e, uid, who, seq)
            for e, by in kept.items()
            for uid, (who, seq) in by.items()
        ]
        if not kept:
            del self._reactions[room][message_id]
        changed = replace(current, rev=rev, reactions=summarize(entries))
        self._rooms[room][message_id] = changed
        self._changed.setdefault(room, {})[message_id] = rev
        if changed.client_id is not None:
            key = (changed.user_id, changed.client_id)
            if key in self._by_client:
                self._by_client[key] = changed
        self._trim(room)
        return changed, not present

    def _trim(self, room: str) -> None:
        """Forget the messages whose ids fell out of the newest ``max``."""
        floor = kept_above(self._last[room], self._max)
        ids = self._ids[room]
        gone = bisect.bisect_right(ids, floor)
        if not gone:
            return
        messages, changed = self._rooms[room], self._changed.get(room, {})
        for message_id in ids[:gone]:
            del messages[message_id]
            changed.pop(message_id, None)
            self._reactions.get(room, {}).pop(message_id, None)
        del ids[:gone]

    def flush(self) -> None:
        """Nothing to write: every message is stored as soon as it is appended."""

    def is_pending(self, message: StoredMessage) -> bool:
        return False

    def get(self, room: str, message_id: int) -> StoredMessage | None:
        return self._rooms.get(room, {}).get(message_id)

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        ids = self._ids.get(room)
        if not ids or limit <= 0:
            return []
        messages = self._rooms[room]
        start = bisect.bisect_right(ids, after_id)
        found = [messages[i] for i in ids[start:]]
        found += [
            messages[i]
            for i, rev in self._changed.get(room, {}).items()
            if i <= after_id < rev
        ]
        found.sort(key=lambda m: m.newest_id)
        return found[:limit]

    def after(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        ids = self._ids.get(room)
        if not ids or limit <= 0:
            return []
        start = bisect.bisect_right(ids, after_id)
        messages = self._rooms[room]
        return [messages[i] for i in ids[start : start + limit]]

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        ids = self._ids.get(room)
        if not ids:
            return [], False
        end = len(ids) if before_id is None else bisect.bisect_left(ids, before_id)
        start = max(0, end - limit)
        messages = self._rooms[room]
        return [messages[i] for i in ids[start:end]], start > 0

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        return self._by_client.get((user_id, client_id))

    def last_id(self, room: str) -> int:
        return self._last.get(room, 0)

    def rooms(self) -> list[str]:
        return sorted(self._last)

    def epoch(self) -> str:
        return self._epoch

    def problem(self) -> str | None:
        return None

    def close(self) -> None:
        self._rooms.clear()
        self._ids.clear()
        self._changed.clear()
        self._reactions.clear()


class MemoryNames:
    """Name reservations kept in this process only."""

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, float]] = {}

    def holder(self, name_key: str) -> tuple[str, float] | None:
        return self._names.get(name_key)

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        self._names[name_key] = (user_id, now)

    def release(self, name_key: str, user_id: str) -> None:
        if self._names.get(name_key, ("",))[0] == user_id:
            del self._names[name_key]
