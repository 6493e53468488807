/**
 * The member list of a big room, without the DOM (docs/protocol.md, "Big
 * rooms"): whether a room is listed whole or in pages, the `members` frames
 * that "more" and the search box send, and how their answers merge into what
 * the list shows. Pure: unit-tested in tests/js.
 *
 * A room's paging state: `big` (paged mode), `more` (the server has members
 * not listed yet), `next` (the cursor of the next page; null: from the start),
 * `typists` (how many are typing, a big room's only typing news) and `search`
 * (null, or {q, members: Map, next, more} while the search box has text).
 */

export const SEARCH_MAX = 64; // the server's limit on `q`

/** The paging state of a small room, or before any snapshot. */
export function smallRoom() {
  return { big: false, more: false, next: null, typists: 0, search: null };
}

/** The paging state a presence snapshot starts. */
export function fromSnapshot(frame) {
  if (!frame.big) return smallRoom();
  return {
    big: true,
    more: Boolean(frame.members_more),
    next: null,
    typists: Number(frame.typists) > 0 ? Number(frame.typists) : 0,
    search: null,
  };
}

/**
 * A `count` frame: the room is big (it may just have become so: then the
 * list we hold stops being kept up to date, and more can be loaded).
 */
export function onCount(paging, frame) {
  return {
    ...paging,
    big: true,
    more: paging.big ? paging.more : true,
    typists: Number(frame.typists) > 0 ? Number(frame.typists) : 0,
  };
}

/** The `members` frame that loads the next page of the list or of a search. */
export function moreRequest(roomName, paging) {
  const frame = { type: 'members', room: roomName };
  const source = paging.search || paging;
  if (paging.search) frame.q = paging.search.q;
  if (source.next) frame.after = source.next;
  return frame;
}

/**
 * The search box changed: the new paging state and the frame to send
 * (none when the box is empty: the list shows again).
 */
export function search(roomName, paging, raw) {
  const q = String(raw).trim().slice(0, SEARCH_MAX);
  if (!q) return { paging: { ...paging, search: null }, frame: null };
  if (paging.search && paging.search.q === q) return { paging, frame: null };
  return {
    paging: { ...paging, search: { q, members: new Map(), next: null, more: false } },
    frame: { type: 'members', room: roomName, q },
  };
}

function merged(map, users) {
  const out = new Map(map);
  (Array.isArray(users) ? users : []).forEach((user) => {
    if (user && typeof user.id === 'string') out.set(user.id, user);
  });
  return out;
}

/**
 * A `members` answer: the new paging state and member map (a search that
 * changed since the request was sent is ignored).
 */
export function onPage(paging, members, frame) {
  const next = typeof frame.next === 'string' ? frame.next : null;
  if (typeof frame.q === 'string') {
    const current = paging.search;
    if (!current || current.q !== frame.q) return { paging, members };
    const base = frame.after ? current.members : new Map();
    const search = { ...current, members: merged(base, frame.members), next, more: Boolean(next) };
    return { paging: { ...paging, search }, members };
  }
  return { paging: { ...paging, next, more: Boolean(next) }, members: merged(members, frame.members) };
}

/** The members to show, by name: the search's results while there is one. */
export function shown(paging, members) {
  const users = Array.from((paging.search ? paging.search.members : members).values());
  return users.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
}

/** Whether "more" is offered. */
export function hasMore(paging) {
  return Boolean(paging.big && (paging.search ? paging.search.more : paging.more));
}

/** The typing line of a big room, where only a count is known. */
export function typistsText(typists) {
  if (!(typists > 0)) return '';
  return typists === 1 ? 'someone is typing…' : `${typists} people are typing…`;
}
