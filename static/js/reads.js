/**
 * Unread counts from read positions kept on the server (docs/protocol.md,
 * "Read positions"). Pure: no DOM, no jQuery.
 *
 * A room's position is the highest id its person has read there, on any
 * device; it only moves forward. Unread messages are those after it, by
 * someone else, not deleted, among the messages this page holds. When the
 * page's messages do not reach back to the position there may be more than
 * it can count, and the badge says so ("50+").
 */

export const READ_INTERVAL_MS = 1000; // at most one `read` per room per interval
export const BADGE_MAX = 99;

/** What one room's unread count is made of. */
export class UnreadCounter {
  constructor() {
    this.readId = null; // null until the server (or this page) says
    this.others = new Set(); // ids of held messages by others, not deleted
  }

  /** Move the position to `id` if that is further; say whether it moved. */
  setRead(id) {
    if (!Number.isInteger(id) || id < 0) return false;
    if (this.readId !== null && id <= this.readId) return false;
    this.readId = id;
    return true;
  }

  /** A message this page now holds: counted if someone else wrote it. */
  note(id, byOther, deleted) {
    if (byOther && !deleted) this.others.add(id);
    else this.others.delete(id);
  }

  /** A message was deleted: it is no longer news. */
  drop(id) {
    this.others.delete(id);
  }

  /** The room's history restarted (a new epoch): the old ids mean nothing. */
  clearMessages() {
    this.others.clear();
  }

  /** Held messages after the position (none while it is unknown). */
  count() {
    if (this.readId === null) return 0;
    let n = 0;
    this.others.forEach((id) => {
      if (id > this.readId) n += 1;
    });
    return n;
  }

  /**
   * Whether unread messages may exist beyond what the page holds: older
   * ones are kept on the server (`hasMore`) and the oldest held message is
   * above the first id after the position.
   */
  mayHaveMore(oldestId, hasMore) {
    return this.readId !== null && hasMore && oldestId > this.readId + 1;
  }
}

/**
 * The badge's text: '' for none, '7', '99+', or '50+' when there may be
 * more (none counted says nothing: there may be none at all).
 */
export function unreadLabel(count, more) {
  if (count <= 0) return '';
  if (count > BADGE_MAX) return `${BADGE_MAX}+`;
  return more ? `${count}+` : String(count);
}

/** The `read` frame for a room seen up to `lastId`, or null if nothing is new. */
export function readFrame(room, lastId, readId) {
  if (!Number.isInteger(lastId) || lastId <= 0) return null;
  if (readId !== null && lastId <= readId) return null;
  return { type: 'read', room, id: lastId };
}

/** At most one `read` per room per `interval` ms. */
export class ReadThrottle {
  constructor(interval = READ_INTERVAL_MS) {
    this.interval = interval;
    this.last = new Map(); // room -> when its last `read` went
  }

  /** Milliseconds to wait before a `read` of `room` may go (0: now). */
  wait(room, now) {
    const last = this.last.get(room);
    return last === undefined ? 0 : Math.max(0, last + this.interval - now);
  }

  sent(room, now) {
    this.last.set(room, now);
  }

  forget(room) {
    this.last.delete(room);
  }
}
