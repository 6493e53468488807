/**
 * The chat's browser client: one WebSocket speaking docs/protocol.md. This
 * module wires the others together: it reads the server's settings from the
 * page, answers the server's frames, and turns the user's actions into
 * commands. State lives in one object (state.js), passed to every part.
 *
 * Recovery:
 *   - a dropped connection is retried with backoff and full jitter
 *     (backoff.js, connection.js); the attempt count is reset only once a
 *     connection has stayed up for a while;
 *   - on reconnect every open room is joined again with `since` = the newest
 *     id shown there; the server replays what was missed (a `gap` frame marks
 *     what it left out) and every id is shown at most once;
 *   - messages written while offline, or sent but not acknowledged when the
 *     connection dropped, wait in the outbox (outbox.js) and are sent again
 *     with their original client_id once their room is rejoined;
 *   - the newest messages of each room are kept in localStorage (unless the
 *     user opts out) and shown on the next page load before the socket is
 *     up; those rooms are then joined with `since` like after a drop.
 *
 * DOM hooks (stable for tests and styles):
 *   body[data-ws-path][data-max-text][data-name-max][data-room-max]
 *       [data-history-initial][data-history-max][data-version]  from the server
 *   #app[data-screen=name|chat][data-connection=idle|connecting|connected|disconnected]
 *   #name-form, #name-input, #name-error             the first screen
 *   #status[data-state]                              connection state (live region)
 *   #reconnect-banner > #reconnect-title, #reconnect-countdown, #outbox-count,
 *       #reconnect-button                            shown while offline
 *   #me, #me-name, #rename-button                    who I am
 *   #nick-form, #nick-input, #nick-error             changing my name
 *   #rooms > .room[data-room] (.active) > .room-select, .room-leave, .unread
 *       (the count after the server's read position, reads.js; "50+" when
 *       there may be more than this page holds)
 *   #join-room-form, #room-input, #room-private, #room-submit, #room-error
 *   #rooms > .room.private > .room-lock              a private room (lock icon)
 *   #dm-panel > #dms > .room.dm[data-room]           direct conversations (dm.js)
 *   #add-people-form, #add-people-input, #add-people-error   in a private room
 *   #room-title, #presence > .member[data-user-id] (.self), #presence-count
 *   #member-search, #members-more                    a big room's search and pages
 *   #messages > .room-pane[data-room] > .pane-top > .load-older
 *   #messages > .room-pane[data-room] > .message-list
 *       > .day[data-day] > h3.day-label           first message of a local day
 *       > .message[data-id][data-user-id] (.own) > .author, .text, time[datetime]
 *       > .message.mention > .mention-badge, .text mark.mention-me
 *       > .message.outgoing[data-client-id] (.pending | .failed) > .delivery
 *             > .retry-button, .discard-button  (failed only)
 *       > .gap[data-after][data-before] > .gap-button
 *       > .new-messages                           above the first unread message
 *       > .message[data-rev] (.deleted) > .edited-mark, .message-actions, .edit-form
 *             (editor.js lists them)
 *       > .message[data-reactions-rev] > .body > .reactions (reactions_ui.js lists them)
 *       > .presence-line[data-line]                  "Ann and Ben joined"
 *   #typing, #slow-mode(.waiting), #send-pace, #composer, #message-input,
 *       #char-count, #send-button
 *   #notify-toggle, #notify-help, #no-cache-toggle   settings
 *   #notices > .notice[data-code] > .notice-text, .notice-dismiss
 *   #announcer                                       polite announcements
 *   #message-announcer > p                           new messages, read out
 *   #sidebar-toggle (narrow screens only)
 *   body[data-account]                               signed in (account.js: its panel)
 */

import { AccountPanel } from './account.js';
import { Attacher } from './attach.js';
import { SendPacer } from './backoff.js';
import { readConfig } from './config.js';
import { Connection } from './connection.js';
import { dayKey } from './days.js';
import {
  dmAddedText,
  dmNotificationTitle,
  dmsToJoin,
  findDm,
  isDmFrame,
  isDmRoom,
  membersOf,
  renamed,
  sameMembers,
} from './dm.js';
import { Editor } from './editor.js';
import { Jumper } from './jump.js';
import * as memberList from './members.js';
import { Outbox } from './outbox.js';
import {
  addedText,
  addRequest,
  isPrivateSnapshot,
  leftText,
  roomAddedText,
  roomRequest,
} from './private.js';
import { ModerationUI } from './moderation_ui.js';
import { PresenceLinesView } from './presence_lines_view.js';
import { ReactionsUI } from './reactions_ui.js';
import { ReadThrottle, readFrame } from './reads.js';
import { excerpt, sentence, View } from './render.js';
import { Replies } from './replying.js';
import { SearchPanel } from './search_ui.js';
import { createAppState, newRoom } from './state.js';
import * as storage from './storage.js';
import { Timeline } from './timeline.js';
import { checkName, checkRoom, codePoints, isGuestName } from './validation.js';

const $ = window.jQuery;

const DEFAULT_ROOM = 'lobby';
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
const SCROLL_LOAD_PX = 150; // this close to the top: load older messages
const CACHE_SAVE_MS = 1000;

const app = createAppState(readConfig(document.body));
const { config, session: state, link, typing } = app;
link.pacer = new SendPacer();
// Typing events have a budget of their own (welcome's limits.typing_rate/burst).
link.typingPacer = new SendPacer(2, 6);
const store = storage.safeStorage(() => window.localStorage);
const tabStore = storage.safeStorage(() => window.sessionStorage); // this tab, survives a reload
const isRoom = (name) => isDmRoom(name) || !checkRoom(name, config);

const view = new View(app);
const { $input, $messages, $rooms, $notices } = view;

