/**
 * The client's state, in one place: created once by main.js and passed to
 * every module that reads or changes it. Pure: plain data, no DOM.
 */

import { smallRoom } from './members.js';
import { UnreadCounter } from './reads.js';

/**
 * `config`: the server's settings from the page ({wsPath, maxText, nameMax,
 * roomMax, historyInitial, historyPage}), updated by welcome.limits.
 */
export function createAppState(config) {
  return {
    config,
    session: {
      me: null, // {id, name, color} from welcome / renamed
      admin: false, // a server admin (welcome.admin): may delete any message
      wantedName: '', // asked for on (re)connect; '' gets a guest name
      askedName: '', // the name asked for on the current connection
      rooms: new Map(), // room name -> room (see newRoom), in sidebar order
      active: null, // the visible room
      pendingJoin: null, // room asked for in the join form, awaiting its snapshot
      nickPending: false,
      addPending: false, // an "Add people" request awaits its answer
      pendingDm: null, // user ids of a `dm` sent, awaiting its snapshot
      welcomes: 0, // welcomes since the name screen was passed
      cachedMe: null, // me as kept with the messages, until the first welcome
      hiddenUnread: 0, // messages from others that came while the tab was hidden
      notify: false, // desktop notifications for mentions (opt-in)
      keepMessages: true, // the instant-reopen cache (opt-out)
      cacheTimer: null,
      // My messages not yet acknowledged, oldest first:
      // {clientId, room, text, ts, status: queued|sending|failed, $li}
      outbox: [],
    },
    link: {
      ws: null,
      status: 'idle', // idle | connecting | connected | disconnected
      attempt: 0, // failed attempts since the last connection that stayed up
      everConnected: false,
      retryAt: 0,
      resumeAt: 0, // ms: a server-wide kick ends then (no retry before)
      ended: null, // 'banned': the server refuses this user; no retries
      inflight: [], // outbox entries sent on this socket, in send order
      historyRequests: [], // {room, kind: initial|older|gap, gap}, in send order
      pacer: null, // a SendPacer, set by main
      flushTimer: null,
      epoch: null, // the server's history epoch (welcome.epoch)
    },
    typing: { room: null, lastSent: 0, idleTimer: null },
  };
}

/** A room as the client tracks it; the DOM parts ($pane, $list, ...) are added by render. */
export function newRoom(name) {
  return {
    name,
    members: new Map(), // user id -> user
    paging: smallRoom(), // a big room's member pages and search (members.js)
    count: 0,
    epoch: null, // the history epoch the room's ids belong to
    typing: new Map(), // user id -> user
    ids: new Set(),
    lastId: 0,
    oldestId: 0,
    unread: 0, // shown on the badge: reads.count(), 0 while the room is open
    unreadMore: false, // there may be more unread than this page holds
    reads: new UnreadCounter(), // the server's read position, the held messages after it
    lineAfter: null, // the "New messages" line goes after this id (read when opened)
    lineFixed: false, // lineAfter is settled for this opening of the room
    readTimer: null, // a throttled `read` waits for its turn
    draft: '',
    ready: false, // joined on the current connection
    historyLoaded: false,
    hasMore: false,
    stuckToBottom: true,
    savedTop: 0,
    recent: [], // the newest messages, kept for the next page load
    dmMembers: null, // a direct conversation's people [{id, name}] (dm.js)
    role: 'member', // mine here: owner | moderator | member (presence snapshot)
    slowMode: 0, // seconds between my messages here (presence snapshot)
    role: null, // owner | moderator | member (presence snapshot), if the server says
    slowUntil: 0, // ms: the composer may send again from then on
    flushAfter: 0, // ms: the outbox may send here again from then on
  };
}
