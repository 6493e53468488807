/*
 * The chat's browser client: one WebSocket speaking docs/protocol.md.
 *
 * Everything a user or a server wrote is put in the page with .text() or
 * .attr(), never parsed as HTML. No inline script or style is used, so the page
 * runs under "script-src 'self'; style-src 'self'".
 *
 * Recovery (see "connection" and "outbox" below):
 *   - a dropped connection is retried with exponential backoff and full jitter
 *     (a random delay in [0, min(cap, base * 2^attempt)]), so a restarted
 *     server is not hit by every client at once; the attempt count is reset
 *     only once a connection has stayed up for a while;
 *   - on reconnect every open room is joined again with `since` = the newest
 *     id shown there; the server replays what was missed (a `gap` frame marks
 *     what it left out) and every id is shown at most once;
 *   - messages written while offline, or sent but not acknowledged when the
 *     connection dropped, wait in an outbox (kept in sessionStorage) and are
 *     sent again with their original client_id once their room is rejoined;
 *     the server acknowledges a resend of a stored message with its original
 *     id, so nothing is ever shown twice;
 *   - the newest messages of each room are kept in localStorage (unless the
 *     user opts out) and shown on the next page load before the socket is
 *     up; those rooms are then joined with `since` like after a drop.
 *
 * DOM hooks (stable for tests and styles):
 *   body[data-ws-path][data-max-text][data-version]  settings from the server
 *   #app[data-screen=name|chat][data-connection=idle|connecting|connected|disconnected]
 *   #name-form, #name-input, #name-error             the first screen
 *   #status[data-state]                              connection state (live region)
 *   #reconnect-banner > #reconnect-title, #reconnect-countdown, #outbox-count,
 *       #reconnect-button                            shown while offline
 *   #me, #me-name, #rename-button                    who I am
 *   #nick-form, #nick-input, #nick-error             changing my name
 *   #rooms > .room[data-room] (.active) > .room-select, .room-leave, .unread
 *   #join-room-form, #room-input, #room-error
 *   #room-title, #presence > .member[data-user-id] (.self), #presence-count
 *   #messages > .room-pane[data-room] > .pane-top > .load-older
 *   #messages > .room-pane[data-room] > .message-list
 *       > .day[data-day] > h3.day-label           first message of a local day
 *       > .message[data-id][data-user-id] (.own) > .author, .text, time[datetime]
 *       > .message.mention > .mention-badge, .text mark.mention-me
 *       > .message.outgoing[data-client-id] (.pending | .failed) > .delivery
 *             > .retry-button, .discard-button  (failed only)
 *       > .gap[data-after][data-before] > .gap-button
 *   #typing, #slow-mode(.waiting), #composer, #message-input, #char-count,
 *       #send-button
 *   #notify-toggle, #notify-help, #no-cache-toggle   settings
 *   #notices > .notice[data-code] > .notice-text, .notice-dismiss
 *   #announcer                                       polite announcements
 *   #message-announcer > p                           new messages, read out
 *   #sidebar-toggle (narrow screens only)
 */
