import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  addedText,
  addRequest,
  isPrivateSnapshot,
  leftText,
  removedText,
  removeItem,
  roomAddedText,
  roomRequest,
} from '../../static/js/private.js';

const LIMITS = { nameMax: 24, roomMax: 32 };

test('the room form creates a private room only when asked', () => {
  assert.deepEqual(roomRequest(' plans ', true, LIMITS), {
    frame: { type: 'create', room: 'plans', private: true },
  });
  assert.deepEqual(roomRequest('plans', false, LIMITS), { frame: { type: 'join', room: 'plans' } });
  assert.ok(roomRequest('', true, LIMITS).error);
  assert.ok(roomRequest('x'.repeat(33), true, LIMITS).error.includes('at most 32'));
});

test('people are added by a valid name, as the server will read it', () => {
  assert.deepEqual(addRequest('plans', '  Zoe\u0301 ', LIMITS), {
    frame: { type: 'add', room: 'plans', name: 'Zoé' },
  });
  assert.ok(addRequest('plans', '', LIMITS).error);
  assert.ok(addRequest('plans', '<b>', LIMITS).error);
});

test('only a snapshot that says so is private', () => {
  assert.equal(isPrivateSnapshot({ event: 'snapshot', private: true }), true);
  assert.equal(isPrivateSnapshot({ event: 'snapshot' }), false);
  assert.equal(isPrivateSnapshot({ event: 'join', private: true }), false);
  assert.equal(isPrivateSnapshot(null), false);
});

test('notices name the room and the people', () => {
  assert.equal(
    roomAddedText({ room: 'plans', by: { name: 'alice' } }),
    'alice added you to the private room #plans.',
  );
  assert.equal(roomAddedText({ room: 'plans' }), 'Someone added you to the private room #plans.');
  assert.equal(addedText({ room: 'plans', user: { name: 'bob' } }), 'bob can now join #plans.');
  assert.equal(leftText({ room: 'plans', reason: 'removed' }), 'You were removed from the private room #plans.');
  assert.equal(leftText({ room: 'plans' }), null);
});

test("only a private room's creator may remove, and not themselves", () => {
  const plans = { name: 'plans', private: true, creator: 'u-ann' };
  const bob = { id: 'u-bob', name: 'Bob' };
  assert.deepEqual(removeItem('u-ann', bob, plans), {
    key: 'remove',
    label: 'Remove from this room',
    frame: { type: 'remove', room: 'plans', user: 'u-bob' },
  });
  assert.equal(removeItem('u-cat', bob, plans), null); // another member
  assert.equal(removeItem('u-ann', { id: 'u-ann', name: 'Ann' }, plans), null);
  assert.equal(removeItem('u-ann', bob, { ...plans, private: false }), null);
  assert.equal(removeItem('u-ann', bob, { name: 'lobby', private: false, creator: 'u-ann' }), null);
  assert.equal(removeItem(undefined, bob, { ...plans, creator: undefined }), null);
  assert.equal(removeItem('u-ann', bob, null), null);
});

test('the creator is told who was removed', () => {
  assert.equal(
    removedText({ room: 'plans', user: 'u-bob' }, 'Bob'),
    'Bob was removed from #plans and can no longer join it.',
  );
  assert.match(removedText({ room: 'plans', user: 'u-bob' }), /^They were removed from #plans/);
});
