"""Accounts in Redis, shared by every chat process; keys under the history prefix.

Keys (prefix ``chat:`` by default): ``acct:a:<id>`` (a hash: name, key,
created, admin), ``acct:names`` (name key -> account id), ``acct:inv:<hash>``
(an invite, expiring with it) and ``acct:invites`` (a sorted set of open
invites by expiry, for the bound), ``acct:s:<hash>`` (a session, expiring
after SESSION_IDLE_MAX unused), ``acct:ss:<account>`` (session id -> hash),
``acct:c:<hash>`` and ``acct:cof:<account>`` (the account's one sign-in code),
``acct:ended`` (counts sessions ended, see ``AccountStore.ended``).
Every change that reads before it writes is one Lua script: atomic across
processes.
"""

from __future__ import annotations

from typing import Any

import redis

from chatcore.accounts import (
    INVITES_OPEN_MAX,
    SESSION_IDLE_MAX,
    SESSIONS_PER_ACCOUNT,
    SIGNIN_CODE_TTL,
    Account,
    Invite,
    InviteGone,
    NameTaken,
    Session,
    TooManyInvites,
)
from chatcore.history import HistoryError

# KEYS: account, names. ARGV: id, name, key, created, admin.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 'taken' end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'key', ARGV[3],
           'created', ARGV[4], 'admin', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
