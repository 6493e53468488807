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
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from chatcore.history import Draft, HistoryError, StoredMessage

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
)
SCHEMA_VERSION = len(MIGRATIONS)
# How long a write waits for another process's lock (a backup, say) before it
# fails. The wait blocks the event loop, so it is kept short; a write that
# fails is reported to its senders, never silently dropped.
BUSY_TIMEOUT_MS = 1000

_COLUMNS = "id, room, user_id, name, color, text, ts, client_id"
_INSERT = f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


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
        rooms = {m.room: m.id for m in batch}
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    _INSERT,
                    [
                        (
                            m.id,
                            m.room,
                            m.user_id,
                            m.name,
                            m.color,
                            m.text,
                            m.ts,
                            m.client_id,
                        )
                        for m in batch
                    ],
                )
                self._db.executemany(
                    "INSERT INTO rooms (name, last_id) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id",
                    rooms.items(),
                )
                self._db.executemany(
                    "DELETE FROM messages WHERE room = ? AND id <= ?",
                    [
                        (room, last - self._max)
                        for room, last in rooms.items()
                        if last > self._max
                    ],
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot store {len(batch)} messages: {exc}") from None

    def is_pending(self, message: StoredMessage) -> bool:
        return message.id >= self._first_pending.get(message.room, message.id + 1)

    def _pending_in(
        self, room: str, above: int, below: float = float("inf")
    ) -> list[StoredMessage]:
        """Pending messages of ``room`` with ``above < id < below``, oldest first."""
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
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (room, after_id, limit),
        )
        found = [StoredMessage(*row) for row in rows]
        # Pending ids are above every written one.
        found += self._pending_in(room, after_id)[: limit - len(found)]
        return found

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        bound = before_id if before_id is not None else self.last_id(room) + 1
        newest = self._pending_in(room, 0, bound)[-(limit + 1) :]
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (room, bound, limit + 1 - len(newest)),
        )
        found = [StoredMessage(*row) for row in reversed(rows)] + newest
        more = len(found) > limit
        return found[-limit:] if limit else [], more

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        pending = self._pending_by_client.get((user_id, client_id))
        if pending is not None:
            return pending
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE user_id = ? AND client_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (user_id, client_id),
        )
        return StoredMessage(*rows[0]) if rows else None

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
