import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as storage from '../../static/js/storage.js';

/** A Storage stand-in; `quota` (characters) makes larger writes throw. */
class MemoryStorage {
  constructor(quota = Infinity) {
    this.items = new Map();
    this.quota = quota;
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    if (String(value).length > this.quota) throw new Error('QuotaExceededError');
    this.items.set(key, String(value));
  }

  removeItem(key) {
    this.items.delete(key);
  }
}

const broken = {
  getItem() {
    throw new Error('SecurityError');
  },
  setItem() {
    throw new Error('SecurityError');
  },
  removeItem() {
    throw new Error('SecurityError');
  },
};

const isRoom = (name) => /^[a-z]+$/.test(name);

test('a storage that refuses everything reads null and writes false', () => {
  const store = storage.safeStorage(broken);
  assert.equal(store.get('x'), null);
  assert.equal(store.set('x', '1'), false);
  assert.equal(store.set('x', null), false);
  assert.equal(storage.storedKey(store), null);
  assert.deepEqual(storage.loadRooms(store, isRoom), []);
  assert.equal(storage.readCache(store), null);
});

test('a storage that cannot even be reached is the same', () => {
  const store = storage.safeStorage(() => {
    throw new Error('SecurityError: access is denied');
  });
  assert.equal(store.get('x'), null);
  assert.equal(store.set('x', '1'), false);
});

test('set(key, null) removes the key', () => {
  const backing = new MemoryStorage();
  const store = storage.safeStorage(backing);
  store.set('a', '1');
  store.set('a', null);
  assert.equal(backing.getItem('a'), null);
});

test('only a well-formed client key is used', () => {
  const store = storage.safeStorage(new MemoryStorage());
  store.set(storage.KEYS.clientKey, 'a'.repeat(32));
  assert.equal(storage.storedKey(store), 'a'.repeat(32));
  for (const bad of ['short', 'x'.repeat(129), 'a'.repeat(20) + '&room=x', '']) {
    store.set(storage.KEYS.clientKey, bad);
    assert.equal(storage.storedKey(store), null, bad);
  }
});

test('open rooms round trip; junk and invalid names are dropped', () => {
  const store = storage.safeStorage(new MemoryStorage());
  storage.saveRooms(store, new Map([['lobby', 1], ['dev', 2]]).keys());
  assert.deepEqual(storage.loadRooms(store, isRoom), ['lobby', 'dev']);
  store.set(storage.KEYS.rooms, '["ok", 3, null, "Not A Room", "fine"]');
  assert.deepEqual(storage.loadRooms(store, isRoom), ['ok', 'fine']);
  for (const junk of ['{', '{"a":1}', '"lobby"', 'null']) {
    store.set(storage.KEYS.rooms, junk);
    assert.deepEqual(storage.loadRooms(store, isRoom), [], junk);
  }
});

test('the outbox round trips, failed ones stay failed', () => {
  const entries = [
    { clientId: 'ab12', room: 'lobby', text: 'hi', ts: 5, status: 'sending', $li: {} },
    { clientId: 'cd34', room: 'dev', text: 'yo', ts: 6, status: 'failed', $li: null },
  ];
  const text = storage.encodeOutbox(entries);
  assert.ok(!text.includes('$li'));
  assert.deepEqual(storage.decodeOutbox(text, isRoom), [
    { clientId: 'ab12', room: 'lobby', text: 'hi', ts: 5, status: 'queued' },
    { clientId: 'cd34', room: 'dev', text: 'yo', ts: 6, status: 'failed' },
  ]);
  assert.equal(storage.encodeOutbox([]), null);
});

test('an answer in the outbox keeps what it answers', () => {
  const entries = [{ clientId: 'ab12', room: 'lobby', text: 're', ts: 5, status: 'queued', replyTo: 7 }];
  const [kept] = storage.decodeOutbox(storage.encodeOutbox(entries), isRoom);
  assert.equal(kept.replyTo, 7);
  const bad = JSON.stringify([{ client_id: 'ab12', room: 'lobby', text: 're', reply_to: '7' }]);
  assert.equal(storage.decodeOutbox(bad, isRoom)[0].replyTo, undefined);
});

test('an outbox entry keeps its upload, even without text', () => {
  const attachment = { id: 'x'.repeat(24), name: 'a.png', size: 3, url: '/files/x/a.png', image: false };
  const text = storage.encodeOutbox([
    { clientId: 'ab12', room: 'lobby', text: '', ts: 5, status: 'queued', attachment },
    { clientId: 'cd34', room: 'lobby', text: '', ts: 6, status: 'queued', attachment: { id: 7 } },
  ]);
  assert.deepEqual(storage.decodeOutbox(text, isRoom), [
    { clientId: 'ab12', room: 'lobby', text: '', ts: 5, status: 'queued', attachment },
  ]);
});

test('a tampered outbox loses only its bad items', () => {
  const items = [
    { client_id: 'ok1', room: 'lobby', text: 'keep' }, // not hex: dropped
    { client_id: 'aa', room: 'lobby', text: 'kept', ts: 'x' },
    { client_id: 'aa', room: 'lobby', text: 'same id again' },
    { client_id: 'bb', room: 'No Room', text: 'bad room' },
    { client_id: 'cc', room: 'lobby', text: '   ' },
    { client_id: 'dd', room: 'lobby', text: 7 },
    { client_id: 'e'.repeat(65), room: 'lobby', text: 'long id' },
    null,
  ];
  const decoded = storage.decodeOutbox(JSON.stringify(items), isRoom, 42);
  assert.deepEqual(decoded, [
    { clientId: 'aa', room: 'lobby', text: 'kept', ts: 42, status: 'queued' },
  ]);
  assert.deepEqual(storage.decodeOutbox('{not json', isRoom), []);
  assert.deepEqual(storage.decodeOutbox('{"a":1}', isRoom), []);
  assert.deepEqual(storage.decodeOutbox(null, isRoom), []);
});

