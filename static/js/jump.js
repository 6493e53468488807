/**
 * Jumping to a message: from a quoted line to the original, from a search
 * result to the message in its room. If the message is not on the page yet,
 * older pages of history are asked for, one at a time, until it is there,
 * the room's history ends (it is no longer kept) or a bound of pages is
 * reached. Pure: no DOM, no jQuery; what it does to the page goes through
 * the callbacks it is given.
 */

export const JUMP_PAGES_MAX = 40; // older pages asked for one jump, at most

/**
 * What to do next for a jump to `target`, given the room as it is:
 * {shown (the message is on the page), oldestId (the oldest id shown, 0 for
 * none), hasMore (older history exists), loaded (the first page came),
 * pages (older pages asked for so far)}. One of:
 *   'show'  it is on the page: scroll to it;
 *   'wait'  the room's first page has not come yet;
 *   'load'  ask for the page before oldestId;
 *   'gone'  it is older than everything kept (or not kept at all);
 *   'stop'  too many pages for one jump.
 */
export function jumpStep(room, target) {
  if (room.shown) return 'show';
  if (!room.loaded) return 'wait';
  if (room.oldestId && target > room.oldestId) return 'gone'; // within range, yet absent
  if (!room.hasMore) return 'gone';
  if (room.pages >= JUMP_PAGES_MAX) return 'stop';
  return 'load';
}

export class Jumper {
  /**
   * `deps`: {look(roomName, id) → {shown, oldestId, hasMore, loaded}
   * (null: no such room here), loadOlder(roomName) → bool (asked),
   * reveal(roomName, id), missing(roomName, id, why: 'gone' | 'stop')}.
   */
  constructor(deps) {
    this.deps = deps;
    this.pending = null; // {room, id, pages}
  }

  /** Start a jump (replacing any other one under way). */
  start(roomName, id) {
    this.pending = { room: roomName, id, pages: 0 };
    this.step();
  }

  /** Something came for a room (a page of history, a snapshot): go on. */
  onPage(roomName) {
    if (this.pending && this.pending.room === roomName) this.step();
  }

  /** The reader went elsewhere: the jump under way is dropped. */
  cancel() {
    this.pending = null;
  }

  step() {
    const jump = this.pending;
    if (!jump) return;
    const seen = this.deps.look(jump.room, jump.id);
    if (!seen) return; // the room is not here yet: its snapshot will come
    const next = jumpStep({ ...seen, pages: jump.pages }, jump.id);
    if (next === 'wait') return;
    if (next === 'load') {
      if (this.deps.loadOlder(jump.room)) jump.pages += 1;
      return;
    }
    this.pending = null;
    if (next === 'show') this.deps.reveal(jump.room, jump.id);
    else this.deps.missing(jump.room, jump.id, next);
  }
}

/** What a quoted line says: {author, text} from a message's `reply`. */
export function quoteLine(reply) {
  if (!reply || !Number.isInteger(reply.id)) return null;
  if (reply.gone) return { author: '', text: 'message no longer kept', state: 'gone' };
  const author = reply.user && typeof reply.user.name === 'string' ? reply.user.name : '';
  if (reply.deleted) return { author, text: 'message deleted', state: 'deleted' };
  const text = typeof reply.text === 'string' ? reply.text.replace(/\s+/g, ' ').trim() : '';
  return { author, text, state: 'kept' };
}

/**
 * A message's text cut at highlight ranges ([start, end) in UTF-16 units,
 * as the server sends them): [{text, mark}] in order, for the page to put
 * in with .text() (never as HTML). Ranges out of order, overlapping or out
 * of bounds are ignored.
 */
export function markedParts(text, ranges) {
  const parts = [];
  let at = 0;
  (Array.isArray(ranges) ? ranges : []).forEach((range) => {
    if (!Array.isArray(range) || range.length !== 2) return;
    const [start, end] = range;
    if (!Number.isInteger(start) || !Number.isInteger(end)) return;
    if (start < at || end <= start || end > text.length) return;
    if (start > at) parts.push({ text: text.slice(at, start), mark: false });
    parts.push({ text: text.slice(start, end), mark: true });
    at = end;
  });
  if (at < text.length) parts.push({ text: text.slice(at), mark: false });
  return parts;
}
