/**
 * What this browser keeps between visits: the client key, the name, the open
 * rooms, the settings, the outbox (this tab) and the newest messages of each
 * room (instant reopen). The storage object is passed in (window.localStorage,
 * window.sessionStorage, or a stand-in in tests). Pure: no DOM, no jQuery.
 */

export const KEYS = {
  clientKey: 'chat.key',
  name: 'chat.name',
  rooms: 'chat.rooms',
  outbox: 'chat.outbox',
  messages: 'chat.messages',
  noCache: 'chat.no-cache',
  notify: 'chat.notify',
};

// localStorage holds ~5 M characters per origin, shared with the rest of
// the site: the message cache stays well below.
export const CACHE_PER_ROOM = 50;
export const CACHE_MAX_CHARS = 1000000;
export const QUOTE_MAX = 140; // characters of a quote, as the server sends them

const CLIENT_KEY_RE = /^[0-9A-Za-z_-]{16,128}$/;
const CLIENT_ID_RE = /^[0-9a-f]{1,64}$/;

/**
 * A storage that never throws: `get` gives null and `set` false where the
 * browser refuses (private mode, quota full, no storage at all). `backing`
 * is a Storage, or a function returning one (reading window.localStorage
 * itself throws where storage is blocked). `set(key, null)` removes the key.
 */
export function safeStorage(backing) {
  const open = typeof backing === 'function' ? backing : () => backing;
  return {
    get(key) {
      try {
        return open().getItem(key);
      } catch (e) {
        return null;
      }
    },
    set(key, value) {
      try {
        if (value === null) open().removeItem(key);
        else open().setItem(key, value);
        return true;
      } catch (e) {
        return false; // remembering is best effort
      }
    },
  };
}

function parseJson(text, fallback) {
  try {
    const value = JSON.parse(text);
    return value === null || value === undefined ? fallback : value;
  } catch (e) {
    return fallback;
  }
}

/** The secret the server gave this browser (welcome.key), if it looks like one. */
export function storedKey(store) {
  const key = store.get(KEYS.clientKey);
  return CLIENT_KEY_RE.test(key || '') ? key : null;
}

/** The rooms that were open, in order; invalid names (per `isRoom`) dropped. */
export function loadRooms(store, isRoom) {
  const rooms = parseJson(store.get(KEYS.rooms) || '[]', []);
  return Array.isArray(rooms) ? rooms.filter((r) => typeof r === 'string' && isRoom(r)) : [];
}

export function saveRooms(store, names) {
  store.set(KEYS.rooms, JSON.stringify(Array.from(names)));
}

/** An upload kept with an outbox entry: the server's answer (docs/protocol.md). */
function validAttachment(a) {
  return Boolean(a && typeof a.id === 'string' && typeof a.name === 'string' && typeof a.url === 'string');
}

/** Outbox entries as kept for this tab; null when there are none. */
export function encodeOutbox(entries) {
  if (!entries.length) return null;
  return JSON.stringify(
    entries.map((e) => ({
      client_id: e.clientId,
      room: e.room,
      text: e.text,
      ts: e.ts,
      failed: e.status === 'failed',
      ...(Number.isInteger(e.replyTo) ? { reply_to: e.replyTo } : {}),
      ...(e.attachment ? { attachment: e.attachment } : {}),
    })),
  );
}

/**
 * Outbox entries kept by encodeOutbox, oldest first: {clientId, room, text,
 * ts, status}; malformed items, rooms refused by `isRoom` and repeated
 * client ids are dropped.
 */
export function decodeOutbox(text, isRoom, now = Date.now()) {
  const items = parseJson(text || '[]', []);
  if (!Array.isArray(items)) return [];
  const seen = new Set();
  const entries = [];
  for (const item of items) {
    if (
      !item ||
      typeof item.text !== 'string' ||
      (!item.text.trim() && !validAttachment(item.attachment)) ||
      !CLIENT_ID_RE.test(item.client_id || '') ||
      typeof item.room !== 'string' ||
      !isRoom(item.room) ||
      seen.has(item.client_id)
    ) {
      continue;
    }
    seen.add(item.client_id);
    entries.push({
      clientId: item.client_id,
      room: item.room,
      text: item.text,
      ts: Number(item.ts) || now,
      status: item.failed ? 'failed' : 'queued',
      ...(Number.isInteger(item.reply_to) && item.reply_to > 0 ? { replyTo: item.reply_to } : {}),
      ...(validAttachment(item.attachment) ? { attachment: item.attachment } : {}),
    });
  }
  return entries;
}

