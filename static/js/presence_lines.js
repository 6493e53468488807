/**
 * The quiet "joined" and "left" lines in a conversation, the part without a
 * DOM: joins and leaves that follow each other within a minute, with no
 * message between, make one line ("Ann, Ben and 3 others joined; Cara
 * left"); a leave taken back by a join of the same person within a few
 * seconds (a reload, a reconnect) shows nothing; rooms above a size show
 * none. The lines are what this page saw while open: the server keeps none.
 * Pure: no DOM, no jQuery.
 */

import { namesText } from './reactions.js';

export const QUIET_ROOM_MAX = 50; // members; bigger rooms get no lines
export const GROUP_MS = 60 * 1000; // events closer than this share a line
export const CHURN_MS = 5 * 1000; // a leave undone this fast was a reconnect

/** The text of a line {joined: [{id, name}], left: [...]}; '' when empty. */
export function lineText(line) {
  const parts = [];
  if (line.joined.length) parts.push(`${namesText(line.joined.map((u) => u.name))} joined`);
  if (line.left.length) parts.push(`${namesText(line.left.map((u) => u.name))} left`);
  return parts.join('; ');
}

/**
 * One room's lines. `event(kind, user, at, members)` takes a `join` or
 * `leave` of `user` ({id, name}) at `at` (ms) in a room of `members`, and
 * says what to show: {line, fresh} (a new line, or the last one changed),
 * {line: null, removed} (the last line emptied: remove it) or null
 * (nothing to show). `interrupt()` says a message came: the next event
 * starts a new line.
 */
export class PresenceLines {
  constructor() {
    this.last = null; // the newest line: {joined, left, at, key}
    this.leftAt = new Map(); // user id → when they left, for CHURN_MS
    this.count = 0;
  }

  interrupt() {
    this.last = null;
  }

  event(kind, user, at, members) {
    if (!user || typeof user.id !== 'string' || typeof user.name !== 'string') return null;
    if (kind !== 'join' && kind !== 'leave') return null;
    for (const [id, when] of this.leftAt) if (at - when > CHURN_MS) this.leftAt.delete(id);
    if (members > QUIET_ROOM_MAX) {
      this.last = null;
      return null;
    }
    const line = this.last;
    if (kind === 'join' && this.leftAt.has(user.id)) {
      // Back at once: the leave was a reconnect, not worth a word.
      this.leftAt.delete(user.id);
      if (!line || !line.left.some((u) => u.id === user.id)) return null;
      line.left = line.left.filter((u) => u.id !== user.id);
      if (line.joined.length || line.left.length) return { line, fresh: false };
      this.last = null;
      return { line: null, removed: line };
    }
    const fresh = !line || at - line.at > GROUP_MS;
    const current = fresh ? this.start(at) : line;
    // Who came and went stays in both; who went and came back is back.
    const who = { id: user.id, name: user.name };
    const without = (list) => list.filter((u) => u.id !== user.id);
    if (kind === 'join') {
      current.left = without(current.left);
      current.joined = [...without(current.joined), who];
    } else {
      current.left = [...without(current.left), who];
      this.leftAt.set(user.id, at);
    }
    current.at = at;
    return { line: current, fresh };
  }

  start(at) {
    this.count += 1;
    this.last = { joined: [], left: [], at, key: this.count };
    return this.last;
  }
}
