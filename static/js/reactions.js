/**
 * Reactions, the parts without a DOM: which text is one emoji (the
 * server's rule, chatcore/reactions.py, mirrored), what a `reacted` frame or
 * a message's `reactions` field says, how it updates a kept message, and
 * what a chip says. Pure: no DOM, no jQuery.
 */

export const PALETTE = ['👍', '❤️', '😂', '🎉', '😮', '😢'];
export const USERS_LISTED = 20; // the server names at most this many per emoji
const CODEPOINTS_MAX = 16;

const PICTOGRAPHIC = /^[\p{Extended_Pictographic}\p{Emoji_Presentation}]$/u;
const SEQUENCE_PART =
  /^[\u200d\ufe0f\ufe0e\u20e3\u{e0020}-\u{e007f}\p{Emoji_Modifier}\p{Regional_Indicator}\p{Extended_Pictographic}\p{Emoji_Presentation}]$/u;
const REGIONAL = /^\p{Regional_Indicator}$/u;
const KEYCAP_BASES = '0123456789#*';

function graphemes(text) {
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    return Array.from(new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)).length;
  }
  return Array.from(text).length; // old browsers: the server decides
}

/** Why `text` is not one emoji, or null when it is (the server checks too). */
export function emojiProblem(text) {
  if (typeof text !== 'string' || !text) return 'Give one emoji.';
  const points = Array.from(text);
  if (points.length > CODEPOINTS_MAX || graphemes(text) !== 1) return 'Give exactly one emoji.';
  const [first, ...rest] = points;
  if (KEYCAP_BASES.includes(first)) {
    const tail = rest.join('');
    return tail === '\ufe0f\u20e3' || tail === '\u20e3' ? null : 'That is not an emoji.';
  }
  if (REGIONAL.test(first)) {
    return rest.length === 1 && REGIONAL.test(rest[0]) ? null : 'That is not an emoji.';
  }
  if (!PICTOGRAPHIC.test(first) || !rest.every((c) => SEQUENCE_PART.test(c))) {
    return 'That is not an emoji.';
  }
  return null;
}

/** A message's reactions from the wire, well-formed entries only. */
export function reactionsOf(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter(
      (r) => r && typeof r.emoji === 'string' && Number.isInteger(r.count) && r.count > 0 && Array.isArray(r.users),
    )
    .map((r) => ({
      emoji: r.emoji,
      count: r.count,
      users: r.users
        .filter((u) => u && typeof u.id === 'string' && typeof u.name === 'string')
        .map((u) => ({ id: u.id, name: u.name })),
    }));
}

/** The revision a message's reactions are as of: its `rev`, else its `id`. */
export function reactionsRevOf(msg) {
  if (Number.isInteger(msg.reactionsRev)) return msg.reactionsRev;
  return Number.isInteger(msg.rev) ? msg.rev : msg.id;
}

/**
 * The emoji I (`meId`) reacted with on a message after `frame` (a `reacted`
 * frame, or a message with its `reactions`), from `mine` (the list before).
 * Where a reaction names everyone who reacted, the names decide; beyond the
 * USERS_LISTED it names, my own toggles (`by` me, `added`) do. Unchanged
 * while I am not known yet.
 */
export function mineAfter(mine, frame, meId) {
  const next = new Set(Array.isArray(mine) ? mine : []);
  if (!meId || !frame) return [...next];
  if (frame.by && frame.by.id === meId && typeof frame.emoji === 'string') {
    if (frame.added === true) next.add(frame.emoji);
    else if (frame.added === false) next.delete(frame.emoji);
  }
  const reactions = reactionsOf(frame.reactions);
  const present = new Set(reactions.map((r) => r.emoji));
  for (const emoji of next) if (!present.has(emoji)) next.delete(emoji);
  for (const reaction of reactions) {
    if (reactedByMe(reaction, meId)) next.add(reaction.emoji);
    else if (reaction.users.length >= reaction.count) next.delete(reaction.emoji); // all named
  }
  return [...next];
}

/**
 * Apply a `reacted` frame ({id, rev, reactions, by, emoji, added}) to a kept
 * message (storage.js's cache items), for me (`meId`); returns whether it
 * changed. An older or the same revision changes nothing: frames may come
 * twice (live and replayed).
 */
export function applyReacted(item, frame, meId = null) {
  if (!item || !frame || item.id !== frame.id || !Number.isInteger(frame.rev)) return false;
  if (item.deleted || frame.rev <= reactionsRevOf(item)) return false;
  const reactions = reactionsOf(frame.reactions);
  if (reactions.length) item.reactions = reactions;
  else delete item.reactions;
  const mine = mineAfter(item.mine, frame, meId);
  if (mine.length) item.mine = mine;
  else delete item.mine;
  item.reactionsRev = frame.rev;
  item.rev = Number.isInteger(item.rev) ? Math.max(item.rev, frame.rev) : frame.rev;
  return true;
}

/** Whether I am among the people a reaction names. */
export function reactedByMe(reaction, meId) {
  return Boolean(meId) && reaction.users.some((u) => u.id === meId);
}

/** "Ann", "Ann and Ben", "Ann, Ben and Cara", "Ann, Ben and 3 others". */
export function namesText(names, total = names.length) {
  const shown = total > 3 ? names.slice(0, 2) : names.slice(0, 3);
  const others = total - shown.length;
  if (others > 0) return `${shown.join(', ')} and ${others} ${others === 1 ? 'other' : 'others'}`;
  if (shown.length <= 1) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}

/** Who reacted, for a chip's tooltip: "Ann, Ben and 3 others reacted with 👍". */
export function whoText(reaction, meId) {
  const names = reaction.users.map((u) => (u.id === meId ? 'you' : u.name));
  return `${namesText(names, reaction.count)} reacted with ${reaction.emoji}`;
}

/** A chip's accessible name: "👍 3, you reacted" and what a click does. */
export function chipLabel(reaction, mine) {
  const people = reaction.count === 1 ? '1 person' : `${reaction.count} people`;
  return `${reaction.emoji} ${people}${mine ? ', including you; click to take yours back' : '; click to add yours'}`;
}

/** The frame that toggles my reaction. */
export function reactFrame(room, id, emoji) {
  return { type: 'react', room, id, emoji };
}
