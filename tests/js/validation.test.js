import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkName, checkRoom, codePoints, isGuestName } from '../../static/js/validation.js';

const LIMITS = { nameMax: 24, roomMax: 32 };
const ok = (raw) => checkName(raw, LIMITS).name;
const refused = (raw) => Boolean(checkName(raw, LIMITS).error);

test('lengths are counted in code points, not UTF-16 units', () => {
  assert.equal(codePoints('𝒜𝒷'), 2);
  assert.equal('𝒜𝒷'.length, 4);
  // 24 astral letters fit a 24-character name although they are 48 units.
  assert.equal(ok('𝒜'.repeat(24)), '𝒜'.repeat(24));
  assert.ok(refused('𝒜'.repeat(25)));
});

test('the limit is the one given, not a copy', () => {
  assert.ok(checkName('abcdef', { nameMax: 5 }).error.includes('at most 5'));
  assert.equal(checkRoom('abcdef', { roomMax: 5 }), 'A room name can be at most 5 characters.');
  assert.equal(checkRoom('abcde', { roomMax: 5 }), null);
});

test('names are NFC-normalised and trimmed like the server does', () => {
  assert.equal(ok('  Zoe\u0301 '), 'Zoé');
  // Python's strip() keeps U+FEFF (and the name is then refused as invisible).
  assert.ok(refused('\ufeffbob'));
  // ...and removes U+001F and U+0085, which trim() would keep.
  assert.equal(ok('\x1fbob\x85'), 'bob');
});

test('separators only inside a name', () => {
  assert.equal(ok("Anne-Marie O'Neil"), "Anne-Marie O'Neil");
  for (const name of ['-bob', 'bob-', 'bob.', '_bob', "bob'", '.']) {
    assert.ok(refused(name), name);
  }
});

test('letters and digits of any script, digits first too', () => {
  for (const name of ['Łukasz', '王小明', 'Ωmega', '42', '7up', 'نور']) {
    assert.equal(ok(name), name);
  }
});

test('symbols, emoji and punctuation are refused', () => {
  for (const name of ['bob!', 'a/b', 'ali😀', '😀', 'a<b', 'tab\there']) {
    assert.ok(refused(name), name);
  }
});

test('combining marks may follow a letter, never start a name', () => {
  assert.equal(ok('e\u0308x'), 'ëx');
  assert.ok(refused('\u0301abc'));
});

test('default-ignorable code points are refused anywhere in a name', () => {
  for (const c of ['\u034f', '\u200b', '\ufe0f', '\u3164', '\u115f', '\u00ad', '\u2060']) {
    assert.ok(refused(`ab${c}cd`), `inside: U+${c.codePointAt(0).toString(16)}`);
    assert.ok(refused(`${c}abcd`), `first: U+${c.codePointAt(0).toString(16)}`);
  }
  assert.match(checkName('a\u3164b', LIMITS).error, /invisible/);
});

test('guest names are the server’s, in any case or width', () => {
  assert.ok(refused('guest-1234'));
  assert.ok(refused('GUEST-x'));
  assert.ok(refused('ｇｕｅｓｔ-x'));
  assert.equal(ok('guest'), 'guest');
  assert.ok(isGuestName('Guest-0042'));
  assert.ok(!isGuestName('guesthouse'));
});

test('empty and blank names are refused with a message', () => {
  assert.equal(checkName('', LIMITS).error, 'Please enter a name.');
  assert.equal(checkName('   ', LIMITS).error, 'Please enter a name.');
});

test('room names: letters, digits, - and _, never starting with a separator', () => {
  for (const room of ['lobby', 'dev-ops', 'a_b', '2024', 'café', 'cafe\u0301', '東京', 'end-']) {
    assert.equal(checkRoom(room, LIMITS), null, room);
  }
  for (const room of ['', '-x', '_x', 'a b', 'a.b', 'x!', '😀', null, 42]) {
    assert.ok(checkRoom(room, LIMITS), String(room));
  }
  assert.equal(checkRoom('𝒜'.repeat(32), LIMITS), null);
  assert.ok(checkRoom('𝒜'.repeat(33), LIMITS));
});
