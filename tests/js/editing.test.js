import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as editing from '../../static/js/editing.js';

const alice = { id: 'u-alice', name: 'alice', color: '#c0392b' };
const bob = { id: 'u-bob', name: 'bob', color: '#2980b9' };

test('changeOf reads edited and deleted events and changed messages', () => {
  assert.deepEqual(
    editing.changeOf({ type: 'edited', room: 'r', id: 3, rev: 9, text: 'x', edited: 5, user: alice }),
    { id: 3, rev: 9, deleted: false, text: 'x', edited: 5, by: null },
  );
  assert.deepEqual(editing.changeOf({ type: 'deleted', room: 'r', id: 3, rev: 10, by: bob }), {
    id: 3,
    rev: 10,
    deleted: true,
    text: '',
    edited: null,
    by: bob,
  });
  const replayed = { id: 3, rev: 10, text: '', deleted: true, user: alice, ts: 1 };
  assert.equal(editing.changeOf(replayed).deleted, true);
  assert.equal(editing.changeOf({ id: 3, rev: 9, text: 'y', edited: 5, user: alice }).text, 'y');
  assert.equal(editing.changeOf({ id: 3, text: 'plain', user: alice, ts: 1 }), null);
  assert.equal(editing.changeOf({ type: 'edited', id: 0, text: 'x' }), null);
  assert.equal(editing.changeOf({ type: 'edited', id: 2 }), null);
  assert.equal(editing.changeOf(null), null);
});

test('newestId is the rev when there is one', () => {
  assert.equal(editing.newestId({ id: 3 }), 3);
  assert.equal(editing.newestId({ id: 3, rev: 8 }), 8);
  assert.equal(editing.newestId({}), 0);
});

test('applyChange edits, deletes for good and ignores stale changes', () => {
  const item = { id: 3, text: 'helo', ts: 1 };
  assert.equal(editing.applyChange(item, editing.changeOf({ type: 'edited', id: 3, rev: 5, text: 'hello', edited: 7 })), true);
  assert.deepEqual(item, { id: 3, text: 'hello', ts: 1, edited: 7, rev: 5 });
  // An older revision (a replay overlapping a live event) changes nothing.
  assert.equal(editing.applyChange(item, editing.changeOf({ type: 'edited', id: 3, rev: 4, text: 'old', edited: 6 })), false);
  assert.equal(item.text, 'hello');
  assert.equal(editing.applyChange(item, editing.changeOf({ type: 'deleted', id: 3, rev: 6 })), true);
  assert.deepEqual(item, { id: 3, text: '', ts: 1, deleted: true, rev: 6 });
  assert.equal(editing.applyChange(item, editing.changeOf({ type: 'edited', id: 3, rev: 9, text: 'back', edited: 8 })), false);
  assert.equal(item.text, '');
  assert.equal(editing.applyChange({ id: 4, text: 'x' }, editing.changeOf({ type: 'deleted', id: 3, rev: 6 })), false);
});

test('applyToKept removes a deleted text from the kept messages', () => {
  const kept = [
    { id: 1, text: 'one', ts: 1, user: alice },
    { id: 2, text: 'secret', ts: 2, user: alice },
  ];
  assert.equal(editing.applyToKept(kept, editing.changeOf({ type: 'deleted', id: 2, rev: 3 })), true);
  assert.equal(JSON.stringify(kept).includes('secret'), false);
  assert.equal(editing.applyToKept(kept, editing.changeOf({ type: 'deleted', id: 7, rev: 8 })), false);
});

test('only authors edit; authors and moderators delete', () => {
  const mine = { id: 1, user: alice };
  const theirs = { id: 2, user: bob };
  assert.equal(editing.canEdit(mine, alice), true);
  assert.equal(editing.canEdit(theirs, alice), false);
  assert.equal(editing.canEdit({ ...mine, deleted: true }, alice), false);
  assert.equal(editing.canDelete(mine, alice, {}), true);
  assert.equal(editing.canDelete(theirs, alice, { role: 'member' }), false);
  assert.equal(editing.canDelete(theirs, alice, { role: 'moderator' }), true);
  assert.equal(editing.canDelete(theirs, alice, { role: 'owner' }), true);
  assert.equal(editing.canDelete(theirs, alice, { admin: true }), true);
  assert.equal(editing.canDelete({ ...theirs, deleted: true }, alice, { admin: true }), false);
  assert.equal(editing.canEdit(mine, null), false);
});

test('lastEditable finds my newest message that is not deleted', () => {
  const items = [
    { id: 4, userId: 'u-alice' },
    { id: 9, userId: 'u-bob' },
    { id: 7, userId: 'u-alice', deleted: true },
    { id: 5, userId: 'u-alice' },
  ];
  assert.equal(editing.lastEditable(items, 'u-alice'), 5);
  assert.equal(editing.lastEditable(items, 'u-carol'), null);
});

test('editFrame sends a changed text and refuses what the server would', () => {
  assert.deepEqual(editing.editFrame('r', 3, 'a', 'b', 10), {
    frame: { type: 'edit', room: 'r', id: 3, text: 'b' },
  });
  assert.deepEqual(editing.editFrame('r', 3, 'a', 'a', 10), { unchanged: true });
  assert.match(editing.editFrame('r', 3, 'a', '  ', 10).error, /empty/);
  assert.match(editing.editFrame('r', 3, 'a', '😀'.repeat(11), 10).error, /11 characters/);
  assert.ok(editing.editFrame('r', 3, 'a', '😀'.repeat(10), 10).frame);
});

test('editedTitle says when', () => {
  assert.match(editing.editedTitle(Date.UTC(2024, 0, 2, 3, 4)), /^Edited .*2024/);
});

test('the kept messages keep an edit and never a deleted text', async () => {
  const { rememberMessage } = await import('../../static/js/storage.js');
  const recent = [];
  rememberMessage(recent, { id: 1, user: alice, text: 'fixed', ts: 1, edited: 5, rev: 3 });
  rememberMessage(recent, { id: 2, user: alice, text: 'gone', ts: 2, deleted: true, rev: 4 });
  assert.deepEqual(recent[0], { id: 1, user: alice, text: 'fixed', ts: 1, edited: 5, rev: 3 });
  assert.deepEqual(recent[1], { id: 2, user: alice, text: '', ts: 2, deleted: true, rev: 4 });
});

test('applyToKept keeps the quotes of a changed message current', () => {
  const recent = [
    { id: 3, user: alice, text: 'original', ts: 1 },
    { id: 4, user: bob, text: 're', ts: 2, reply: { id: 3, user: { name: 'alice' }, text: 'original' } },
    { id: 5, user: bob, text: 'other', ts: 3, reply: { id: 1, gone: true } },
  ];
  assert.equal(editing.applyToKept(recent, editing.changeOf({ type: 'edited', id: 3, rev: 6, text: 'better', edited: 9 })), true);
  assert.equal(recent[1].reply.text, 'better');
  editing.applyToKept(recent, editing.changeOf({ type: 'deleted', id: 3, rev: 7 }));
  assert.deepEqual(recent[1].reply, { id: 3, user: { name: 'alice' }, text: '', deleted: true });
  assert.ok(!JSON.stringify(recent).includes('better'));
  assert.deepEqual(recent[2].reply, { id: 1, gone: true });
});