const connection = new Connection(link, {
  url: wsUrl,
  onFrame: handleFrame,
  onDisconnected,
  onStatus() {
    view.renderStatus();
    renderBanner();
    view.renderComposer();
  },
  onCountdown: renderBanner,
});

const outbox = new Outbox(app, {
  connection,
  view,
  tabStore,
  ensureRoom,
  isRoom,
  onChange: renderBanner,
});

const editor = new Editor(app, { view, send: (frame) => connection.send(frame) });

const timeline = new Timeline(app, {
  view,
  connection,
  outbox,
  onRemembered: scheduleCacheSave,
  showChange: (room, change) => editor.show(room, change),
  showQuote: (room, msg) => replies.showQuote(room, msg),
  showQuoted: (room, change) => replies.onChange(room, change),
  showReactions: (room, frame) => reactionsUI.show(room, frame),
  onCounted,
});
const readThrottle = new ReadThrottle();

const send = (frame) => connection.send(frame);
const moderation = new ModerationUI(app, { view, send, openDm });
const jumper = new Jumper({
  look: lookFor,
  loadOlder: (name) => {
    const room = state.rooms.get(name);
    if (!room) return false;
    timeline.loadOlder(room);
    return timeline.has(room, 'older');
  },
  reveal: revealMessage,
  missing: (name, id, why) =>
    view.showNotice(
      why === 'gone'
        ? 'That message is no longer kept.'
        : 'That message is too far back; scroll up to load more.',
      'jump',
    ),
});
const replies = new Replies(app, { view, jump: jumpTo });
const search = new SearchPanel({ send, open: jumpTo });
const reactionsUI = new ReactionsUI(app, { send, notice: (text) => view.showNotice(text) });
const presenceLines = new PresenceLinesView(app, { view });
view.onBuilt = ($li, msg) => {
  editor.decorate($li, msg); // edits and deletes
  reactionsUI.decorate($li, msg); // reaction chips
  moderation.decorateMessage($li, msg); // the person menu on its author
  replies.decorate($li, msg); // its quote, and the Reply action
};
view.onRoomRendered = () => moderation.render();
const isConnected = () => connection.isConnected();
const account = new AccountPanel(send, (text) => view.announce(text));
const attacher = new Attacher({
  send,
  activeRoom: () => state.rooms.get(state.active) || null,
  queue: (room, attachment) => outbox.queue(room, '', null, attachment),
  notice: (text) => view.showNotice(text, 'upload'),
  announce: (text) => view.announce(text),
});

function renderBanner() {
  if (!view.renderBanner()) connection.stopCountdown();
}

// -- connection ---------------------------------------------------------------

