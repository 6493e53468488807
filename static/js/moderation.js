/**
 * Moderation, the pure part: what a moderator may do to whom (mirroring the
 * server's rules in chatcore/moderation/rules.py, which decide), the menu of
 * a person, and the sentences that explain an action to its target and in the
 * moderation log. No DOM here: moderation_ui.js draws it.
 */

export const OWNER = 'owner';
export const MODERATOR = 'moderator';
export const MEMBER = 'member';

/** Mute durations offered in a person's menu (null: until unmuted). */
export const MUTES = [
  { seconds: 600, label: 'Mute for 10 minutes' },
  { seconds: 3600, label: 'Mute for 1 hour' },
  { seconds: null, label: 'Mute until unmuted' },
];
export const KICK_SECONDS = 300;
export const SLOW_CHOICES = [0, 5, 10, 30, 60, 300];

/** Whether someone with `standing` ({admin, role}) moderates the room. */
export function moderates(standing) {
  return Boolean(standing && (standing.admin || standing.role === OWNER || standing.role === MODERATOR));
}

/**
 * The actions `me` ({id, admin, role}) may take on `target` ({id, name,
 * role, admin}) in `room`, each {key, label, frame}; empty when none.
 */
export function menuItems(me, target, room) {
  if (!me || !target || me.id === target.id || !moderates(me)) return [];
  if (target.admin && !me.admin) return [];
  if (target.role === OWNER && !me.admin && me.role !== OWNER) return [];
  const user = target.id;
  const items = MUTES.map(({ seconds, label }) => ({
    key: `mute-${seconds ?? 'forever'}`,
    label,
    frame: seconds === null ? { type: 'mute', user, room } : { type: 'mute', user, room, seconds },
  }));
  items.push({ key: 'unmute', label: 'Unmute', frame: { type: 'unmute', user, room } });
  items.push({
    key: 'kick',
    label: `Kick from #${room} for ${durationText(KICK_SECONDS)}`,
    frame: { type: 'kick', user, room, seconds: KICK_SECONDS },
  });
  if (me.admin) {
    items.push({ key: 'ban', label: 'Ban from the server', frame: { type: 'ban', user } });
  }
  if ((me.admin || me.role === OWNER) && target.role !== OWNER) {
    const promote = target.role !== MODERATOR;
    items.push({
      key: promote ? 'make-moderator' : 'remove-moderator',
      label: promote ? 'Make moderator' : 'Remove moderator',
      frame: { type: 'role', room, user, role: promote ? MODERATOR : MEMBER },
    });
  }
  return items;
}

/** "45 seconds", "10 minutes", "1 hour", "2 days". */
export function durationText(seconds) {
  const total = Math.max(1, Math.round(Number(seconds) || 0));
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (total >= size) {
      const n = Math.round(total / size);
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${total} second${total === 1 ? '' : 's'}`;
}

const PAST = {
  mute: 'muted',
  unmute: 'unmuted',
  kick: 'kicked',
  ban: 'banned',
  unban: 'unbanned',
  role: 'changed the role of',
  admin: 'made an admin:',
  unadmin: 'removed an admin:',
};

function where(room) {
  return room ? `in #${room}` : 'on this server';
}

/** What a `moderated` frame tells its target, as one sentence. */
export function explain(frame) {
  const by = frame.by && frame.by.name ? ` by ${frame.by.name}` : '';
  const place = frame.action === 'kick' && frame.room ? `from #${frame.room}` : where(frame.room);
  const span = frame.seconds ? ` for ${durationText(frame.seconds)}` : '';
  switch (frame.action) {
    case 'mute':
      return `You were muted ${place}${by}${span || ' until unmuted'}.`;
    case 'unmute':
      return `You were unmuted ${place}${by}.`;
    case 'kick':
      return `You were kicked ${place}${by}${span}.`;
    case 'ban':
      return `You were banned from this server${by}${frame.reason ? `: ${frame.reason}` : ''}.`;
    default:
      return `A moderator acted on you ${place}${by}.`;
  }
}

/** One moderation log entry as a line: "Ann muted Bob in #lobby for 10 minutes". */
export function logLine(entry) {
  const actor = (entry.actor && entry.actor.name) || 'someone';
  const target = entry.target ? entry.target.name || entry.target.id : '';
  const detail = entry.detail || {};
  if (entry.action === 'slow') {
    const seconds = Number(detail.seconds) || 0;
    return seconds
      ? `${actor} set slow mode in #${entry.room} to one message every ${durationText(seconds)}`
      : `${actor} turned slow mode off in #${entry.room}`;
  }
  if (entry.action === 'role') {
    return `${actor} made ${target} ${detail.role === MODERATOR ? 'a moderator' : 'a member'} of #${entry.room}`;
  }
  const verb = PAST[entry.action] || entry.action;
  const place = entry.action === 'admin' || entry.action === 'unadmin' ? '' : ` ${where(entry.room)}`;
  const span = detail.seconds ? ` for ${durationText(detail.seconds)}` : '';
  const reason = detail.reason ? ` (${detail.reason})` : '';
  return `${actor} ${verb} ${target}${place}${span}${reason}`;
}

/** The badge text of a member with a role, or '' for a member. */
export function badge(role) {
  if (role === OWNER) return 'owner';
  if (role === MODERATOR) return 'mod';
  return '';
}

/**
 * The author of a message as the person menu needs them: the message's user,
 * with the role the room's member list knows (absent when they have left).
 */
export function authorTarget(user, members) {
  const listed = members && user ? members.get(user.id) : undefined;
  return listed && listed.role ? { ...user, role: listed.role } : { ...user };
}
