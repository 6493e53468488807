/**
 * Direct messages in the client, without the DOM: which rooms are direct
 * conversations, what a conversation is called (the other people's names),
 * the "Message privately" item of a person's menu, finding a conversation
 * already open, and the words shown for them (docs/protocol.md, "Direct
 * messages"). Pure: unit-tested in tests/js.
 */

// The server names a conversation '@' and 30 hex digits (a hash of its
// members); no other room name can start with '@'.
const DM_ROOM_RE = /^@[0-9a-f]{30}$/;
export const DM_OTHERS_MAX = 7;

/** Whether a room name is a direct conversation's. */
export function isDmRoom(name) {
  return typeof name === 'string' && DM_ROOM_RE.test(name);
}

/** Whether a presence snapshot or `room_added` is of a direct conversation. */
export function isDmFrame(frame) {
  return Boolean(frame && frame.kind === 'dm' && isDmRoom(frame.room));
}

/** The members of a frame ({id, name} objects), the malformed left out. */
export function membersOf(frame) {
  const list = frame && Array.isArray(frame.members) ? frame.members : [];
  return list
    .filter((m) => m && typeof m.id === 'string' && typeof m.name === 'string')
    .map((m) => ({ id: m.id, name: m.name }));
}

/** The people in a conversation besides me. */
export function others(members, meId) {
  return (members || []).filter((m) => m.id !== meId);
}

/** A conversation's title: the other people's names ("Ann, Ben"). */
export function dmTitle(members, meId) {
  const names = others(members, meId).map((m) => m.name);
  if (!names.length) return (members || []).length ? 'Just you' : 'Direct message';
  return names.join(', ');
}

/**
 * The "Message privately" item of `target`'s person menu: for anyone but me
 * (and bots, who have no conversations); null otherwise.
 * @returns {{key: string, label: string, frame: object} | null}
 */
export function dmItem(meId, target) {
  if (!meId || !target || typeof target.id !== 'string' || !target.id) return null;
  if (target.id === meId || target.id.startsWith('bot-')) return null;
  return { key: 'dm', label: 'Message privately', frame: { type: 'dm', to: [target.id] } };
}

/** Whether `members` are exactly me and the people of `ids`. */
export function sameMembers(members, ids, meId) {
  const wanted = new Set([...ids, meId]);
  const have = new Set((members || []).map((m) => m.id));
  return have.size === wanted.size && [...wanted].every((id) => have.has(id));
}

/** The name of a conversation in `rooms` (name -> room with `dmMembers`) of
 * exactly me and `ids`, or null. */
export function findDm(rooms, ids, meId) {
  for (const [name, room] of rooms) {
    if (isDmRoom(name) && room.dmMembers && sameMembers(room.dmMembers, ids, meId)) {
      return name;
    }
  }
  return null;
}

/** `members` with `user`'s name as it is now (a `nick`), or as they were. */
export function renamed(members, user) {
  if (!user || !(members || []).some((m) => m.id === user.id)) return members;
  return members.map((m) => (m.id === user.id ? { id: m.id, name: user.name } : m));
}

/** What to tell me when someone opened a conversation with me (`room_added`);
 * null when I opened it (in another tab). */
export function dmAddedText(frame, meId) {
  const by = frame.by || {};
  if (by.id === meId) return null;
  const rest = others(membersOf(frame), meId).filter((m) => m.id !== by.id);
  const who = by.name || 'Someone';
  if (!rest.length) return `${who} started a conversation with you.`;
  return `${who} started a conversation with you and ${rest.map((m) => m.name).join(', ')}.`;
}

/** The title of a desktop notification for a message in a conversation. */
export function dmNotificationTitle(msg, members, meId) {
  const group = others(members, meId).length > 1;
  return group ? `${msg.user.name} in ${dmTitle(members, meId)}` : `${msg.user.name} (direct message)`;
}

/** The rooms of `welcome.dms` to join now: the valid ones not open already,
 * as many as the connection may still join (`roomsMax` in all). */
export function dmsToJoin(welcomeDms, openRooms, roomsMax) {
  const list = Array.isArray(welcomeDms) ? welcomeDms.filter(isDmRoom) : [];
  const fresh = list.filter((name) => !openRooms.has(name));
  const room = Math.max(0, (roomsMax > 0 ? roomsMax : Infinity) - openRooms.size);
  return fresh.slice(0, room);
}