function wsUrl() {
  const params = new URLSearchParams();
  state.askedName = state.wantedName;
  if (state.wantedName) params.set('name', state.wantedName);
  params.set('room', state.active || state.rooms.keys().next().value || DEFAULT_ROOM);
  const key = storage.storedKey(store);
  if (key) params.set('key', key);
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}${config.wsPath}?${params}`;
}

function onDisconnected() {
  if (config.account) account.checkSignedIn();
  stopTyping(false);
  outbox.requeueInflight();
  timeline.abandonRequests();
  state.nickPending = false;
  state.pendingJoin = null;
  state.rooms.forEach((room) => {
    room.typing.clear();
    room.ready = false;
    timeline.renderOlder(room);
  });
  view.renderActiveRoom();
}

// -- frames from the server -----------------------------------------------------

const handlers = {
  welcome: onWelcome,
  message: onMessage,
  presence: onPresence,
  typing: onTyping,
  history: (frame) => {
    timeline.onHistory(frame);
    jumper.onPage(frame.room); // a jump may be waiting for this page
  },
  results: (frame) => search.onResults(frame),
  members: onMembers,
  gap: (frame) => timeline.onGap(frame),
  reset: (frame) => timeline.onReset(frame),
  left: onLeft,
  room_added: onRoomAdded,
  added: onAdded,
  removed: (frame) => moderation.onRemoved(frame),
  renamed: onRenamed,
  edited: onChange,
  deleted: onChange,
  reacted: (frame) => {
    const room = state.rooms.get(frame.room);
    if (room) timeline.react(room, frame);
  },
  read: onRead,
  error: onError,
  moderated: (frame) => {
    if (frame.action === 'kick' && !frame.room && frame.until > 0) {
      link.resumeAt = frame.until; // closed next: no retry before the kick ends
    }
    moderation.onModerated(frame);
  },
  moderation: (frame) => moderation.onModeration(frame),
  modlog: (frame) => moderation.onModlog(frame),
  slow_mode: (frame) => moderation.onSlowMode(frame),
  role: (frame) => moderation.onRole(frame),
  sessions: (frame) => account.onSessions(frame),
  signin_link: (frame) => account.onSigninLink(frame),
  invite: (frame) => account.onInvite(frame),
  upload_token: (frame) => attacher.onToken(frame),
  // This browser's session ended: the page now says how to get back in.
  signed_out: () => window.location.assign(window.location.pathname),
};

function handleFrame(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch (e) {
    return;
  }
  if (frame && typeof frame.type === 'string' && Object.hasOwn(handlers, frame.type)) {
    handlers[frame.type](frame);
  }
}

function onWelcome(frame) {
  if (typeof frame.key === 'string' && frame.key) {
    // Our first connection: keep the secret the server gave us. Another tab
    // may have got and stored one first; then that one is ours, and this
    // connection starts again with it so that both tabs are one user.
    const existing = storage.storedKey(store);
    if (existing && existing !== frame.key) {
      connection.reconnectNow();
      return;
    }
    store.set(storage.KEYS.clientKey, frame.key);
  }
  state.welcomes += 1;
  link.epoch = typeof frame.epoch === 'string' ? frame.epoch : null;
  state.admin = frame.admin === true; // may delete any message
  const limits = frame.limits || {};
  if (limits.max_text > 0) config.maxText = limits.max_text;
  if (limits.history_page > 0) config.historyPage = limits.history_page;
  const rate = limits.rate > 0 ? limits.rate : link.pacer.rate;
  const burst = limits.burst >= 1 ? limits.burst : link.pacer.burst;
  link.pacer.setLimits(rate, burst, Date.now());
  const typingRate = limits.typing_rate > 0 ? limits.typing_rate : link.typingPacer.rate;
  const typingBurst = limits.typing_burst >= 1 ? limits.typing_burst : link.typingPacer.burst;
  link.typingPacer.setLimits(typingRate, typingBurst, Date.now());
  setMe(frame.user);
  editor.renderAll(); // my own messages, now that I know who I am
  reactionsUI.renderAll(); // and my own reactions
  moderation.renderAllMessages(); // and whether I am an admin
  account.onWelcome(frame);
  connection.welcomed();
  attacher.configure(limits.max_upload);

  const joinedNow = new Set(frame.rooms || []);
  const wanted = state.rooms.size
    ? Array.from(state.rooms.keys())
    : storage.loadRooms(store, isRoom);
  state.rooms.forEach((room) => {
    room.members.clear();
    room.count = 0;
    room.typing.clear();
    room.ready = false; // until this connection gets the room's snapshot
  });
  joinedNow.forEach((name) => ensureRoom(name));
  wanted.forEach((name) => {
    const room = state.rooms.get(name);
    if (room && room.historyLoaded) {
      // Back after a drop: the server replays what we missed, or says
      // `reset` first if the history our ids came from is gone (the epoch).
      const join = { type: 'join', room: name, since: room.lastId };
      if (room.epoch) join.epoch = room.epoch;
      send(join);
    } else if (!joinedNow.has(name)) {
      send({ type: 'join', room: name });
    }
  });
  // Conversations opened while I was away (or on another device).
  dmsToJoin(frame.dms, new Set(state.rooms.keys()), limits.rooms_max).forEach((name) => {
    ensureRoom(name);
    send({ type: 'join', room: name });
  });
  if (!state.active || !state.rooms.has(state.active)) {
    switchRoom(frame.rooms && frame.rooms[0]);
    view.focusComposerIfIdle();
  }
  view.renderActiveRoom();
}

function onMessage(msg) {
  const room = state.rooms.get(msg.room);
  if (!room || !msg.user) return;
  if (room.typing.delete(msg.user.id) && msg.room === state.active) view.renderTyping();
  const mine = view.isMe(msg.user);
  const added = timeline.add(room, [msg], { live: true, mine });
  if (added) presenceLines.onMessage(room);
  if (!added || mine || msg.deleted) return;
  // A direct message is for me as much as a mention is.
  const mentioned = view.mentionsMe(room, msg.id) || isDmRoom(msg.room);
  if (document.visibilityState === 'hidden') {
    state.hiddenUnread += 1;
    view.renderTitle();
    if (mentioned) notify(room, msg);
  }
  // Said once, politely, where screen readers pick it up; focus stays put.
  if (msg.room === state.active) view.announceMessage(`${msg.user.name}: ${msg.text}`);
  else if (mentioned) {
    view.announceMessage(`${msg.user.name} in ${view.roomLabel(room)}: ${msg.text}`);
  }
}

// -- read positions (reads.js; docs/protocol.md, "Read positions") ---------------

/** Messages came or went: the room's badge, its line, and maybe a `read`. */
function onCounted(room) {
  renderUnread(room);
  if (room.name === state.active) view.placeNewLine(room);
  sendRead(room);
}

function renderUnread(room) {
  const open = room.name === state.active;
  room.unread = open ? 0 : room.reads.count();
  room.unreadMore = !open && room.reads.mayHaveMore(room.oldestId, room.hasMore);
  view.renderRoomItem(room);
  view.renderUnreadTotal();
}

/** `read`: this person read the room on another tab or device. */
function onRead(frame) {
  const room = state.rooms.get(frame.room);
  if (room && room.reads.setRead(frame.id)) renderUnread(room);
}

/**
 * Tell the server the open room is read, when the person can see its
 * newest message: the tab visible, the room scrolled to its end. At most
 * one `read` per room a second; a later one waits for its turn, unless
 * `now` (the room is being left, or the page closed: no later turn).
 */
function sendRead(room, now = false) {
  if (!room || room.name !== state.active || !room.ready || !room.stuckToBottom) return;
  if (document.visibilityState !== 'visible') return;
  const frame = readFrame(room.name, room.lastId, room.reads.readId);
  if (!frame) return;
  const wait = now ? 0 : readThrottle.wait(room.name, Date.now());
  if (wait > 0) {
    if (!room.readTimer) {
      room.readTimer = setTimeout(() => {
        room.readTimer = null;
        sendRead(state.rooms.get(room.name));
      }, wait);
    }
    return;
  }
  if (send(frame)) {
    readThrottle.sent(room.name, Date.now());
    room.reads.setRead(frame.id);
  }
}

/** `edited` or `deleted`: a message changed (editor.js shows it). */
function onChange(frame) {
  const room = state.rooms.get(frame.room);
  if (room) timeline.change(room, frame);
}

// -- jumping to a message (jump.js) -------------------------------------------------

/** What a jump needs to know of a room; null while the room is not here. */
function lookFor(name, id) {
  const room = state.rooms.get(name);
  if (!room || !room.$list) return null;
  return {
    shown: room.$list.find(`.message[data-id="${id}"]`).length > 0,
    oldestId: room.oldestId,
    hasMore: room.hasMore,
    loaded: room.historyLoaded,
  };
}

function revealMessage(name, id) {
  const room = state.rooms.get(name);
  if (!room) return;
  if (state.active !== name) switchRoom(name);
  const $li = room.$list.find(`.message[data-id="${id}"]`);
  room.$list.find('.message.jumped').removeClass('jumped').removeAttr('tabindex');
  $li.addClass('jumped').attr('tabindex', '-1');
  $li[0].scrollIntoView({ block: 'center' });
  $li[0].focus({ preventScroll: true });
  setTimeout(() => $li.removeClass('jumped'), 4000);
}

/** Open a room (joining it if need be) at one of its messages. */
function jumpTo(name, id) {
  if (!name || !Number.isInteger(id)) return;
  if (state.rooms.has(name)) {
    switchRoom(name);
  } else if (send({ type: 'join', room: name })) {
    state.pendingJoin = name; // its snapshot switches to it
  } else {
    view.showNotice('Not connected; try again in a moment.');
    return;
  }
  toggleSidebar(false);
  jumper.start(name, id);
}

function onPresence(frame) {
  let room = state.rooms.get(frame.room);
  if (frame.event === 'snapshot') {
    room = ensureRoom(frame.room);
    room.members = new Map((frame.users || []).map((u) => [u.id, u]));
    room.paging = memberList.fromSnapshot(frame);
    if (room.name === state.active) $('#member-search').val('');
    room.slowMode = Number(frame.slow_mode) > 0 ? Number(frame.slow_mode) : 0;
    room.private = isPrivateSnapshot(frame);
    if (isDmFrame(frame)) room.dmMembers = membersOf(frame);
    room.reads.setRead(frame.read); // the server's position (ignored if behind ours)
    if (room.name === state.active && !room.lineFixed) {
      room.lineAfter = room.reads.readId; // opened before the position was known
      room.lineFixed = room.lineAfter !== null;
      view.placeNewLine(room);
    }
    renderUnread(room);
    room.role = typeof frame.role === 'string' ? frame.role : 'member';
    room.creator = typeof frame.creator === 'string' ? frame.creator : null;
    editor.renderRoom(room);
    moderation.renderMessages(room);
    // Who was already typing when we came in (later changes are events).
    room.typing = new Map(
      (Array.isArray(frame.typing) ? frame.typing : [])
        .filter((u) => u && u.id && !view.isMe(u))
        .map((u) => [u.id, u]),
    );
    if (state.pendingJoin === frame.room) {
      state.pendingJoin = null;
      $('#room-input').val('');
      view.showFieldError($('#room-error'), null);
      switchRoom(frame.room);
    }
    const me = state.me && state.me.id;
    if (state.pendingDm && room.dmMembers && sameMembers(room.dmMembers, state.pendingDm, me)) {
      state.pendingDm = null; // the conversation I asked for: show it
      switchRoom(frame.room);
      view.focusComposer();
    }
    if (!state.active) {
      switchRoom(frame.room);
      view.focusComposerIfIdle();
    }
    timeline.loadInitial(room);
    // Joined again: what waited in the outbox for this room can go. The
    // server handles a connection's frames in order, so the rejoin (and
    // its replay) comes before these messages.
    room.ready = true;
    outbox.flush();
    sendRead(room);
  } else if (room && frame.event === 'count') {
    room.paging = memberList.onCount(room.paging, frame); // a big room: counts only
  } else if (!room || !frame.user) {
    return;
  } else if (frame.event === 'nick' && room.paging.big && !room.members.has(frame.user.id)) {
    // Someone a big room's pages do not show yet: nothing to rename.
  } else if (frame.event === 'join' || frame.event === 'nick') {
    const known = room.members.get(frame.user.id);
    const role = frame.event === 'nick' && known ? known.role : frame.user.role;
    room.members.set(frame.user.id, role ? { ...frame.user, role } : frame.user);
    if (room.typing.has(frame.user.id)) room.typing.set(frame.user.id, frame.user);
    if (room.dmMembers) {
      room.dmMembers = renamed(room.dmMembers, frame.user); // its title follows
      view.renderRoomItem(room);
    }
  } else if (frame.event === 'leave') {
    room.members.delete(frame.user.id);
    room.typing.delete(frame.user.id);
  }
  room.count = typeof frame.count === 'number' ? frame.count : room.members.size;
  if (frame.event === 'join' || frame.event === 'leave') presenceLines.onPresence(room, frame);
  if (room.name === state.active) view.renderActiveRoom();
}

/** A page of a big room's members, or of a search in it. */
function onMembers(frame) {
  const room = state.rooms.get(frame.room);
  if (!room) return;
  const { paging, members } = memberList.onPage(room.paging, room.members, frame);
  room.paging = paging;
  room.members = members;
  if (room.name === state.active) view.renderPresence(room);
}

function onMemberSearch() {
  const room = state.rooms.get(state.active);
  if (!room || !room.paging.big) return;
  const { paging, frame } = memberList.search(room.name, room.paging, $('#member-search').val());
  room.paging = paging;
  if (frame) send(frame);
  view.renderPresence(room);
}

function onTyping(frame) {
  const room = state.rooms.get(frame.room);
  if (!room || !frame.user || view.isMe(frame.user)) return;
  if (frame.active) room.typing.set(frame.user.id, frame.user);
  else room.typing.delete(frame.user.id);
  if (room.name === state.active) view.renderTyping();
}

function onRenamed(frame) {
  setMe(frame.user);
  state.rooms.forEach((room) => {
    if (room.members.has(frame.user.id)) room.members.set(frame.user.id, frame.user);
  });
  if (state.nickPending) {
    state.nickPending = false;
    closeNickForm();
  }
  view.renderActiveRoom();
}

function onError(frame) {
  const text = sentence(frame.message || frame.code || 'Something went wrong.');
  if (frame.code === 'name_taken' && frame.ref === 'nick' && !state.nickPending) {
    refusedName(frame, text);
    return;
  }
  // The indicator is a courtesy: a refused typing event is not worth a word.
  if (frame.ref === 'typing' && frame.code === 'rate_limited') return;
  // Nor is a refused read (say, one that crossed a leave): the next one counts.
  if (frame.ref === 'read') return;
  if (frame.ref === 'nick' && state.nickPending) {
    state.nickPending = false;
    view.showFieldError($('#nick-error'), text);
    $('#nick-input').trigger('focus');
    return;
  }
  // A private room I am no longer a member of (say, rejoined after a
  // reconnect or a reload): it leaves my list.
  if (frame.code === 'forbidden' && frame.ref === 'join' && state.rooms.has(frame.room)) {
    removeRoom(frame.room);
  }
  if (frame.ref === 'add' && state.addPending) {
    state.addPending = false;
    view.showFieldError($('#add-people-error'), text);
    $('#add-people-input').trigger('focus');
    return;
  }
  if ((frame.ref === 'join' || frame.ref === 'create') && state.pendingJoin) {
    state.pendingJoin = null;
    view.showFieldError($('#room-error'), text);
    $('#room-input').trigger('focus');
    return;
  }
  if (frame.ref === 'dm') state.pendingDm = null;
  if (frame.ref === 'history' && link.historyRequests.length) timeline.onRefused();
  if (frame.ref === 'message' && outbox.refuse(frame)) return;
  if ((frame.ref === 'edit' || frame.ref === 'delete') && editor.refused(frame)) return;
  if (frame.ref === 'search') {
    search.refused(frame);
    return;
  }
  view.showNotice(text, frame.code);
}

/** The name asked for on connecting was refused: we got a guest name. */
function refusedName(frame, serverText) {
  const asked = state.askedName;
  let text = serverText;
  if (asked && state.me) {
    const why = /reserved/i.test(frame.message || '')
      ? 'is reserved: another browser used it recently'
      : 'is being used by someone else right now';
    text = `The name “${asked}” ${why}. You are ${state.me.name} for now; pick another name.`;
  }
  // Right after the name screen (not on a reconnect): offer another name,
  // with the reason next to the field (said once, not as a notice too).
  if (state.welcomes === 1 && asked) {
    openNickForm();
    $('#nick-input').val(asked).trigger('select');
    view.showFieldError($('#nick-error'), text);
    return;
  }
  view.showNotice(text, 'name_taken');
}

function sendMessage() {
  const text = $input.val();
  const room = state.rooms.get(state.active);
  if (!text.trim() || !room) return;
  const wait = view.slowModeWait(room);
  if (wait > 0) {
    view.announce(`Slow mode: you can send again in ${wait} ${wait === 1 ? 'second' : 'seconds'}.`);
    return;
  }
  if (codePoints(text) > config.maxText) {
    view.showNotice(`The message is longer than ${config.maxText} characters.`, 'too_large');
    return;
  }
  outbox.queue(room, text, replies.take(room.name));
  if (room.slowMode) {
    room.slowUntil = Date.now() + room.slowMode * 1000;
    view.renderSlowMode();
  }
  stopTyping(false); // the server clears the indicator when the message lands
  $input.val('');
  onComposerInput({ quiet: true });
}

// -- typing -------------------------------------------------------------------

function startTyping() {
  if (!isConnected() || !state.active) return;
  if (typing.room && typing.room !== state.active) stopTyping(true);
  const now = Date.now();
  // Out of budget (a burst of short messages): the next keystroke tries again.
  const due = !typing.room || now - typing.lastSent >= TYPING_REFRESH_MS;
  if (due && link.typingPacer.take(now) === 0) {
    if (send({ type: 'typing', room: state.active, active: true })) {
      typing.room = state.active;
      typing.lastSent = now;
    }
  }
  clearTimeout(typing.idleTimer);
  typing.idleTimer = setTimeout(() => stopTyping(true), TYPING_IDLE_MS);
}

function stopTyping(tellServer) {
  clearTimeout(typing.idleTimer);
  typing.idleTimer = null;
  if (tellServer && typing.room && state.rooms.has(typing.room)) {
    // Out of budget: the server's typing timeout clears the indicator instead.
    if (link.typingPacer.take(Date.now()) === 0) {
      send({ type: 'typing', room: typing.room, active: false });
    }
  }
  typing.room = null;
  typing.lastSent = 0;
}

// -- rooms --------------------------------------------------------------------

function ensureRoom(name) {
  let room = state.rooms.get(name);
  if (room) return room;
  room = newRoom(name);
  view.buildRoomPane(room);
  bindRoomPane(room);
  view.buildRoomItem(room);
  state.rooms.set(name, room);
  storage.saveRooms(store, state.rooms.keys());
  return room;
}

function bindRoomPane(room) {
  room.$pane.on('scroll', () => {
    const el = room.$pane[0];
    if (el.hidden) return;
    room.stuckToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (room.stuckToBottom) sendRead(room);
    // Near the top: the next page of history, without a click.
    if (el.scrollTop < SCROLL_LOAD_PX && room.historyLoaded) timeline.loadOlder(room);
  });
  room.$older.on('click', () => {
    if (room.$older.attr('aria-disabled') !== 'true') timeline.loadOlder(room);
  });
  room.$list.on('click', '.gap-button', function () {
    const gap = $(this).closest('.gap').data('gap');
    if (gap) timeline.loadGap(room, gap);
  });
  room.$list.on('click', '.retry-button', function () {
    const entry = entryOf(this);
    if (entry) outbox.retry(entry);
  });
  room.$list.on('click', '.discard-button', function () {
    const entry = entryOf(this);
    if (entry) outbox.discard(entry);
  });
}

function entryOf(el) {
  return outbox.find($(el).closest('.outgoing').attr('data-client-id'));
}

function removeRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  if (typing.room === name) stopTyping(false);
  const hadFocus = $.contains(room.$item[0], document.activeElement);
  room.$pane.remove();
  room.$item.remove();
  if (!$('#dms').children().length) $('#dm-panel').prop('hidden', true);
  clearTimeout(room.readTimer);
  readThrottle.forget(name);
  state.rooms.delete(name);
  presenceLines.forget(name);
  outbox.dropRoom(name);
  storage.saveRooms(store, state.rooms.keys());
  scheduleCacheSave();
  if (state.active === name) {
    state.active = null;
    switchRoom(state.rooms.keys().next().value);
  }
  view.renderUnreadTotal();
  renderBanner();
  // The focused leave button is gone: keep the keyboard user in the list.
  if (hadFocus) {
    const $next = $rooms.find('.room.active .room-select');
    ($next.length ? $next : $('#room-input')).trigger('focus');
  }
}

function switchRoom(name) {
  const previous = state.rooms.get(state.active);
  if (previous && previous.name !== name) {
    sendRead(previous, true); // what was seen before leaving it
    previous.draft = $input.val();
    previous.savedTop = previous.$pane[0].scrollTop;
    stopTyping(true);
  }
  const room = state.rooms.get(name);
  state.active = room ? room.name : null;
  view.showRoom(room);
  replies.onRoomShown(state.active);
  if (room) {
    if (previous !== room) {
      // The line marks what was unread when the room was opened; it stays
      // while the room is open, however far the position moves meanwhile.
      room.lineAfter = room.reads.count() > 0 ? room.reads.readId : null;
      room.lineFixed = room.reads.readId !== null;
      view.placeNewLine(room);
    }
    renderUnread(room);
    if (previous && previous !== room) renderUnread(previous);
    if (previous !== room) {
      $('#member-search').val(room.paging.search ? room.paging.search.q : '');
      $input.val(room.draft);
      onComposerInput({ quiet: true });
    }
    view.restoreScroll(room);
    sendRead(room);
  }
  view.renderUnreadTotal();
  view.renderActiveRoom();
}

function setMe(user) {
  const renamed = view.myName() !== user.name;
  state.me = user;
  if (renamed) view.remarkMentions();
  scheduleCacheSave();
  state.wantedName = isGuestName(user.name) ? '' : user.name;
  if (state.wantedName) store.set(storage.KEYS.name, state.wantedName);
  view.renderMe(user);
}

// -- the tab in the background: title count and notifications ------------------

function onVisibilityChange() {
  if (document.visibilityState !== 'visible') return;
  state.hiddenUnread = 0;
  view.renderTitle();
  sendRead(state.rooms.get(state.active)); // seen only now
}

function notificationsSupported() {
  return 'Notification' in window;
}

/** A desktop notification for a mention of me, when they are turned on. */
function notify(room, msg) {
  if (!state.notify || !notificationsSupported()) return;
  if (Notification.permission !== 'granted') return;
  let notification;
  try {
    const title = room.dmMembers
      ? dmNotificationTitle(msg, room.dmMembers, state.me && state.me.id)
      : `${msg.user.name} in #${room.name}`;
    notification = new Notification(title, {
      body: excerpt(msg.text),
      tag: `chat-${room.name}`,
    });
  } catch (e) {
    return; // some browsers allow them only from a service worker
  }
  notification.addEventListener('click', () => {
    window.focus();
    if (state.rooms.has(room.name)) switchRoom(room.name);
    notification.close();
  });
}

