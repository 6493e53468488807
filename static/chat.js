/*
 * The chat's browser client: one WebSocket speaking docs/protocol.md.
 *
 * Everything a user or a server wrote is put in the page with .text() or
 * .attr(), never parsed as HTML. No inline script or style is used, so the page
 * runs under "script-src 'self'; style-src 'self'".
 *
 * DOM hooks (stable for tests and styles):
 *   body[data-ws-path][data-max-text][data-version]  settings from the server
 *   #app[data-screen=name|chat][data-connection=idle|connecting|connected|disconnected]
 *   #name-form, #name-input, #name-error             the first screen
 *   #status[data-state], #reconnect-button           connection state
 *   #me, #me-name, #rename-button                    who I am
 *   #nick-form, #nick-input, #nick-error             changing my name
 *   #rooms > .room[data-room] (.active) > .room-select, .room-leave, .unread
 *   #join-room-form, #room-input, #room-error
 *   #room-title, #presence > .member[data-user-id] (.self), #presence-count
 *   #messages > .room-pane[data-room] > .message-list
 *       > .message[data-id][data-user-id] (.own) > .author, .text, time[datetime]
 *   #typing, #composer, #message-input, #char-count, #send-button
 *   #notices > .notice[data-code] > .notice-text, .notice-dismiss
 *   #sidebar-toggle (narrow screens only)
 */
