"""The moderation store that goes with a history store, picked by the settings."""

from __future__ import annotations

from typing import Any

from chatcore.config import Settings
from chatcore.history import MEMORY
from chatcore.moderation import ModerationStore


def open_moderation(settings: Settings, history: Any) -> ModerationStore:
    """Moderation beside the history: in Redis (its client and prefix), in
    the SQLite file (its connection), or in memory with ``--db :memory:``.

    Raises:
        HistoryError: the store cannot be read (slow modes are read at once).
    """
    if settings.redis_url:
        from chatcore.moderation.redis import RedisModeration

        return RedisModeration(history.client, history.prefix)
    if settings.db == MEMORY:
        from chatcore.moderation.memory import MemoryModeration

        return MemoryModeration()
    from chatcore.moderation.sqlite import SqliteModeration

    return SqliteModeration(history.connection)