function setNotify(on, help) {
  state.notify = on;
  storage.saveNotify(store, on);
  view.renderNotifyToggle(help);
}

// Permission is asked for only here, when the user turns notifications on.
function onNotifyToggle() {
  if (!$('#notify-toggle').prop('checked')) {
    setNotify(false);
    return;
  }
  if (!notificationsSupported()) {
    setNotify(false, 'This browser cannot show notifications.');
    return;
  }
  const answer = (permission) => {
    if (permission === 'granted') setNotify(true);
    else if (permission === 'denied') {
      setNotify(false, 'Notifications are blocked for this site in the browser settings.');
    } else setNotify(false, 'Notifications were not allowed.');
  };
  if (Notification.permission !== 'default') {
    answer(Notification.permission);
    return;
  }
  Promise.resolve(Notification.requestPermission()).then(answer, () => answer('default'));
}

// -- instant reopen: the newest messages of each room, kept on this device ------

function setKeepMessages(keep) {
  state.keepMessages = keep;
  storage.saveKeepMessages(store, keep);
  view.renderKeepMessages();
  if (keep) {
    saveCache();
  } else {
    clearTimeout(state.cacheTimer);
    state.cacheTimer = null;
    store.set(storage.KEYS.messages, null);
  }
}

function scheduleCacheSave() {
  if (!state.keepMessages || state.cacheTimer) return;
  state.cacheTimer = setTimeout(saveCache, CACHE_SAVE_MS);
}

