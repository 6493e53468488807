import assert from 'node:assert/strict';
import { test } from 'node:test';

import { authorTarget, badge, durationText, explain, logLine, menuItems, moderates } from '../../static/js/moderation.js';

const keys = (items) => items.map((item) => item.key);

test('only admins, owners and moderators moderate', () => {
  assert.equal(moderates({ admin: true, role: 'member' }), true);
  assert.equal(moderates({ admin: false, role: 'owner' }), true);
  assert.equal(moderates({ admin: false, role: 'moderator' }), true);
  assert.equal(moderates({ admin: false, role: 'member' }), false);
  assert.equal(moderates(null), false);
});

test('a moderator may mute and kick a member, not ban or appoint', () => {
  const items = menuItems({ id: 'me', role: 'moderator' }, { id: 'bob', role: 'member' }, 'lobby');
  assert.deepEqual(keys(items), ['mute-600', 'mute-3600', 'mute-forever', 'unmute', 'kick']);
  assert.deepEqual(items[0].frame, { type: 'mute', user: 'bob', room: 'lobby', seconds: 600 });
  assert.deepEqual(items[2].frame, { type: 'mute', user: 'bob', room: 'lobby' });
  assert.deepEqual(items[4].frame, { type: 'kick', user: 'bob', room: 'lobby', seconds: 300 });
});

test('an admin may also ban and appoint; an owner may appoint', () => {
  const admin = keys(menuItems({ id: 'me', admin: true }, { id: 'bob' }, 'lobby'));
  assert.ok(admin.includes('ban') && admin.includes('make-moderator'));
  const owner = menuItems({ id: 'me', role: 'owner' }, { id: 'bob', role: 'moderator' }, 'lobby');
  assert.deepEqual(owner.at(-1).frame, { type: 'role', room: 'lobby', user: 'bob', role: 'member' });
  assert.ok(!keys(owner).includes('ban'));
});

test('no menu on myself, for members, on admins or (for moderators) on the owner', () => {
  assert.deepEqual(menuItems({ id: 'me', admin: true }, { id: 'me' }, 'lobby'), []);
  assert.deepEqual(menuItems({ id: 'me', role: 'member' }, { id: 'bob' }, 'lobby'), []);
  assert.deepEqual(menuItems({ id: 'me', role: 'owner' }, { id: 'boss', admin: true }, 'lobby'), []);
  assert.deepEqual(menuItems({ id: 'me', role: 'moderator' }, { id: 'o', role: 'owner' }, 'lobby'), []);
});

test('durations read as people say them', () => {
  assert.equal(durationText(45), '45 seconds');
  assert.equal(durationText(1), '1 second');
  assert.equal(durationText(599.6), '10 minutes');
  assert.equal(durationText(3600), '1 hour');
  assert.equal(durationText(2 * 86400), '2 days');
});

test('the target is told what happened, where, by whom and for how long', () => {
  const by = { id: 'a', name: 'Ann' };
  assert.equal(
    explain({ action: 'mute', room: 'lobby', by, seconds: 600 }),
    'You were muted in #lobby by Ann for 10 minutes.',
  );
  assert.equal(explain({ action: 'mute', by }), 'You were muted on this server by Ann until unmuted.');
  assert.equal(
    explain({ action: 'kick', room: 'dev', by, seconds: 300 }),
    'You were kicked from #dev by Ann for 5 minutes.',
  );
  assert.equal(explain({ action: 'ban', by, reason: 'spam' }), 'You were banned from this server by Ann: spam.');
});

test('log entries read as one line each', () => {
  const actor = { id: 'a', name: 'Ann' };
  const target = { id: 'b', name: 'Bob' };
  assert.equal(
    logLine({ action: 'mute', actor, target, room: 'lobby', detail: { seconds: 3600 } }),
    'Ann muted Bob in #lobby for 1 hour',
  );
  assert.equal(logLine({ action: 'ban', actor, target, detail: { reason: 'spam' } }), 'Ann banned Bob on this server (spam)');
  assert.equal(logLine({ action: 'slow', actor, room: 'lobby', detail: { seconds: 0 } }), 'Ann turned slow mode off in #lobby');
  assert.equal(
    logLine({ action: 'role', actor, target, room: 'lobby', detail: { role: 'moderator' } }),
    'Ann made Bob a moderator of #lobby',
  );
  assert.equal(logLine({ action: 'admin', actor: { name: 'console' }, target }), 'console made an admin: Bob');
});

test('badges for owners and moderators only', () => {
  assert.equal(badge('owner'), 'owner');
  assert.equal(badge('moderator'), 'mod');
  assert.equal(badge('member'), '');
  assert.equal(badge(undefined), '');
});

test("a message's author carries the role the member list knows, if any", () => {
  const members = new Map([['u-mod', { id: 'u-mod', name: 'Mo', role: 'moderator' }]]);
  const mo = authorTarget({ id: 'u-mod', name: 'Mo', color: '#123' }, members);
  assert.deepEqual(mo, { id: 'u-mod', name: 'Mo', color: '#123', role: 'moderator' });
  // A moderator's menu on another moderator's message: no "Make moderator".
  const owner = { id: 'u-own', admin: false, role: 'owner' };
  const keys = menuItems(owner, mo, 'lobby').map((item) => item.key);
  assert.ok(keys.includes('remove-moderator') && !keys.includes('make-moderator'));
  // Someone who has left: as the message has them.
  assert.deepEqual(authorTarget({ id: 'u-gone', name: 'Gone' }, members), { id: 'u-gone', name: 'Gone' });
  assert.deepEqual(authorTarget({ id: 'u-gone', name: 'Gone' }, undefined), { id: 'u-gone', name: 'Gone' });
});
