import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  dmAddedText,
  dmItem,
  dmNotificationTitle,
  dmsToJoin,
  dmTitle,
  findDm,
  isDmFrame,
  isDmRoom,
  membersOf,
  renamed,
  sameMembers,
} from '../../static/js/dm.js';
import { checkRoom } from '../../static/js/validation.js';

const ROOM = `@${'a1'.repeat(15)}`;
const ANN = { id: 'u-ann', name: 'Ann' };
const BEN = { id: 'u-ben', name: 'Ben' };
const CAL = { id: 'u-cal', name: 'Cal' };

test("a conversation's room has the server's reserved form, which no room form accepts", () => {
  assert.ok(isDmRoom(ROOM));
  for (const name of ['@', `@${'a'.repeat(29)}`, `@${'a'.repeat(31)}`, `@${'A'.repeat(30)}`, `#${'a'.repeat(30)}`, 'lobby', null]) {
    assert.ok(!isDmRoom(name), String(name));
  }
  assert.ok(checkRoom(ROOM, { roomMax: 32 })); // the join form refuses it
  assert.ok(isDmFrame({ kind: 'dm', room: ROOM }));
  assert.ok(!isDmFrame({ kind: 'dm', room: 'lobby' }));
  assert.ok(!isDmFrame({ room: ROOM }));
});

test('a conversation is titled by the other people, never by me', () => {
  assert.equal(dmTitle([ANN, BEN], ANN.id), 'Ben');
  assert.equal(dmTitle([ANN, BEN, CAL], BEN.id), 'Ann, Cal');
  assert.equal(dmTitle([ANN], ANN.id), 'Just you');
  assert.equal(dmTitle([], ANN.id), 'Direct message');
  assert.equal(dmTitle(undefined, ANN.id), 'Direct message');
});

test('members are read defensively from a frame', () => {
  const frame = { members: [ANN, { id: 3, name: 'x' }, null, { ...BEN, color: '#fff' }] };
  assert.deepEqual(membersOf(frame), [ANN, BEN]);
  assert.deepEqual(membersOf({}), []);
});

test('"Message privately" is offered on anyone but me and bots', () => {
  assert.deepEqual(dmItem(ANN.id, BEN), {
    key: 'dm',
    label: 'Message privately',
    frame: { type: 'dm', to: [BEN.id] },
  });
  assert.equal(dmItem(ANN.id, ANN), null);
  assert.equal(dmItem(ANN.id, { id: 'bot-1234', name: 'ci' }), null);
  assert.equal(dmItem(null, BEN), null);
  assert.equal(dmItem(ANN.id, { name: 'no id' }), null);
});

test('an open conversation is found by exactly its members', () => {
  const rooms = new Map([
    ['lobby', { dmMembers: null }],
    [ROOM, { dmMembers: [ANN, BEN] }],
    [`@${'b2'.repeat(15)}`, { dmMembers: [ANN, BEN, CAL] }],
  ]);
  assert.equal(findDm(rooms, [BEN.id], ANN.id), ROOM);
  assert.equal(findDm(rooms, [BEN.id, CAL.id], ANN.id), `@${'b2'.repeat(15)}`);
  assert.equal(findDm(rooms, [CAL.id], ANN.id), null);
  assert.ok(sameMembers([ANN, BEN], [BEN.id, ANN.id], ANN.id)); // me named too
  assert.ok(!sameMembers([ANN, BEN, CAL], [BEN.id], ANN.id));
});

test('a rename changes the name in a conversation it is in', () => {
  assert.deepEqual(renamed([ANN, BEN], { id: BEN.id, name: 'Benjamin', color: '#000' }), [
    ANN,
    { id: BEN.id, name: 'Benjamin' },
  ]);
  const members = [ANN, BEN];
  assert.equal(renamed(members, CAL), members);
});

test('the notice for a new conversation names who opened it and who else is in it', () => {
  const frame = { room: ROOM, kind: 'dm', by: ANN, members: [ANN, BEN] };
  assert.equal(dmAddedText(frame, BEN.id), 'Ann started a conversation with you.');
  assert.equal(
    dmAddedText({ ...frame, members: [ANN, BEN, CAL] }, BEN.id),
    'Ann started a conversation with you and Cal.',
  );
  assert.equal(dmAddedText(frame, ANN.id), null); // my own, from another tab
});

test('a notification says it is a direct message', () => {
  const msg = { user: BEN, text: 'hi' };
  assert.equal(dmNotificationTitle(msg, [ANN, BEN], ANN.id), 'Ben (direct message)');
  assert.equal(dmNotificationTitle(msg, [ANN, BEN, CAL], ANN.id), 'Ben in Ben, Cal');
});

test('the welcome adds the conversations not open yet, within the room limit', () => {
  const other = `@${'c3'.repeat(15)}`;
  const open = new Set(['lobby', ROOM]);
  assert.deepEqual(dmsToJoin([ROOM, other, 'junk'], open, 20), [other]);
  assert.deepEqual(dmsToJoin([other], open, 2), []);
  assert.deepEqual(dmsToJoin([other], open, 0), [other]); // no limit said
  assert.deepEqual(dmsToJoin(undefined, open, 20), []);
});