function saveCache() {
  clearTimeout(state.cacheTimer);
  state.cacheTimer = null;
  if (!state.keepMessages) return;
  const rooms = {};
  const epochs = {};
  state.rooms.forEach((room) => {
    if (room.recent.length) rooms[room.name] = room.recent;
    if (room.recent.length && room.epoch) epochs[room.name] = room.epoch;
  });
  storage.saveCache(store, state.me, rooms, epochs);
}

/**
 * Show at once what this device kept of each room; once connected, every
 * such room is joined with `since` = the newest id kept, so the server
 * replays only what came after (and ids already shown are skipped).
 */
function showCached() {
  const data = state.keepMessages ? storage.readCache(store) : null;
  if (!data) return;
  if (data.me) state.cachedMe = data.me;
  state.rooms.forEach((room) => {
    const msgs = data.rooms[room.name];
    if (!msgs) return;
    room.epoch = data.epochs[room.name] || null;
    timeline.showKept(room, msgs);
  });
}

// -- user actions ---------------------------------------------------------------

function onNameSubmit(event) {
  event.preventDefault();
  const raw = String($('#name-input').val());
  let name = '';
  if (raw.trim()) {
    const checked = checkName(raw, config);
    if (checked.error) {
      view.showFieldError($('#name-error'), checked.error);
      $('#name-input').trigger('focus');
      return;
    }
    name = checked.name;
  }
  view.showFieldError($('#name-error'), null);
  enterChat(name);
}

