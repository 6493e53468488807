import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  RETRY_BASE_MS,
  RETRY_FLOOR_MS,
  RETRY_MAX_MS,
  reconnectDelay,
  SendPacer,
} from '../../static/js/backoff.js';

const always = (x) => () => x;

test('the ceiling doubles per attempt, from the base', () => {
  assert.equal(reconnectDelay(0, always(1)), RETRY_BASE_MS);
  assert.equal(reconnectDelay(1, always(1)), 2 * RETRY_BASE_MS);
  assert.equal(reconnectDelay(2, always(1)), 4 * RETRY_BASE_MS);
});

test('the ceiling is capped, even after very many attempts', () => {
  assert.equal(reconnectDelay(4, always(1)), RETRY_MAX_MS);
  assert.equal(reconnectDelay(1000, always(1)), RETRY_MAX_MS);
  assert.ok(Number.isFinite(reconnectDelay(1e9, always(0.999))));
});

test('full jitter: anywhere from the floor to the ceiling', () => {
  assert.equal(reconnectDelay(3, always(0)), RETRY_FLOOR_MS);
  assert.equal(reconnectDelay(3, always(0.5)), 4000);
  for (let attempt = 0; attempt < 12; attempt += 1) {
    for (const r of [0, 0.01, 0.3, 0.77, 0.999999]) {
      const delay = reconnectDelay(attempt, always(r));
      const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
      assert.ok(delay >= RETRY_FLOOR_MS && delay <= ceiling, `${attempt}/${r}: ${delay}`);
      assert.ok(Number.isInteger(delay));
    }
  }
});

test('the pacer lets a burst through, then waits a little more than the rate', () => {
  const pacer = new SendPacer(5, 3, 0);
  assert.equal(pacer.take(0), 0);
  assert.equal(pacer.take(0), 0);
  assert.equal(pacer.take(0), 0);
  const wait = pacer.take(0);
  // One token at 90 % of 5/s takes 222.2 ms: 223, plus a margin of 20.
  assert.equal(wait, 223 + 20);
  assert.ok(wait > 1000 / 5);
});

test('the pacer refills over time, never above the burst', () => {
  const pacer = new SendPacer(10, 2, 0);
  pacer.take(0);
  pacer.take(0);
  assert.ok(pacer.take(0) > 0);
  assert.equal(pacer.take(1000), 0); // refilled (to the burst, not 9)
  assert.equal(pacer.take(1000), 0);
  assert.ok(pacer.take(1000) > 0);
});

test('a refusal drains the pacer; new limits fill it again', () => {
  const pacer = new SendPacer(5, 10, 0);
  pacer.drain(0);
  assert.ok(pacer.take(0) > 0);
  pacer.setLimits(2, 4, 100);
  for (let i = 0; i < 4; i += 1) assert.equal(pacer.take(100), 0);
  assert.ok(pacer.take(100) > 500);
});