(function ($) {
  'use strict';

  // -- settings ---------------------------------------------------------------

  const $body = $(document.body);
  const config = {
    wsPath: $body.attr('data-ws-path') || '/ws',
    maxText: parseInt($body.attr('data-max-text'), 10) || 2000,
    historyPage: 100, // the largest history page; welcome's limits.history_page
  };
  const NAME_MAX = 24;
  const ROOM_MAX = 32;
  const DEFAULT_ROOM = 'lobby';
  const HISTORY_LIMIT = 50;
  const TYPING_REFRESH_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  // Reconnecting: full jitter between 0 and min(cap, base * 2^attempt).
  const RETRY_BASE_MS = 1000;
  const RETRY_MAX_MS = 15000;
  const RETRY_FLOOR_MS = 250; // never a busy loop, whatever the dice say
  const STABLE_MS = 10000; // up this long: the next drop starts from attempt 0
  const CONNECT_TIMEOUT_MS = 10000; // no welcome by then: try again
  const HEARTBEAT_IDLE_MS = 25000; // quiet this long: ping
  const HEARTBEAT_TIMEOUT_MS = 10000; // no answer to the ping: the link is dead
  const SCROLL_LOAD_PX = 150; // this close to the top: load older messages
  const OUTBOX_KEY = 'chat.outbox';
  const CLIENT_KEY = 'chat.key';
  // Instant reopen: the newest messages of each room, shown before the socket
  // is up. Bounded per room and in total (localStorage holds ~5 M characters
  // per origin, shared with everything else of this site).
  const CACHE_KEY = 'chat.messages';
  const NO_CACHE_KEY = 'chat.no-cache';
  const CACHE_PER_ROOM = 50;
  const CACHE_MAX_CHARS = 1000000;
  const CACHE_SAVE_MS = 1000;
  const NOTIFY_KEY = 'chat.notify';
  const ANNOUNCE_KEEP = 5; // announcements left in the live region
  const ANNOUNCE_MAX_CHARS = 200;
  const ANNOUNCE_BURST = 3; // more at once: announced as a count
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const NOTICE_MS = 12000;
  const NOTICES_MAX = 4;
  const GAP_TEXT = 'Some messages are missing here — load older';

  // -- storage (localStorage can be missing or refuse writes) -----------------

  function storage(kind) {
    return {
      get(key) {
        try {
          return window[kind].getItem(key);
        } catch (e) {
          return null;
        }
      },
      set(key, value) {
        try {
          if (value === null) window[kind].removeItem(key);
          else window[kind].setItem(key, value);
          return true;
        } catch (e) {
          /* private mode or full: remembering is best effort */
          return false;
        }
      },
    };
  }

  const store = storage('localStorage');
  const session = storage('sessionStorage'); // this tab only, survives a reload

  function randomHex(bytes) {
    const buf = new Uint8Array(bytes);
    window.crypto.getRandomValues(buf);
    return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The key makes every tab of this browser the same user and reserves its
  // display name; it is a secret the server only ever shows as a derived id.
  // The server issues it (welcome.key) to a client that connects without one.
  function storedKey() {
    const key = store.get(CLIENT_KEY);
    return /^[0-9A-Za-z_-]{16,128}$/.test(key || '') ? key : null;
  }

  function savedRooms() {
    try {
      const rooms = JSON.parse(store.get('chat.rooms') || '[]');
      return Array.isArray(rooms) ? rooms.filter((r) => !checkRoom(r)) : [];
    } catch (e) {
      return [];
    }
  }

  function saveRooms() {
    store.set('chat.rooms', JSON.stringify(Array.from(state.rooms.keys())));
  }

  // -- validation (docs/protocol.md, "Names") ---------------------------------

  const NAME_RE = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M} .'\-_]*[\p{L}\p{N}\p{M}])?$/u;
  const ROOM_RE = /^[\p{L}\p{N}][\p{L}\p{M}\p{N}_-]*$/u;

  function length(text) {
    return Array.from(text).length; // code points, as the server counts
  }

  /** The cleaned name, or {error} saying what is wrong with it. */
  function checkName(raw) {
    const name = raw.normalize('NFC').trim();
    if (!name) return { error: 'Please enter a name.' };
    if (length(name) > NAME_MAX) {
      return { error: `A name can be at most ${NAME_MAX} characters.` };
    }
    if (!NAME_RE.test(name)) {
      return {
        error:
          "Use letters and digits, with spaces and . ' - _ only inside; " +
          'start and end with a letter or digit.',
      };
    }
    // Compared as the server does (NFKC, case-folded): no "ｇｕｅｓｔ-" either.
    if (name.normalize('NFKC').toLowerCase().startsWith('guest-')) {
      return { error: 'Names starting with “guest-” are reserved for guests.' };
    }
    return { name };
  }

  /** An error message for an invalid room name, or null. */
  function checkRoom(room) {
    if (typeof room !== 'string' || !room) return 'Please enter a room name.';
    if (length(room) > ROOM_MAX) {
      return `A room name can be at most ${ROOM_MAX} characters.`;
    }
    if (!ROOM_RE.test(room)) {
      return 'Use letters, digits, - and _, starting with a letter or digit.';
    }
    return null;
  }

  function isGuestName(name) {
    return /^guest-/i.test(name);
  }

  // -- state ------------------------------------------------------------------

  const state = {
    me: null, // {id, name, color} from welcome / renamed
    wantedName: '', // asked for on (re)connect; '' gets a guest name
    rooms: new Map(), // room name -> room, in sidebar order
    active: null, // the visible room
    pendingJoin: null, // room asked for in the join form, awaiting its snapshot
    nickPending: false,
    askedName: '', // the name asked for on the current connection
    welcomes: 0, // welcomes since the name screen was passed
    cachedMe: null, // me as kept with the messages, until the first welcome
    hiddenUnread: 0, // messages from others that came while the tab was hidden
    notify: false, // desktop notifications for mentions (opt-in)
    keepMessages: true, // the instant-reopen cache (opt-out)
    cacheTimer: null,
    // My messages not yet acknowledged, oldest first:
    // {clientId, room, text, ts, status: queued|sending|failed, $li}
    outbox: [],
  };

  const conn = {
    ws: null,
    status: 'idle',
    attempt: 0, // failed attempts since the last connection that stayed up
    everConnected: false,
    retryTimer: null,
    retryAt: 0,
    countdownTimer: null,
    stableTimer: null,
    connectTimer: null,
    heartbeatTimer: null,
    lastFrameAt: 0,
    pingSentAt: 0,
    inflight: [], // outbox entries sent on this socket, in send order
    historyRequests: [], // {room, kind: initial|older|gap|probe, gap}, in send order
    rate: 5, // the server's limits, from welcome
    burst: 10,
    tokens: 10,
    tokensAt: 0,
    flushTimer: null,
  };

  const typing = { room: null, lastSent: 0, idleTimer: null };

  // -- elements ---------------------------------------------------------------

  const $app = $('#app');
  const $status = $('#status');
  const $banner = $('#reconnect-banner');
  const $messages = $('#messages');
  const $input = $('#message-input');
  const $rooms = $('#rooms');
  const $presence = $('#presence');
  const $typing = $('#typing');
  const $notices = $('#notices');

  // -- connection -------------------------------------------------------------

  function wsUrl() {
    const params = new URLSearchParams();
    state.askedName = state.wantedName;
    if (state.wantedName) params.set('name', state.wantedName);
    params.set('room', state.active || state.rooms.keys().next().value || DEFAULT_ROOM);
    const key = storedKey();
    if (key) params.set('key', key);
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}${config.wsPath}?${params}`;
  }

  function connect() {
    clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
    stopCountdown();
    if (conn.ws) {
      // "Reconnect now" during an attempt: the old socket is abandoned.
      const old = conn.ws;
      conn.ws = null;
      closeQuietly(old);
    }
    setStatus('connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    clearTimeout(conn.connectTimer);
    conn.connectTimer = setTimeout(() => {
      if (ws === conn.ws && !isConnected()) dropConnection();
    }, CONNECT_TIMEOUT_MS);
    // Events of a socket that was replaced are stale: ignore them.
    ws.addEventListener('message', (event) => {
      if (ws !== conn.ws) return;
      conn.lastFrameAt = Date.now();
      conn.pingSentAt = 0;
      handleFrame(event.data);
    });
    ws.addEventListener('close', () => {
      if (ws !== conn.ws) return;
      conn.ws = null;
      onDisconnected();
    });
  }

  function closeQuietly(ws) {
    try {
      ws.close();
    } catch (e) {
      /* already closing */
    }
  }

  /** Give up on the current socket at once (a dead link may never say so). */
  function dropConnection() {
    const ws = conn.ws;
    conn.ws = null;
    if (ws) closeQuietly(ws);
    onDisconnected();
  }

  function send(frame) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(JSON.stringify(frame));
    return true;
  }

  function isConnected() {
    return conn.status === 'connected';
  }

  function onDisconnected() {
    clearTimeout(conn.connectTimer);
    clearTimeout(conn.stableTimer);
    clearTimeout(conn.flushTimer);
    stopHeartbeat();
    stopTyping(false);
    // Maybe stored, maybe not: sent again after the rejoin, with the same
    // client_id, so the server acknowledges a stored one instead of storing
    // it twice.
    conn.inflight.forEach((entry) => {
      if (entry.status === 'sending') entry.status = 'queued';
      renderEntry(entry);
    });
    conn.inflight = [];
    conn.historyRequests.forEach((request) => {
      if (request.gap) setGapLoading(request.gap, false);
    });
    conn.historyRequests = [];
    state.nickPending = false;
    state.pendingJoin = null;
    state.rooms.forEach((room) => {
      room.typing.clear();
      room.ready = false;
      renderOlder(room);
    });
    renderActiveRoom();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(conn.retryTimer);
    // Full jitter: a restarted server sees its clients spread over the whole
    // window instead of all of them in the same second.
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(conn.attempt, 16));
    const delay = Math.max(RETRY_FLOOR_MS, Math.round(Math.random() * ceiling));
    conn.attempt += 1;
    conn.retryAt = Date.now() + delay;
    conn.retryTimer = setTimeout(connect, delay);
    setStatus('disconnected');
    startCountdown();
  }

  function reconnectNow() {
    conn.attempt = 0;
    connect();
  }

  function startCountdown() {
    stopCountdown();
    renderBanner();
    conn.countdownTimer = setInterval(renderBanner, 1000);
  }

  function stopCountdown() {
    clearInterval(conn.countdownTimer);
    conn.countdownTimer = null;
  }

  // A link can die without a close event (a laptop asleep, a lost Wi-Fi):
  // a quiet connection is pinged, and dropped if the ping goes unanswered.
  function startHeartbeat() {
    stopHeartbeat();
    conn.lastFrameAt = Date.now();
    conn.pingSentAt = 0;
    conn.heartbeatTimer = setInterval(() => {
      if (!isConnected()) return;
      const now = Date.now();
      if (conn.pingSentAt) {
        if (now - conn.pingSentAt > HEARTBEAT_TIMEOUT_MS) dropConnection();
      } else if (now - conn.lastFrameAt > HEARTBEAT_IDLE_MS && send({ type: 'ping' })) {
        conn.pingSentAt = now;
      }
    }, 5000);
  }

  function stopHeartbeat() {
    clearInterval(conn.heartbeatTimer);
    conn.heartbeatTimer = null;
  }

  // -- frames from the server -------------------------------------------------

  const handlers = {
    welcome: onWelcome,
    message: onMessage,
    presence: onPresence,
    typing: onTyping,
    history: onHistory,
    gap: onGap,
    left: onLeft,
    renamed: onRenamed,
    error: onError,
  };

  function handleFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (frame && typeof frame.type === 'string' && handlers[frame.type]) {
      handlers[frame.type](frame);
    }
  }

  function onWelcome(frame) {
    if (typeof frame.key === 'string' && frame.key) {
      // Our first connection: keep the secret the server gave us. Another tab
      // may have got and stored one first; then that one is ours, and this
      // connection starts again with it so that both tabs are one user.
      const existing = storedKey();
      if (existing && existing !== frame.key) {
        reconnectNow();
        return;
      }
      store.set(CLIENT_KEY, frame.key);
    }
    clearTimeout(conn.connectTimer);
    state.welcomes += 1;
    conn.everConnected = true;
    clearTimeout(conn.stableTimer);
    conn.stableTimer = setTimeout(() => {
      conn.attempt = 0;
    }, STABLE_MS);
    const limits = frame.limits || {};
    if (limits.max_text > 0) config.maxText = limits.max_text;
    if (limits.history_page > 0) config.historyPage = limits.history_page;
    if (limits.rate > 0) conn.rate = limits.rate;
    if (limits.burst >= 1) conn.burst = limits.burst;
    conn.tokens = conn.burst; // a new connection starts with a full bucket
    conn.tokensAt = Date.now();
    setMe(frame.user);
    setStatus('connected');
    startHeartbeat();

    const joinedNow = new Set(frame.rooms || []);
    const wanted = state.rooms.size ? Array.from(state.rooms.keys()) : savedRooms();
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
        // Back after a drop: the server replays what we missed. The newest id
        // tells whether the server lost its history meanwhile (a restart
        // with --db :memory:).
        send({ type: 'join', room: name, since: room.lastId });
        requestHistory(room, 'probe');
      } else if (!joinedNow.has(name)) {
        send({ type: 'join', room: name });
      }
    });
    if (!state.active || !state.rooms.has(state.active)) {
      switchRoom(frame.rooms && frame.rooms[0]);
      focusComposerIfIdle();
    }
    renderActiveRoom();
  }

  function onMessage(msg) {
    const room = state.rooms.get(msg.room);
    if (!room || !msg.user) return;
    if (room.typing.delete(msg.user.id) && msg.room === state.active) renderTyping();
    const mine = isMe(msg.user);
    const added = addMessages(room, [msg], { live: true, mine });
    if (!added || mine) return;
    if (msg.room !== state.active) {
      room.unread += added;
      renderRoomItem(room);
      renderUnreadTotal();
    }
    const mentioned = room.$list.find(`.message[data-id="${msg.id}"]`).hasClass('mention');
    if (document.visibilityState === 'hidden') {
      state.hiddenUnread += 1;
      renderTitle();
      if (mentioned) notify(room, msg);
    }
    // Said once, politely, where screen readers pick it up; focus stays put.
    if (msg.room === state.active) announceMessage(`${msg.user.name}: ${msg.text}`);
    else if (mentioned) announceMessage(`${msg.user.name} in #${msg.room}: ${msg.text}`);
  }

  function onPresence(frame) {
    let room = state.rooms.get(frame.room);
    if (frame.event === 'snapshot') {
      room = ensureRoom(frame.room);
      room.members = new Map((frame.users || []).map((u) => [u.id, u]));
      room.slowMode = Number(frame.slow_mode) > 0 ? Number(frame.slow_mode) : 0;
      // Who was already typing when we came in (later changes are events).
      room.typing = new Map(
        (Array.isArray(frame.typing) ? frame.typing : [])
          .filter((u) => u && u.id && !isMe(u))
          .map((u) => [u.id, u]),
      );
      if (state.pendingJoin === frame.room) {
        state.pendingJoin = null;
        $('#room-input').val('');
        showFieldError($('#room-error'), null);
        switchRoom(frame.room);
      }
      if (!state.active) {
        switchRoom(frame.room);
        focusComposerIfIdle();
      }
      if (!room.historyLoaded && !hasRequest(room, 'initial')) {
        requestHistory(room, 'initial');
      }
      // Joined again: what waited in the outbox for this room can go. The
      // server handles a connection's frames in order, so the rejoin (and
      // its replay) comes before these messages.
      room.ready = true;
      flushOutbox();
    } else if (!room || !frame.user) {
      return;
    } else if (frame.event === 'join' || frame.event === 'nick') {
      room.members.set(frame.user.id, frame.user);
      if (room.typing.has(frame.user.id)) room.typing.set(frame.user.id, frame.user);
    } else if (frame.event === 'leave') {
      room.members.delete(frame.user.id);
      room.typing.delete(frame.user.id);
    }
    room.count = typeof frame.count === 'number' ? frame.count : room.members.size;
    if (room.name === state.active) renderActiveRoom();
  }

  function onTyping(frame) {
    const room = state.rooms.get(frame.room);
    if (!room || !frame.user || isMe(frame.user)) return;
    if (frame.active) room.typing.set(frame.user.id, frame.user);
    else room.typing.delete(frame.user.id);
    if (room.name === state.active) renderTyping();
  }

  // History answers carry no request id, but a connection's frames are
  // answered in order: each answer is for the oldest request still open.
  function onHistory(frame) {
    const i = conn.historyRequests.findIndex((r) => r.room === frame.room);
    const request = i >= 0 ? conn.historyRequests.splice(i, 1)[0] : { kind: 'older' };
    const room = state.rooms.get(frame.room);
    if (!room) return;
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    if (request.kind === 'probe') {
      const newest = messages.reduce((top, m) => Math.max(top, m.id), 0);
      if (newest < room.lastId) {
        startNewEpoch(room);
        requestHistory(room, 'initial');
      }
      return;
    }
    if (request.kind === 'gap') {
      fillGap(room, request.gap, messages, Boolean(frame.more));
      return;
    }
    if (request.kind === 'initial') {
      const first = !room.historyLoaded;
      room.historyLoaded = true;
      room.hasMore = Boolean(frame.more);
      addMessages(room, messages, { live: false });
      if (first) scrollToBottom(room);
    } else {
      room.hasMore = Boolean(frame.more);
      addMessages(room, messages, { live: false });
    }
    renderOlder(room);
  }

  /** The server left out older missed messages: mark the place, to load later. */
  function onGap(frame) {
    const room = state.rooms.get(frame.room);
    const { after, before } = frame;
    if (!room || !Number.isInteger(after) || !Number.isInteger(before) || before <= after + 1) {
      return;
    }
    const gap = { after, before, loading: false };
    gap.$el = $('<li class="gap">')
      .attr('data-after', after)
      .attr('data-before', before)
      .data('gap', gap)
      .append($('<button type="button" class="gap-button">').text(GAP_TEXT));
    const el = gap.$el[0];
    // After everything up to `after`, before the replay that follows.
    room.$list[0].insertBefore(el, insertionPoint(room, after + 0.5));
    regroup(el.nextElementSibling);
    renderDays(room);
    updateEmpty(room);
  }

  function loadGap(room, gap) {
    if (gap.loading || !gap.$el) return;
    if (!isConnected()) {
      showNotice('Not connected; the missing messages load once the connection is back.');
      return;
    }
    if (requestHistory(room, 'gap', gap.before, gap)) setGapLoading(gap, true);
  }

  function setGapLoading(gap, loading) {
    gap.loading = loading;
    if (!gap.$el) return;
    gap.$el.attr('aria-busy', loading ? 'true' : null);
    gap.$el
      .find('.gap-button')
      .attr('aria-disabled', loading ? 'true' : null)
      .text(loading ? 'Loading the missing messages…' : GAP_TEXT);
  }

  // One page of a gap, newest first: it goes right below the marker, which
  // stays where the reader is looking; the next page is asked for until the
  // gap is closed.
  function fillGap(room, gap, messages, more) {
    if (!gap || !gap.$el) return; // the marker is gone (a new epoch)
    const lowest = messages.reduce((low, m) => Math.min(low, m.id), gap.before);
    gap.before = lowest;
    gap.$el.attr('data-before', lowest);
    const added = addMessages(room, messages, { live: false, anchor: gap.$el[0] });
    gap.loaded = (gap.loaded || 0) + added;
    if (!more || !messages.length || lowest <= gap.after + 1) {
      removeGap(room, gap);
      return;
    }
    if (!requestHistory(room, 'gap', gap.before, gap)) setGapLoading(gap, false);
  }

  function removeGap(room, gap) {
    const el = gap.$el[0];
    const hadFocus = el.contains(document.activeElement);
    const next = el.nextElementSibling;
    const pane = room.$pane[0];
    const top = el.getBoundingClientRect().top;
    gap.$el.remove();
    gap.$el = null;
    // The first filled-in message takes the marker's place on screen.
    if (next && room.name === state.active) {
      pane.scrollTop += next.getBoundingClientRect().top - top;
    }
    regroup(next);
    renderDays(room);
    if (hadFocus) pane.focus({ preventScroll: true });
    const n = gap.loaded || 0;
    announce(`${n} missing message${n === 1 ? '' : 's'} loaded.`);
  }

  // Ids restarted from 1: what is shown stays, above a line, and ids are
  // tracked afresh so new messages are not taken for ones already shown.
  function startNewEpoch(room) {
    room.$list.children('.message[data-id]').removeAttr('data-id').addClass('archived');
    room.$list.children('.gap').each(function () {
      const gap = $(this).data('gap');
      if (gap) gap.$el = null;
    });
    room.$list.children('.gap').remove();
    const $divider = $('<li class="divider">').append(
      $('<span>').text('The server restarted; earlier messages are no longer stored'),
    );
    // Above my messages still waiting to be sent: they belong to the new era.
    const $firstOutgoing = room.$list.children('.outgoing').first();
    if ($firstOutgoing.length) $divider.insertBefore($firstOutgoing);
    else room.$list.append($divider);
    renderDays(room);
    room.ids.clear();
    room.recent = [];
    scheduleCacheSave();
    room.lastId = 0;
    room.oldestId = 0;
    room.hasMore = false;
    room.historyLoaded = false;
    renderOlder(room);
  }

  function onLeft(frame) {
    removeRoom(frame.room);
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
    renderActiveRoom();
  }

  function onError(frame) {
    const text = sentence(frame.message || frame.code || 'Something went wrong.');
    if (frame.code === 'name_taken' && frame.ref === 'nick' && !state.nickPending) {
      refusedName(frame, text);
      return;
    }
    if (frame.ref === 'nick' && state.nickPending) {
      state.nickPending = false;
      showFieldError($('#nick-error'), text);
      $('#nick-input').trigger('focus');
      return;
    }
    if (frame.ref === 'join' && state.pendingJoin) {
      state.pendingJoin = null;
      showFieldError($('#room-error'), text);
      $('#room-input').trigger('focus');
      return;
    }
    if (frame.ref === 'history' && conn.historyRequests.length) {
      const request = conn.historyRequests.shift();
      const room = state.rooms.get(request.room);
      if (request.gap) setGapLoading(request.gap, false);
      if (room) renderOlder(room);
      if (request.kind === 'probe') return; // only a check: nothing to tell
    }
    if (frame.ref === 'message' && refuseMessage(frame)) return;
    showNotice(text, frame.code);
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
    showNotice(text, 'name_taken');
    // Right after the name screen (not on a reconnect): offer another name.
    if (state.welcomes === 1 && asked) {
      openNickForm();
      $('#nick-input').val(asked).trigger('select');
      showFieldError($('#nick-error'), text);
    }
  }

  /** A message of mine was refused; return true if nothing more is to be said. */
  function refuseMessage(frame) {
    // Errors name the message by client_id when they can; otherwise frames are
    // answered in order, so a refusal is for the oldest one still in flight.
    // A storage failure always names it: an `internal` error without a
    // client_id is about something else, never taken for one of mine.
    let entry = null;
    if (frame.client_id) entry = state.outbox.find((e) => e.clientId === frame.client_id);
    else if (frame.code !== 'internal') entry = conn.inflight[0];
    if (!entry) return false;
    conn.inflight = conn.inflight.filter((e) => e !== entry);
    if (frame.code === 'rate_limited') {
      // Not lost, only early: it goes out again by itself.
      entry.status = 'queued';
      renderEntry(entry);
      if (typeof frame.retry_after === 'number') {
        // Slow mode: only this room waits, as long as the server says.
        const room = state.rooms.get(entry.room);
        const until = Date.now() + Number(frame.retry_after) * 1000 + 100;
        if (room) {
          room.flushAfter = Math.max(room.flushAfter, until);
          room.slowUntil = Math.max(room.slowUntil, until);
          renderSlowMode();
        }
        scheduleFlush(until - Date.now());
        return true;
      }
      conn.tokens = 0;
      conn.tokensAt = Date.now();
      const wait = /in ([\d.]+) s/.exec(frame.message || '');
      scheduleFlush(wait ? parseFloat(wait[1]) * 1000 + 50 : 1000);
      return true;
    }
    entry.status = 'failed';
    renderEntry(entry);
    saveOutbox();
    renderBanner();
    return false;
  }

  // -- commands to the server -------------------------------------------------

  /** Ask for history; `kind` says what the answer is for (see onHistory). */
  function requestHistory(room, kind, before, gap) {
    const limit = { gap: config.historyPage, probe: 1 }[kind] || HISTORY_LIMIT;
    const frame = { type: 'history', room: room.name, limit };
    if (before) frame.before = before;
    if (!send(frame)) return false;
    conn.historyRequests.push({ room: room.name, kind, gap });
    return true;
  }

  function hasRequest(room, kind) {
    return conn.historyRequests.some((r) => r.room === room.name && r.kind === kind);
  }

  /** The page of messages above the oldest one shown, if there is one. */
  function loadOlder(room) {
    if (!room.hasMore || !room.oldestId || hasRequest(room, 'older')) return;
    if (requestHistory(room, 'older', room.oldestId)) renderOlder(room);
  }

  function sendMessage() {
    const text = $input.val();
    const room = state.rooms.get(state.active);
    if (!text.trim() || !room) return;
    const wait = slowModeWait(room);
    if (wait > 0) {
      announce(`Slow mode: you can send again in ${wait} ${wait === 1 ? 'second' : 'seconds'}.`);
      return;
    }
    if (length(text) > config.maxText) {
      showNotice(`The message is longer than ${config.maxText} characters.`, 'too_large');
      return;
    }
    queueMessage(room, text);
    if (room.slowMode) {
      room.slowUntil = Date.now() + room.slowMode * 1000;
      renderSlowMode();
    }
    stopTyping(false); // the server clears the indicator when the message lands
    $input.val('');
    onComposerInput({ quiet: true });
  }

  // -- outbox: my messages until the server has them --------------------------

  function queueMessage(room, text) {
    const entry = {
      clientId: randomHex(8),
      room: room.name,
      text,
      ts: Date.now(),
      status: 'queued',
      $li: null,
    };
    state.outbox.push(entry);
    showOutgoing(room, entry);
    saveOutbox();
    renderBanner();
    flushOutbox();
  }

  /** Send what waits, oldest first, for rooms joined on this connection. */
  function flushOutbox() {
    clearTimeout(conn.flushTimer);
    conn.flushTimer = null;
    if (!isConnected()) return;
    let soonest = Infinity;
    for (const entry of state.outbox) {
      if (entry.status !== 'queued') continue;
      const room = state.rooms.get(entry.room);
      if (!room || !room.ready) continue;
      const now = Date.now();
      if (room.flushAfter > now) {
        // Slow mode: the room's next one goes when the server will take it.
        soonest = Math.min(soonest, room.flushAfter);
        continue;
      }
      const wait = takeToken();
      if (wait > 0) {
        scheduleFlush(wait);
        return;
      }
      const { clientId, text } = entry;
      if (!send({ type: 'message', room: entry.room, text, client_id: clientId })) return;
      entry.status = 'sending';
      conn.inflight.push(entry);
      renderEntry(entry);
      if (room.slowMode) room.flushAfter = now + room.slowMode * 1000;
    }
    if (soonest < Infinity) scheduleFlush(soonest - Date.now());
  }

  function scheduleFlush(ms) {
    clearTimeout(conn.flushTimer);
    conn.flushTimer = setTimeout(flushOutbox, ms);
  }

  // The server's token bucket, mirrored (a little slower) so that a full
  // outbox goes out at the pace the server accepts instead of being refused.
  function takeToken() {
    const now = Date.now();
    const rate = conn.rate * 0.9;
    conn.tokens = Math.min(conn.burst, conn.tokens + ((now - conn.tokensAt) / 1000) * rate);
    conn.tokensAt = now;
    if (conn.tokens >= 1) {
      conn.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - conn.tokens) / rate) * 1000) + 20;
  }

  /** My message with this client_id reached the server: drop the local copy. */
  function settleOutbox(clientId) {
    const i = state.outbox.findIndex((e) => e.clientId === clientId);
    if (i < 0) return null;
    const entry = state.outbox.splice(i, 1)[0];
    conn.inflight = conn.inflight.filter((e) => e !== entry);
    saveOutbox();
    renderBanner();
    return entry;
  }

  function discardEntry(entry) {
    const i = state.outbox.indexOf(entry);
    if (i >= 0) state.outbox.splice(i, 1);
    conn.inflight = conn.inflight.filter((e) => e !== entry);
    removeEntryElement(entry);
    saveOutbox();
    renderBanner();
  }

  function removeEntryElement(entry) {
    if (!entry.$li) return;
    const el = entry.$li[0];
    const next = el.nextElementSibling;
    const hadFocus = el.contains(document.activeElement);
    entry.$li.remove();
    entry.$li = null;
    regroup(next);
    const room = state.rooms.get(entry.room);
    if (room) {
      renderDays(room);
      updateEmpty(room);
    }
    if (hadFocus) focusComposer();
  }

  function retryEntry(entry) {
    entry.status = 'queued';
    renderEntry(entry);
    saveOutbox();
    renderBanner();
    flushOutbox();
  }

  function entryOf(el) {
    const clientId = $(el).closest('.outgoing').attr('data-client-id');
    return state.outbox.find((e) => e.clientId === clientId);
  }

  // Shown at once, greyed, until the server's message with the same client_id
  // replaces it.
  function showOutgoing(room, entry) {
    const $li = buildMessage({ user: meForDisplay(), text: entry.text, ts: entry.ts }, true)
      .addClass('outgoing')
      .attr('data-client-id', entry.clientId);
    $li.find('.meta').append($('<span class="delivery">'));
    entry.$li = $li;
    renderEntry(entry);
    room.$list.append($li);
    renderDays(room);
    updateEmpty(room);
    if (room.name === state.active) scrollToBottom(room);
  }

  function renderEntry(entry) {
    if (!entry.$li) return;
    const failed = entry.status === 'failed';
    const hadFocus = !failed && entry.$li[0].contains(document.activeElement);
    entry.$li.toggleClass('pending', !failed).toggleClass('failed', failed);
    const $delivery = entry.$li.find('.delivery').empty();
    if (!failed) {
      $delivery.text('Sending…');
      if (hadFocus) focusComposer();
      return;
    }
    const excerpt = entry.text.length > 40 ? `${entry.text.slice(0, 40)}…` : entry.text;
    $delivery.append(
      $('<span class="delivery-text">').text('Not sent'),
      $('<button type="button" class="link-button retry-button">')
        .attr('aria-label', `Retry sending “${excerpt}”`)
        .text('Retry'),
      $('<button type="button" class="link-button discard-button">')
        .attr('aria-label', `Discard “${excerpt}”`)
        .text('Discard'),
    );
  }

  // Kept for this tab only: a reload during an outage loses nothing typed.
  function saveOutbox() {
    const items = state.outbox.map((e) => ({
      client_id: e.clientId,
      room: e.room,
      text: e.text,
      ts: e.ts,
      failed: e.status === 'failed',
    }));
    session.set(OUTBOX_KEY, items.length ? JSON.stringify(items) : null);
  }

  function restoreOutbox() {
    let items;
    try {
      items = JSON.parse(session.get(OUTBOX_KEY) || '[]');
    } catch (e) {
      items = [];
    }
    if (!Array.isArray(items)) return;
    items.forEach((item) => {
      if (
        !item ||
        typeof item.text !== 'string' ||
        !item.text.trim() ||
        !/^[0-9a-f]{1,64}$/.test(item.client_id || '') ||
        checkRoom(item.room) ||
        state.outbox.some((e) => e.clientId === item.client_id)
      ) {
        return;
      }
      const room = ensureRoom(item.room);
      const entry = {
        clientId: item.client_id,
        room: room.name,
        text: item.text,
        ts: Number(item.ts) || Date.now(),
        status: item.failed ? 'failed' : 'queued',
        $li: null,
      };
      state.outbox.push(entry);
      showOutgoing(room, entry);
    });
  }

  function startTyping() {
    if (!isConnected() || !state.active) return;
    if (typing.room && typing.room !== state.active) stopTyping(true);
    const now = Date.now();
    if (!typing.room || now - typing.lastSent >= TYPING_REFRESH_MS) {
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
      send({ type: 'typing', room: typing.room, active: false });
    }
    typing.room = null;
    typing.lastSent = 0;
  }

  // -- rooms ------------------------------------------------------------------

  function ensureRoom(name) {
    let room = state.rooms.get(name);
    if (room) return room;
    room = {
      name,
      members: new Map(), // user id -> user
      count: 0,
      typing: new Map(), // user id -> user
      ids: new Set(),
      lastId: 0,
      oldestId: 0,
      unread: 0,
      draft: '',
      ready: false, // joined on the current connection
      historyLoaded: false,
      hasMore: false,
      stuckToBottom: true,
      savedTop: 0,
      recent: [], // the newest messages, kept for the next page load
      slowMode: 0, // seconds between my messages here (presence snapshot)
      slowUntil: 0, // ms: the composer may send again from then on
      flushAfter: 0, // ms: the outbox may send here again from then on
    };
    buildRoomPane(room);
    buildRoomItem(room);
    state.rooms.set(name, room);
    saveRooms();
    return room;
  }

  function removeRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    if (typing.room === name) stopTyping(false);
    const hadFocus = $.contains(room.$item[0], document.activeElement);
    room.$pane.remove();
    room.$item.remove();
    state.rooms.delete(name);
    state.outbox = state.outbox.filter((e) => e.room !== name);
    conn.inflight = conn.inflight.filter((e) => e.room !== name);
    saveOutbox();
    saveRooms();
    scheduleCacheSave();
    if (state.active === name) {
      state.active = null;
      switchRoom(state.rooms.keys().next().value);
    }
    renderUnreadTotal();
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
      previous.draft = $input.val();
      previous.savedTop = previous.$pane[0].scrollTop;
      stopTyping(true);
    }
    const room = state.rooms.get(name);
    state.active = room ? room.name : null;
    state.rooms.forEach((r) => {
      const active = r === room;
      r.$pane.prop('hidden', !active);
      r.$item.toggleClass('active', active);
      r.$item.find('.room-select').attr('aria-current', active ? 'true' : null);
    });
    if (room) {
      room.unread = 0;
      renderRoomItem(room);
      if (previous !== room) {
        $input.val(room.draft);
        onComposerInput({ quiet: true });
      }
      restoreScroll(room);
    }
    renderUnreadTotal();
    renderActiveRoom();
  }

  // -- rendering --------------------------------------------------------------

  function sentence(text) {
    const s = String(text);
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?)]$/.test(s) ? '' : '.');
  }

  function safeColor(color) {
    return /^#[0-9a-f]{6}$/i.test(color || '') ? color : '';
  }
  // -- colours ----------------------------------------------------------------

  // Some colours of the server's palette are too faint on one of our themes
  // (#7cb342 on white is 2.5:1), so a name's colour is darkened or lightened
  // just enough to reach 4.5:1 on the message backgrounds (plain, own and
  // mentioning me); the hue is kept.
  const darkScheme = window.matchMedia('(prefers-color-scheme: dark)');
  const readableCache = new Map();

  function rgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function luminance(c) {
    const [r, g, b] = c.map((v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }

  function cssColor(name) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return safeColor(value) ? rgb(value) : null;
  }

  function readable(color) {
    const hex = safeColor(color);
    if (!hex) return '';
    const key = `${hex}/${darkScheme.matches}`;
    if (readableCache.has(key)) return readableCache.get(key);
    const backgrounds = ['--surface', '--own', '--mention'].map(cssColor).filter(Boolean);
    const toward = cssColor('--text') || (darkScheme.matches ? [255, 255, 255] : [0, 0, 0]);
    const base = rgb(hex);
    let c = base;
    for (let t = 0.05; t <= 1 && backgrounds.some((bg) => contrast(c, bg) < 4.5); t += 0.05) {
      c = base.map((v, i) => Math.round(v + (toward[i] - v) * t));
    }
    const out = `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
    readableCache.set(key, out);
    return out;
  }

  /** Colour an element's text with a user's colour, kept readable. */
  function paintText($el, color) {
    return $el.attr('data-color', safeColor(color)).css('color', readable(color));
  }

  function repaint() {
    $('[data-color]').each(function () {
      $(this).css('color', readable($(this).attr('data-color')));
    });
  }

  function initial(name) {
    return (Array.from(name || '?')[0] || '?').toUpperCase();
  }

  function isMe(user) {
    // Before the first welcome, who I was when the messages were kept.
    const me = state.me || state.cachedMe;
    return Boolean(me && user && user.id === me.id);
  }

  function avatar(user, extraClass) {
    return paintAvatar(
      $('<span>')
        .addClass('avatar')
        .addClass(extraClass || '')
        .attr('aria-hidden', 'true'),
      user,
    );
  }

  function paintAvatar($el, user) {
    const hex = safeColor(user.color);
    // White initials unless the colour is too light for them.
    const ink = hex && contrast(rgb(hex), [255, 255, 255]) < 3 ? '#111111' : '#ffffff';
    return $el.text(initial(user.name)).css({ 'background-color': hex, color: ink });
  }

  function setStatus(status) {
    conn.status = status;
    // The live region says only what changed for good: not every attempt of
    // a retry loop, and never the countdown (that is in the banner).
    let text = 'Connecting…';
    if (status === 'connected') text = 'Connected';
    else if (status === 'idle') text = 'Not connected';
    else if (conn.everConnected || conn.attempt > 0) text = 'Disconnected';
    if ($status.text() !== text) $status.text(text);
    $status.attr('data-state', status);
    $app.attr('data-connection', status);
    renderBanner();
    renderComposer();
  }

  function renderBanner() {
    const show =
      $app.attr('data-screen') === 'chat' &&
      !isConnected() &&
      (conn.everConnected || conn.attempt > 0);
    $banner.prop('hidden', !show);
    if (!show) {
      stopCountdown();
      return;
    }
    $('#reconnect-title').text(
      conn.everConnected ? 'Connection lost.' : 'Cannot reach the chat server.',
    );
    const seconds = Math.ceil((conn.retryAt - Date.now()) / 1000);
    $('#reconnect-countdown').text(
      conn.status === 'disconnected' && seconds > 0
        ? `Reconnecting in ${seconds} s.`
        : 'Reconnecting…',
    );
    const waiting = state.outbox.filter((e) => e.status !== 'failed').length;
    $('#outbox-count')
      .prop('hidden', !waiting)
      .text(
        waiting === 1
          ? '1 message will be sent when the connection is back.'
          : `${waiting} messages will be sent when the connection is back.`,
      );
  }

  const announcing = { queue: [], timer: null };

  /**
   * Read a new message out: appended to a polite live region, oldest dropped.
   * A burst (a replay after a reconnect) is said as one count instead.
   */
  function announceMessage(text) {
    announcing.queue.push(text);
    if (!announcing.timer) announcing.timer = setTimeout(flushAnnouncements, 300);
  }

  function flushAnnouncements() {
    const queue = announcing.queue;
    announcing.queue = [];
    announcing.timer = null;
    const $region = $('#message-announcer');
    const lines =
      queue.length > ANNOUNCE_BURST ? [`${queue.length} new messages.`] : queue;
    lines.forEach((text) => {
      const short =
        text.length > ANNOUNCE_MAX_CHARS ? `${text.slice(0, ANNOUNCE_MAX_CHARS)}…` : text;
      $region.append($('<p>').text(short));
    });
    $region.children().slice(0, -ANNOUNCE_KEEP).remove();
  }

  // -- the tab in the background: title count and notifications --------------

  function renderTitle() {
    const where = state.active ? `#${state.active} · ` : '';
    const count = state.hiddenUnread;
    document.title = `${count ? `(${count}) ` : ''}${where}Chat`;
  }

  function onVisibilityChange() {
    if (document.visibilityState !== 'visible') return;
    state.hiddenUnread = 0;
    renderTitle();
  }

  function notificationsSupported() {
    return 'Notification' in window;
  }

  /** A desktop notification for a mention of me, when they are turned on. */
  function notify(room, msg) {
    if (!state.notify || !notificationsSupported()) return;
    if (Notification.permission !== 'granted') return;
    const body =
      msg.text.length > ANNOUNCE_MAX_CHARS ? `${msg.text.slice(0, ANNOUNCE_MAX_CHARS)}…` : msg.text;
    let notification;
    try {
      notification = new Notification(`${msg.user.name} in #${room.name}`, {
        body,
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

  function renderNotifyToggle(help) {
    $('#notify-toggle').prop('checked', state.notify);
    $('#notify-help').text(
      help || 'When someone writes @ and your name while this tab is in the background.',
    );
  }

  function setNotify(on, help) {
    state.notify = on;
    store.set(NOTIFY_KEY, on ? '1' : null);
    renderNotifyToggle(help);
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

  function setKeepMessages(keep) {
    state.keepMessages = keep;
    store.set(NO_CACHE_KEY, keep ? null : '1');
    $('#no-cache-toggle').prop('checked', !keep);
    if (keep) {
      saveCache();
    } else {
      clearTimeout(state.cacheTimer);
      state.cacheTimer = null;
      store.set(CACHE_KEY, null);
    }
  }

  // -- instant reopen: the newest messages of each room, kept on this device --

  /** Keep a message among its room's newest, for the next page load. */
  function remember(room, msg) {
    const recent = room.recent;
    if (recent.length >= CACHE_PER_ROOM && msg.id < recent[0].id) return;
    const { id, name, color } = msg.user;
    const item = { id: msg.id, user: { id, name, color }, text: String(msg.text), ts: msg.ts };
    let i = recent.length;
    while (i > 0 && recent[i - 1].id > msg.id) i -= 1;
    recent.splice(i, 0, item);
    if (recent.length > CACHE_PER_ROOM) recent.splice(0, recent.length - CACHE_PER_ROOM);
    scheduleCacheSave();
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
    state.rooms.forEach((room) => {
      if (room.recent.length) rooms[room.name] = room.recent;
    });
    // Over the budget, or the browser's quota is full: fewer per room.
    for (let keep = CACHE_PER_ROOM; keep >= 1; keep = Math.floor(keep / 2)) {
      const trimmed = {};
      Object.keys(rooms).forEach((name) => {
        trimmed[name] = rooms[name].slice(-keep);
      });
      const text = JSON.stringify({ v: 1, me: state.me, rooms: trimmed });
      if (text.length <= CACHE_MAX_CHARS && store.set(CACHE_KEY, text)) return;
    }
    store.set(CACHE_KEY, null);
  }

  function readCache() {
    if (!state.keepMessages) return null;
    try {
      const data = JSON.parse(store.get(CACHE_KEY) || 'null');
      return data && data.v === 1 && data.rooms && typeof data.rooms === 'object' ? data : null;
    } catch (e) {
      return null;
    }
  }

  function validCached(m) {
    return Boolean(
      m &&
        Number.isInteger(m.id) &&
        m.id > 0 &&
        typeof m.text === 'string' &&
        Number.isFinite(m.ts) &&
        m.user &&
        typeof m.user.id === 'string' &&
        typeof m.user.name === 'string',
    );
  }

  /**
   * Show at once what this device kept of each room; once connected, every
   * such room is joined with `since` = the newest id kept, so the server
   * replays only what came after (and ids already shown are skipped).
   */
  function showCached() {
    const data = readCache();
    if (!data) return;
    if (data.me && typeof data.me.id === 'string') state.cachedMe = data.me;
    state.rooms.forEach((room) => {
      const kept = data.rooms[room.name];
      const msgs = Array.isArray(kept) ? kept.filter(validCached) : [];
      if (!msgs.length) return;
      addMessages(
        room,
        msgs.map((m) => ({ ...m, room: room.name })),
        { live: false },
      );
      room.historyLoaded = true;
      room.hasMore = room.oldestId > 1;
      renderOlder(room);
    });
  }

  /** Say something to screen readers without showing it. */
  function announce(text) {
    const $announcer = $('#announcer');
    $announcer.text('');
    setTimeout(() => $announcer.text(text), 50);
  }

  function focusComposer() {
    if (!$input.prop('disabled')) $input.trigger('focus');
  }

  /** The composer became usable while nothing had the focus: take it. */
  function focusComposerIfIdle() {
    const el = document.activeElement;
    if (!el || el === document.body) focusComposer();
  }

  /** Me as a message author, also before the first welcome (a reload offline). */
  function meForDisplay() {
    return state.me || { id: '', name: state.wantedName || 'You', color: '' };
  }

  function setMe(user) {
    const renamed = myName() !== user.name;
    state.me = user;
    if (renamed) remarkMentions();
    scheduleCacheSave();
    state.wantedName = isGuestName(user.name) ? '' : user.name;
    if (state.wantedName) store.set('chat.name', state.wantedName);
    $('#me').prop('hidden', false);
    paintText($('#me-name').text(user.name), user.color);
    paintAvatar($('#me-avatar'), user);
  }

  function buildRoomItem(room) {
    const $select = $('<button type="button" class="room-select">')
      .append($('<span class="room-hash" aria-hidden="true">').text('#'))
      .append($('<span class="room-name">').text(room.name))
      .append($('<span class="unread badge" hidden>'));
    const $leave = $('<button type="button" class="room-leave">')
      .attr('aria-label', `Leave #${room.name}`)
      .attr('title', `Leave #${room.name}`)
      .append($('<span aria-hidden="true">').text('×'));
    room.$item = $('<li class="room">').attr('data-room', room.name).append($select, $leave);
    $rooms.append(room.$item);
  }

  function renderRoomItem(room) {
    room.$item
      .find('.unread')
      .prop('hidden', room.unread === 0)
      .empty()
      .append(
        document.createTextNode(room.unread > 99 ? '99+' : String(room.unread)),
        $('<span class="visually-hidden">').text(' unread'),
      );
  }

  function renderUnreadTotal() {
    let total = 0;
    state.rooms.forEach((room) => {
      total += room.unread;
    });
    $('#sidebar-toggle-unread')
      .prop('hidden', total === 0)
      .text(`${total} unread`);
    renderTitle();
  }

  function buildRoomPane(room) {
    room.$older = $('<button type="button" class="button button-quiet button-sm load-older">')
      .prop('hidden', true)
      .text('Load older messages');
    room.$empty = $('<p class="room-empty">').text(`No messages in #${room.name} yet. Say hello!`);
    room.$list = $('<ul class="message-list">');
    // Focusable from script only: where focus goes when the control it was on
    // disappears (a filled gap, the last page of history).
    room.$pane = $('<div class="room-pane" tabindex="-1">')
      .attr('data-room', room.name)
      .prop('hidden', true)
      .append($('<div class="pane-top">').append(room.$older), room.$empty, room.$list);
    room.$pane.on('scroll', () => {
      const el = room.$pane[0];
      if (el.hidden) return;
      room.stuckToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      // Near the top: the next page of history, without a click.
      if (el.scrollTop < SCROLL_LOAD_PX && room.historyLoaded) loadOlder(room);
    });
    // A button that is busy stays focusable (aria-disabled, not disabled), so
    // a keyboard user does not lose their place.
    room.$older.on('click', () => {
      if (room.$older.attr('aria-disabled') !== 'true') loadOlder(room);
    });
    room.$list.on('click', '.gap-button', function () {
      const gap = $(this).closest('.gap').data('gap');
      if (gap) loadGap(room, gap);
    });
    room.$list.on('click', '.retry-button', function () {
      const entry = entryOf(this);
      if (entry) retryEntry(entry);
    });
    room.$list.on('click', '.discard-button', function () {
      const entry = entryOf(this);
      if (entry) discardEntry(entry);
    });
    $messages.append(room.$pane);
  }

  function renderOlder(room) {
    const loading = hasRequest(room, 'older');
    const hadFocus = room.$older[0] === document.activeElement;
    room.$older
      .prop('hidden', !room.hasMore)
      .attr('aria-disabled', loading ? 'true' : null)
      .text(loading ? 'Loading older messages…' : 'Load older messages');
    if (hadFocus && !room.hasMore) room.$pane[0].focus({ preventScroll: true });
  }

  function renderActiveRoom() {
    const room = state.rooms.get(state.active);
    $('#no-room').prop('hidden', Boolean(room));
    $('#room-title').text(room ? `#${room.name}` : 'No room');
    const count = room ? room.count : 0;
    $('#room-meta').text(room ? `${count} ${count === 1 ? 'person' : 'people'} here` : '');
    $('#presence-count').text(String(count));
    $('#sidebar-toggle-label').text(room ? `#${room.name} · ${count} here` : 'Rooms and people');
    $('#message-label').text(room ? `Message #${room.name}` : 'Message');
    renderPresence(room);
    renderTyping();
    renderSlowMode();
    renderUnreadTotal();
  }

  function renderPresence(room) {
    const users = room ? Array.from(room.members.values()) : [];
    users.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
    $presence.empty().append(
      users.map((user) => {
        const $li = $('<li class="member">')
          .attr('data-user-id', user.id)
          .append(avatar(user, 'avatar-sm'), $('<span class="member-name">').text(user.name));
        if (isMe(user)) {
          $li.addClass('self').append($('<span class="you-badge">').text('you'));
        }
        return $li;
      }),
    );
  }

  function renderTyping() {
    const room = state.rooms.get(state.active);
    const names = room ? Array.from(room.typing.values(), (u) => u.name) : [];
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = 'several people are typing…';
    $typing.text(text).toggleClass('active', Boolean(text));
  }

  /** Whole seconds until slow mode lets me post in `room` again (0: now). */
  function slowModeWait(room) {
    if (!room || !room.slowMode) return 0;
    return Math.max(0, Math.ceil((room.slowUntil - Date.now()) / 1000));
  }

  let slowTimer = null;

  /** The slow-mode line under the composer, ticking while there is a wait. */
  function renderSlowMode() {
    const room = state.rooms.get(state.active);
    const wait = slowModeWait(room);
    const $note = $('#slow-mode');
    if (!room || !room.slowMode) {
      $note.prop('hidden', true).text('');
    } else {
      const every = `Slow mode: one message every ${room.slowMode} s.`;
      $note
        .prop('hidden', false)
        .toggleClass('waiting', wait > 0)
        .text(wait > 0 ? `${every} You can send again in ${wait} s.` : every);
    }
    renderComposer();
    if (wait > 0 && !slowTimer) {
      slowTimer = setInterval(() => {
        const active = state.rooms.get(state.active);
        if (!slowModeWait(active)) {
          clearInterval(slowTimer);
          slowTimer = null;
        }
        renderSlowMode();
      }, 250);
    }
  }

  function renderComposer() {
    // Usable offline too: what is written then waits in the outbox.
    const usable = Boolean(state.active);
    const text = $input.val() || '';
    const size = length(text);
    const over = size > config.maxText;
    const wait = slowModeWait(state.rooms.get(state.active));
    const $send = $('#send-button');
    if (wait > 0) {
      $send.text(`${wait} s`).attr('aria-label', `Send: wait ${wait} s (slow mode)`);
    } else if ($send.attr('aria-label')) {
      $send.text('Send').removeAttr('aria-label');
    }
    $input.prop('disabled', !usable);
    let placeholder = 'Join a room to write';
    if (state.active) {
      placeholder = isConnected()
        ? `Message #${state.active}`
        : `Message #${state.active} (sent when the connection is back)`;
    } else if (!isConnected()) {
      placeholder = 'Waiting for the connection…';
    }
    $input.attr('placeholder', placeholder);
    $send.prop('disabled', !usable || over || !text.trim() || wait > 0);
    $('#char-count')
      .text(`${size} / ${config.maxText}`)
      .toggleClass('near', size > config.maxText * 0.9 && !over)
      .toggleClass('over', over);
  }

  function formatTime(ts) {
    const date = new Date(ts);
    const hh = String(date.getHours()).padStart(2, '0');
    const mm = String(date.getMinutes()).padStart(2, '0');
    return { date, short: `${hh}:${mm}` };
  }

  // -- message text: links and mentions, built node by node -----------------

  // A candidate link: http(s)://, then anything up to white space or a
  // character that cannot be in a URL as written in a sentence.
  const LINK_RE = /(^|[^\p{L}\p{N}_])(https?:\/\/[^\s<>"'`]+)/giu;
  const TRAILING_RE = /[.,;:!?'"*_~]+$/;

  /** The URL without the punctuation of the sentence it ends. */
  function trimLink(url) {
    let out = url;
    for (;;) {
      const before = out;
      out = out.replace(TRAILING_RE, '');
      // A closing bracket belongs to the URL only if it opens one, as in
      // https://en.wikipedia.org/wiki/Wheezy_(software).
      for (const [open, close] of [
        ['(', ')'],
        ['[', ']'],
      ]) {
        if (out.endsWith(close) && out.split(close).length > out.split(open).length) {
          out = out.slice(0, -1);
        }
      }
      if (out === before) return out;
    }
  }

  /** A safe href for the text of a link, or null: only http and https. */
  function safeHref(text) {
    let url;
    try {
      url = new URL(text);
    } catch (e) {
      return null;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href;
  }

  /** Runs of text and links: [{text}, {text, href}], in order. */
  function splitLinks(text) {
    const parts = [];
    let last = 0;
    LINK_RE.lastIndex = 0;
    let match;
    while ((match = LINK_RE.exec(text)) !== null) {
      const start = match.index + match[1].length;
      const url = trimLink(match[2]);
      const href = safeHref(url);
      if (!href) continue;
      if (start > last) parts.push({ text: text.slice(last, start) });
      parts.push({ text: url, href });
      last = start + url.length;
      LINK_RE.lastIndex = last;
    }
    if (last < text.length) parts.push({ text: text.slice(last) });
    return parts;
  }

  let mentionCache = { name: null, re: null };

  /** A regexp finding "@name" for my current name as a whole word, or null. */
  function mentionRe() {
    const name = myName();
    if (mentionCache.name !== name) {
      // Only syntax characters may be escaped in a unicode regexp.
      const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      // Not inside an address (bob@name) and not the start of a longer name
      // (@alice-bob, @alice.b); sentence punctuation after it is fine.
      mentionCache = {
        name,
        re: name
          ? new RegExp(
              `(?<![\\p{L}\\p{N}\\p{M}_@-])@${escaped}(?![\\p{L}\\p{N}\\p{M}_]|[-.'][\\p{L}\\p{N}])`,
              'giu',
            )
          : null,
      };
    }
    return mentionCache.re;
  }

  /** My display name now, or the one asked for before the first welcome. */
  function myName() {
    if (state.me) return state.me.name;
    return state.wantedName || '';
  }

  /**
   * Put a message's text in $el: plain text nodes, <a> for http(s) links and
   * <mark> for mentions of me (unless `own`). Nothing is parsed as HTML.
   * Returns whether I am mentioned.
   */
  function renderText($el, text, own) {
    const re = own ? null : mentionRe();
    let mentioned = false;
    $el.empty();
    splitLinks(text).forEach((part) => {
      if (part.href) {
        $el.append(
          $('<a target="_blank" rel="noopener noreferrer nofollow">')
            .attr('href', part.href)
            .text(part.text),
        );
        return;
      }
      if (!re) {
        $el.append(document.createTextNode(part.text));
        return;
      }
      let last = 0;
      re.lastIndex = 0;
      let match;
      while ((match = re.exec(part.text)) !== null) {
        if (match.index > last) {
          $el.append(document.createTextNode(part.text.slice(last, match.index)));
        }
        $el.append($('<mark class="mention-me">').text(match[0]));
        mentioned = true;
        last = match.index + match[0].length;
      }
      if (last < part.text.length) $el.append(document.createTextNode(part.text.slice(last)));
    });
    return mentioned;
  }

  /** My name changed: mark the mentions of the new one instead. */
  function remarkMentions() {
    $messages.find('.message').each(function () {
      const $li = $(this);
      if ($li.hasClass('own')) return;
      const $text = $li.find('.text');
      setMentioned($li, renderText($text, $text.text(), false));
    });
  }

  function setMentioned($li, mentioned) {
    $li.toggleClass('mention', mentioned);
    const $badge = $li.find('.mention-badge');
    if (mentioned && !$badge.length) {
      $li.find('.meta time').before($('<span class="mention-badge">').text('mentions you'));
    } else if (!mentioned) {
      $badge.remove();
    }
  }

  function buildMessage(msg, own) {
    const user = msg.user;
    const { date, short } = formatTime(msg.ts);
    const $time = $('<time>')
      .attr('datetime', date.toISOString())
      .attr('title', date.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'medium' }))
      .text(short);
    const $meta = $('<div class="meta">').append(
      paintText($('<span class="author">').text(user.name), user.color),
    );
    const $li = $('<li class="message">')
      .attr('data-id', msg.id === undefined ? null : msg.id)
      .attr('data-user-id', user.id)
      .attr('data-author', user.name)
      .attr('data-ts', msg.ts);
    if (own || isMe(user)) {
      $li.addClass('own');
      $meta.append($('<span class="you-badge">').text('you'));
    }
    $meta.append($time);
    const $text = $('<div class="text">');
    const mentioned = renderText($text, String(msg.text), $li.hasClass('own'));
    $li.append(avatar(user), $('<div class="body">').append($meta, $text));
    setMentioned($li, mentioned);
    return $li;
  }

  // Consecutive messages of one author are shown as one block.
  function regroup(el) {
    if (!el) return;
    const prev = el.previousElementSibling;
    const continued = Boolean(
      prev &&
        prev.dataset.userId === el.dataset.userId &&
        prev.dataset.author === el.dataset.author &&
        Number(el.dataset.ts) - Number(prev.dataset.ts) < GROUP_WITHIN_MS,
    );
    el.classList.toggle('continued', continued);
  }

  // -- day separators ---------------------------------------------------------

  /** The local calendar day of a time, as "YYYY-M-D". */
  function dayKey(ts) {
    const d = new Date(ts);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
  }

  function dayLabel(key) {
    const now = new Date();
    if (key === dayKey(now)) return 'Today';
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (key === dayKey(yesterday)) return 'Yesterday';
    const [y, m, d] = key.split('-').map(Number);
    const date = new Date(y, m - 1, d);
    const options = { weekday: 'long', month: 'long', day: 'numeric' };
    if (y !== now.getFullYear()) options.year = 'numeric';
    return date.toLocaleDateString(undefined, options);
  }

  function daySeparator(key) {
    // A heading: screen readers can jump from day to day.
    const $li = $('<li class="day">').attr('data-day', key);
    return $li.append($('<h3 class="day-label">').text(dayLabel(key)))[0];
  }

  /**
   * Put a separator before the first message of each local day, wherever
   * messages were added (live, a page of older ones, a filled gap), drop the
   * ones that no longer start a day, and regroup what they divide.
   */
  function renderDays(room) {
    const list = room.$list[0];
    let previousDay = null;
    let separator = null; // the separator right above the current element
    for (let el = list.firstElementChild; el; ) {
      const next = el.nextElementSibling;
      if (el.classList.contains('day')) {
        if (separator) separator.remove();
        separator = el;
      } else if (el.classList.contains('message') && el.dataset.ts) {
        const day = dayKey(Number(el.dataset.ts));
        if (day !== previousDay) {
          if (separator && separator.dataset.day !== day) {
            separator.remove();
            separator = null;
          }
          if (!separator) list.insertBefore(daySeparator(day), el);
        } else if (separator) {
          separator.remove();
        }
        separator = null;
        previousDay = day;
        regroup(el);
      } else {
        // A gap marker or a restart line: a separator goes under it.
        if (separator) separator.remove();
        separator = null;
      }
      el = next;
    }
    if (separator) separator.remove();
  }

  /** After midnight, "Today" is yesterday: relabel every separator. */
  function relabelDays() {
    $messages.find('.day').each(function () {
      $(this).find('.day-label').text(dayLabel(this.dataset.day));
    });
  }

  /**
   * Insert messages in id order, skipping ones already shown; returns how many.
   *
   * A message of mine replaces its outgoing copy (same client_id), wherever
   * it comes from: the acknowledgement, a replay or a page of history.
   * Unless the reader is at the bottom (then they stay there), what they are
   * looking at stays put: options.anchor, or else the first element in view.
   */
  function addMessages(room, msgs, options) {
    const pane = room.$pane[0];
    const visible = room.name === state.active && !pane.hidden;
    const follow = room.stuckToBottom || (options.live && options.mine);
    const anchor = visible && !follow ? options.anchor || firstInView(room) : null;
    // The bottom edge: the anchor's own header may go when it joins a group.
    const anchorAt = anchor ? anchor.getBoundingClientRect().bottom : 0;
    const list = room.$list[0];
    let added = 0;
    msgs.forEach((msg) => {
      if (!msg || typeof msg.id !== 'number' || !msg.user) return;
      const sent = msg.client_id && isMe(msg.user) ? settleOutbox(msg.client_id) : null;
      if (sent) removeEntryElement(sent);
      if (room.ids.has(msg.id)) return; // already shown by id: keep that one
      room.ids.add(msg.id);
      const el = buildMessage(msg)[0];
      list.insertBefore(el, insertionPoint(room, msg.id));
      regroup(el);
      regroup(el.nextElementSibling);
      room.lastId = Math.max(room.lastId, msg.id);
      room.oldestId = room.oldestId ? Math.min(room.oldestId, msg.id) : msg.id;
      remember(room, msg);
      added += 1;
    });
    if (added) renderDays(room);
    updateEmpty(room);
    if (!added || !visible) return added;
    if (follow) scrollToBottom(room);
    else if (anchor && anchor.isConnected) {
      pane.scrollTop += anchor.getBoundingClientRect().bottom - anchorAt;
    }
    return added;
  }

  /** The first element of a room's list that is (partly) on screen. */
  function firstInView(room) {
    const top = room.$pane[0].getBoundingClientRect().top;
    for (let el = room.$list[0].firstElementChild; el; el = el.nextElementSibling) {
      // Not a day separator: one may move when older messages come in.
      if (el.classList.contains('day')) continue;
      if (el.getBoundingClientRect().bottom > top) return el;
    }
    return null;
  }

  /** The element a message with this id goes before (null: at the end). */
  function insertionPoint(room, id) {
    const list = room.$list[0];
    // Walk back from the end, where live messages go, past my messages still
    // waiting to be sent (always last) and past newer messages. A gap marker
    // stands for the ids (after, before); a line or an archived message
    // (no id: an older era) is older than anything new.
    let after = list.lastElementChild;
    while (after) {
      if (after.classList.contains('outgoing') || after.classList.contains('day')) {
        after = after.previousElementSibling;
      } else if (after.classList.contains('gap')) {
        if (id >= Number(after.dataset.before)) break;
        after = after.previousElementSibling;
      } else if (after.dataset.id !== undefined && Number(after.dataset.id) > id) {
        after = after.previousElementSibling;
      } else {
        break;
      }
    }
    return after ? after.nextElementSibling : list.firstElementChild;
  }

  function updateEmpty(room) {
    room.$empty.prop('hidden', room.$list[0].childElementCount > 0);
  }

  function scrollToBottom(room) {
    const pane = room.$pane[0];
    pane.scrollTop = pane.scrollHeight;
    room.stuckToBottom = true;
  }

  function restoreScroll(room) {
    if (room.stuckToBottom) scrollToBottom(room);
    else room.$pane[0].scrollTop = room.savedTop || 0;
  }

  // -- notices ----------------------------------------------------------------

  function showNotice(text, code) {
    const $last = $notices.children().last();
    if ($last.length && $last.find('.notice-text').text() === text) {
      $last.remove(); // the same complaint again: show it once, freshly
    }
    const $notice = $('<div class="notice">')
      .attr('data-code', code || 'error')
      .append(
        $('<p class="notice-text">').text(text),
        $('<button type="button" class="notice-dismiss" aria-label="Dismiss">').append(
          $('<span aria-hidden="true">').text('×'),
        ),
      );
    $notices.append($notice);
    $notices.children().slice(0, -NOTICES_MAX).remove();
    setTimeout(() => $notice.remove(), NOTICE_MS);
  }

  function showFieldError($el, text) {
    $el.text(text || '').prop('hidden', !text);
    const $field = $(`#${$el.attr('id').replace('-error', '-input')}`);
    $field.attr('aria-invalid', text ? 'true' : null);
  }

  // -- user actions -----------------------------------------------------------

  function onNameSubmit(event) {
    event.preventDefault();
    const raw = String($('#name-input').val());
    let name = '';
    if (raw.trim()) {
      const checked = checkName(raw);
      if (checked.error) {
        showFieldError($('#name-error'), checked.error);
        $('#name-input').trigger('focus');
        return;
      }
      name = checked.name;
    }
    showFieldError($('#name-error'), null);
    enterChat(name);
  }

  /**
   * From the name screen, or at once on a later visit: show the rooms with
   * what this device kept of them, then connect and catch up.
   */
  function enterChat(name) {
    state.wantedName = name;
    store.set('chat.name', name);
    state.welcomes = 0;
    savedRooms().forEach((room) => ensureRoom(room));
    showCached(); // instant reopen: before the socket is even opened
    restoreOutbox(); // written during an outage, then the page was reloaded
    if (state.rooms.size) switchRoom(state.rooms.keys().next().value);
    $app.attr('data-screen', 'chat');
    $('#name-screen').prop('hidden', true);
    $('#chat').prop('hidden', false);
    // Now that they have a size: the composer's height, the pane's scroll.
    onComposerInput({ quiet: true });
    const room = state.rooms.get(state.active);
    if (room) restoreScroll(room);
    connect();
    $input.trigger('focus');
  }

  function onComposerInput(options) {
    const el = $input[0];
    // Grow with the text up to the CSS max-height (CSSOM, allowed by the CSP);
    // empty, one row (a long placeholder must not make it taller).
    $input.css('height', 'auto');
    if ($input.val()) $input.css('height', `${el.scrollHeight + 2}px`);
    renderComposer();
    if (options && options.quiet) return;
    if ($input.val()) startTyping();
    else stopTyping(true);
  }

  function onComposerKeydown(event) {
    const e = event.originalEvent || event;
    if (event.key === 'Enter' && !event.shiftKey && !e.isComposing && !event.altKey) {
      event.preventDefault();
      sendMessage();
    }
  }

  function openNickForm() {
    $('#nick-form').prop('hidden', false);
    $('#rename-button').attr('aria-expanded', 'true');
    showFieldError($('#nick-error'), null);
    $('#nick-input').val(state.me ? state.me.name : '').trigger('focus').trigger('select');
  }

  function closeNickForm() {
    $('#nick-form').prop('hidden', true);
    $('#rename-button').attr('aria-expanded', 'false');
    state.nickPending = false;
  }

  function onNickSubmit(event) {
    event.preventDefault();
    const checked = checkName(String($('#nick-input').val()));
    if (checked.error) {
      showFieldError($('#nick-error'), checked.error);
      return;
    }
    if (state.me && checked.name === state.me.name) {
      closeNickForm();
      return;
    }
    if (!send({ type: 'nick', name: checked.name })) {
      showFieldError($('#nick-error'), 'Not connected; try again in a moment.');
      return;
    }
    showFieldError($('#nick-error'), null);
    state.nickPending = true;
  }

  function onJoinSubmit(event) {
    event.preventDefault();
    const name = String($('#room-input').val()).trim();
    const error = checkRoom(name);
    if (error) {
      showFieldError($('#room-error'), error);
      return;
    }
    showFieldError($('#room-error'), null);
    if (state.rooms.has(name)) {
      $('#room-input').val('');
      switchRoom(name);
      return;
    }
    if (!send({ type: 'join', room: name })) {
      showFieldError($('#room-error'), 'Not connected; try again in a moment.');
      return;
    }
    state.pendingJoin = name;
  }

  function onLeaveClick() {
    const name = $(this).closest('.room').attr('data-room');
    // Disconnected: the server has forgotten us anyway, so forget the room here.
    if (!send({ type: 'leave', room: name })) removeRoom(name);
  }

  function toggleSidebar(open) {
    const show = typeof open === 'boolean' ? open : !$app.hasClass('sidebar-open');
    $app.toggleClass('sidebar-open', show);
    $('#sidebar-toggle').attr('aria-expanded', String(show));
  }

  function bindEvents() {
    $('#name-form').on('submit', onNameSubmit);
    $('#name-input').on('input', () => showFieldError($('#name-error'), null));
    $('#composer').on('submit', (event) => {
      event.preventDefault();
      sendMessage();
    });
    $input.on('input', () => onComposerInput());
    $input.on('keydown', onComposerKeydown);
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
    $rooms.on('click', '.room-select', function () {
      switchRoom($(this).closest('.room').attr('data-room'));
      toggleSidebar(false);
      if (!$input.prop('disabled')) $input.trigger('focus');
    });
    $rooms.on('click', '.room-leave', onLeaveClick);
    $('#sidebar-toggle').on('click', () => toggleSidebar());
    $('#sidebar').on('keydown', (event) => {
      if (event.key === 'Escape' && $app.hasClass('sidebar-open')) {
        toggleSidebar(false);
        $('#sidebar-toggle').trigger('focus');
      }
    });
    $notices.on('click', '.notice-dismiss', function () {
      $(this).closest('.notice').remove();
    });
    darkScheme.addEventListener('change', repaint);
    // The message area shrinks when a form opens or a phone keyboard shows:
    // a room read at its newest message should stay there.
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        const room = state.rooms.get(state.active);
        if (room && room.stuckToBottom) scrollToBottom(room);
      }).observe($messages[0]);
    }
    $('#reconnect-button').on('click', reconnectNow);
    $('#notify-toggle').on('change', onNotifyToggle);
    $('#no-cache-toggle').on('change', function () {
      setKeepMessages(!this.checked);
    });
    document.addEventListener('visibilitychange', onVisibilityChange);
    // The same choices in every tab of this browser.
    window.addEventListener('storage', (event) => {
      if (event.key === NO_CACHE_KEY) {
        state.keepMessages = event.newValue !== '1';
        $('#no-cache-toggle').prop('checked', !state.keepMessages);
      } else if (event.key === NOTIFY_KEY) {
        state.notify = event.newValue === '1';
        renderNotifyToggle();
      }
    });
    // The last second's messages too, and before the page goes for good.
    window.addEventListener('pagehide', () => {
      if (state.cacheTimer) saveCache();
    });
    // "Today" becomes "Yesterday" at midnight.
    let today = dayKey(Date.now());
    setInterval(() => {
      if (dayKey(Date.now()) === today) return;
      today = dayKey(Date.now());
      relabelDays();
    }, 60000);
    // The network is back: no need to wait for the next attempt.
    window.addEventListener('online', () => {
      if (conn.status === 'disconnected') connect();
    });
  }

  function init() {
    state.keepMessages = store.get(NO_CACHE_KEY) !== '1';
    $('#no-cache-toggle').prop('checked', !state.keepMessages);
    state.notify =
      store.get(NOTIFY_KEY) === '1' &&
      notificationsSupported() &&
      Notification.permission === 'granted';
    renderNotifyToggle();
    renderComposer();
    bindEvents();
    // Been here before (a name, or '' for a guest, was chosen): straight in.
    const saved = store.get('chat.name');
    if (saved !== null && (saved === '' || !checkName(saved).error)) {
      enterChat(saved);
      return;
    }
    $('#name-input').val(saved || '').trigger('focus');
  }

  init();
})(jQuery);
