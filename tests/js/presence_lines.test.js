import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CHURN_MS, GROUP_MS, lineText, PresenceLines, QUIET_ROOM_MAX } from '../../static/js/presence_lines.js';

const person = (n) => ({ id: `u-${n}`, name: n });

test('joins and leaves within a minute make one line', () => {
  const lines = new PresenceLines();
  const first = lines.event('join', person('Ann'), 0, 5);
  assert.equal(first.fresh, true);
  assert.equal(lineText(first.line), 'Ann joined');
  for (const [i, name] of ['Ben', 'Cara', 'Dan', 'Eve'].entries()) {
    const step = lines.event('join', person(name), 10_000 * (i + 1), 5);
    assert.equal(step.fresh, false);
    assert.equal(step.line, first.line);
  }
  assert.equal(lineText(first.line), 'Ann, Ben and 3 others joined');
  lines.event('leave', person('Fay'), 50_000, 5);
  assert.equal(lineText(first.line), 'Ann, Ben and 3 others joined; Fay left');
});

test('a minute of quiet or a message starts a new line', () => {
  const lines = new PresenceLines();
  const first = lines.event('join', person('Ann'), 0, 5).line;
  const later = lines.event('leave', person('Ben'), GROUP_MS + 1, 5);
  assert.equal(later.fresh, true);
  assert.notEqual(later.line, first);
  assert.equal(lineText(later.line), 'Ben left');
  lines.interrupt();
  const after = lines.event('join', person('Cara'), GROUP_MS + 2, 5);
  assert.equal(after.fresh, true);
  assert.equal(lineText(after.line), 'Cara joined');
});

test('a leave taken back at once (a reconnect) shows nothing', () => {
  const lines = new PresenceLines();
  const left = lines.event('leave', person('Ann'), 0, 5);
  assert.equal(lineText(left.line), 'Ann left');
  const back = lines.event('join', person('Ann'), CHURN_MS - 1, 5);
  assert.equal(back.line, null);
  assert.equal(back.removed, left.line);
  // With others on the line, only the reconnecting person goes.
  lines.event('join', person('Ben'), 10_000, 5);
  lines.event('leave', person('Cara'), 11_000, 5);
  const shown = lines.event('join', person('Cara'), 12_000, 5);
  assert.equal(lineText(shown.line), 'Ben joined');
  // A message between the leave and the join: the join says nothing either.
  lines.event('leave', person('Dan'), 20_000, 5);
  lines.interrupt();
  assert.equal(lines.event('join', person('Dan'), 21_000, 5), null);
});

test('a slow return shows the latest move', () => {
  const lines = new PresenceLines();
  const line = lines.event('leave', person('Ann'), 0, 5).line;
  lines.event('join', person('Ann'), CHURN_MS + 1, 5);
  assert.equal(lineText(line), 'Ann joined');
});

test('rooms above the size show no lines', () => {
  const lines = new PresenceLines();
  assert.equal(lines.event('join', person('Ann'), 0, QUIET_ROOM_MAX + 1), null);
  assert.equal(lines.event('join', person('Ben'), 1, QUIET_ROOM_MAX).fresh, true);
  assert.equal(lines.event('join', { id: 5 }, 2, 3), null);
  assert.equal(lines.event('nick', person('Cara'), 3, 3), null);
});