const message = (id) => ({ id, user: { id: 'u1', name: 'ann', color: '#123456', extra: 1 }, text: `m${id}`, ts: id });

test('remembered messages stay sorted by id, newest kept', () => {
  const recent = [];
  for (const id of [5, 1, 3, 9, 7]) storage.rememberMessage(recent, message(id), 3);
  assert.deepEqual(recent.map((m) => m.id), [5, 7, 9]);
  assert.equal(storage.rememberMessage(recent, message(2), 3), false);
  assert.deepEqual(Object.keys(recent[0].user), ['id', 'name', 'color']);
});

test('the cache round trips and drops malformed messages', () => {
  const store = storage.safeStorage(new MemoryStorage());
  const me = { id: 'u1', name: 'ann', color: '#123456' };
  const rooms = { lobby: [message(1), message(2)] };
  const kept = storage.saveCache(store, me, rooms, { lobby: 'e1', gone: 'e0' });
  assert.equal(kept, storage.CACHE_PER_ROOM);
  const data = storage.readCache(store);
  assert.deepEqual(data.me, me);
  assert.deepEqual(data.rooms.lobby.map((m) => m.id), [1, 2]);
  // The epoch the ids belong to comes back, for rooms that have messages.
  assert.deepEqual(data.epochs, { lobby: 'e1' });

  store.set(
    storage.KEYS.messages,
    JSON.stringify({
      v: 1,
      me: { id: 7 },
      rooms: { lobby: [message(1), { id: -1 }, { ...message(2), ts: 'x' }], dev: 'nope' },
    }),
  );
  const cleaned = storage.readCache(store);
  assert.equal(cleaned.me, null);
  assert.deepEqual(Object.keys(cleaned.rooms), ['lobby']);
  assert.equal(cleaned.rooms.lobby.length, 1);
  store.set(storage.KEYS.messages, JSON.stringify({ v: 2, rooms: {} }));
  assert.equal(storage.readCache(store), null);
});

test('over the budget the cache keeps fewer per room, or nothing', () => {
  const rooms = { lobby: Array.from({ length: 50 }, (_, i) => message(i + 1)) };
  const store = storage.safeStorage(new MemoryStorage());
  const kept = storage.saveCache(store, null, rooms, {}, 1000);
  assert.ok(kept > 0 && kept < 50, String(kept));
  assert.ok(store.get(storage.KEYS.messages).length <= 1000);
  assert.equal(storage.saveCache(store, null, rooms, {}, 10), 0);
  assert.equal(store.get(storage.KEYS.messages), null);
});

test('a full browser quota also means fewer per room', () => {
  const rooms = { lobby: Array.from({ length: 50 }, (_, i) => message(i + 1)) };
  const store = storage.safeStorage(new MemoryStorage(2000));
  const kept = storage.saveCache(store, null, rooms);
  assert.ok(kept > 0 && kept < 50, String(kept));
});

test('settings: notifications opt-in, the message cache opt-out', () => {
  const store = storage.safeStorage(new MemoryStorage());
  assert.deepEqual(storage.loadSettings(store), { notify: false, keepMessages: true });
  storage.saveNotify(store, true);
  storage.saveKeepMessages(store, false);
  assert.deepEqual(storage.loadSettings(store), { notify: true, keepMessages: false });
  storage.saveNotify(store, false);
  storage.saveKeepMessages(store, true);
  assert.equal(store.get(storage.KEYS.notify), null);
  assert.equal(store.get(storage.KEYS.noCache), null);
});

test('a kept message keeps its quote, only what the page shows of it', () => {
  const recent = [];
  const user = { id: 'u', name: 'bob', color: '#000' };
  const reply = { id: 2, user: { id: 'a', name: 'ann', color: '#111' }, text: 'x'.repeat(300) };
  storage.rememberMessage(recent, { id: 5, user, text: 're', ts: 1, reply });
  assert.deepEqual(recent[0].reply, { id: 2, user: { name: 'ann' }, text: 'x'.repeat(140) });
  assert.deepEqual(storage.keptQuote({ id: 2, deleted: true, text: 'leak', user: reply.user }), {
    id: 2,
    user: { name: 'ann' },
    text: '',
    deleted: true,
  });
  assert.deepEqual(storage.keptQuote({ id: 2, gone: true }), { id: 2, gone: true });
  assert.equal(storage.keptQuote({ text: 'no id' }), null);
});

test('rememberMessage keeps reactions and the revision they are as of', () => {
  const recent = [];
  const reactions = [{ emoji: '👍', count: 1, users: [{ id: 'u-ann', name: 'Ann' }] }];
  const user = { id: 'u-ann', name: 'Ann', color: '#000000' };
  storage.rememberMessage(recent, { id: 1, user, text: 'a', ts: 1, rev: 4, reactions });
  storage.rememberMessage(recent, { id: 2, user, text: 'b', ts: 2, reactionsRev: 6 });
  storage.rememberMessage(recent, { id: 3, user, text: '', ts: 3, deleted: true, reactions });
  assert.deepEqual(recent[0].reactions, reactions);
  assert.equal(recent[0].rev, 4);
  assert.equal('reactions' in recent[1], false);
  assert.equal(recent[1].reactionsRev, 6);
  assert.equal('reactions' in recent[2], false, 'a deleted message has none');
});
