"""History in Redis: one stream per room, shared by every chat process.

A Lua script stores a message in one atomic step: it takes the room's next
id (INCR), appends the message to the room's stream under the stream id
``<id>-0`` (so ``since`` and ``before`` are XRANGE and XREVRANGE), and
PUBLISHes it on the chat's channel. Ids are therefore ordered per room and
never reused across processes, and the channel carries every room's messages
in id order. There is nothing to flush: a message is stored when ``append``
returns, and ``append`` raises HistoryError when Redis cannot be reached.

Streams are trimmed approximately (``MAXLEN ~``, cheap for Redis); reads
never look further back than ``max_per_room`` ids, so what is kept is exact
for clients.

Keys, under a prefix (``chat:`` by default): ``epoch`` (when this Redis
began keeping history; see ``_EPOCH``), ``room:<room>:last`` (the id
counter, created at the epoch, which also numbers edits and deletes),
``room:<room>:log`` (the stream: messages never changed, under their id, and
one entry per change under its revision id, naming the message),
``room:<room>:changed`` (a hash: a changed message's id to
``"<rev> <current state>"``; a deleted message's text is nowhere else),
``room:<room>:changes`` (the changed ids, sorted, to trim the hash),
``reactions:<room>:all`` and ``reactions:<room>:shown`` (hashes: a message's
reactions, whole and as shown; see ``_REACT``), ``rooms``
(a set of names), ``sent:<user>:<client_id>`` (idempotency, kept CLIENT_ID_TTL seconds),
``names`` (a hash of reserved names) and the channel ``events``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatcore import protocol
from chatcore.fanout import MESSAGE_MARK
from chatcore.history import (
    Draft,
    HistoryError,
    StaleMessage,
    StoredMessage,
    from_wire,
)
from chatcore.reactions import (
    EMOJI_PER_MESSAGE_MAX,
    USERS_LISTED,
    USERS_PER_EMOJI_MAX,
    ReactionRefused,
)

CLIENT_ID_TTL = 24 * 3600  # seconds a client_id is remembered for resends
DEFAULT_PREFIX = "chat:"
POOL_MAX = 64  # connections to Redis per process, shared by every greenlet
POOL_WAIT = 5.0  # seconds a greenlet waits for a free one before failing
# A message frame with this id is split around it: Lua puts the real id in.
_ID_SLOT = -7

# The epoch: "<id> <base>", written when this Redis starts keeping the chat's
# history; <id> is Redis's clock in microseconds then. A room counter that
# does not exist starts at <base>: 0 on a new Redis, but Redis's clock when a
# process that knew an earlier epoch finds it gone (Redis restarted without
# its data): ids then stay above every id handed out before, as long as a
# room averaged under one message per microsecond. ARGV[8] is the epoch the
# caller knew ('' for none).
_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  local now = redis.call('TIME')
  local id = now[1] .. string.format('%06d', tonumber(now[2]))
  local base = '0'
  if ARGV[8] and ARGV[8] ~= '' then base = id end
  epoch = id .. ' ' .. base
  redis.call('SET', KEYS[1], epoch)
end
"""
# Changed messages whose ids fell out of the newest max_per_room leave the
# hash of changed states, and their reactions go (their stream entries are
# trimmed by MAXLEN). Only a changed message has reactions: a reaction
# changes it.
_TRIM_CHANGED = """
local function trim_changed(changed, changes, floor, reactions, shown)
  local below = string.format('%.0f', floor)
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', changes, '-inf', below)) do
    redis.call('HDEL', changed, gone)
    redis.call('HDEL', reactions, gone)
    redis.call('HDEL', shown, gone)
  end
  redis.call('ZREMRANGEBYSCORE', changes, '-inf', below)
end
"""
# KEYS: epoch, last, log, rooms, changed, changes, reactions, shown
# reactions, and sent:<user>:<client_id> when the message has a client_id.
_APPEND = (
    _EPOCH
    + _TRIM_CHANGED
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], string.match(epoch, ' (%d+)$'))
end
local id = string.format('%.0f', redis.call('INCR', KEYS[2]))
local frame = ARGV[2] .. id .. ARGV[3]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id .. '-0', 'f', frame)
-- What goes out may also carry the quote of the message it answers, which
-- is never stored (ARGV[9], the frame's tail with it).
if ARGV[9] and ARGV[9] ~= '' then frame = ARGV[2] .. id .. ARGV[9] end
redis.call('SADD', KEYS[4], ARGV[1])
trim_changed(KEYS[5], KEYS[6], tonumber(id) - tonumber(ARGV[4]), KEYS[7], KEYS[8])
if KEYS[9] then
  redis.call('SET', KEYS[9], ARGV[1] .. ' ' .. id, 'EX', ARGV[6])
end
redis.call('PUBLISH', ARGV[5], ARGV[7] .. id .. ' ' .. ARGV[1] .. ' ' .. frame)
return id
"""
)
_EPOCH_GET = _EPOCH + "return epoch"
# An edit or a delete. KEYS: last, log, changed, changes, reactions, shown
# reactions. ARGV: the message id, its rev as read ('' for none), the new
# state split around its rev, the event frame split around its rev,
# max_per_room, the channel, the mark, the room, '1' for a delete (its
# reactions go too). Returns the new rev, or 0 when the message is not as read (changed
# or trimmed meanwhile). The message's own entry is deleted from the stream:
# its current state (and nothing else of its text) lives in ``changed``;
# the stream gets an entry at the rev that points to it, for ``since``.
_CHANGE = (
    _TRIM_CHANGED
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = tonumber(ARGV[1])
local max = tonumber(ARGV[7])
if id > last or id <= last - max then return 0 end
local held = redis.call('HGET', KEYS[3], ARGV[1])
local now = ''
if held then
  now = string.match(held, '^(%d+) ')
elseif #redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', ARGV[1] .. '-0') == 0 then
  return 0
end
if now ~= ARGV[2] then return 0 end
local rev = string.format('%.0f', redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[3], ARGV[1], rev .. ' ' .. ARGV[3] .. rev .. ARGV[4])
redis.call('ZADD', KEYS[4], id, ARGV[1])
redis.call('XDEL', KEYS[2], ARGV[1] .. '-0')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], rev .. '-0', 'c', ARGV[1])
if ARGV[11] == '1' then
  redis.call('HDEL', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[6], ARGV[1])
end
trim_changed(KEYS[3], KEYS[4], tonumber(rev) - max, KEYS[5], KEYS[6])
local frame = ARGV[5] .. rev .. ARGV[6]
redis.call('PUBLISH', ARGV[8], ARGV[9] .. rev .. ' ' .. ARGV[10] .. ' ' .. frame)
return rev
"""
)
# A reaction toggled. KEYS: as ``_CHANGE``. ARGV: the message id, the emoji,
# the user's id and name, max_per_room, the channel, the mark, the room, the
# ``reacted`` frame up to its ``added``, the bounds (emoji per message, users per
# emoji, users listed). A message's reactions (``reactions``: id ->
# [[emoji, [[user id, name, seq], ...]], ...], seq the rev that added it) and
# as shown (``shown``: id -> the JSON list of the ``reactions`` field)
# change with its rev, which moves its state into ``changed`` as an edit
# does. Returns {'ok', the message now, 'true' if added} or {reason} (see
# ReactionRefused).
_REACT = (
    _TRIM_CHANGED
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = tonumber(ARGV[1])
local max = tonumber(ARGV[5])
if id > last or id <= last - max then return {'gone'} end
local held = redis.call('HGET', KEYS[3], ARGV[1])
local current
if held then
  current = string.match(held, '^%d+ (.*)$')
else
  local entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', ARGV[1] .. '-0')
  if #entries == 0 or entries[1][2][1] ~= 'f' then return {'gone'} end
  current = entries[1][2][2]
end
if string.find(current, '"deleted":true', 1, true) then return {'deleted'} end
local all = {}
local raw = redis.call('HGET', KEYS[5], ARGV[1])
if raw then all = cjson.decode(raw) end
local found, at = nil, nil
for i, entry in ipairs(all) do
  if entry[1] == ARGV[2] then
    found = i
    for j, user in ipairs(entry[2]) do
      if user[1] == ARGV[3] then at = j end
    end
  end
end
if not at then
  if not found and #all >= tonumber(ARGV[10]) then return {'emoji_full'} end
  if found and #all[found][2] >= tonumber(ARGV[11]) then return {'users_full'} end
end
local rev = string.format('%.0f', redis.call('INCR', KEYS[1]))
if at then
  table.remove(all[found][2], at)
  if #all[found][2] == 0 then table.remove(all, found) end
  table.sort(all, function(a, b)
    return tonumber(a[2][1][3]) < tonumber(b[2][1][3])
  end)
elseif found then
  table.insert(all[found][2], {ARGV[3], ARGV[4], rev})
else
  table.insert(all, {ARGV[2], {{ARGV[3], ARGV[4], rev}}})
end
local parts = {}
for _, entry in ipairs(all) do
  local users = {}
  for i = 1, math.min(#entry[2], tonumber(ARGV[12])) do
    local user = entry[2][i]
    table.insert(users, '{"id":' .. cjson.encode(user[1]) ..
      ',"name":' .. cjson.encode(user[2]) .. '}')
  end
  table.insert(parts, '{"emoji":' .. cjson.encode(entry[1]) .. ',"count":' ..
    #entry[2] .. ',"users":[' .. table.concat(users, ',') .. ']}')
end
local shown = '[' .. table.concat(parts, ',') .. ']'
if #all == 0 then
  redis.call('HDEL', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[6], ARGV[1])
else
  redis.call('HSET', KEYS[5], ARGV[1], cjson.encode(all))
  redis.call('HSET', KEYS[6], ARGV[1], shown)
end
local state, n = string.gsub(current, ',"rev":%d+', ',"rev":' .. rev, 1)
if n == 0 then state = string.sub(current, 1, -2) .. ',"rev":' .. rev .. '}' end
redis.call('HSET', KEYS[3], ARGV[1], rev .. ' ' .. state)
redis.call('ZADD', KEYS[4], id, ARGV[1])
redis.call('XDEL', KEYS[2], ARGV[1] .. '-0')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], rev .. '-0', 'c', ARGV[1])
trim_changed(KEYS[3], KEYS[4], tonumber(rev) - max, KEYS[5], KEYS[6])
local added = 'true'
if at then added = 'false' end
local frame = ARGV[9] .. added .. ',"rev":' .. rev .. ',"reactions":' .. shown .. '}'
redis.call('PUBLISH', ARGV[6], ARGV[7] .. rev .. ' ' .. ARGV[8] .. ' ' .. frame)
if #all > 0 then state = string.sub(state, 1, -2) .. ',"reactions":' .. shown .. '}' end
return {'ok', state, added}
"""
)
# Reads clamp to the ids still kept: max_per_room below the newest. (Ids are
# formatted with %.0f: Lua's own number-to-text would write 1.7e+15.)
# A changed message's current state: "<rev> <message JSON>" in ``changed``.
# Unchanged messages read from the stream ({id, json} pairs, in order) and
# the ids of changed ones (their state is in the hash), merged in that order.
_MERGE = """
local function merge(plain, changed, want, newest_first)
  local out, i, j = {}, 1, 1
  while #out < want and (i <= #plain or j <= #changed) do
    local take_plain = j > #changed
    if not take_plain and i <= #plain then
      local id = tonumber(changed[j])
      if newest_first then
        take_plain = plain[i][1] > id
      else
        take_plain = plain[i][1] < id
      end
    end
    if take_plain then
      table.insert(out, plain[i][2])
      i = i + 1
    else
      table.insert(out, state(redis.call('HGET', KEYS[3], changed[j]), changed[j]))
      j = j + 1
    end
  end
  return out
end
"""
# A changed state with the message's reactions as shown (KEYS[6]) put in.
_STATE = """
local function state(held, id)
  local json = string.match(held, '^%d+ (.*)$')
  local shown = redis.call('HGET', KEYS[6], id)
  if shown then return string.sub(json, 1, -2) .. ',"reactions":' .. shown .. '}' end
  return json
end
"""
_SINCE = (
    _STATE
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = last - tonumber(ARGV[3])
local low = math.max(tonumber(ARGV[1]) + 1, floor + 1, 1)
local want = tonumber(ARGV[2])
local out = {}
while #out < want do
  local from = string.format('%.0f-0', low)
  local entries = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', want - #out)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    if fields[1] == 'f' then
      table.insert(out, fields[2])
    elseif tonumber(fields[2]) > floor then
      -- a change: the message's state, if this is still its newest change
      local held = redis.call('HGET', KEYS[3], fields[2])
      if held and string.match(held, '^(%d+) ') .. '-0' == entry[1] then
        table.insert(out, state(held, fields[2]))
      end
    end
  end
  low = tonumber(string.match(entries[#entries][1], '^(%d+)')) + 1
end
return out
"""
)
# The newest ARGV[2] messages below ARGV[1]: unchanged ones from the stream,
# changed ones from ``changed``, merged by id, newest first.
_BEFORE = (
    _STATE
    + _MERGE
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local high = last
if ARGV[1] ~= '' then high = math.min(last, tonumber(ARGV[1]) - 1) end
local low = math.max(last - tonumber(ARGV[3]) + 1, 1)
local want = tonumber(ARGV[2])
if high < low then return {} end
local plain = {}
local top = high
while #plain < want and top >= low do
  local from, to = string.format('%.0f-0', top), string.format('%.0f-0', low)
  local entries = redis.call('XREVRANGE', KEYS[2], from, to, 'COUNT', want)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    if entry[2][1] == 'f' and #plain < want then
      table.insert(plain, {tonumber(string.match(entry[1], '^(%d+)')), entry[2][2]})
    end
  end
  top = tonumber(string.match(entries[#entries][1], '^(%d+)')) - 1
end
local changed = redis.call('ZREVRANGEBYSCORE', KEYS[4],
  string.format('%.0f', high), string.format('%.0f', low), 'LIMIT', 0, want)
return merge(plain, changed, want, true)
"""
)
# The oldest ARGV[2] messages above ARGV[1], merged as in ``_BEFORE``.
_AFTER = (
    _STATE
    + _MERGE
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local low = math.max(tonumber(ARGV[1]) + 1, last - tonumber(ARGV[3]) + 1, 1)
local want = tonumber(ARGV[2])
if last < low then return {} end
local plain = {}
local bottom = low
while #plain < want and bottom <= last do
  local from = string.format('%.0f-0', bottom)
  local entries = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', want)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    if entry[2][1] == 'f' and #plain < want then
      table.insert(plain, {tonumber(string.match(entry[1], '^(%d+)')), entry[2][2]})
    end
  end
  bottom = tonumber(string.match(entries[#entries][1], '^(%d+)')) + 1
end
local changed = redis.call('ZRANGEBYSCORE', KEYS[4],
  string.format('%.0f', low), string.format('%.0f', last), 'LIMIT', 0, want)
return merge(plain, changed, want, false)
"""
)
_GET = (
    _STATE
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = tonumber(ARGV[1])
if id > last or id <= last - tonumber(ARGV[2]) then return false end
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then return state(held, ARGV[1]) end
local entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', ARGV[1] .. '-0')
if #entries == 0 or entries[1][2][1] ~= 'f' then return false end
return entries[1][2][2]
"""
)
_RELEASE = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and cjson.decode(held)[1] == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for ``url`` that fails fast: one immediate retry (a pooled
    connection may be stale after Redis restarted), short timeouts.

    At most POOL_MAX connections; a greenlet that finds them all busy waits
    for one (a thousand clients connecting at once must not fail).
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_MAX,
        timeout=POOL_WAIT,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(NoBackoff(), 1),
        **options,
    )
    return redis.Redis.from_pool(pool)


def describe(url: str) -> str:
    """The URL without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2] if sep else url


class RedisHistory:
    """Messages in Redis streams, ``max_per_room`` kept per room.

    Args:
        client: a redis-py client (see ``connect``).
        max_per_room: how many of each room's newest messages are kept.
        prefix: put before every key and the channel; lets several chats
            share one Redis database.
    """

    has_pending = False

    def __init__(
        self, client: redis.Redis, max_per_room: int, prefix: str = DEFAULT_PREFIX
    ):
        self.client = client
        self.prefix = prefix
        self.channel = prefix + "events"
        self._max = max_per_room
        self._append = client.register_script(_APPEND)
        self._epoch = client.register_script(_EPOCH_GET)
        self._known_epoch = ""  # as last read: "<id> <base>"
        self._since = client.register_script(_SINCE)
        self._before = client.register_script(_BEFORE)
        self._get = client.register_script(_GET)
        self._after = client.register_script(_AFTER)
        self._change = client.register_script(_CHANGE)
        self._react = client.register_script(_REACT)

    def _room_keys(self, room: str) -> list[str]:
        """The room's id counter, stream, changed states, changed ids,
        reactions, and reactions as shown."""
        base = f"{self.prefix}room:{room}:"
        reactions = f"{self.prefix}reactions:{room}:"
        return [
            base + "last",
            base + "log",
            base + "changed",
            base + "changes",
            reactions + "all",
            reactions + "shown",
        ]

    def append(self, draft: Draft) -> StoredMessage:
        """Store a message and publish it; return it with its id.

        Raises:
            HistoryError: Redis could not be reached or refused the write;
                then the message may or may not have been stored (a resend
                with the same ``client_id`` finds out without a duplicate).
        """
        stored = draft.with_id(_ID_SLOT)
        frame = protocol.encode("message", **stored.to_wire())
        head, slot, tail = frame.partition(str(_ID_SLOT))
        sent_tail = ""
        if draft.reply is not None:
            sent = protocol.encode("message", **stored.to_wire(), reply=draft.reply)
            sent_tail = sent.partition(str(_ID_SLOT))[2]
        keys = [
            self.prefix + "epoch",
            *self._room_keys(draft.room)[:2],
            self.prefix + "rooms",
            *self._room_keys(draft.room)[2:],
        ]  # sent:<user>:<client_id> comes ninth
        if draft.client_id is not None:
            keys.append(self._sent_key(draft.user_id, draft.client_id))
        try:
            message_id = self._append(
                keys=keys,
                args=[
                    draft.room,
                    head,
                    tail,
                    self._max,
                    self.channel,
                    CLIENT_ID_TTL,
                    MESSAGE_MARK,
                    self._known_epoch,
                    sent_tail,
                ],
            )
        except redis.RedisError as exc:
            raise HistoryError(f"Redis refused the message: {exc}") from None
        return draft.with_id(int(message_id))

    def epoch(self) -> str:
        """The id of this Redis's history: it changes when Redis loses its
        data (created on first use; see ``_EPOCH``)."""
        args = ["", "", "", "", "", "", "", self._known_epoch]
        try:
            epoch = self._epoch(keys=[self.prefix + "epoch"], args=args).decode()
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None
        self._known_epoch = epoch
        return epoch.partition(" ")[0]

    def flush(self) -> None:
        """Nothing to write: ``append`` stored the message already."""

    def is_pending(self, message: StoredMessage) -> bool:
        return False

    def since(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return []
        found = self._read(self._since, room, after_id, limit)
        return [_message(wire) for wire in found]

    def after(self, room: str, after_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return []
        found = self._read(self._after, room, after_id, limit)
        return [_message(wire) for wire in found]

    def before(
        self, room: str, before_id: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        bound = "" if before_id is None else before_id
        found = self._read(self._before, room, bound, limit + 1)
        found = [_message(wire) for wire in reversed(found)]
        return (found[-limit:] if limit else []), len(found) > limit

    def _read(self, script: Any, room: str, bound: Any, count: int) -> Any:
        try:
            return script(keys=self._room_keys(room), args=[bound, count, self._max])
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None

    def get(self, room: str, message_id: int) -> StoredMessage | None:
        try:
            wire = self._get(keys=self._room_keys(room), args=[message_id, self._max])
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None
        return _message(wire) if wire else None

    def change(
        self,
        current: StoredMessage,
        text: str | None,
        at: int,
        by: dict[str, str] | None = None,
    ) -> StoredMessage:
        """Store the change and publish its event, in one atomic step.

        Raises:
            StaleMessage: the message is no longer as ``current`` says.
            HistoryError: Redis could not be reached or refused the write.
        """
        slot = f'"rev":{_ID_SLOT}'
        # Its reactions are kept beside the state, not in it.
        draft = replace(current.changed(text, at, _ID_SLOT), reactions=())
        state_head, _, state_tail = (
            orjson.dumps(draft.to_wire()).decode().rpartition(slot)
        )
        kind, fields = draft.change_event(by)
        event_head, _, event_tail = protocol.encode(kind, **fields).partition(slot)
        try:
            rev = self._change(
                keys=self._room_keys(current.room),
                args=[
                    current.id,
                    "" if current.rev is None else current.rev,
                    state_head + '"rev":',
                    state_tail,
                    event_head + '"rev":',
                    event_tail,
                    self._max,
                    self.channel,
                    MESSAGE_MARK,
                    current.room,
                    "1" if text is None else "",
                ],
            )
        except redis.RedisError as exc:
            raise HistoryError(f"Redis refused the change: {exc}") from None
        if not rev:
            raise StaleMessage(f"message {current.id} changed meanwhile")
        return current.changed(text, at, int(rev))

    def react(
        self, room: str, message_id: int, emoji: str, user: tuple[str, str], at: int
    ) -> tuple[StoredMessage, bool]:
        """Toggle the reaction, give the message its new rev and publish the
        ``reacted`` event, in one atomic step.

        Raises:
            ReactionRefused: no such message, deleted, or past a bound.
            HistoryError: Redis could not be reached or refused the write.
        """
        by = {"id": user[0], "name": user[1]}
        head = protocol.encode(
            "reacted", room=room, id=message_id, emoji=emoji, by=by, added=_ID_SLOT
        )
        head = head[: head.rindex(str(_ID_SLOT))]  # up to "added":
        try:
            answer = self._react(
                keys=self._room_keys(room),
                args=[
                    message_id,
                    emoji,
                    user[0],
                    user[1],
                    self._max,
                    self.channel,
                    MESSAGE_MARK,
                    room,
                    head,
                    EMOJI_PER_MESSAGE_MAX,
                    USERS_PER_EMOJI_MAX,
                    USERS_LISTED,
                ],
            )
        except redis.RedisError as exc:
            raise HistoryError(f"Redis refused the reaction: {exc}") from None
        if answer[0] != b"ok":
            raise ReactionRefused(answer[0].decode())
        return _message(answer[1]), answer[2] == b"true"

    def find(self, user_id: str, client_id: str) -> StoredMessage | None:
        try:
            sent = self.client.get(self._sent_key(user_id, client_id))
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None
        if sent is None:
            return None
        room, _, number = sent.decode().partition(" ")
        return self.get(room, int(number))

    def _sent_key(self, user_id: str, client_id: str) -> str:
        return f"{self.prefix}sent:{user_id}:{client_id}"

    def last_id(self, room: str) -> int:
        try:
            return int(self.client.get(self._room_keys(room)[0]) or 0)
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None

    def rooms(self) -> list[str]:
        try:
            names = self.client.smembers(self.prefix + "rooms")
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read history from Redis: {exc}") from None
        return sorted(name.decode() for name in names)

    def problem(self) -> str | None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            return f"Redis: {exc}"
        return None

    def close(self) -> None:
        self.client.close()


class RedisNames:
    """Name reservations in one Redis hash, shared by every chat process."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX):
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)

    def holder(self, name_key: str) -> tuple[str, float] | None:
        try:
            held = self.client.hget(self.prefix + "names", name_key)
        except redis.RedisError as exc:
            raise HistoryError(f"cannot read a name from Redis: {exc}") from None
        if held is None:
            return None
        user_id, last_used = json.loads(held)
        return user_id, float(last_used)

    def hold(self, name_key: str, user_id: str, now: float) -> None:
        try:
            self.client.hset(
                self.prefix + "names", name_key, json.dumps([user_id, now])
            )
        except redis.RedisError as exc:
            raise HistoryError(f"cannot reserve a name: {exc}") from None

    def release(self, name_key: str, user_id: str) -> None:
        try:
            self._release(keys=[self.prefix + "names"], args=[name_key, user_id])
        except redis.RedisError as exc:
            raise HistoryError(f"cannot release a name: {exc}") from None


def _message(wire: bytes) -> StoredMessage:
    """A message from its JSON: a ``message`` frame or a changed state."""
    return from_wire(orjson.loads(wire))