/**
 * From the name screen, or at once on a later visit: show the rooms with
 * what this device kept of them, then connect and catch up.
 */
function enterChat(name) {
  state.wantedName = name;
  store.set(storage.KEYS.name, name);
  state.welcomes = 0;
  storage.loadRooms(store, isRoom).forEach((room) => ensureRoom(room));
  showCached(); // instant reopen: before the socket is even opened
  outbox.restore(); // written during an outage, then the page was reloaded
  if (state.rooms.size) switchRoom(state.rooms.keys().next().value);
  view.showChatScreen();
  // Now that they have a size: the composer's height, the pane's scroll.
  onComposerInput({ quiet: true });
  const room = state.rooms.get(state.active);
  if (room) view.restoreScroll(room);
  connection.connect();
  $input.trigger('focus');
}

function onComposerInput(options) {
  view.fitComposer();
  if (options && options.quiet) return;
  if ($input.val()) startTyping();
  else stopTyping(true);
}

function onComposerKeydown(event) {
  const e = event.originalEvent || event;
  if (event.key === 'Enter' && !event.shiftKey && !e.isComposing && !event.altKey) {
    event.preventDefault();
    sendMessage();
  } else if (event.key === 'ArrowUp' && !$input.val() && editor.editLast(state.rooms.get(state.active))) {
    event.preventDefault(); // Up in an empty composer: edit my last message
  } else if (event.key === 'Escape' && replies.target) {
    event.preventDefault(); // the reply under way is dropped, the text stays
    replies.cancel();
  }
}

