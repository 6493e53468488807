import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ReadThrottle, readFrame, UnreadCounter, unreadLabel } from '../../static/js/reads.js';

test('unread counts messages by others after the position', () => {
  const counter = new UnreadCounter();
  [3, 4, 5, 6].forEach((id) => counter.note(id, true, false));
  counter.note(7, false, false); // mine
  counter.note(8, true, true); // deleted
  assert.equal(counter.count(), 0, 'nothing is unread while the position is unknown');
  assert.ok(counter.setRead(4));
  assert.equal(counter.count(), 2);
  counter.drop(6);
  assert.equal(counter.count(), 1);
  counter.note(5, true, true); // 5 was deleted meanwhile
  assert.equal(counter.count(), 0);
});

test('the position only moves forward', () => {
  const counter = new UnreadCounter();
  assert.ok(counter.setRead(0));
  assert.ok(counter.setRead(5));
  assert.ok(!counter.setRead(5));
  assert.ok(!counter.setRead(2));
  assert.ok(!counter.setRead(-1));
  assert.ok(!counter.setRead('9'));
  assert.equal(counter.readId, 5);
});

test('a new epoch forgets the held ids, not the position', () => {
  const counter = new UnreadCounter();
  counter.setRead(1);
  counter.note(2, true, false);
  counter.clearMessages();
  assert.equal(counter.count(), 0);
  assert.equal(counter.readId, 1);
});

test('there may be more unread when the held messages start after the position', () => {
  const counter = new UnreadCounter();
  assert.ok(!counter.mayHaveMore(50, true), 'unknown position: nothing to say');
  counter.setRead(10);
  assert.ok(counter.mayHaveMore(50, true));
  assert.ok(!counter.mayHaveMore(50, false), 'nothing older is kept');
  assert.ok(!counter.mayHaveMore(11, true), 'the next id is held');
  assert.ok(!counter.mayHaveMore(5, true));
});

test('the badge text', () => {
  assert.equal(unreadLabel(0, false), '');
  assert.equal(unreadLabel(7, false), '7');
  assert.equal(unreadLabel(99, false), '99');
  assert.equal(unreadLabel(100, false), '99+');
  assert.equal(unreadLabel(50, true), '50+');
  assert.equal(unreadLabel(0, true), '');
  assert.equal(unreadLabel(120, true), '99+');
});

test('a read frame only when something new was seen', () => {
  assert.deepEqual(readFrame('lobby', 9, 4), { type: 'read', room: 'lobby', id: 9 });
  assert.deepEqual(readFrame('lobby', 9, null), { type: 'read', room: 'lobby', id: 9 });
  assert.equal(readFrame('lobby', 9, 9), null);
  assert.equal(readFrame('lobby', 3, 9), null);
  assert.equal(readFrame('lobby', 0, null), null);
});

test('at most one read per room per interval', () => {
  const throttle = new ReadThrottle(1000);
  assert.equal(throttle.wait('lobby', 5000), 0);
  throttle.sent('lobby', 5000);
  assert.equal(throttle.wait('lobby', 5400), 600);
  assert.equal(throttle.wait('dev', 5400), 0, 'rooms are throttled apart');
  assert.equal(throttle.wait('lobby', 6000), 0);
  throttle.sent('lobby', 6000);
  throttle.forget('lobby');
  assert.equal(throttle.wait('lobby', 6001), 0);
});
