import assert from 'node:assert/strict';
import { test } from 'node:test';

import { continuesBlock, dayKey, dayLabel, GROUP_WITHIN_MS } from '../../static/js/days.js';

// Node reads TZ when a date is next made: each test sets the zone it needs.
function inZone(zone, fn) {
  const before = process.env.TZ;
  process.env.TZ = zone;
  try {
    fn();
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
}

test('a day is the local calendar day', () => {
  inZone('UTC', () => {
    assert.equal(dayKey(Date.UTC(2026, 0, 5, 23, 59, 59, 999)), '2026-1-5');
    assert.equal(dayKey(Date.UTC(2026, 0, 6, 0, 0, 0, 0)), '2026-1-6');
  });
});

test('the same instant is a different day in another zone', () => {
  const instant = Date.UTC(2026, 5, 30, 22, 30);
  inZone('UTC', () => assert.equal(dayKey(instant), '2026-6-30'));
  inZone('Europe/Berlin', () => assert.equal(dayKey(instant), '2026-7-1'));
  inZone('America/Los_Angeles', () => assert.equal(dayKey(instant), '2026-6-30'));
  inZone('Pacific/Kiritimati', () => assert.equal(dayKey(instant), '2026-7-1'));
});

test('Today and Yesterday follow the injected clock, across midnight', () => {
  inZone('UTC', () => {
    const before = Date.UTC(2026, 2, 10, 23, 59, 59);
    const after = Date.UTC(2026, 2, 11, 0, 0, 1);
    const key = dayKey(before);
    assert.equal(dayLabel(key, before, 'en-GB'), 'Today');
    assert.equal(dayLabel(key, after, 'en-GB'), 'Yesterday');
    assert.equal(dayLabel(key, after + 24 * 3600 * 1000, 'en-GB'), 'Tuesday 10 March');
  });
});

test('Yesterday across a month and a year boundary', () => {
  inZone('UTC', () => {
    assert.equal(dayLabel('2026-2-28', Date.UTC(2026, 2, 1, 8), 'en-GB'), 'Yesterday');
    assert.equal(dayLabel('2025-12-31', Date.UTC(2026, 0, 1, 0, 0, 5), 'en-GB'), 'Yesterday');
  });
});

test('a day of another year names the year', () => {
  inZone('UTC', () => {
    assert.equal(dayLabel('2025-12-30', Date.UTC(2026, 0, 1), 'en-GB'), 'Tuesday, 30 December 2025');
    assert.equal(dayLabel('2026-1-1', Date.UTC(2026, 5, 1), 'en-GB'), 'Thursday 1 January');
  });
});

test('a daylight-saving night is still one day (23 and 25 hour days)', () => {
  inZone('Europe/Berlin', () => {
    // Clocks go forward at 02:00 on 29 March 2026: that day has 23 hours.
    const lateOnShortDay = new Date(2026, 2, 29, 23, 30).getTime();
    assert.equal(dayKey(lateOnShortDay), '2026-3-29');
    assert.equal(dayLabel('2026-3-28', lateOnShortDay, 'en-GB'), 'Yesterday');
    // Clocks go back at 03:00 on 25 October 2026: that day has 25 hours.
    const earlyNextDay = new Date(2026, 9, 26, 0, 10).getTime();
    assert.equal(dayLabel('2026-10-25', earlyNextDay, 'en-GB'), 'Yesterday');
    assert.equal(dayKey(new Date(2026, 9, 25, 23, 59).getTime()), '2026-10-25');
    // 24 hours before 23:30 on the long day is still that day: yesterday is
    // the calendar day before, not "now minus a day".
    assert.equal(dayLabel('2026-10-24', new Date(2026, 9, 25, 23, 30).getTime(), 'en-GB'), 'Yesterday');
  });
});

test('a block: same author within five minutes', () => {
  const a = { userId: 'u1', author: 'ann', ts: 1000 };
  assert.ok(continuesBlock(a, { ...a, ts: 1000 + GROUP_WITHIN_MS - 1 }));
  assert.ok(!continuesBlock(a, { ...a, ts: 1000 + GROUP_WITHIN_MS }));
  assert.ok(!continuesBlock(a, { ...a, userId: 'u2' }));
  assert.ok(!continuesBlock(a, { ...a, author: 'ann2' })); // renamed in between
  assert.ok(!continuesBlock(null, a));
  assert.ok(!continuesBlock(a, { userId: undefined, author: undefined, ts: NaN }));
});
