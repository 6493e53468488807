"""History in one SQLite file (WAL): the default store, nothing else to run.

Writes are batched: ``append`` gives the message its id at once and keeps the
row in memory; ``flush`` writes every pending row in one transaction. Reads
see pending rows too (a join's replay must not miss a message accepted in the
same turn), and ``is_pending`` tells the caller to hold such rows back. The
gevent edge calls ``flush`` once per turn of the event loop and only then
sends the messages out, so a message anyone has seen is in the file (see
docs/architecture.md, "Durability: the group commit").

Ids come from the ``rooms`` table, which remembers each room's last id even
after retention trimmed every message, so an id is never handed out twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from chatcore.history import (
    Attachment,
    Draft,
    HistoryError,
    StaleMessage,
    StoredMessage,
    kept_above,
)
from chatcore.reactions import (
    ReactionRefused,
    reactions_from_wire,
    summarize,
    toggle_refusal,
)

# Each entry upgrades the schema by one version; a file is brought up to date
# by running the entries it has not seen, in order, in one transaction each.
MIGRATIONS: Sequence[str] = (
    # 1: the first layout, one table of messages.
    """
    CREATE TABLE messages (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        color TEXT NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    """,
    # 2: idempotent sends (client_id) and ids that survive trimming (rooms).
    """
    ALTER TABLE messages ADD COLUMN client_id TEXT;
    CREATE INDEX messages_by_client ON messages (user_id, client_id)
        WHERE client_id IS NOT NULL;
    CREATE TABLE rooms (
        name TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO rooms (name, last_id)
        SELECT room, MAX(id) FROM messages GROUP BY room;
    """,
    # 3: display names reserved for the browser that used them.
    """
    CREATE TABLE names (
        name_key TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        last_used REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 4: the file's epoch: a new file (the old one lost) has a new one.
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))));
    """,
    # 5: one row that the readiness probe rewrites: a real write, and tiny.
    """
    CREATE TABLE probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        written REAL NOT NULL
    );
    INSERT INTO probe (id, written) VALUES (1, 0);
    """,
    # 6: edits and deletes
    """
    ALTER TABLE messages ADD COLUMN edited INTEGER;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN rev INTEGER;
    CREATE INDEX messages_by_rev ON messages (room, rev) WHERE rev IS NOT NULL;
    """,
    # 7: accounts, invites, sessions
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        admin INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        token_hash TEXT PRIMARY KEY,
        uses_left INTEGER NOT NULL,
        expires REAL NOT NULL,
        admin INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        created REAL NOT NULL,
        last_seen REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_account ON sessions (account_id, created);
    CREATE TABLE signin_codes (
        code_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL UNIQUE REFERENCES accounts (id),
        expires REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 8: roles and moderation
    """
    CREATE TABLE admins (user_id TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE room_roles (
        room TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (room, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX room_roles_by_user ON room_roles (user_id);
    CREATE TABLE restrictions (
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        room TEXT NOT NULL,
        until REAL,
        PRIMARY KEY (user_id, kind, room)
    ) WITHOUT ROWID;
    CREATE TABLE bans (
        user_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        ts REAL NOT NULL,
        addresses TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE slow_modes (
        room TEXT PRIMARY KEY,
        seconds REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE moderation_log (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        room TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX moderation_log_by_room ON moderation_log (room, id);
    """,
    # 9: private rooms: the room directory (chatcore/directory/sqlite.py).
    """
    CREATE TABLE private_rooms (
        name TEXT PRIMARY KEY,
        created REAL NOT NULL,
        creator TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX private_rooms_by_creator ON private_rooms (creator);
    CREATE TABLE room_members (
        room TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (room, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX room_members_by_user ON room_members (user_id, room);
    """,
    # replies and search: the answered message's id; a full-text index of
    # the kept messages (chatcore/search/sqlite.py), kept by triggers.
    # search_keys numbers the indexed messages in the order they were
    # written (the index's rowid: newest first is rowid descending); the
    # index stores no text of its own (external content: search_content).
    # A deleted message leaves the index at once; its words leave the file
    # when the index is next rewritten (SqliteSearch.purge).
    """
    ALTER TABLE messages ADD COLUMN reply_to INTEGER;
    CREATE TABLE search_keys (
        key INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        UNIQUE (room, id)
    );
    CREATE VIEW search_content AS
        SELECT search_keys.key AS key, messages.text AS text
        FROM search_keys JOIN messages
        ON messages.room = search_keys.room AND messages.id = search_keys.id;
    CREATE VIRTUAL TABLE search_index USING fts5 (
        text,
        content = 'search_content',
        content_rowid = 'key',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER search_add AFTER INSERT ON messages
    WHEN NOT new.deleted BEGIN
        INSERT INTO search_keys (room, id) VALUES (new.room, new.id);
        INSERT INTO search_index (rowid, text) VALUES (last_insert_rowid(), new.text);
    END;
    CREATE TRIGGER search_change AFTER UPDATE OF text, deleted ON messages BEGIN
        INSERT INTO search_index (search_index, rowid, text)
            SELECT 'delete', key, old.text FROM search_keys
            WHERE room = old.room AND id = old.id;
        DELETE FROM search_keys
            WHERE new.deleted AND room = old.room AND id = old.id;
        INSERT INTO search_index (rowid, text)
            SELECT key, new.text FROM search_keys
            WHERE room = new.room AND id = new.id;
    END;
    CREATE TRIGGER search_remove AFTER DELETE ON messages BEGIN
        INSERT INTO search_index (search_index, rowid, text)
            SELECT 'delete', key, old.text FROM search_keys
            WHERE room = old.room AND id = old.id;
        DELETE FROM search_keys WHERE room = old.room AND id = old.id;
    END;
    INSERT INTO search_keys (room, id)
        SELECT room, id FROM messages WHERE NOT deleted ORDER BY ts, room, id;
    INSERT INTO search_index (search_index) VALUES ('rebuild');
    """,
    # uploads: a message's attachment (JSON), and the uploads themselves
    # (chatcore/uploads/sqlite.py).
    """
    ALTER TABLE messages ADD COLUMN attachment TEXT;
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        room TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        type TEXT NOT NULL,
        image INTEGER NOT NULL,
        width INTEGER,
        height INTEGER,
        thumb_type TEXT,
        cost INTEGER NOT NULL,
        created REAL NOT NULL,
        message_id INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX uploads_by_user ON uploads (user_id);
    CREATE INDEX uploads_unused ON uploads (created) WHERE message_id IS NULL;
    CREATE INDEX uploads_by_message ON uploads (room, message_id)
        WHERE message_id IS NOT NULL;
    """,
    # reactions: one row per user and emoji on a message (rev orders them),
    # and the message's reactions as shown, kept on its row.
    """
    CREATE TABLE reactions (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        at INTEGER NOT NULL,
        rev INTEGER NOT NULL,
        PRIMARY KEY (room, id, emoji, user_id)
    ) WITHOUT ROWID;
    ALTER TABLE messages ADD COLUMN reactions TEXT;
    """,
    # direct messages: a private room's kind ('private' or 'dm'), and the
    # name each member of a direct conversation had when it was opened
    # (chatcore/directory/sqlite.py).
    """
    ALTER TABLE private_rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'private';
    ALTER TABLE room_members ADD COLUMN name TEXT NOT NULL DEFAULT '';
    """,
    # reads: each person's read position per room (chatcore/reads/sqlite.py).
    """
    CREATE TABLE read_positions (
        user_id TEXT NOT NULL,
        room TEXT NOT NULL,
        last_read INTEGER NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (user_id, room)
    ) WITHOUT ROWID;
    CREATE INDEX read_positions_by_updated ON read_positions (updated);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# How long a write waits for another process's lock (a backup, say) before it
# fails. The wait blocks the event loop, so it is kept short; a write that
# fails is reported to its senders, never silently dropped.
BUSY_TIMEOUT_MS = 1000

_COLUMNS = (
    "id, room, user_id, name, color, text, ts, client_id, edited, deleted, rev, "
    "reply_to, attachment, reactions"
)
_INSERT = (
    f"INSERT INTO messages ({_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Rooms' last ids only grow: a change written at once may be ahead of the
# messages a later flush writes.
_SET_LAST = (
    "INSERT INTO rooms (name, last_id) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)"
)
_TRIM = "DELETE FROM messages WHERE room = ? AND id <= ?"
_TRIM_REACTIONS = "DELETE FROM reactions WHERE room = ? AND id <= ?"


def migrate(db: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version ``upto``; return the version found before."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    found = row[0] or 0
    if found > SCHEMA_VERSION:
        raise HistoryError(
            f"the database has schema version {found}, newer than this release "
            f"knows ({SCHEMA_VERSION}); upgrade the chat or use another --db"
        )
    for version in range(found + 1, upto + 1):
        with db:
            db.executescript(
                "BEGIN;"
                + MIGRATIONS[version - 1]
                + f"INSERT INTO schema_version (version) VALUES ({version});"
                + "COMMIT;"
            )
    return found


class SqliteHistory:
    """Messages in SQLite, ``max_per_room`` kept per room, oldest trimmed."""

    def __init__(self, path: str, max_per_room: int):
        self._owner = _own_the_file(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (the
            # OS holds the WAL pages); only a power cut can lose the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # A deleted message's text is overwritten in the file, not just
            # unlinked from it.
            self._db.execute("PRAGMA secure_delete=ON")
            self.migrated_from = migrate(self._db)
        except (sqlite3.Error, HistoryError) as exc:
            os.close(self._owner)
            if isinstance(exc, HistoryError):
                raise
            raise HistoryError(f"cannot open the database {path!r}: {exc}") from None
        self.connection = self._db
        self._max = max_per_room
        self._last: dict[str, int] = {}
        self._epoch: str | None = None
        self._pending: list[StoredMessage] = []
        self._first_pending: dict[str, int] = {}  # room -> its oldest pending id
        self._pending_by_client: dict[tuple[str, str], StoredMessage] = {}

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def append(self, draft: Draft) -> StoredMessage:
        stored = draft.with_id(self.last_id(draft.room) + 1)
        self._last[draft.room] = stored.id
        self._pending.append(stored)
        self._first_pending.setdefault(stored.room, stored.id)
        if stored.client_id is not None:
            self._pending_by_client[(stored.user_id, stored.client_id)] = stored
        return stored

    def flush(self) -> None:
        """Write every pending message in one transaction.

        Raises:
            HistoryError: the write failed; nothing of the batch was stored and
                the batch is dropped (its ids stay used).
        """
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._pending_by_client.clear()
        self._first_pending.clear()
        rooms = {m.room: self._last[m.room] for m in batch}
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(_INSERT, [_values(m) for m in batch])
                self._db.executemany(_SET_LAST, rooms.items())
                trimmed = [
                    (room, kept_above(last, self._max))
                    for room, last in rooms.items()
                    if last > self._max
                ]
                self._db.executemany(_TRIM, trimmed)
                self._db.executemany(_TRIM_REACTIONS, trimmed)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot store {len(batch)} messages: {exc}") from None

    def is_pending(self, message: StoredMessage) -> bool:
        return message.id >= self._first_pending.get(message.room, message.id + 1)

    def _pending_in(
        self, room: str, above: int, below: float = float("inf")
    ) -> list[StoredMessage]:
        """Pending messages of ``room`` with ``above < id < below``, oldest
        first (a pending message's ``newest_id`` is above every written id)."""
        if room not in self._first_pending:
            return []
        return [m for m in self._pending if m.room == room and above < m.id < below]

    def _query(
        self, sql: str, params: tuple[object, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of a read; a failed read is a HistoryError, like a failed write."""
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read history: {exc}") from None

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return []
        floor = kept_above(self.last_id(room), self._max)
        after = max(after_id, floor)
        # New messages by the primary key, older ones changed since by the
        # revision index; both in their current state.
        rows = self._query(
            f"SELECT {_COLUMNS} FROM ("
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id > ? "
            "UNION ALL "
            # Named: without statistics SQLite would scan the ids instead.
            f"SELECT {_COLUMNS} FROM messages INDEXED BY messages_by_rev "
            "WHERE room = ? AND rev > ? AND id > ? AND id <= ?"
            ") ORDER BY max(id, coalesce(rev, 0)) LIMIT ?",
            (room, after, room, after_id, floor, after, limit),
        )
        pending = self._pending_in(room, floor)
        found = [_row(row) for row in rows]
        found += [m for m in pending if m.newest_id > after_id]
        found.sort(key=lambda m: m.newest_id)
        return found[:limit]

    def after(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return []
        after = max(after_id, kept_above(self.last_id(room), self._max))
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (room, after, limit),
        )
        found = [_row(row) for row in rows]
        # Pending ids are above every written one.
        return found + self._pending_in(room, after)[: limit - len(found)]

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        last = self.last_id(room)
        bound = before_id if before_id is not None else last + 1
        newest = self._pending_in(room, 0, bound)[-(limit + 1) :]
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id < ? AND id > ? "
            "ORDER BY id DESC LIMIT ?",
            (room, bound, kept_above(last, self._max), limit + 1 - len(newest)),
        )
        found = [_row(row) for row in reversed(rows)] + newest
        more = len(found) > limit
        return found[-limit:] if limit else [], more

    def get(self, room: str, message_id: int) -> StoredMessage | None:
        if message_id >= self._first_pending.get(room, message_id + 1):
            pending = self._pending_in(room, message_id - 1, message_id + 1)
            return pending[0] if pending else None
        floor = kept_above(self.last_id(room), self._max)
        if message_id <= floor:
            return None
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id = ?",
            (room, message_id),
        )
        return _row(rows[0]) if rows else None

    def change(
        self,
        current: StoredMessage,
        text: str | None,
        at: int,
        by: dict[str, str] | None = None,
    ) -> StoredMessage:
        """Change a message: one still pending is changed where it waits
        (written by the next flush); a written one is rewritten at once, in a
        transaction of its own, so the change is in the file before anyone
        hears of it.

        Raises:
            StaleMessage: ``current`` is not the message as stored.
            HistoryError: the write failed; nothing changed.
        """
        room = current.room
        if self.get(room, current.id) != current:
            raise StaleMessage(f"message {current.id} changed meanwhile")
        rev = self.last_id(room) + 1
        changed = current.changed(text, at, rev)
        if self.is_pending(current):
            if changed.deleted and current.reactions:
                # Its reaction rows were written at once: they go at once.
                try:
                    self._db.execute(
                        "DELETE FROM reactions WHERE room = ? AND id = ?",
                        (room, current.id),
                    )
                except sqlite3.Error as exc:
                    raise HistoryError(f"cannot change a message: {exc}") from None
            self._pending = [changed if m == current else m for m in self._pending]
            if changed.client_id is not None:
                key = (changed.user_id, changed.client_id)
                self._pending_by_client[key] = changed
            self._last[room] = rev
            return changed
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "UPDATE messages SET text = ?, edited = ?, deleted = ?, rev = ?, "
                    "attachment = ?, reactions = ? WHERE room = ? AND id = ?",
                    (
                        changed.text,
                        changed.edited,
                        changed.deleted,
                        rev,
                        _attachment_json(changed.attachment),
                        _reactions_column(changed),
                        room,
                        current.id,
                    ),
                )
                if changed.deleted:
                    self._db.execute(
                        "DELETE FROM reactions WHERE room = ? AND id = ?",
                        (room, current.id),
                    )
                self._write_last(room, rev)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot change a message: {exc}") from None
        self._last[room] = rev
        return changed

    def _write_last(self, room: str, last: int) -> None:
        """Inside a transaction: the room's new last id, and the trim it brings."""
        self._db.execute(_SET_LAST, (room, last))
        floor = kept_above(last, self._max)
        self._db.execute(_TRIM, (room, floor))
        self._db.execute(_TRIM_REACTIONS, (room, floor))

    def react(
        self, room: str, message_id: int, emoji: str, user: tuple[str, str], at: int
    ) -> tuple[StoredMessage, bool]:
        """Toggle a reaction: its row is written (or deleted) at once with the
        message's new ``rev`` and shown reactions, in one transaction. A
        message still pending is changed where it waits (its row is written
        by the next flush), its reaction row at once.

        Raises:
            ReactionRefused: no such message, deleted, or past a bound.
            HistoryError: the write failed; nothing changed.
        """
        current = self.get(room, message_id)
        if current is None:
            raise ReactionRefused("gone")
        if current.deleted:
            raise ReactionRefused("deleted")
        entries = [
            (row[0], row[1], row[2], row[3])
            for row in self._query(
                "SELECT emoji, user_id, name, rev FROM reactions "
                "WHERE room = ? AND id = ?",
                (room, message_id),
            )
        ]
        user_id, name = user
        present = any(e == emoji and uid == user_id for e, uid, _, _ in entries)
        same = sum(1 for e, *_ in entries if e == emoji)
        refusal = toggle_refusal(len({e for e, *_ in entries}), same or None, present)
        if refusal is not None:
            raise ReactionRefused(refusal)
        rev = self.last_id(room) + 1
        if present:
            entries = [x for x in entries if (x[0], x[1]) != (emoji, user_id)]
        else:
            entries.append((emoji, user_id, name, rev))
        changed = replace(current, rev=rev, reactions=summarize(entries))
        pending = self.is_pending(current)
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if present:
                    self._db.execute(
                        "DELETE FROM reactions WHERE room = ? AND id = ? "
                        "AND emoji = ? AND user_id = ?",
                        (room, message_id, emoji, user_id),
                    )
                else:
                    self._db.execute(
                        "INSERT INTO reactions (room, id, emoji, user_id, name, at, "
                        "rev) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (room, message_id, emoji, user_id, name, at, rev),
                    )
                if not pending:
                    self._db.execute(
                        "UPDATE messages SET rev = ?, reactions = ? "
                        "WHERE room = ? AND id = ?",
                        (rev, _reactions_column(changed), room, message_id),
                    )
                self._write_last(room, rev)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot store a reaction: {exc}") from None
        self._last[room] = rev
        if pending:
            self._pending = [changed if m == current else m for m in self._pending]
            if changed.client_id is not None:
                key = (changed.user_id, changed.client_id)
                self._pending_by_client[key] = changed
        return changed, not present

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        pending = self._pending_by_client.get((user_id, client_id))
        if pending is not None:
            return pending
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE user_id = ? AND client_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (user_id, client_id),
        )
        return _row(rows[0]) if rows else None

    def last_id(self, room: str) -> int:
        last = self._last.get(room)
        if last is None:
            rows = self._query("SELECT last_id FROM rooms WHERE name = ?", (room,))
            if not rows:
                # Not cached: anyone can ask about any number of rooms that
                # do not exist. A room is cached once it has messages.
                return 0
            last = self._last[room] = rows[0][0]
        return last

    def rooms(self) -> list[str]:
        return [row[0] for row in self._query("SELECT name FROM rooms ORDER BY name")]

    def epoch(self) -> str:
        if self._epoch is None:
            rows = self._query("SELECT value FROM meta WHERE key = 'epoch'")
            self._epoch = rows[0][0]
        return self._epoch

    def problem(self) -> str | None:
        """Write and commit one tiny row: a locked, read-only or full disk fails."""
        # No waiting: a busy wait here would stall the whole event loop.
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE probe SET written = ? WHERE id = 1", (time.time(),)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            return str(exc)
        finally:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return None

    def close(self) -> None:
        try:
            self.flush()
            self._db.close()
        finally:
            os.close(self._owner)


def _values(message: StoredMessage) -> tuple[object, ...]:
    """A message as the columns of ``_COLUMNS``."""
    return (
        message.id,
        message.room,
        message.user_id,
        message.name,
        message.color,
        message.text,
        message.ts,
        message.client_id,
        message.edited,
        message.deleted,
        message.rev,
        message.reply_to,
        _attachment_json(message.attachment),
        _reactions_column(message),
    )


def _attachment_json(attachment: Attachment | None) -> str | None:
    return None if attachment is None else json.dumps(attachment.to_wire())


def _reactions_column(message: StoredMessage) -> str | None:
    """A message's reactions as shown, as the JSON its row keeps (None: none)."""
    if not message.reactions:
        return None
    return orjson.dumps([r.to_wire() for r in message.reactions]).decode()


def _row(row: tuple[Any, ...]) -> StoredMessage:
    """A message from the columns of ``_COLUMNS``."""
    *fields, deleted, rev, reply_to, attachment, reactions = row
    return StoredMessage(
        *fields,
        bool(deleted),
        rev,
        reply_to,
        attachment=(
            Attachment.from_wire(json.loads(attachment)) if attachment else None
        ),
        reactions=reactions_from_wire(orjson.loads(reactions)) if reactions else (),
    )


class SqliteNames:
    """Name reservations in the history file's ``names`` table.

    Args:
        db: the history store's connection (one file, one writer).
    """

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def holder(self, name_key: str) -> tuple[str, float] | None:
        try:
            row = self._db.execute(
                "SELECT user_id, last_used FROM names WHERE name_key = ?", (name_key,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read a name reservation: {exc}") from None
        return (row[0], row[1]) if row else None

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        # Rare (a connect or a rename) and small: written at once, not batched.
        try:
            self._db.execute(
                "INSERT INTO names (name_key, user_id, last_used) VALUES (?, ?, ?) "
                "ON CONFLICT (name_key) DO UPDATE SET user_id = excluded.user_id, "
                "last_used = excluded.last_used",
                (name_key, user_id, now),
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot reserve a name: {exc}") from None

    def release(self, name_key: str, user_id: str) -> None:
        try:
            self._db.execute(
                "DELETE FROM names WHERE name_key = ? AND user_id = ?",
                (name_key, user_id),
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot release a name: {exc}") from None


def _own_the_file(path: str) -> int:
    """Lock ``path`` for this process's life: ids are handed out from a
    per-process cache, so two processes writing one file would give the same
    ids twice. Returns the descriptor that holds the lock.

    flock, not SQLite's own fcntl locks: the two do not interact, so an
    operator's ``sqlite3 chat.db ".backup copy.db"`` still works meanwhile.

    Raises:
        HistoryError: another process holds the file, or it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise HistoryError(
            f"cannot open the database {path!r}: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise HistoryError(
            f"the database {path!r} is in use by another chat process; "
            "run one process per file (or share through --redis)"
        ) from None
    return fd