function openNickForm() {
  $('#nick-form').prop('hidden', false);
  $('#rename-button').attr('aria-expanded', 'true');
  view.showFieldError($('#nick-error'), null);
  $('#nick-input').val(state.me ? state.me.name : '').trigger('focus').trigger('select');
}

function closeNickForm() {
  $('#nick-form').prop('hidden', true);
  $('#rename-button').attr('aria-expanded', 'false');
  state.nickPending = false;
}

function onNickSubmit(event) {
  event.preventDefault();
  const checked = checkName(String($('#nick-input').val()), config);
  if (checked.error) {
    view.showFieldError($('#nick-error'), checked.error);
    return;
  }
  if (state.me && checked.name === state.me.name) {
    closeNickForm();
    return;
  }
  if (!send({ type: 'nick', name: checked.name })) {
    view.showFieldError($('#nick-error'), 'Not connected; try again in a moment.');
    return;
  }
  view.showFieldError($('#nick-error'), null);
  state.nickPending = true;
}

function onJoinSubmit(event) {
  event.preventDefault();
  const makePrivate = $('#room-private').prop('checked');
  const request = roomRequest($('#room-input').val(), makePrivate, config);
  if (request.error) {
    view.showFieldError($('#room-error'), request.error);
    return;
  }
  view.showFieldError($('#room-error'), null);
  const name = request.frame.room;
  if (!makePrivate && state.rooms.has(name)) {
    $('#room-input').val('');
    switchRoom(name);
    return;
  }
  if (!send(request.frame)) {
    view.showFieldError($('#room-error'), 'Not connected; try again in a moment.');
    return;
  }
  state.pendingJoin = name;
  if (makePrivate) $('#room-private').prop('checked', false).trigger('change');
}

// -- private rooms ------------------------------------------------------------------

function onAddSubmit(event) {
  event.preventDefault();
  const request = addRequest(state.active, $('#add-people-input').val(), config);
  if (request.error) {
    view.showFieldError($('#add-people-error'), request.error);
    return;
  }
  view.showFieldError($('#add-people-error'), null);
  if (!send(request.frame)) {
    view.showFieldError($('#add-people-error'), 'Not connected; try again in a moment.');
    return;
  }
  state.addPending = true;
}

function onAdded(frame) {
  state.addPending = false;
  $('#add-people-input').val('');
  view.showFieldError($('#add-people-error'), null);
  view.showNotice(addedText(frame), 'added');
}

/** Someone added me to a private room: it joins my list (without switching). */
function onRoomAdded(frame) {
  if (isDmFrame(frame)) {
    onDmAdded(frame);
    return;
  }
  view.showNotice(roomAddedText(frame), 'room_added');
  if (!state.rooms.has(frame.room)) send({ type: 'join', room: frame.room });
}

// -- direct messages ----------------------------------------------------------------

/** "Message privately" on `user`: their conversation with me, opened if need be. */
function openDm(user) {
  const me = state.me && state.me.id;
  if (!me || !user || !user.id) return;
  const found = findDm(state.rooms, [user.id], me);
  if (found) {
    switchRoom(found);
    toggleSidebar(false);
    view.focusComposer();
    return;
  }
  if (!send({ type: 'dm', to: [user.id] })) {
    view.showNotice('Not connected; try again in a moment.', 'dm');
    return;
  }
  state.pendingDm = [user.id];
  toggleSidebar(false);
}

