"""Accounts in the history's SQLite file (tables from the migration
"accounts, invites, sessions" in chatcore/history/sqlite.py).

Each change is one statement or one ``BEGIN IMMEDIATE`` transaction, written
at once: accounts change rarely, and ``python chat.py invite`` writes to the
same file while the server runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chatcore.accounts import (
    INVITES_OPEN_MAX,
    SESSION_IDLE_MAX,
    SESSIONS_PER_ACCOUNT,
    Account,
    Invite,
    InviteGone,
    NameTaken,
    Session,
    TooManyInvites,
)
from chatcore.history import HistoryError

_SESSION = "id, account_id, created, last_seen, token_hash"
_COUNT_ENDED = (
    "INSERT INTO meta (key, value) VALUES ('sessions_ended', '1') "
    "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
)


def _session(row: Any) -> Session:
    return Session(row[0], row[1], row[2], row[3], row[4])


class SqliteAccounts:
    """``AccountStore`` on a connection opened with ``isolation_level=None``."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot {what}: {exc}") from None
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise HistoryError(f"cannot {what}: {exc}") from None

    def _query(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot {what}: {exc}") from None

    def count(self) -> int:
        return self._query("count the accounts", "SELECT COUNT(*) FROM accounts")[0][0]

    def _account_where(self, column: str, value: str) -> Account | None:
        rows = self._query(
            "read an account",
            f"SELECT id, name, created, admin FROM accounts WHERE {column} = ?",
            (value,),
        )
        return (
            Account(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3]))
            if rows
            else None
        )

    def account(self, account_id: str) -> Account | None:
        return self._account_where("id", account_id)

    def holder(self, name_key: str) -> Account | None:
        return self._account_where("name_key", name_key)

    def _insert_account(
        self, db: sqlite3.Connection, account: Account, name_key: str
    ) -> None:
        taken = db.execute(
            "SELECT 1 FROM accounts WHERE name_key = ?", (name_key,)
        ).fetchone()
        if taken:
            raise NameTaken(f"the name '{account.name}' is taken")
        db.execute(
            "INSERT INTO accounts (id, name, name_key, created, admin) "
            "VALUES (?, ?, ?, ?, ?)",
            (account.id, account.name, name_key, account.created, int(account.admin)),
        )

    def create(
        self, name: str, name_key: str, now: float, *, admin: bool, account_id: str
    ) -> Account:
        with self._transaction("create an account") as db:
            existing = self.account(account_id)
            if existing is not None:
                return existing
            account = Account(account_id, name, now, admin)
            self._insert_account(db, account, name_key)
            return account

    def rename(self, account_id: str, name: str, name_key: str) -> None:
        with self._transaction("rename an account") as db:
            holder = db.execute(
                "SELECT id FROM accounts WHERE name_key = ?", (name_key,)
            ).fetchone()
            if holder is not None and holder[0] != account_id:
                raise NameTaken(f"the name '{name}' is taken")
            db.execute(
                "UPDATE accounts SET name = ?, name_key = ? WHERE id = ?",
                (name, name_key, account_id),
            )

    def add_invite(self, token_hash: str, invite: Invite, now: float) -> None:
        with self._transaction("store an invite") as db:
            db.execute("DELETE FROM invites WHERE expires <= ?", (now,))
            (open_now,) = db.execute("SELECT COUNT(*) FROM invites").fetchone()
            if open_now >= INVITES_OPEN_MAX:
                raise TooManyInvites()
            db.execute(
                "INSERT INTO invites (token_hash, uses_left, expires, admin) "
                "VALUES (?, ?, ?, ?)",
                (token_hash, invite.uses_left, invite.expires, int(invite.admin)),
            )

    def invite(self, token_hash: str, now: float) -> Invite | None:
        rows = self._query(
            "read an invite",
            "SELECT uses_left, expires, admin FROM invites "
            "WHERE token_hash = ? AND uses_left > 0 AND expires > ?",
            (token_hash, now),
        )
        return Invite(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    def redeem(
        self, token_hash: str, name: str, name_key: str, now: float, account_id: str
    ) -> Account:
        with self._transaction("use an invite") as db:
            invite = self.invite(token_hash, now)
            if invite is None:
                raise InviteGone("this invite has expired or has been used up")
            account = Account(account_id, name, now, invite.admin)
            self._insert_account(db, account, name_key)
            if invite.uses_left > 1:
                db.execute(
                    "UPDATE invites SET uses_left = uses_left - 1 WHERE token_hash = ?",
                    (token_hash,),
                )
            else:
                db.execute("DELETE FROM invites WHERE token_hash = ?", (token_hash,))
            return account

    def add_session(self, session: Session) -> None:
        with self._transaction("store a session") as db:
            db.execute(
                f"INSERT INTO sessions ({_SESSION}) VALUES (?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.account_id,
                    session.created,
                    session.last_seen,
                    session.token_hash,
                ),
            )
            dropped = db.execute(
                "DELETE FROM sessions WHERE account_id = ? AND token_hash NOT IN "
                "(SELECT token_hash FROM sessions WHERE account_id = ? "
                "ORDER BY created DESC, id DESC LIMIT ?)",
                (session.account_id, session.account_id, SESSIONS_PER_ACCOUNT),
            ).rowcount
            if dropped:
                db.execute(_COUNT_ENDED)

    def session(self, token_hash: str) -> Session | None:
        rows = self._query(
            "read a session",
            f"SELECT {_SESSION} FROM sessions WHERE token_hash = ?",
            (token_hash,),
        )
        return _session(rows[0]) if rows else None

    def touch(self, token_hash: str, now: float) -> None:
        self._query(
            "note a session's use",
            "UPDATE sessions SET last_seen = ? WHERE token_hash = ?",
            (now, token_hash),
        )

    def sessions(self, account_id: str) -> list[Session]:
        rows = self._query(
            "list sessions",
            f"SELECT {_SESSION} FROM sessions WHERE account_id = ? "
            "ORDER BY created, id",
            (account_id,),
        )
        return [_session(row) for row in rows]

    def revoke(self, account_id: str, session_id: str) -> Session | None:
        with self._transaction("end a session") as db:
            rows = db.execute(
                "DELETE FROM sessions WHERE account_id = ? AND id = ? "
                f"RETURNING {_SESSION}",
                (account_id, session_id),
            ).fetchall()
            if rows:
                db.execute(_COUNT_ENDED)
        return _session(rows[0]) if rows else None

    def end(self, token_hash: str) -> None:
        with self._transaction("end a session") as db:
            gone = db.execute(
                "DELETE FROM sessions WHERE token_hash = ?", (token_hash,)
            ).rowcount
            if gone:
                db.execute(_COUNT_ENDED)

    def ended(self) -> int:
        rows = self._query(
            "count ended sessions",
            "SELECT value FROM meta WHERE key = 'sessions_ended'",
        )
        return int(rows[0][0]) if rows else 0

    def live(self, token_hashes: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(token_hashes), 500):  # SQLite's variable limit
            batch = token_hashes[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._query(
                "check sessions",
                f"SELECT token_hash FROM sessions WHERE token_hash IN ({marks})",
                tuple(batch),
            )
            found.update(row[0] for row in rows)
        return found

    def add_code(self, code_hash: str, account_id: str, expires: float) -> None:
        self._query(
            "store a sign-in code",
            "INSERT INTO signin_codes (code_hash, account_id, expires) "
            "VALUES (?, ?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET code_hash = excluded.code_hash, "
            "expires = excluded.expires",
            (code_hash, account_id, expires),
        )

    def use_code(self, code_hash: str, now: float) -> str | None:
        rows = self._query(
            "use a sign-in code",
            "DELETE FROM signin_codes WHERE code_hash = ? "
            "RETURNING account_id, expires",
            (code_hash,),
        )
        return rows[0][0] if rows and rows[0][1] > now else None

    def purge(self, now: float) -> None:
        with self._transaction("purge expired invites and sessions") as db:
            db.execute(
                "DELETE FROM invites WHERE expires <= ? OR uses_left < 1", (now,)
            )
            db.execute("DELETE FROM signin_codes WHERE expires <= ?", (now,))
            db.execute(
                "DELETE FROM sessions WHERE last_seen <= ?", (now - SESSION_IDLE_MAX,)
            )
