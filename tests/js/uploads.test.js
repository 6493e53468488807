import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  checkFile,
  filesOf,
  formatSize,
  TOKEN_MARGIN_MS,
  tokenFresh,
  uploadError,
  uploadUrl,
} from '../../static/js/uploads.js';

const MB = 1 << 20;

test('sizes read like the server writes them', () => {
  assert.equal(formatSize(1), '1 byte');
  assert.equal(formatSize(300), '300 bytes');
  assert.equal(formatSize(12 * 1024), '12 KB');
  assert.equal(formatSize(1.5 * MB), '1.5 MB');
  assert.equal(formatSize(10 * MB), '10.0 MB');
});

test('a file is checked against the server limit before it is sent', () => {
  assert.equal(checkFile({ name: 'a.png', size: 10 * MB }, 10 * MB), null);
  assert.equal(
    checkFile({ name: 'big.zip', size: 10 * MB + 1 }, 10 * MB),
    '“big.zip” is 10.0 MB; the limit is 10.0 MB.',
  );
  assert.equal(checkFile({ name: 'e.txt', size: 0 }, 10 * MB), '“e.txt” is empty.');
  assert.equal(checkFile({ name: 'a.png', size: 5 }, 0), 'Uploads are turned off on this server.');
});

test('the upload address carries the room and the name, escaped', () => {
  assert.equal(uploadUrl('lobby', 'a b&c.png'), '/upload?room=lobby&name=a%20b%26c.png');
  assert.equal(uploadUrl('été', ''), '/upload?room=%C3%A9t%C3%A9');
});

test('a refused upload says what the server said', () => {
  const body = JSON.stringify({ error: 'quota', message: 'your uploads take 9 MB of your 10 MB' });
  assert.equal(
    uploadError(413, body, 'x.png'),
    '“x.png” was not uploaded: your uploads take 9 MB of your 10 MB.',
  );
  assert.equal(uploadError(413, '<html>', 'x.png'), '“x.png” was not uploaded: it is too large.');
  assert.equal(uploadError(0, '', 'x.png'), '“x.png” was not uploaded: the connection broke.');
  assert.equal(uploadError(502, '', ''), 'The file was not uploaded (the server answered 502).');
});

test('a token close to its expiry is not fresh', () => {
  const now = 1_000_000;
  assert.equal(tokenFresh(null, now), false);
  assert.equal(tokenFresh({ token: 't', expires: now + TOKEN_MARGIN_MS + 1 }, now), true);
  assert.equal(tokenFresh({ token: 't', expires: now + TOKEN_MARGIN_MS }, now), false);
});

test('only files are taken from a drop or a paste', () => {
  assert.deepEqual(filesOf([{ size: 3 }, null, { name: 'x' }]), [{ size: 3 }]);
  assert.deepEqual(filesOf(undefined), []);
});
