import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  fromSnapshot,
  hasMore,
  moreRequest,
  onCount,
  onPage,
  search,
  shown,
  smallRoom,
  typistsText,
} from '../../static/js/members.js';

const user = (name) => ({ id: `u-${name}`, name, color: '#000' });
const names = (list) => list.map((u) => u.name);

test('a small snapshot lists everyone and offers no more', () => {
  const paging = fromSnapshot({ event: 'snapshot', users: [user('a')], count: 1 });
  assert.deepEqual(paging, smallRoom());
  assert.equal(hasMore(paging), false);
});

test('a big snapshot is paged: more from the start of the name order', () => {
  const paging = fromSnapshot({ big: true, members_more: true, typists: 2 });
  assert.equal(paging.big, true);
  assert.equal(paging.typists, 2);
  assert.equal(hasMore(paging), true);
  assert.deepEqual(moreRequest('lobby', paging), { type: 'members', room: 'lobby' });
});

test('pages merge into the list without duplicates; the last one ends "more"', () => {
  let paging = fromSnapshot({ big: true, members_more: true });
  let members = new Map([['u-zed', user('zed')], ['u-ann', user('ann')]]);
  ({ paging, members } = onPage(paging, members, {
    members: [user('ann'), user('bob')],
    next: 'bob\nu-bob',
  }));
  assert.deepEqual(names(shown(paging, members)), ['ann', 'bob', 'zed']);
  assert.deepEqual(moreRequest('lobby', paging), {
    type: 'members',
    room: 'lobby',
    after: 'bob\nu-bob',
  });
  ({ paging, members } = onPage(paging, members, { members: [user('cy')], after: 'bob\nu-bob' }));
  assert.deepEqual(names(shown(paging, members)), ['ann', 'bob', 'cy', 'zed']);
  assert.equal(hasMore(paging), false);
});

test('a search shows its own results, pages them, and ends when the box is empty', () => {
  let paging = fromSnapshot({ big: true, members_more: true });
  let members = new Map([['u-ann', user('ann')]]);
  const started = search('lobby', paging, '  Bo ');
  assert.deepEqual(started.frame, { type: 'members', room: 'lobby', q: 'Bo' });
  paging = started.paging;
  assert.deepEqual(search('lobby', paging, 'Bo').frame, null); // the same search
  ({ paging, members } = onPage(paging, members, {
    q: 'Bo',
    members: [user('bob')],
    next: 'bob\nu-bob',
  }));
  assert.deepEqual(names(shown(paging, members)), ['bob']);
  assert.deepEqual(moreRequest('lobby', paging), {
    type: 'members',
    room: 'lobby',
    q: 'Bo',
    after: 'bob\nu-bob',
  });
  ({ paging, members } = onPage(paging, members, {
    q: 'Bo',
    after: 'bob\nu-bob',
    members: [user('bobby')],
  }));
  assert.deepEqual(names(shown(paging, members)), ['bob', 'bobby']);
  assert.equal(hasMore(paging), false);
  paging = search('lobby', paging, '').paging;
  assert.deepEqual(names(shown(paging, members)), ['ann']);
});

test('an answer to an older search is ignored', () => {
  let paging = search('lobby', fromSnapshot({ big: true }), 'al').paging;
  paging = search('lobby', paging, 'ali').paging;
  const after = onPage(paging, new Map(), { q: 'al', members: [user('alfred')] });
  assert.deepEqual(names(shown(after.paging, after.members)), []);
});

test('a count makes a small room big and keeps its typists', () => {
  const paging = onCount(smallRoom(), { event: 'count', count: 200, big: true, typists: 3 });
  assert.equal(paging.big, true);
  assert.equal(hasMore(paging), true);
  assert.equal(paging.typists, 3);
  assert.equal(onCount({ ...paging, more: false }, { typists: 0 }).more, false);
});

test('the typing line of a big room is a count', () => {
  assert.equal(typistsText(0), '');
  assert.equal(typistsText(1), 'someone is typing…');
  assert.equal(typistsText(4), '4 people are typing…');
});
