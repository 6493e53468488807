/**
 * Private rooms in the client, without the DOM: the frames the room form and
 * the "Add people" form send, and the words shown when the server answers
 * (docs/protocol.md, "Private rooms"). Pure: unit-tested in tests/js.
 */

import { checkName, checkRoom } from './validation.js';

/**
 * The frame for the room form: `create` for a new private room, `join`
 * otherwise (a join makes a public room that does not exist yet).
 * @returns {{frame: object} | {error: string}}
 */
export function roomRequest(raw, makePrivate, limits) {
  const room = String(raw).trim();
  const error = checkRoom(room, limits);
  if (error) return { error };
  if (makePrivate) return { frame: { type: 'create', room, private: true } };
  return { frame: { type: 'join', room } };
}

/**
 * The frame that adds the person called `raw` to private room `room`.
 * @returns {{frame: object} | {error: string}}
 */
export function addRequest(room, raw, limits) {
  const checked = checkName(raw, limits);
  if (checked.error) return { error: checked.error };
  return { frame: { type: 'add', room, name: checked.name } };
}

/** Whether a presence snapshot is of a private room. */
export function isPrivateSnapshot(frame) {
  return Boolean(frame && frame.event === 'snapshot' && frame.private === true);
}

/** What to tell the person who was just added (`room_added`). */
export function roomAddedText(frame) {
  const by = frame.by && frame.by.name ? frame.by.name : 'Someone';
  return `${by} added you to the private room #${frame.room}.`;
}

/** What to tell the member who added someone (`added`). */
export function addedText(frame) {
  const name = frame.user && frame.user.name ? frame.user.name : 'They';
  return `${name} can now join #${frame.room}.`;
}

/** What to tell a person taken out of a room (`left`), or null for a plain leave. */
export function leftText(frame) {
  return frame.reason === 'removed' ? `You were removed from the private room #${frame.room}.` : null;
}

/**
 * The "Remove from this room" item of `target`'s person menu: only for the
 * creator of private `room` ({name, private, creator}: the snapshot's), and
 * never on the creator themselves; null otherwise.
 * @returns {{key: string, label: string, frame: object} | null}
 */
export function removeItem(meId, target, room) {
  if (!room || !room.private || !meId || room.creator !== meId) return null;
  if (!target || !target.id || target.id === meId) return null;
  return {
    key: 'remove',
    label: 'Remove from this room',
    frame: { type: 'remove', room: room.name, user: target.id },
  };
}

/** What to tell the creator once the server has taken someone out (`removed`). */
export function removedText(frame, name) {
  return `${name || 'They'} ${name ? 'was' : 'were'} removed from #${frame.room} and can no longer join it.`;
}