/** A conversation with me was opened (by someone, or by me in another tab). */
function onDmAdded(frame) {
  const known = state.rooms.has(frame.room);
  const room = ensureRoom(frame.room);
  room.dmMembers = membersOf(frame);
  view.renderRoomItem(room);
  const text = dmAddedText(frame, state.me && state.me.id);
  if (text) view.showNotice(text, 'room_added');
  if (!known) send({ type: 'join', room: frame.room });
}

function onLeft(frame) {
  const text = leftText(frame);
  if (text) view.showNotice(text, 'removed');
  removeRoom(frame.room);
}

function onLeaveClick() {
  const name = $(this).closest('.room').attr('data-room');
  // Disconnected: the server has forgotten us anyway, so forget the room here.
  if (!send({ type: 'leave', room: name })) removeRoom(name);
}

function toggleSidebar(open) {
  const $app = view.$app;
  const show = typeof open === 'boolean' ? open : !$app.hasClass('sidebar-open');
  $app.toggleClass('sidebar-open', show);
  $('#sidebar-toggle').attr('aria-expanded', String(show));
}

function bindEvents() {
  $('#name-form').on('submit', onNameSubmit);
  $('#name-input').on('input', () => view.showFieldError($('#name-error'), null));
  $('#composer').on('submit', (event) => {
    event.preventDefault();
    sendMessage();
  });
  $input.on('input', () => onComposerInput());
  $input.on('keydown', onComposerKeydown);
  editor.bind($messages);
  replies.bind($messages);
  search.bind();
  attacher.bind();
  reactionsUI.bind($messages);
  $input.on('blur', () => {
    if (!$input.val()) stopTyping(true);
  });
  $('#rename-button').on('click', () => {
    if ($('#nick-form').prop('hidden')) openNickForm();
    else closeNickForm();
  });
  $('#nick-form').on('submit', onNickSubmit);
  $('#nick-cancel').on('click', () => {
    closeNickForm();
    $('#rename-button').trigger('focus');
  });
  $('#nick-form').on('keydown', (event) => {
    if (event.key === 'Escape') {
      closeNickForm();
      $('#rename-button').trigger('focus');
    }
  });
  $('#join-room-form').on('submit', onJoinSubmit);
  $('#room-private').on('change', function () {
    $('#room-submit').text(this.checked ? 'Create' : 'Join');
  });
  $('#add-people-form').on('submit', onAddSubmit);
  let searchTimer = null;
  $('#member-search').on('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(onMemberSearch, 250); // a request per pause, not per key
  });
  $('#members-more').on('click', () => {
    const room = state.rooms.get(state.active);
    if (room && room.paging.big) send(memberList.moreRequest(room.name, room.paging));
  });
  $('#add-people-input').on('input', () => view.showFieldError($('#add-people-error'), null));
  $rooms.add('#dms').on('click', '.room-select', function () {
    switchRoom($(this).closest('.room').attr('data-room'));
    toggleSidebar(false);
    if (!$input.prop('disabled')) $input.trigger('focus');
  });
  $rooms.add('#dms').on('click', '.room-leave', onLeaveClick);
  $('#sidebar-toggle').on('click', () => toggleSidebar());
  $('#sidebar').on('keydown', (event) => {
    if (event.key === 'Escape' && view.$app.hasClass('sidebar-open')) {
      toggleSidebar(false);
      $('#sidebar-toggle').trigger('focus');
    }
  });
  $notices.on('click', '.notice-dismiss', function () {
    $(this).closest('.notice').remove();
  });
  view.darkScheme.addEventListener('change', () => view.repaint());
  // The message area shrinks when a form opens or a phone keyboard shows:
  // a room read at its newest message should stay there.
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      const room = state.rooms.get(state.active);
      if (room && room.stuckToBottom) view.scrollToBottom(room);
    }).observe($messages[0]);
  }
  $('#reconnect-button').on('click', () => connection.reconnectNow());
  $('#notify-toggle').on('change', onNotifyToggle);
  $('#no-cache-toggle').on('change', function () {
    setKeepMessages(!this.checked);
  });
  document.addEventListener('visibilitychange', onVisibilityChange);
  // The same choices in every tab of this browser.
  window.addEventListener('storage', (event) => {
    if (event.key === storage.KEYS.noCache) {
      state.keepMessages = event.newValue !== '1';
      view.renderKeepMessages();
    } else if (event.key === storage.KEYS.notify) {
      state.notify = event.newValue === '1';
      view.renderNotifyToggle();
    }
  });
  // The last second's messages too, and before the page goes for good.
  window.addEventListener('pagehide', () => {
    sendRead(state.rooms.get(state.active), true);
    if (state.cacheTimer) saveCache();
  });
  // "Today" becomes "Yesterday" at midnight.
  let today = dayKey(Date.now());
  setInterval(() => {
    if (dayKey(Date.now()) === today) return;
    today = dayKey(Date.now());
    view.relabelDays();
  }, 60000);
  // The network is back: no need to wait for the next attempt.
  window.addEventListener('online', () => {
    if (link.status === 'disconnected') connection.connect();
  });
}

function init() {
  const settings = storage.loadSettings(store);
  state.keepMessages = settings.keepMessages;
  view.renderKeepMessages();
  state.notify =
    settings.notify && notificationsSupported() && Notification.permission === 'granted';
  view.renderNotifyToggle();
  view.renderComposer();
  bindEvents();
  account.bind();
  if (config.account) {
    enterChat(''); // signed in: the account has its name
    return;
  }
  // Been here before (a name, or '' for a guest, was chosen): straight in.
  const saved = store.get(storage.KEYS.name);
  if (saved !== null && (saved === '' || !checkName(saved, config).error)) {
    enterChat(saved);
    return;
  }
  // Hidden until now: without JavaScript the form could do nothing.
  $('#name-form').prop('hidden', false);
  $('#name-input').val(saved || '').trigger('focus');
}

init();
