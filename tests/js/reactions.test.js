import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as reactions from '../../static/js/reactions.js';

// The same samples as tests/test_reacting.py: the server's rule, mirrored.
const ONE_EMOJI = [
  ...reactions.PALETTE,
  '❤', '👍🏽', '👩🏽‍💻', '👨‍👩‍👧‍👦', '🇫🇷', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '1️⃣', '#️⃣', '🏳️‍🌈',
];
const NOT_ONE_EMOJI = ['', 'a', 'ab', '<b>', '1', '#', '👍👍', '👍 ', '🇫', '🇫🇷🇩🇪', 'é', '👍\u0301', '\u200d', 'x'.repeat(100)];

test('emojiProblem takes one emoji of any kind', () => {
  for (const emoji of ONE_EMOJI) assert.equal(reactions.emojiProblem(emoji), null, emoji);
});

test('emojiProblem refuses text, digits, two emoji and stray parts', () => {
  for (const text of NOT_ONE_EMOJI) assert.ok(reactions.emojiProblem(text), JSON.stringify(text));
  assert.ok(reactions.emojiProblem(null));
});

const ann = { id: 'u-ann', name: 'Ann' };
const ben = { id: 'u-ben', name: 'Ben' };

test('reactionsOf keeps well-formed entries only', () => {
  const wire = [
    { emoji: '👍', count: 2, users: [ann, { id: 'u-ben', name: 'Ben', extra: 1 }, { id: 5 }] },
    { emoji: '🎉', count: 0, users: [] },
    { emoji: 7, count: 1, users: [] },
    null,
  ];
  assert.deepEqual(reactions.reactionsOf(wire), [{ emoji: '👍', count: 2, users: [ann, ben] }]);
  assert.deepEqual(reactions.reactionsOf(undefined), []);
});

test('applyReacted replaces the list once per revision, never going back', () => {
  const item = { id: 3, text: 'hi', rev: 5 };
  const liked = { type: 'reacted', room: 'r', id: 3, rev: 7, reactions: [{ emoji: '👍', count: 1, users: [ann] }] };
  assert.equal(reactions.applyReacted(item, liked), true);
  assert.deepEqual(item.reactions, liked.reactions);
  assert.equal(item.reactionsRev, 7);
  assert.equal(item.rev, 7);
  assert.equal(reactions.applyReacted(item, liked), false, 'the same frame twice');
  assert.equal(reactions.applyReacted(item, { ...liked, rev: 6, reactions: [] }), false, 'an older one');
  assert.equal(reactions.applyReacted(item, { ...liked, rev: 9, reactions: [] }), true);
  assert.equal('reactions' in item, false);
  assert.equal(reactions.applyReacted({ id: 4 }, liked), false, 'another message');
  assert.equal(reactions.applyReacted({ id: 3, deleted: true }, liked), false);
  // A message's own rev covers its reactions: a frame at or below it is old.
  assert.equal(reactions.applyReacted({ id: 3, rev: 7 }, liked), false);
  assert.equal(reactions.applyReacted({ id: 3 }, liked), true);
});

test('chips say who reacted and whether I did', () => {
  const thumbs = { emoji: '👍', count: 5, users: [ann, ben, { id: 'u-c', name: 'Cara' }] };
  assert.equal(reactions.whoText(thumbs, 'u-ben'), 'Ann, you and 3 others reacted with 👍');
  assert.equal(reactions.whoText({ emoji: '🎉', count: 1, users: [ann] }, null), 'Ann reacted with 🎉');
  assert.equal(reactions.whoText({ emoji: '🎉', count: 2, users: [ann, ben] }, null), 'Ann and Ben reacted with 🎉');
  assert.equal(reactions.reactedByMe(thumbs, 'u-ben'), true);
  assert.equal(reactions.reactedByMe(thumbs, 'u-zed'), false);
  assert.equal(reactions.reactedByMe(thumbs, null), false);
  assert.match(reactions.chipLabel(thumbs, true), /^👍 5 people, including you/);
  assert.deepEqual(reactions.reactFrame('lobby', 3, '👍'), { type: 'react', room: 'lobby', id: 3, emoji: '👍' });
});

test('namesText lists up to three, then counts the others', () => {
  assert.equal(reactions.namesText([]), '');
  assert.equal(reactions.namesText(['Ann']), 'Ann');
  assert.equal(reactions.namesText(['Ann', 'Ben', 'Cara']), 'Ann, Ben and Cara');
  assert.equal(reactions.namesText(['Ann', 'Ben', 'Cara', 'Dan', 'Eve']), 'Ann, Ben and 3 others');
  assert.equal(reactions.namesText(['Ann', 'Ben'], 3), 'Ann, Ben and 1 other');
});

test('mineAfter: the names decide where they are whole, my own toggles beyond', () => {
  const many = (users, count) => [{ emoji: '👍', count, users }];
  const others = Array.from({ length: 20 }, (_, i) => ({ id: `u${i}`, name: `p${i}` }));
  // Named: mine; a whole list without me: not mine.
  assert.deepEqual(reactions.mineAfter([], { reactions: many([ann], 1) }, 'u-ann'), ['👍']);
  assert.deepEqual(reactions.mineAfter(['👍'], { reactions: many([ben], 1) }, 'u-ann'), []);
  // The 25th of 25: only my toggle can say so, and it is kept while unnamed.
  const added = { by: ann, emoji: '👍', added: true, reactions: many(others, 25) };
  const mine = reactions.mineAfter([], added, 'u-ann');
  assert.deepEqual(mine, ['👍']);
  assert.deepEqual(reactions.mineAfter(mine, { by: ben, emoji: '👍', added: true, reactions: many(others, 26) }, 'u-ann'), ['👍']);
  const back = { by: ann, emoji: '👍', added: false, reactions: many(others, 25) };
  assert.deepEqual(reactions.mineAfter(mine, back, 'u-ann'), []);
  // An emoji gone from the message is no longer mine; nobody known: unchanged.
  assert.deepEqual(reactions.mineAfter(['🎉'], { reactions: [] }, 'u-ann'), []);
  assert.deepEqual(reactions.mineAfter(['🎉'], { reactions: [] }, null), ['🎉']);
});

test('applyReacted keeps my reactions with the message', () => {
  const item = { id: 3, text: 'hi' };
  const others = Array.from({ length: 20 }, (_, i) => ({ id: `u${i}`, name: `p${i}` }));
  const frame = { id: 3, rev: 9, by: ann, emoji: '👍', added: true, reactions: [{ emoji: '👍', count: 21, users: others }] };
  assert.equal(reactions.applyReacted(item, frame, 'u-ann'), true);
  assert.deepEqual(item.mine, ['👍']);
  reactions.applyReacted(item, { ...frame, rev: 10, added: false, count: 20 }, 'u-ann');
  assert.equal('mine' in item, false);
});