return 'ok'
"""
# KEYS: account, names. ARGV: id, name, key.
_RENAME = """
local holder = redis.call('HGET', KEYS[2], ARGV[3])
if holder and holder ~= ARGV[1] then return 'taken' end
local old = redis.call('HGET', KEYS[1], 'key')
if old then redis.call('HDEL', KEYS[2], old) end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'key', ARGV[3])
return 'ok'
"""
# KEYS: invites. ARGV: now, max, hash, uses, expires, admin, invite key.
_ADD_INVITE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'full' end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[3])
redis.call('HSET', ARGV[7], 'uses', ARGV[4], 'expires', ARGV[5], 'admin', ARGV[6])
redis.call('EXPIREAT', ARGV[7], math.ceil(tonumber(ARGV[5])))
return 'ok'
"""
# KEYS: invite, account, names, invites. ARGV: id, name, key, now, hash.
_REDEEM = """
local invite = redis.call('HMGET', KEYS[1], 'uses', 'expires', 'admin')
if not invite[1] or tonumber(invite[1]) < 1 or tonumber(invite[2]) <= tonumber(ARGV[4])
then return 'gone' end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return 'taken' end
redis.call('HSET', KEYS[2], 'name', ARGV[2], 'key', ARGV[3],
           'created', ARGV[4], 'admin', invite[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
if redis.call('HINCRBY', KEYS[1], 'uses', -1) < 1 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[5])
end
return 'admin:' .. invite[3]
"""
# KEYS: session, account's sessions. ARGV: id, account, created, last_seen,
# hash, max, idle seconds, session key prefix, the ended counter.
_ADD_SESSION = """
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'account', ARGV[2],
           'created', ARGV[3], 'last_seen', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
local all = redis.call('HGETALL', KEYS[2])
local kept = {}
for i = 1, #all, 2 do
  local created = redis.call('HGET', ARGV[8] .. all[i + 1], 'created')
  if created then
    table.insert(kept, {tonumber(created), all[i], all[i + 1]})
  else
    redis.call('HDEL', KEYS[2], all[i])
  end
end
table.sort(kept, function(a, b)
  if a[1] == b[1] then return a[2] < b[2] end
  return a[1] < b[1]
end)
for i = 1, #kept - tonumber(ARGV[6]) do
  redis.call('DEL', ARGV[8] .. kept[i][3])
  redis.call('HDEL', KEYS[2], kept[i][2])
  redis.call('INCR', ARGV[9])
end
return #kept
"""
# KEYS: account's sessions, the ended counter. ARGV: session id, session key prefix.
_REVOKE = """
local hash = redis.call('HGET', KEYS[1], ARGV[1])
if not hash then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local fields = redis.call('HMGET', ARGV[2] .. hash, 'created', 'last_seen')
if redis.call('DEL', ARGV[2] .. hash) == 0 then return false end
redis.call('INCR', KEYS[2])
return {hash, fields[1], fields[2]}
"""
# KEYS: session, the ended counter. ARGV: prefix of the accounts' session lists.
_END = """
local owner = redis.call('HMGET', KEYS[1], 'account', 'id')
if redis.call('DEL', KEYS[1]) == 1 then redis.call('INCR', KEYS[2]) end
if owner[1] then redis.call('HDEL', ARGV[1] .. owner[1], owner[2]) end
return 1
"""
# KEYS: code, account's code. ARGV: account, expires, ttl ms, code key prefix, hash.
_ADD_CODE = """
local old = redis.call('GET', KEYS[2])
if old then redis.call('DEL', ARGV[4] .. old) end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[3])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisAccounts:
    """``AccountStore`` in Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "chat:"):
        self.client = client
        self.base = prefix + "acct:"
        self._create = client.register_script(_CREATE)
        self._rename = client.register_script(_RENAME)
        self._add_invite = client.register_script(_ADD_INVITE)
        self._redeem = client.register_script(_REDEEM)
        self._add_session = client.register_script(_ADD_SESSION)
        self._revoke = client.register_script(_REVOKE)
        self._end = client.register_script(_END)
        self._add_code = client.register_script(_ADD_CODE)

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.base}{kind}{name}"

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            raise HistoryError(f"cannot {what} in Redis: {exc}") from None

    def count(self) -> int:
        return int(
            self._call("count the accounts", self.client.hlen, self._key("names"))
        )

    def account(self, account_id: str) -> Account | None:
        fields = self._call(
            "read an account",
            self.client.hmget,
            self._key("a:", account_id),
            ["name", "created", "admin"],
        )
        if fields[0] is None:
            return None
        return Account(
            account_id, _text(fields[0]), float(fields[1]), _text(fields[2]) == "1"
        )

    def holder(self, name_key: str) -> Account | None:
        account_id = self._call(
            "read a name", self.client.hget, self._key("names"), name_key
        )
        return self.account(_text(account_id)) if account_id else None

    def create(
        self, name: str, name_key: str, now: float, *, admin: bool, account_id: str
    ) -> Account:
        result = _text(
            self._call(
                "create an account",
                self._create,
                keys=[self._key("a:", account_id), self._key("names")],
                args=[account_id, name, name_key, repr(now), "1" if admin else "0"],
            )
        )
        if result == "taken":
            raise NameTaken(f"the name '{name}' is taken")
        account = self.account(account_id)
        if account is None:  # pragma: no cover - written just now
            raise HistoryError("the account vanished as it was created")
        return account

    def rename(self, account_id: str, name: str, name_key: str) -> None:
        result = _text(
            self._call(
                "rename an account",
                self._rename,
                keys=[self._key("a:", account_id), self._key("names")],
                args=[account_id, name, name_key],
            )
        )
        if result == "taken":
            raise NameTaken(f"the name '{name}' is taken")

    def add_invite(self, token_hash: str, invite: Invite, now: float) -> None:
        result = _text(
            self._call(
                "store an invite",
                self._add_invite,
                keys=[self._key("invites")],
                args=[
                    repr(now),
                    INVITES_OPEN_MAX,
                    token_hash,
                    invite.uses_left,
                    repr(invite.expires),
                    "1" if invite.admin else "0",
                    self._key("inv:", token_hash),
                ],
            )
        )
        if result == "full":
            raise TooManyInvites()

    def invite(self, token_hash: str, now: float) -> Invite | None:
        fields = self._call(
            "read an invite",
            self.client.hmget,
            self._key("inv:", token_hash),
            ["uses", "expires", "admin"],
        )
        if fields[0] is None:
            return None
        invite = Invite(int(fields[0]), float(fields[1]), _text(fields[2]) == "1")
        return invite if invite.uses_left > 0 and invite.expires > now else None

    def redeem(
        self, token_hash: str, name: str, name_key: str, now: float, account_id: str
    ) -> Account:
        result = _text(
            self._call(
                "use an invite",
                self._redeem,
                keys=[
                    self._key("inv:", token_hash),
                    self._key("a:", account_id),
                    self._key("names"),
                    self._key("invites"),
                ],
                args=[account_id, name, name_key, repr(now), token_hash],
            )
        )
        if result == "gone":
            raise InviteGone("this invite has expired or has been used up")
        if result == "taken":
            raise NameTaken(f"the name '{name}' is taken")
        return Account(account_id, name, now, result == "admin:1")

    def add_session(self, session: Session) -> None:
        self._call(
            "store a session",
            self._add_session,
            keys=[
                self._key("s:", session.token_hash),
                self._key("ss:", session.account_id),
            ],
            args=[
                session.id,
                session.account_id,
                repr(session.created),
                repr(session.last_seen),
                session.token_hash,
                SESSIONS_PER_ACCOUNT,
                SESSION_IDLE_MAX,
                self._key("s:"),
                self._key("ended"),
            ],
        )

    def session(self, token_hash: str) -> Session | None:
        fields = self._call(
            "read a session",
            self.client.hmget,
            self._key("s:", token_hash),
            ["id", "account", "created", "last_seen"],
        )
        if fields[0] is None:
            return None
        return Session(
            _text(fields[0]),
            _text(fields[1]),
            float(fields[2]),
            float(fields[3]),
            token_hash,
        )

    def touch(self, token_hash: str, now: float) -> None:
        key = self._key("s:", token_hash)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, "last_seen", repr(now))
        pipe.expire(key, SESSION_IDLE_MAX)
        # HSET on a session revoked meanwhile would bring back a husk.
        pipe.hexists(key, "id")
        _, _, exists = self._call("note a session's use", pipe.execute)
        if not exists:
            self._call("note a session's use", self.client.delete, key)

    def sessions(self, account_id: str) -> list[Session]:
        ids = self._call(
            "list sessions", self.client.hgetall, self._key("ss:", account_id)
        )
        found = [self.session(_text(token_hash)) for token_hash in ids.values()]
        return sorted(
            (s for s in found if s is not None and s.account_id == account_id),
            key=lambda s: (s.created, s.id),
        )

    def revoke(self, account_id: str, session_id: str) -> Session | None:
        result = self._call(
            "end a session",
            self._revoke,
            keys=[self._key("ss:", account_id), self._key("ended")],
            args=[session_id, self._key("s:")],
        )
        if not result:
            return None
        token_hash, created, last_seen = (_text(v) for v in result)
        return Session(
            session_id, account_id, float(created), float(last_seen), token_hash
        )

    def end(self, token_hash: str) -> None:
        self._call(
            "end a session",
            self._end,
            keys=[self._key("s:", token_hash), self._key("ended")],
            args=[self._key("ss:")],
        )

    def ended(self) -> int:
        count = self._call("count ended sessions", self.client.get, self._key("ended"))
        return int(count or 0)

    def live(self, token_hashes: list[str]) -> set[str]:
        pipe = self.client.pipeline(transaction=False)
        for token_hash in token_hashes:
            pipe.exists(self._key("s:", token_hash))
        found = self._call("check sessions", pipe.execute)
        return {h for h, exists in zip(token_hashes, found, strict=True) if exists}

    def add_code(self, code_hash: str, account_id: str, expires: float) -> None:
        # Redis drops it a little after it stops working (use_code checks).
        ttl_ms = (SIGNIN_CODE_TTL + 60) * 1000
        self._call(
            "store a sign-in code",
            self._add_code,
            keys=[self._key("c:", code_hash), self._key("cof:", account_id)],
            args=[account_id, repr(expires), ttl_ms, self._key("c:"), code_hash],
        )

    def use_code(self, code_hash: str, now: float) -> str | None:
        held = self._call(
            "use a sign-in code", self.client.getdel, self._key("c:", code_hash)
        )
        if held is None:
            return None
        account_id, _, expires = _text(held).partition(" ")
        return account_id if float(expires) > now else None

    def purge(self, now: float) -> None:
        self._call(
            "purge expired invites",
            self.client.zremrangebyscore,
            self._key("invites"),
            "-inf",
            now,
        )
