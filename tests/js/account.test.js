import assert from 'node:assert/strict';
import { test } from 'node:test';

import { sessionLabel } from '../../static/js/account.js';

const at = (ms) => `t${ms}`;

test('the current session is this browser, the others are not', () => {
  const session = { id: 'a', created: 1, last_seen: 2, current: true };
  assert.equal(sessionLabel(session, at), 'This browser · signed in t1 · last seen t2');
  assert.equal(
    sessionLabel({ ...session, current: false }, at),
    'Another browser · signed in t1 · last seen t2',
  );
});
