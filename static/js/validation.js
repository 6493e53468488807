/**
 * Display-name and room-name rules, the same as chatcore/identity.py applies
 * (check_name, check_room), so a form can say at once what the server would
 * refuse. The lengths come from the server (the page's data attributes).
 * Pure: no DOM, no jQuery.
 */

// Letters and digits of any script (with their combining marks); a few
// separators may stand inside, never first (and, in a name, never last).
const NAME_RE = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M} .'\-_]*[\p{L}\p{N}\p{M}])?$/u;
const ROOM_RE = /^[\p{L}\p{N}][\p{L}\p{M}\p{N}_-]*$/u;
// Invisible characters (U+200B, U+034F, U+3164, ...) make look-alike names.
const INVISIBLE_RE = /\p{Default_Ignorable_Code_Point}/u;
// What Python's str.strip() removes: JavaScript's trim() also takes U+FEFF
// and leaves U+001C-U+001F and U+0085.
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP_RE = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'gu');

/** Length in code points, as the server counts. */
export function codePoints(text) {
  return Array.from(text).length;
}

/** A name as NFKC, case-folded: enough to spot a guest name. (The server
 * also compares names by how they look, which it alone decides.) */
export function nameKey(name) {
  return name.normalize('NFKC').toUpperCase().toLowerCase();
}

export function isGuestName(name) {
  return nameKey(name).startsWith('guest-');
}

/** The cleaned name, as {name}, or {error} saying what is wrong with it. */
export function checkName(raw, { nameMax }) {
  const name = String(raw).normalize('NFC').replace(PY_STRIP_RE, '');
  if (!name) return { error: 'Please enter a name.' };
  if (codePoints(name) > nameMax) {
    return { error: `A name can be at most ${nameMax} characters.` };
  }
  if (INVISIBLE_RE.test(name)) {
    return { error: 'A name cannot contain invisible characters.' };
  }
  if (!NAME_RE.test(name)) {
    return {
      error:
        "Use letters and digits, with spaces and . ' - _ only inside; " +
        'start and end with a letter or digit.',
    };
  }
  if (isGuestName(name)) {
    return { error: 'Names starting with “guest-” are reserved for guests.' };
  }
  return { name };
}

/** An error message for an invalid room name, or null. */
export function checkRoom(room, { roomMax }) {
  if (typeof room !== 'string' || !room) return 'Please enter a room name.';
  if (codePoints(room) > roomMax) {
    return `A room name can be at most ${roomMax} characters.`;
  }
  if (INVISIBLE_RE.test(room)) {
    return 'A room name cannot contain invisible characters.';
  }
  if (!ROOM_RE.test(room)) {
    return 'Use letters, digits, - and _, starting with a letter or digit.';
  }
  return null;
}
