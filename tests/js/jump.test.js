import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Jumper, JUMP_PAGES_MAX, jumpStep, markedParts, quoteLine } from '../../static/js/jump.js';

test('jumpStep shows, waits, loads older pages, or gives up', () => {
  const room = { shown: false, loaded: true, oldestId: 50, hasMore: true, pages: 0 };
  assert.equal(jumpStep({ ...room, shown: true }, 7), 'show');
  assert.equal(jumpStep({ ...room, loaded: false }, 7), 'wait');
  assert.equal(jumpStep(room, 7), 'load');
  assert.equal(jumpStep({ ...room, hasMore: false }, 7), 'gone');
  assert.equal(jumpStep(room, 60), 'gone'); // in the range shown, yet not there
  assert.equal(jumpStep({ ...room, pages: JUMP_PAGES_MAX }, 7), 'stop');
  assert.equal(jumpStep({ ...room, oldestId: 0, hasMore: false }, 7), 'gone');
});

/** A room of messages 1..newest, shown from `oldest` up, pages of `page`. */
function fakeRoom(newest, oldest, page) {
  const room = { oldest, loaded: true, asked: 0 };
  const calls = [];
  const jumper = new Jumper({
    look: (name, id) =>
      name === 'lobby'
        ? { shown: id >= room.oldest && id <= newest, oldestId: room.oldest, hasMore: room.oldest > 1, loaded: room.loaded }
        : null,
    loadOlder: () => {
      room.asked += 1;
      calls.push('load');
      return true;
    },
    reveal: (name, id) => calls.push(`reveal ${name} ${id}`),
    missing: (name, id, why) => calls.push(`missing ${id} ${why}`),
  });
  // The server's answer to one loadOlder: the page comes, then onPage.
  const answer = () => {
    room.oldest = Math.max(1, room.oldest - page);
    jumper.onPage('lobby');
  };
  return { room, calls, jumper, answer };
}

test('a jump loads older pages until the message is there', () => {
  const { calls, jumper, answer } = fakeRoom(200, 151, 50);
  jumper.start('lobby', 42);
  assert.deepEqual(calls, ['load']);
  answer(); // 101..
  answer(); // 51..
  assert.deepEqual(calls, ['load', 'load', 'load']);
  answer(); // 1..
  assert.deepEqual(calls, ['load', 'load', 'load', 'reveal lobby 42']);
  answer(); // a late page changes nothing: the jump is done
  assert.equal(calls.length, 4);
});

test('a jump to a message on the page shows it at once', () => {
  const { calls, jumper } = fakeRoom(200, 151, 50);
  jumper.start('lobby', 160);
  assert.deepEqual(calls, ['reveal lobby 160']);
});

test('a jump past the history kept says so', () => {
  const { room, calls, jumper, answer } = fakeRoom(200, 151, 100);
  jumper.start('lobby', 0.5); // below every id: never found
  answer();
  answer();
  assert.equal(room.oldest, 1);
  assert.deepEqual(calls.slice(-1), ['missing 0.5 gone']);
});

test('a jump into a room not here yet waits for it', () => {
  const { calls, jumper } = fakeRoom(200, 151, 50);
  jumper.start('elsewhere', 3);
  jumper.onPage('elsewhere');
  assert.deepEqual(calls, []);
  jumper.cancel();
  jumper.onPage('lobby');
  assert.deepEqual(calls, []);
});

test('quoteLine says what a quote shows', () => {
  const user = { id: 'u', name: 'Ann', color: '#000' };
  assert.deepEqual(quoteLine({ id: 3, user, text: 'hi\n  there' }), {
    author: 'Ann',
    text: 'hi there',
    state: 'kept',
  });
  assert.equal(quoteLine({ id: 3, user, text: '', deleted: true }).text, 'message deleted');
  assert.equal(quoteLine({ id: 3, gone: true }).state, 'gone');
  assert.equal(quoteLine(null), null);
  assert.equal(quoteLine({ text: 'no id' }), null);
});

test('markedParts cuts a text at UTF-16 ranges and skips bad ones', () => {
  assert.deepEqual(markedParts('😀 Lunch at noon', [[3, 8]]), [
    { text: '😀 ', mark: false },
    { text: 'Lunch', mark: true },
    { text: ' at noon', mark: false },
  ]);
  assert.deepEqual(markedParts('abc', [[0, 3]]), [{ text: 'abc', mark: true }]);
  assert.deepEqual(markedParts('abcdef', [[2, 4], [1, 3], [5, 99], 'x', [4, 4]]), [
    { text: 'ab', mark: false },
    { text: 'cd', mark: true },
    { text: 'ef', mark: false },
  ]);
  assert.deepEqual(markedParts('abc', null), [{ text: 'abc', mark: false }]);
});