/**
 * Keep `msg` among a room's newest (`recent`, ascending by id, at most
 * `perRoom`); returns whether it was kept.
 */
export function rememberMessage(recent, msg, perRoom = CACHE_PER_ROOM) {
  if (recent.length >= perRoom && msg.id < recent[0].id) return false;
  const { id, name, color } = msg.user;
  const item = { id: msg.id, user: { id, name, color }, text: String(msg.text), ts: msg.ts };
  // An edit or a delete (editing.js): a deleted message is kept without its text.
  if (Number.isFinite(msg.edited)) item.edited = msg.edited;
  if (msg.deleted === true) {
    item.deleted = true;
    item.text = '';
  }
  if (Number.isInteger(msg.rev)) item.rev = msg.rev;
  const quote = keptQuote(msg.reply);
  if (quote) item.reply = quote;
  // Reactions (reactions.js), and the revision they are as of.
  if (Array.isArray(msg.reactions) && msg.reactions.length && !item.deleted) {
    item.reactions = msg.reactions;
  }
  if (Number.isInteger(msg.reactionsRev)) item.reactionsRev = msg.reactionsRev;
  if (Array.isArray(msg.mine) && msg.mine.length && item.reactions) item.mine = msg.mine;
  let i = recent.length;
  while (i > 0 && recent[i - 1].id > msg.id) i -= 1;
  recent.splice(i, 0, item);
  if (recent.length > perRoom) recent.splice(0, recent.length - perRoom);
  return true;
}

/**
 * What is kept of a message's quote (its `reply`): the author's name and the
 * excerpt, or that the original was deleted or is gone; null for none.
 * editing.applyToKept keeps it current when the original changes.
 */
export function keptQuote(reply) {
  if (!reply || !Number.isInteger(reply.id)) return null;
  if (reply.gone) return { id: reply.id, gone: true };
  const name = reply.user && typeof reply.user.name === 'string' ? reply.user.name : '';
  if (reply.deleted) return { id: reply.id, user: { name }, text: '', deleted: true };
  return { id: reply.id, user: { name }, text: String(reply.text || '').slice(0, QUOTE_MAX) };
}

/**
 * Write the cache: `rooms` maps a room name to its newest messages, `epochs`
 * a room name to the history epoch their ids belong to. Over the budget, or
 * refused by the browser, fewer per room are tried; if even one per room
 * does not fit, the cache is removed. Returns the number kept per room (0:
 * removed).
 */
export function saveCache(store, me, rooms, epochs = {}, maxChars = CACHE_MAX_CHARS) {
  for (let keep = CACHE_PER_ROOM; keep >= 1; keep = Math.floor(keep / 2)) {
    const trimmed = {};
    for (const [name, recent] of Object.entries(rooms)) trimmed[name] = recent.slice(-keep);
    const text = JSON.stringify({ v: 1, me, rooms: trimmed, epochs });
    if (text.length <= maxChars && store.set(KEYS.messages, text)) return keep;
  }
  store.set(KEYS.messages, null);
  return 0;
}

function validCached(m) {
  return Boolean(
    m &&
      Number.isInteger(m.id) &&
      m.id > 0 &&
      typeof m.text === 'string' &&
      Number.isFinite(m.ts) &&
      m.user &&
      typeof m.user.id === 'string' &&
      typeof m.user.name === 'string',
  );
}

/**
 * The kept cache as {me, rooms: {name: [message]}, epochs: {name: epoch}},
 * with only well-formed messages; null when there is none or it does not
 * parse.
 */
export function readCache(store) {
  const data = parseJson(store.get(KEYS.messages) || 'null', null);
  if (!data || data.v !== 1 || !data.rooms || typeof data.rooms !== 'object') return null;
  const rooms = {};
  for (const [name, kept] of Object.entries(data.rooms)) {
    const msgs = Array.isArray(kept) ? kept.filter(validCached) : [];
    if (msgs.length) rooms[name] = msgs;
  }
  const me = data.me && typeof data.me.id === 'string' ? data.me : null;
  const epochs = {};
  for (const [name, epoch] of Object.entries(data.epochs || {})) {
    if (typeof epoch === 'string' && rooms[name]) epochs[name] = epoch;
  }
  return { me, rooms, epochs };
}

/** The two settings: {notify, keepMessages}. */
export function loadSettings(store) {
  return {
    notify: store.get(KEYS.notify) === '1',
    keepMessages: store.get(KEYS.noCache) !== '1',
  };
}

export function saveNotify(store, on) {
  store.set(KEYS.notify, on ? '1' : null);
}

export function saveKeepMessages(store, keep) {
  store.set(KEYS.noCache, keep ? null : '1');
}
