/**
 * Taking a message back, the parts without a DOM: who may edit or delete a
 * message, what an `edited` or `deleted` frame (or a replayed message that
 * changed) says, how it changes the messages kept on this device, and what
 * an edit sends. Pure: no DOM, no jQuery.
 */

import { codePoints } from './validation.js';

export const DELETED_TEXT = 'message deleted';
const QUOTE_MAX = 140; // characters of a quote, as the server sends them

/**
 * The change a frame carries, as {id, rev, deleted, text, edited, by}: an
 * `edited` or `deleted` event, or a message (replayed, or in a page of
 * history) that was edited or deleted. Null when it carries none.
 */
export function changeOf(frame) {
  if (!frame || !Number.isInteger(frame.id) || frame.id < 1) return null;
  const rev = Number.isInteger(frame.rev) ? frame.rev : null;
  const by = frame.by && typeof frame.by.name === 'string' ? frame.by : null;
  if (frame.type === 'deleted' || frame.deleted === true) {
    return { id: frame.id, rev, deleted: true, text: '', edited: null, by };
  }
  const edited = Number.isFinite(frame.edited) ? frame.edited : null;
  if (typeof frame.text !== 'string' || (frame.type !== 'edited' && edited === null)) {
    return null;
  }
  return { id: frame.id, rev, deleted: false, text: frame.text, edited, by: null };
}

/** The highest id a message or change carries: its `rev`, else its `id`. */
export function newestId(frame) {
  const id = Number.isInteger(frame.id) ? frame.id : 0;
  return Number.isInteger(frame.rev) ? Math.max(id, frame.rev) : id;
}

/**
 * Apply a change to a message as kept (storage.js's cache items, or any
 * {id, text, edited?, deleted?, rev?}); returns whether it changed. A change
 * older than what the message shows already is ignored; a deleted message
 * stays deleted, and its text is gone.
 */
export function applyChange(item, change) {
  if (!item || !change || item.id !== change.id) return false;
  if (Number.isInteger(item.rev) && change.rev !== null && change.rev <= item.rev) return false;
  if (item.deleted && !change.deleted) return false;
  if (change.deleted) {
    item.text = '';
    item.deleted = true;
    delete item.edited;
    delete item.attachment;
  } else {
    item.text = change.text;
    if (change.edited !== null) item.edited = change.edited;
  }
  if (change.rev !== null) item.rev = change.rev;
  return true;
}

/**
 * Apply a change to a room's kept messages, and to the quotes of the changed
 * message they carry; returns whether one changed.
 */
export function applyToKept(recent, change) {
  let changed = applyChange(
    recent.find((m) => m.id === change.id),
    change,
  );
  // And the quotes of it (storage.keptQuote): a deleted text leaves them too.
  recent.forEach((m) => {
    const quote = m.reply;
    if (!quote || quote.id !== change.id || quote.gone || quote.deleted) return;
    m.reply = change.deleted
      ? { id: quote.id, user: quote.user, text: '', deleted: true }
      : { ...quote, text: change.text.slice(0, QUOTE_MAX) };
    changed = true;
  });
  return changed;
}

/** Whether the user `rights` ({role, admin}) describe moderates the room. */
export function moderates(rights) {
  return Boolean(rights && (rights.admin === true || rights.role === 'owner' || rights.role === 'moderator'));
}

/** Whether `me` may edit `msg` ({user: {id}, deleted}): only my own, not deleted. */
export function canEdit(msg, me) {
  return Boolean(me && msg && msg.user && msg.user.id === me.id && !msg.deleted);
}

/** Whether `me` may delete `msg`: my own, or any if I moderate the room. */
export function canDelete(msg, me, rights) {
  if (!msg || !msg.user || msg.deleted) return false;
  return Boolean(me && msg.user.id === me.id) || moderates(rights);
}

/**
 * The newest of my messages that I may still edit, from items {id, userId,
 * deleted} in any order; null if there is none (Up in an empty composer).
 */
export function lastEditable(items, meId) {
  let newest = null;
  for (const item of items) {
    if (item.userId !== meId || item.deleted || !Number.isInteger(item.id)) continue;
    if (!newest || item.id > newest.id) newest = item;
  }
  return newest ? newest.id : null;
}

/**
 * What saving an edit does: {frame} to send, {unchanged: true} when the text
 * is the same (nothing to send), or {error} saying why the server would
 * refuse it (the same checks as a new message).
 */
export function editFrame(room, id, before, after, maxText) {
  const text = String(after);
  if (text === before) return { unchanged: true };
  if (!text.trim()) return { error: 'A message cannot be empty; delete it instead.' };
  const length = codePoints(text);
  if (length > maxText) {
    return { error: `The message is ${length} characters; the limit is ${maxText}.` };
  }
  return { frame: { type: 'edit', room, id, text } };
}

/** The edited marker's tooltip, in the reader's locale. */
export function editedTitle(ms) {
  const when = new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return `Edited ${when}`;
}