(function ($) {
  'use strict';

  // -- settings ---------------------------------------------------------------

  const $body = $(document.body);
  const config = {
    wsPath: $body.attr('data-ws-path') || '/ws',
    maxText: parseInt($body.attr('data-max-text'), 10) || 2000,
  };
  const NAME_MAX = 24;
  const ROOM_MAX = 32;
  const DEFAULT_ROOM = 'lobby';
  const HISTORY_LIMIT = 50;
  const TYPING_REFRESH_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 30000;
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const NOTICE_MS = 12000;
  const NOTICES_MAX = 4;

  // -- storage (localStorage can be missing or refuse writes) -----------------

  const store = {
    get(key) {
      try {
        return window.localStorage.getItem(key);
      } catch (e) {
        return null;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(key, value);
      } catch (e) {
        /* private mode: remembering is best effort */
      }
    },
  };

  function randomHex(bytes) {
    const buf = new Uint8Array(bytes);
    window.crypto.getRandomValues(buf);
    return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The key makes every tab of this browser the same user; it is a secret the
  // server only ever shows as a derived id.
  function clientKey() {
    let key = store.get('chat.key');
    if (!/^[0-9a-f]{32}$/.test(key || '')) {
      key = randomHex(16);
      store.set('chat.key', key);
    }
    return key;
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
    pending: [], // sent messages awaiting their echo, oldest first: {clientId, room, text, $li}
    undelivered: [], // pending when the connection dropped: maybe replayed later
  };

  const conn = {
    ws: null,
    status: 'idle',
    retryMs: RETRY_MIN_MS,
    retryTimer: null,
    retryAt: 0,
  };

  const typing = { room: null, lastSent: 0, idleTimer: null };

  // -- elements ---------------------------------------------------------------

  const $app = $('#app');
  const $status = $('#status');
  const $messages = $('#messages');
  const $input = $('#message-input');
  const $rooms = $('#rooms');
  const $presence = $('#presence');
  const $typing = $('#typing');
  const $notices = $('#notices');

  // -- connection -------------------------------------------------------------

  function wsUrl() {
    const params = new URLSearchParams();
    if (state.wantedName) params.set('name', state.wantedName);
    params.set('room', state.active || state.rooms.keys().next().value || DEFAULT_ROOM);
    params.set('key', clientKey());
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}${config.wsPath}?${params}`;
  }

  function connect() {
    clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
    setStatus('connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    // Events of a socket that was replaced are stale: ignore them.
    ws.addEventListener('message', (event) => {
      if (ws === conn.ws) handleFrame(event.data);
    });
    ws.addEventListener('close', () => {
      if (ws !== conn.ws) return;
      conn.ws = null;
      onDisconnected();
    });
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
    stopTyping(false);
    // Maybe delivered, maybe not: the replay after reconnecting settles the
    // ones that landed; the others stay marked.
    state.pending.forEach((p) => {
      p.$li.removeClass('pending').addClass('failed').find('.delivery').text('Not delivered');
    });
    state.undelivered.push(...state.pending);
    state.pending = [];
    state.nickPending = false;
    state.pendingJoin = null;
    state.rooms.forEach((room) => {
      room.typing.clear();
      room.historyPending = false;
      room.probing = false;
    });
    renderActiveRoom();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    // Exponential backoff with jitter, so a restarted server is not hit by
    // every client in the same second.
    const delay = Math.round(conn.retryMs * (0.75 + Math.random() * 0.5));
    conn.retryMs = Math.min(RETRY_MAX_MS, conn.retryMs * 2);
    conn.retryAt = Date.now() + delay;
    conn.retryTimer = setTimeout(connect, delay);
    setStatus('disconnected');
  }

  // -- frames from the server -------------------------------------------------

  const handlers = {
    welcome: onWelcome,
    message: onMessage,
    presence: onPresence,
    typing: onTyping,
    history: onHistory,
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
    conn.retryMs = RETRY_MIN_MS;
    if (frame.limits && frame.limits.max_text > 0) config.maxText = frame.limits.max_text;
    setMe(frame.user);
    setStatus('connected');

    const joinedNow = new Set(frame.rooms || []);
    const wanted = state.rooms.size ? Array.from(state.rooms.keys()) : savedRooms();
    state.rooms.forEach((room) => {
      room.members.clear();
      room.count = 0;
      room.typing.clear();
    });
    joinedNow.forEach((name) => ensureRoom(name));
    wanted.forEach((name) => {
      const room = state.rooms.get(name);
      if (room && room.historyLoaded) {
        // Back after a drop: the server replays what we missed. The newest id
        // tells whether the server lost its history meanwhile (a restart).
        send({ type: 'join', room: name, since: room.lastId });
        if (send({ type: 'history', room: name, limit: 1 })) room.probing = true;
      } else if (!joinedNow.has(name)) {
        send({ type: 'join', room: name });
      }
    });
    if (!state.active || !state.rooms.has(state.active)) {
      switchRoom(frame.rooms && frame.rooms[0]);
    }
    renderActiveRoom();
  }

  function onMessage(msg) {
    const room = state.rooms.get(msg.room);
    if (!room || !msg.user) return;
    if (room.typing.delete(msg.user.id) && msg.room === state.active) renderTyping();
    const mine = isMe(msg.user);
    if (mine && msg.client_id) settlePending(msg.client_id);
    const added = addMessages(room, [msg], { live: true, mine });
    if (added && !mine && msg.room !== state.active) {
      room.unread += added;
      renderRoomItem(room);
      renderUnreadTotal();
    }
  }

  function onPresence(frame) {
    let room = state.rooms.get(frame.room);
    if (frame.event === 'snapshot') {
      room = ensureRoom(frame.room);
      room.members = new Map((frame.users || []).map((u) => [u.id, u]));
      if (state.pendingJoin === frame.room) {
        state.pendingJoin = null;
        $('#room-input').val('');
        showFieldError($('#room-error'), null);
        switchRoom(frame.room);
      }
      if (!state.active) switchRoom(frame.room);
      if (!room.historyLoaded && !room.historyPending) requestHistory(room);
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

  function onHistory(frame) {
    const room = state.rooms.get(frame.room);
    if (!room) return;
    if (room.probing) {
      room.probing = false;
      const newest = (frame.messages || []).reduce((top, m) => Math.max(top, m.id), 0);
      if (newest < room.lastId) {
        startNewEpoch(room);
        requestHistory(room);
      }
      return;
    }
    const first = !room.historyLoaded;
    room.historyLoaded = true;
    room.historyPending = false;
    room.hasMore = Boolean(frame.more);
    addMessages(room, frame.messages || [], { live: false });
    room.$older.prop('hidden', !room.hasMore).prop('disabled', false);
    if (first) scrollToBottom(room);
  }

  // Ids restarted from 1: what is shown stays, above a line, and ids are
  // tracked afresh so new messages are not taken for ones already shown.
  function startNewEpoch(room) {
    room.$list.children('.message[data-id]').removeAttr('data-id').addClass('archived');
    room.$list.append(
      $('<li class="divider" role="separator">').append(
        $('<span>').text('The server restarted; earlier messages are no longer stored'),
      ),
    );
    room.ids.clear();
    room.lastId = 0;
    room.oldestId = 0;
    room.hasMore = false;
    room.historyLoaded = false;
    room.$older.prop('hidden', true);
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
    if (frame.ref === 'history') {
      state.rooms.forEach((room) => {
        room.historyPending = false;
        room.probing = false;
      });
    }
    // Frames are answered in order, so a refusal is for the oldest message
    // still pending; its text goes back to the composer rather than being lost.
    if (frame.ref === 'message' && state.pending.length) {
      const refused = state.pending.shift();
      dropPending(refused);
      if (refused.room === state.active && !$input.val()) {
        $input.val(refused.text);
        onComposerInput({ quiet: true });
      }
    }
    showNotice(text, frame.code);
  }

  // -- commands to the server -------------------------------------------------

  function requestHistory(room, before) {
    const frame = { type: 'history', room: room.name, limit: HISTORY_LIMIT };
    if (before) frame.before = before;
    if (send(frame)) room.historyPending = true;
  }

  function sendMessage() {
    const text = $input.val();
    if (!text.trim() || !state.active || !isConnected()) return;
    if (length(text) > config.maxText) {
      showNotice(`The message is longer than ${config.maxText} characters.`, 'too_large');
      return;
    }
    const clientId = randomHex(8);
    if (!send({ type: 'message', room: state.active, text, client_id: clientId })) return;
    showPending(state.rooms.get(state.active), text, clientId);
    stopTyping(false); // the server clears the indicator when the message lands
    $input.val('');
    onComposerInput({ quiet: true });
  }

  // Shown at once, greyed, until the server's echo (same client_id) replaces it.
  function showPending(room, text, clientId) {
    const $li = buildMessage({ user: state.me, text, ts: Date.now() })
      .addClass('pending')
      .attr('data-client-id', clientId);
    $li.find('.meta').append($('<span class="delivery">').text('Sending…'));
    room.$list.append($li);
    regroup($li[0]);
    updateEmpty(room);
    scrollToBottom(room);
    state.pending.push({ clientId, room: room.name, text, $li });
  }

  function settlePending(clientId) {
    [state.pending, state.undelivered].forEach((list) => {
      const i = list.findIndex((p) => p.clientId === clientId);
      if (i >= 0) dropPending(list.splice(i, 1)[0]);
    });
  }

  function dropPending(pending) {
    const next = pending.$li[0].nextElementSibling;
    pending.$li.remove();
    regroup(next);
    const room = state.rooms.get(pending.room);
    if (room) updateEmpty(room);
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
      historyLoaded: false,
      historyPending: false,
      probing: false, // a history request checking the ids after a reconnect
      hasMore: false,
      stuckToBottom: true,
      savedTop: 0,
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
    state.pending = state.pending.filter((p) => p.room !== name);
    state.undelivered = state.undelivered.filter((p) => p.room !== name);
    saveRooms();
    if (state.active === name) {
      state.active = null;
      switchRoom(state.rooms.keys().next().value);
    }
    renderUnreadTotal();
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
  // just enough to reach 4.5:1 on the message backgrounds; the hue is kept.
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
    const backgrounds = [cssColor('--surface'), cssColor('--own')].filter(Boolean);
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
    return Boolean(state.me && user && user.id === state.me.id);
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
    // Written once, not counted down: a live region must not chatter.
    const seconds = Math.max(1, Math.round((conn.retryAt - Date.now()) / 1000));
    const text = {
      idle: 'Not connected',
      connecting: 'Connecting…',
      connected: 'Connected',
      disconnected: `Disconnected. Trying again in ${seconds} s.`,
    }[status];
    $status.attr('data-state', status).text(text);
    $app.attr('data-connection', status);
    $('#reconnect-button').prop('hidden', status !== 'disconnected');
    renderComposer();
  }

  function setMe(user) {
    state.me = user;
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
    const where = state.active ? `#${state.active} · ` : '';
    document.title = `${total ? `(${total}) ` : ''}${where}Chat`;
  }

  function buildRoomPane(room) {
    room.$older = $('<button type="button" class="button button-quiet button-sm load-older">')
      .prop('hidden', true)
      .text('Load older messages');
    room.$empty = $('<p class="room-empty">').text(`No messages in #${room.name} yet. Say hello!`);
    room.$list = $('<ul class="message-list">');
    room.$pane = $('<div class="room-pane">')
      .attr('data-room', room.name)
      .prop('hidden', true)
      .append($('<div class="pane-top">').append(room.$older), room.$empty, room.$list);
    room.$pane.on('scroll', () => {
      const el = room.$pane[0];
      if (el.hidden) return;
      room.stuckToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    });
    room.$older.on('click', () => {
      if (room.historyPending || !room.oldestId) return;
      room.$older.prop('disabled', true);
      requestHistory(room, room.oldestId);
    });
    $messages.append(room.$pane);
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
    renderComposer();
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

  function renderComposer() {
    const usable = isConnected() && Boolean(state.active);
    const text = $input.val() || '';
    const size = length(text);
    const over = size > config.maxText;
    $input.prop('disabled', !usable);
    $input.attr(
      'placeholder',
      !isConnected()
        ? 'Waiting for the connection…'
        : state.active
          ? `Message #${state.active}`
          : 'Join a room to write',
    );
    $('#send-button').prop('disabled', !usable || over || !text.trim());
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

  // Plain text with http(s) links made clickable, built node by node.
  function appendText($el, text) {
    const link = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;
    let last = 0;
    let match;
    while ((match = link.exec(text)) !== null) {
      if (match.index > last) $el.append(document.createTextNode(text.slice(last, match.index)));
      $el.append(
        $('<a target="_blank" rel="noopener noreferrer nofollow">')
          .attr('href', match[0])
          .text(match[0]),
      );
      last = match.index + match[0].length;
    }
    if (last < text.length) $el.append(document.createTextNode(text.slice(last)));
  }

  function buildMessage(msg) {
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
    if (isMe(user)) {
      $li.addClass('own');
      $meta.append($('<span class="you-badge">').text('you'));
    }
    $meta.append($time);
    const $text = $('<div class="text">');
    appendText($text, String(msg.text));
    return $li.append(avatar(user), $('<div class="body">').append($meta, $text));
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

  /** Insert messages in id order, skipping ones already shown; returns how many. */
  function addMessages(room, msgs, options) {
    const pane = room.$pane[0];
    const visible = room.name === state.active;
    const heightBefore = pane.scrollHeight;
    const topBefore = pane.scrollTop;
    const list = room.$list[0];
    let added = 0;
    let insertedAbove = false;
    msgs.forEach((msg) => {
      if (!msg || typeof msg.id !== 'number' || !msg.user || room.ids.has(msg.id)) return;
      room.ids.add(msg.id);
      const el = buildMessage(msg)[0];
      const next = insertionPoint(room, msg.id);
      list.insertBefore(el, next);
      if (next) insertedAbove = true;
      regroup(el);
      regroup(el.nextElementSibling);
      room.lastId = Math.max(room.lastId, msg.id);
      room.oldestId = room.oldestId ? Math.min(room.oldestId, msg.id) : msg.id;
      added += 1;
    });
    updateEmpty(room);
    if (!added) return 0;
    if (visible && (room.stuckToBottom || (options.live && options.mine))) {
      scrollToBottom(room);
    } else if (visible && insertedAbove) {
      pane.scrollTop = topBefore + (pane.scrollHeight - heightBefore);
    }
    return added;
  }

  /** The element a message with this id goes before (null: at the end). */
  function insertionPoint(room, id) {
    const list = room.$list[0];
    if (room.oldestId && id < room.oldestId) {
      // A page of older history: first, below the restart line if there is one.
      const divider = room.$list.children('.divider').last()[0];
      return divider ? divider.nextElementSibling : list.firstElementChild;
    }
    // Walk back from the end, where live messages go, past the ones still
    // sending; an element without an id (a line, an undelivered message) is
    // older than anything new.
    let after = list.lastElementChild;
    while (after && (after.classList.contains('pending') || Number(after.dataset.id) > id)) {
      after = after.previousElementSibling;
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
    state.wantedName = name;
    store.set('chat.name', name);
    savedRooms().forEach((room) => ensureRoom(room));
    if (state.rooms.size) switchRoom(state.rooms.keys().next().value);
    $app.attr('data-screen', 'chat');
    $('#name-screen').prop('hidden', true);
    $('#chat').prop('hidden', false);
    connect();
    $input.trigger('focus');
  }

  function onComposerInput(options) {
    const el = $input[0];
    // Grow with the text up to the CSS max-height (CSSOM, allowed by the CSP).
    $input.css('height', 'auto');
    $input.css('height', `${el.scrollHeight + 2}px`);
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
    $('#reconnect-button').on('click', () => {
      conn.retryMs = RETRY_MIN_MS;
      connect();
    });
  }

  function init() {
    $('#name-input').val(store.get('chat.name') || '').trigger('focus');
    renderComposer();
    bindEvents();
  }

  init();
})(jQuery);
