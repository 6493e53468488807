import assert from 'node:assert/strict';
import { test } from 'node:test';

import { readConfig } from '../../static/js/config.js';

const attrs = (values) => ({ getAttribute: (name) => (name in values ? values[name] : null) });

test('the limits are the ones the page carries', () => {
  const config = readConfig(
    attrs({
      'data-ws-path': '/chat/ws',
      'data-max-text': '1234',
      'data-name-max': '16',
      'data-room-max': '20',
      'data-history-initial': '30',
      'data-history-max': '80',
    }),
  );
  assert.deepEqual(config, {
    wsPath: '/chat/ws',
    maxText: 1234,
    nameMax: 16,
    roomMax: 20,
    historyInitial: 30,
    historyPage: 80,
    account: false,
  });
});

test('a signed-in page says so', () => {
  assert.equal(readConfig(attrs({ 'data-account': '1' })).account, true);
  assert.equal(readConfig(attrs({})).account, false);
});

test('missing or nonsense attributes fall back, never to zero or NaN', () => {
  const config = readConfig(attrs({ 'data-name-max': 'x', 'data-room-max': '-3', 'data-max-text': '0' }));
  assert.equal(config.nameMax, 24);
  assert.equal(config.roomMax, 32);
  assert.equal(config.maxText, 2000);
  assert.equal(config.wsPath, '/ws');
});
