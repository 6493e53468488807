/**
 * Everything the page shows, built with jQuery: rooms, messages, day
 * separators, presence, the composer, the banner, notices and what screen
 * readers are told. What users or the server wrote goes in with .text() or
 * .attr(), never as HTML. Reads the shared state; changes only the DOM (and
 * the rooms' scroll bookkeeping).
 */

import { attachmentNode } from './attach.js';
import { hasMore, shown, smallRoom, typistsText } from './members.js';
import { contrast, inkFor, initial, readableColor, rgb, safeColor } from './colours.js';
import { continuesBlock, dayKey, dayLabel } from './days.js';
import { dmTitle, isDmRoom } from './dm.js';
import { mentionPattern, tokenize } from './links.js';
import { unreadLabel } from './reads.js';
import { codePoints } from './validation.js';

const $ = window.jQuery;

const ANNOUNCE_KEEP = 5; // announcements left in the live region
const ANNOUNCE_MAX_CHARS = 200;
const ANNOUNCE_BURST = 3; // more at once: announced as a count
const NOTICE_MS = 12000;
const NOTICES_MAX = 4;
const GAP_TEXT = 'Some messages are missing here — load older';

/** `text` cut to the length read out or notified, with an ellipsis. */
export function excerpt(text, max = ANNOUNCE_MAX_CHARS) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A server message as a sentence: capitalised, with a full stop. */
export function sentence(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?)]$/.test(s) ? '' : '.');
}

export class View {
  constructor(app) {
    this.app = app;
    this.$app = $('#app');
    this.$status = $('#status');
    this.$banner = $('#reconnect-banner');
    this.$messages = $('#messages');
    this.$input = $('#message-input');
    this.$rooms = $('#rooms');
    this.$presence = $('#presence');
    this.$typing = $('#typing');
    this.$notices = $('#notices');
    this.darkScheme = window.matchMedia('(prefers-color-scheme: dark)');
    this.readableCache = new Map();
    this.mention = { name: null, re: null };
    this.announcing = { queue: [], timer: null };
    this.slowTimer = null;
  }

  get session() {
    return this.app.session;
  }

  activeRoom() {
    return this.session.rooms.get(this.session.active);
  }

  /** How a room is called: "#lobby", or a conversation's people ("Ann, Ben"). */
  roomLabel(room) {
    if (!room) return '';
    if (!isDmRoom(room.name)) return `#${room.name}`;
    return dmTitle(room.dmMembers, this.session.me && this.session.me.id);
  }

  labelOf(name) {
    return this.roomLabel(this.session.rooms.get(name)) || `#${name}`;
  }

  isConnected() {
    return this.app.link.status === 'connected';
  }

  isMe(user) {
    // Before the first welcome, who I was when the messages were kept.
    const me = this.session.me || this.session.cachedMe;
    return Boolean(me && user && user.id === me.id);
  }

  /** My display name now, or the one asked for before the first welcome. */
  myName() {
    const { me, wantedName } = this.session;
    return me ? me.name : wantedName || '';
  }

  /** Me as a message author, also before the first welcome (a reload offline). */
  meForDisplay() {
    return this.session.me || { id: '', name: this.session.wantedName || 'You', color: '' };
  }

  // -- colours --------------------------------------------------------------

  cssColor(name) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return safeColor(value) ? rgb(value) : null;
  }

  // Some colours of the server's palette are too faint on one of our themes,
  // so a name's colour is nudged just enough to reach 4.5:1 on the message
  // backgrounds (plain, own and mentioning me); the hue is kept.
  readable(color) {
    const hex = safeColor(color);
    if (!hex) return '';
    const key = `${hex}/${this.darkScheme.matches}`;
    if (!this.readableCache.has(key)) {
      const backgrounds = ['--surface', '--own', '--mention']
        .map((name) => this.cssColor(name))
        .filter(Boolean);
      const fallback = this.darkScheme.matches ? [255, 255, 255] : [0, 0, 0];
      const toward = this.cssColor('--text') || fallback;
      this.readableCache.set(key, readableColor(hex, backgrounds, toward));
    }
    return this.readableCache.get(key);
  }

  /** Colour an element's text with a user's colour, kept readable. */
  paintText($el, color) {
    return $el.attr('data-color', safeColor(color)).css('color', this.readable(color));
  }

  repaint() {
    const view = this;
    $('[data-color]').each(function () {
      $(this).css('color', view.readable($(this).attr('data-color')));
    });
  }

  avatar(user, extraClass) {
    const $el = $('<span>')
      .addClass('avatar')
      .addClass(extraClass || '')
      .attr('aria-hidden', 'true');
    return this.paintAvatar($el, user);
  }

  paintAvatar($el, user) {
    const hex = safeColor(user.color);
    return $el.text(initial(user.name)).css({ 'background-color': hex, color: inkFor(hex) });
  }

  // -- connection and who I am ---------------------------------------------

  renderStatus() {
    const link = this.app.link;
    const { status } = link;
    // The live region says only what changed for good: not every attempt of
    // a retry loop, and never the countdown (that is in the banner).
    let text = 'Connecting…';
    if (status === 'connected') text = 'Connected';
    else if (status === 'idle') text = 'Not connected';
    else if (link.everConnected || link.attempt > 0) text = 'Disconnected';
    if (this.$status.text() !== text) this.$status.text(text);
    this.$status.attr('data-state', status);
    this.$app.attr('data-connection', status);
  }

  /** The reconnect banner; returns whether it is shown. */
  renderBanner() {
    const link = this.app.link;
    const show =
      this.$app.attr('data-screen') === 'chat' &&
      !this.isConnected() &&
      (link.everConnected || link.attempt > 0);
    this.$banner.prop('hidden', !show);
    if (!show) return false;
    if (link.ended === 'banned') {
      $('#reconnect-title').text('You are banned from this chat.');
      $('#reconnect-countdown').text('Ask an admin if you think this is a mistake.');
    } else {
      $('#reconnect-title').text(
        link.everConnected ? 'Connection lost.' : 'Cannot reach the chat server.',
      );
      const seconds = Math.ceil((link.retryAt - Date.now()) / 1000);
      $('#reconnect-countdown').text(
        link.status === 'disconnected' && seconds > 0
          ? `Reconnecting in ${seconds} s.`
          : 'Reconnecting…',
      );
    }
    const waiting = this.session.outbox.filter((e) => e.status !== 'failed').length;
    $('#outbox-count')
      .prop('hidden', !waiting)
      .text(
        waiting === 1
          ? '1 message will be sent when the connection is back.'
          : `${waiting} messages will be sent when the connection is back.`,
      );
    return true;
  }

  renderMe(user) {
    $('#me').prop('hidden', false);
    this.paintText($('#me-name').text(user.name), user.color);
    this.paintAvatar($('#me-avatar'), user);
  }

  showChatScreen() {
    this.$app.attr('data-screen', 'chat');
    $('#name-screen').prop('hidden', true);
    $('#chat').prop('hidden', false);
  }

  // -- screen readers, the title, notices ----------------------------------

  /** Say something to screen readers without showing it. */
  announce(text) {
    const $announcer = $('#announcer');
    $announcer.text('');
    setTimeout(() => $announcer.text(text), 50);
  }

  /**
   * Read a new message out: appended to a polite live region, oldest dropped.
   * A burst (a replay after a reconnect) is said as one count instead.
   */
  announceMessage(text) {
    const announcing = this.announcing;
    announcing.queue.push(text);
    if (announcing.timer) return;
    announcing.timer = setTimeout(() => {
      const queue = announcing.queue;
      announcing.queue = [];
      announcing.timer = null;
      const $region = $('#message-announcer');
      const lines = queue.length > ANNOUNCE_BURST ? [`${queue.length} new messages.`] : queue;
      lines.forEach((line) => $region.append($('<p>').text(excerpt(line))));
      $region.children().slice(0, -ANNOUNCE_KEEP).remove();
    }, 300);
  }

  renderTitle() {
    const { active, hiddenUnread } = this.session;
    const where = active ? `${this.labelOf(active)} · ` : '';
    document.title = `${hiddenUnread ? `(${hiddenUnread}) ` : ''}${where}Chat`;
  }

  /** Messages held back to the server's pace, said in words (0: nothing held). */
  renderSendPace(waiting, rate) {
    const $pace = $('#send-pace');
    if (!waiting) {
      $pace.prop('hidden', true).text('');
      return;
    }
    const what = waiting === 1 ? '1 message waits' : `${waiting} messages wait`;
    $pace.text(`Sending slowly: ${what}; the server allows ${rate} a second.`);
    $pace.prop('hidden', false);
  }

  showNotice(text, code) {
    const $last = this.$notices.children().last();
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
    this.$notices.append($notice);
    this.$notices.children().slice(0, -NOTICES_MAX).remove();
    setTimeout(() => $notice.remove(), NOTICE_MS);
  }

  /** The error under a form field (#x-error for #x-input); null clears it. */
  showFieldError($el, text) {
    $el.text(text || '').prop('hidden', !text);
    const $field = $(`#${$el.attr('id').replace('-error', '-input')}`);
    $field.attr('aria-invalid', text ? 'true' : null);
  }

  renderNotifyToggle(help) {
    $('#notify-toggle').prop('checked', this.session.notify);
    $('#notify-help').text(
      help || 'When someone writes @ and your name while this tab is in the background.',
    );
  }

  renderKeepMessages() {
    $('#no-cache-toggle').prop('checked', !this.session.keepMessages);
  }

  focusComposer() {
    if (!this.$input.prop('disabled')) this.$input.trigger('focus');
  }

  /** The composer became usable while nothing had the focus: take it. */
  focusComposerIfIdle() {
    const el = document.activeElement;
    if (!el || el === document.body) this.focusComposer();
  }

  // -- rooms ------------------------------------------------------------------

  buildRoomItem(room) {
    const $select = $('<button type="button" class="room-select">')
      .append($('<span class="room-hash" aria-hidden="true">').text('#'))
      .append($('<span class="room-name">').text(room.name))
      .append(
        $('<span class="room-lock" hidden>').append(
          $('<span aria-hidden="true">').text('🔒'),
          $('<span class="visually-hidden">').text(' (private)'),
        ),
      )
      .append($('<span class="unread badge" hidden>'));
    const $leave = $('<button type="button" class="room-leave">')
      .attr('aria-label', `Leave #${room.name}`)
      .attr('title', `Leave #${room.name}`)
      .append($('<span aria-hidden="true">').text('×'));
    room.$item = $('<li class="room">').attr('data-room', room.name).append($select, $leave);
    if (isDmRoom(room.name)) {
      // Direct messages have a section of their own (#dms), titled by people.
      room.$item.addClass('dm');
      $select.find('.room-hash').remove();
      $('#dms').append(room.$item);
      $('#dm-panel').prop('hidden', false);
    } else {
      this.$rooms.append(room.$item);
    }
  }

  renderRoomItem(room) {
    const dm = isDmRoom(room.name);
    if (dm) {
      const label = this.roomLabel(room);
      room.$item.find('.room-name').text(label);
      room.$item
        .find('.room-leave')
        .attr('aria-label', `Close the conversation with ${label}`)
        .attr('title', `Close the conversation with ${label}`);
      room.$empty.text(`No messages with ${label} yet. Say hello!`);
    }
    room.$item.toggleClass('private', Boolean(room.private) && !dm);
    room.$item.find('.room-lock').prop('hidden', !room.private || dm);
    room.$item
      .find('.unread')
      .prop('hidden', room.unread === 0)
      .empty()
      .append(
        document.createTextNode(unreadLabel(room.unread, room.unreadMore)),
        $('<span class="visually-hidden">').text(' unread'),
      );
  }

  renderUnreadTotal() {
    let total = 0;
    this.session.rooms.forEach((room) => {
      total += room.unread;
    });
    $('#sidebar-toggle-unread')
      .prop('hidden', total === 0)
      .text(`${total} unread`);
    this.renderTitle();
  }

  buildRoomPane(room) {
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
    this.$messages.append(room.$pane);
  }

  /** Show `room` (or none) as the active one; the others are hidden. */
  showRoom(room) {
    this.session.rooms.forEach((r) => {
      const active = r === room;
      r.$pane.prop('hidden', !active);
      r.$item.toggleClass('active', active);
      r.$item.find('.room-select').attr('aria-current', active ? 'true' : null);
    });
  }

  /** The "load older" button; `loading` while a page is asked for. */
  renderOlder(room, loading) {
    const hadFocus = room.$older[0] === document.activeElement;
    // A button that is busy stays focusable (aria-disabled, not disabled), so
    // a keyboard user does not lose their place.
    room.$older
      .prop('hidden', !room.hasMore)
      .attr('aria-disabled', loading ? 'true' : null)
      .text(loading ? 'Loading older messages…' : 'Load older messages');
    if (hadFocus && !room.hasMore) room.$pane[0].focus({ preventScroll: true });
  }

  renderActiveRoom() {
    const room = this.activeRoom();
    $('#no-room').prop('hidden', Boolean(room));
    const dm = Boolean(room && isDmRoom(room.name));
    const lock = room && room.private && !dm ? '🔒 ' : '';
    $('#room-title').text(room ? `${lock}${this.roomLabel(room)}` : 'No room');
    $('#add-people-form').prop('hidden', !(room && room.private) || dm);
    const count = room ? room.count : 0;
    $('#room-meta').text(room ? `${count} ${count === 1 ? 'person' : 'people'} here` : '');
    $('#presence-count').text(String(count));
    $('#sidebar-toggle-label').text(
      room ? `${this.roomLabel(room)} · ${count} here` : 'Rooms and people',
    );
    $('#message-label').text(room ? `Message ${this.roomLabel(room)}` : 'Message');
    this.renderPresence(room);
    if (this.onRoomRendered) this.onRoomRendered(room);
    this.renderTyping();
    this.renderSlowMode();
    this.renderUnreadTotal();
  }

  renderPresence(room) {
    const paging = room ? room.paging : smallRoom();
    const users = room ? shown(paging, room.members) : [];
    // A big room is listed in pages, with a search (members.js).
    $('#member-search').prop('hidden', !paging.big);
    $('#members-more').prop('hidden', !hasMore(paging));
    this.$presence.empty().append(
      users.map((user) => {
        const $li = $('<li class="member">')
          .attr('data-user-id', user.id)
          .append(this.avatar(user, 'avatar-sm'), $('<span class="member-name">').text(user.name));
        if (this.isMe(user)) {
          $li.addClass('self').append($('<span class="you-badge">').text('you'));
        }
        if (this.decorateMember) this.decorateMember($li, user, room); // moderation_ui.js
        return $li;
      }),
    );
  }

  renderTyping() {
    const room = this.activeRoom();
    const names = room ? Array.from(room.typing.values(), (u) => u.name) : [];
    let text = room && room.paging.big ? typistsText(room.paging.typists) : '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = 'several people are typing…';
    this.$typing.text(text).toggleClass('active', Boolean(text));
  }

  /** Whole seconds until slow mode lets me post in `room` again (0: now). */
  slowModeWait(room) {
    if (!room || !room.slowMode) return 0;
    return Math.max(0, Math.ceil((room.slowUntil - Date.now()) / 1000));
  }

  /** The slow-mode line under the composer, ticking while there is a wait. */
  renderSlowMode() {
    const room = this.activeRoom();
    const wait = this.slowModeWait(room);
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
    this.renderComposer();
    if (wait > 0 && !this.slowTimer) {
      this.slowTimer = setInterval(() => {
        if (!this.slowModeWait(this.activeRoom())) {
          clearInterval(this.slowTimer);
          this.slowTimer = null;
        }
        this.renderSlowMode();
      }, 250);
    }
  }

  renderComposer() {
    const { config, session } = this.app;
    const $input = this.$input;
    // Usable offline too: what is written then waits in the outbox.
    const usable = Boolean(session.active);
    const text = $input.val() || '';
    const size = codePoints(text);
    const over = size > config.maxText;
    const wait = this.slowModeWait(this.activeRoom());
    const $send = $('#send-button');
    if (wait > 0) {
      $send.text(`${wait} s`).attr('aria-label', `Send: wait ${wait} s (slow mode)`);
    } else if ($send.attr('aria-label')) {
      $send.text('Send').removeAttr('aria-label');
    }
    $input.prop('disabled', !usable);
    let placeholder = 'Join a room to write';
    if (session.active) {
      placeholder = this.isConnected()
        ? `Message ${this.labelOf(session.active)}`
        : `Message ${this.labelOf(session.active)} (sent when the connection is back)`;
    } else if (!this.isConnected()) {
      placeholder = 'Waiting for the connection…';
    }
    $input.attr('placeholder', placeholder);
    $send.prop('disabled', !usable || over || !text.trim() || wait > 0);
    $('#char-count')
      .text(`${size} / ${config.maxText}`)
      .toggleClass('near', size > config.maxText * 0.9 && !over)
      .toggleClass('over', over);
  }

  /** Grow the composer with its text, up to the CSS max-height. */
  fitComposer() {
    const $input = this.$input;
    // CSSOM, allowed by the CSP; empty, one row (a long placeholder must not
    // make it taller).
    $input.css('height', 'auto');
    if ($input.val()) $input.css('height', `${$input[0].scrollHeight + 2}px`);
    this.renderComposer();
  }

  // -- messages -------------------------------------------------------------

  mentionRe() {
    const name = this.myName();
    if (this.mention.name !== name) this.mention = { name, re: mentionPattern(name) };
    return this.mention.re;
  }

  /**
   * Put a message's text in $el: text nodes, <a> for http(s) links and
   * <mark> for mentions of me (unless `own`). Returns whether I am mentioned.
   */
  renderText($el, text, own) {
    let mentioned = false;
    $el.empty();
    for (const token of tokenize(text, own ? null : this.mentionRe())) {
      if (token.href) {
        $el.append(
          $('<a target="_blank" rel="noopener noreferrer nofollow">')
            .attr('href', token.href)
            .text(token.text),
        );
      } else if (token.mention) {
        $el.append($('<mark class="mention-me">').text(token.text));
        mentioned = true;
      } else {
        $el.append(document.createTextNode(token.text));
      }
    }
    return mentioned;
  }

  /** My name changed: mark the mentions of the new one instead. */
  remarkMentions() {
    const view = this;
    this.$messages.find('.message').each(function () {
      const $li = $(this);
      if ($li.hasClass('own') || $li.hasClass('deleted')) return;
      const $text = $li.find('.text');
      view.setMentioned($li, view.renderText($text, $text.text(), false));
    });
  }

  setMentioned($li, mentioned) {
    $li.toggleClass('mention', mentioned);
    const $badge = $li.find('.mention-badge');
    if (mentioned && !$badge.length) {
      $li.find('.meta time').before($('<span class="mention-badge">').text('mentions you'));
    } else if (!mentioned) {
      $badge.remove();
    }
  }

  buildMessage(msg, own) {
    const user = msg.user;
    const date = new Date(msg.ts);
    const hh = String(date.getHours()).padStart(2, '0');
    const mm = String(date.getMinutes()).padStart(2, '0');
    const $time = $('<time>')
      .attr('datetime', date.toISOString())
      .attr('title', date.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'medium' }))
      .text(`${hh}:${mm}`);
    const $meta = $('<div class="meta">').append(
      this.paintText($('<span class="author">').text(user.name), user.color),
    );
    const $li = $('<li class="message">')
      .attr('data-id', msg.id === undefined ? null : msg.id)
      .attr('data-user-id', user.id)
      .attr('data-author', user.name)
      .attr('data-ts', msg.ts);
    if (own || this.isMe(user)) {
      $li.addClass('own');
      $meta.append($('<span class="you-badge">').text('you'));
    }
    $meta.append($time);
    const $text = $('<div class="text">');
    const mentioned = this.renderText($text, String(msg.text), $li.hasClass('own'));
    const $body = $('<div class="body">').append($meta, $text);
    if (msg.attachment && !msg.deleted) $body.append(attachmentNode(msg.attachment));
    $li.append(this.avatar(user), $body);
    this.setMentioned($li, mentioned);
    if (this.onBuilt) this.onBuilt($li, msg); // edits and deletes (editor.js)
    return $li;
  }

  /** My message, shown at once, greyed until the server has it. */
  buildOutgoing(entry) {
    const mine = { user: this.meForDisplay(), text: entry.text, ts: entry.ts, attachment: entry.attachment };
    const $li = this.buildMessage(mine, true)
      .addClass('outgoing')
      .attr('data-client-id', entry.clientId);
    $li.find('.meta').append($('<span class="delivery">'));
    entry.$li = $li;
    this.renderEntry(entry);
    return $li;
  }

  /** An outgoing message's delivery state: sending, or failed with retry/discard. */
  renderEntry(entry) {
    if (!entry.$li) return;
    const failed = entry.status === 'failed';
    const hadFocus = !failed && entry.$li[0].contains(document.activeElement);
    entry.$li.toggleClass('pending', !failed).toggleClass('failed', failed);
    const $delivery = entry.$li.find('.delivery').empty();
    if (!failed) {
      $delivery.text('Sending…');
      if (hadFocus) this.focusComposer();
      return;
    }
    const short = excerpt(entry.text, 40);
    $delivery.append(
      $('<span class="delivery-text">').text('Not sent'),
      $('<button type="button" class="link-button retry-button">')
        .attr('aria-label', `Retry sending “${short}”`)
        .text('Retry'),
      $('<button type="button" class="link-button discard-button">')
        .attr('aria-label', `Discard “${short}”`)
        .text('Discard'),
    );
  }

  /** An outgoing message's element goes (sent, or discarded). */
  removeEntryElement(entry) {
    if (!entry.$li) return;
    const el = entry.$li[0];
    const next = el.nextElementSibling;
    const hadFocus = el.contains(document.activeElement);
    entry.$li.remove();
    entry.$li = null;
    this.regroup(next);
    const room = this.session.rooms.get(entry.room);
    if (room) {
      this.renderDays(room);
      this.updateEmpty(room);
    }
    if (hadFocus) this.focusComposer();
  }

  // Consecutive messages of one author are shown as one block.
  regroup(el) {
    if (!el) return;
    const prev = el.previousElementSibling;
    const of = (e) => ({ userId: e.dataset.userId, author: e.dataset.author, ts: Number(e.dataset.ts) });
    el.classList.toggle('continued', Boolean(prev) && continuesBlock(of(prev), of(el)));
  }

  daySeparator(key) {
    // A heading: screen readers can jump from day to day.
    const $li = $('<li class="day">').attr('data-day', key);
    return $li.append($('<h3 class="day-label">').text(dayLabel(key, Date.now())))[0];
  }

  /**
   * Put a separator before the first message of each local day, wherever
   * messages were added (live, a page of older ones, a filled gap), drop the
   * ones that no longer start a day, and regroup what they divide.
   */
  renderDays(room) {
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
          if (!separator) list.insertBefore(this.daySeparator(day), el);
        } else if (separator) {
          separator.remove();
        }
        separator = null;
        previousDay = day;
        this.regroup(el);
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
  relabelDays() {
    const now = Date.now();
    this.$messages.find('.day').each(function () {
      $(this).find('.day-label').text(dayLabel(this.dataset.day, now));
    });
  }

  /**
   * Where the reader is, before messages are added: following the newest
   * (they stay at the bottom), or looking at `anchor` (else the first
   * element in view), which is to stay put on screen.
   */
  readingPlace(room, follow, anchor) {
    const visible = room.name === this.session.active && !room.$pane[0].hidden;
    const keep = visible && !follow ? anchor || this.firstInView(room) : null;
    // The bottom edge: the anchor's own header may go when it joins a group.
    return { visible, follow, keep, keepAt: keep ? keep.getBoundingClientRect().bottom : 0 };
  }

  /** Insert the elements of new messages (already filtered), each by its id. */
  insertMessages(room, msgs, place) {
    const list = room.$list[0];
    msgs.forEach((msg) => {
      const el = this.buildMessage(msg)[0];
      list.insertBefore(el, this.insertionPoint(room, msg.id));
      this.regroup(el);
      this.regroup(el.nextElementSibling);
    });
    if (msgs.length) this.renderDays(room);
    this.updateEmpty(room);
    if (!msgs.length || !place.visible) return;
    if (place.follow) this.scrollToBottom(room);
    else if (place.keep && place.keep.isConnected) {
      room.$pane[0].scrollTop += place.keep.getBoundingClientRect().bottom - place.keepAt;
    }
  }

  /** Whether the message with this id mentions me. */
  mentionsMe(room, id) {
    return room.$list.find(`.message[data-id="${id}"]`).hasClass('mention');
  }

  appendOutgoing(room, $li) {
    room.$list.append($li);
    this.renderDays(room);
    this.updateEmpty(room);
    if (room.name === this.session.active) this.scrollToBottom(room);
  }

  /** The first element of a room's list that is (partly) on screen. */
  firstInView(room) {
    const top = room.$pane[0].getBoundingClientRect().top;
    for (let el = room.$list[0].firstElementChild; el; el = el.nextElementSibling) {
      // Not a day separator: one may move when older messages come in.
      if (el.classList.contains('day')) continue;
      if (el.getBoundingClientRect().bottom > top) return el;
    }
    return null;
  }

  /** The element a message with this id goes before (null: at the end). */
  insertionPoint(room, id) {
    const list = room.$list[0];
    // Walk back from the end, where live messages go, past my messages still
    // waiting to be sent (always last) and past newer messages. A gap marker
    // stands for the ids (after, before); a line or an archived message
    // (no id: an older era) is older than anything new.
    let after = list.lastElementChild;
    while (after) {
      if (
        after.classList.contains('outgoing') ||
        after.classList.contains('day') ||
        after.classList.contains('new-messages')
      ) {
        after = after.previousElementSibling;
      } else if (after.classList.contains('gap')) {
        if (id >= Number(after.dataset.before)) break;
        after = after.previousElementSibling;
      } else if (after.classList.contains('presence-line')) {
        // A joined/left line came after the ids up to its data-after.
        if (id > Number(after.dataset.after)) break;
        after = after.previousElementSibling;
      } else if (after.dataset.id !== undefined && Number(after.dataset.id) > id) {
        after = after.previousElementSibling;
      } else {
        break;
      }
    }
    return after ? after.nextElementSibling : list.firstElementChild;
  }

  updateEmpty(room) {
    room.$empty.prop('hidden', room.$list[0].childElementCount > 0);
  }

  scrollToBottom(room) {
    const pane = room.$pane[0];
    pane.scrollTop = pane.scrollHeight;
    room.stuckToBottom = true;
  }

  restoreScroll(room) {
    if (room.stuckToBottom) this.scrollToBottom(room);
    else room.$pane[0].scrollTop = room.savedTop || 0;
  }

  // -- the "New messages" line ---------------------------------------------------

  /**
   * The line above the first message by someone else after `room.lineAfter`
   * (the read position when the room was opened); none without one.
   */
  placeNewLine(room) {
    const list = room.$list[0];
    const old = list.querySelector(':scope > .new-messages');
    let target = null;
    if (room.lineAfter !== null) {
      const me = this.session.me;
      for (const el of list.querySelectorAll(':scope > .message[data-id]')) {
        if (Number(el.dataset.id) > room.lineAfter && (!me || el.dataset.userId !== me.id)) {
          target = el;
          break;
        }
      }
    }
    // Above the day's heading when the first new message starts a day, and
    // above a gap marker whose missing messages are all new too.
    let at = target;
    const above = (el) =>
      el &&
      (el.classList.contains('day') ||
        (el.classList.contains('gap') && Number(el.dataset.after) >= room.lineAfter));
    while (at && above(at.previousElementSibling)) at = at.previousElementSibling;
    if (old && old.nextElementSibling === at) return;
    if (old) {
      const next = old.nextElementSibling;
      old.remove();
      this.regroup(next);
    }
    if (!at) return;
    const line = $('<li class="new-messages">').append($('<span>').text('New messages'))[0];
    list.insertBefore(line, at);
    this.regroup(target);
  }

  // -- gaps and restarts ------------------------------------------------------

  /** A marker for missed messages between ids `after` and `before`. */
  insertGap(room, gap) {
    gap.$el = $('<li class="gap">')
      .attr('data-after', gap.after)
      .attr('data-before', gap.before)
      .data('gap', gap)
      .append($('<button type="button" class="gap-button">').text(GAP_TEXT));
    const el = gap.$el[0];
    // After everything up to `after`, before the replay that follows.
    room.$list[0].insertBefore(el, this.insertionPoint(room, gap.after + 0.5));
    this.regroup(el.nextElementSibling);
    this.renderDays(room);
    this.updateEmpty(room);
  }

  setGapLoading(gap, loading) {
    gap.loading = loading;
    if (!gap.$el) return;
    gap.$el.attr('aria-busy', loading ? 'true' : null);
    gap.$el
      .find('.gap-button')
      .attr('aria-disabled', loading ? 'true' : null)
      .text(loading ? 'Loading the missing messages…' : GAP_TEXT);
  }

  /** The gap is filled: its marker goes, the reader's place stays. */
  removeGap(room, gap) {
    const el = gap.$el[0];
    const hadFocus = el.contains(document.activeElement);
    const next = el.nextElementSibling;
    const pane = room.$pane[0];
    const top = el.getBoundingClientRect().top;
    gap.$el.remove();
    gap.$el = null;
    // The first filled-in message takes the marker's place on screen.
    if (next && room.name === this.session.active) {
      pane.scrollTop += next.getBoundingClientRect().top - top;
    }
    this.regroup(next);
    this.renderDays(room);
    if (hadFocus) pane.focus({ preventScroll: true });
    const n = gap.loaded || 0;
    this.announce(`${n} missing message${n === 1 ? '' : 's'} loaded.`);
  }

  /** Ids restarted: what is shown stays, archived, above a line. */
  archiveMessages(room) {
    room.$list.children('.message[data-id]').removeAttr('data-id').addClass('archived');
    room.$list.children('.gap').each(function () {
      const gap = $(this).data('gap');
      if (gap) gap.$el = null;
    });
    room.$list.children('.gap').remove();
    const $divider = $('<li class="divider">').append(
      $('<span>').text('The server lost its history: the messages above are no longer stored'),
    );
    // Above my messages still waiting to be sent: they belong to the new era.
    const $firstOutgoing = room.$list.children('.outgoing').first();
    if ($firstOutgoing.length) $divider.insertBefore($firstOutgoing);
    else room.$list.append($divider);
    this.renderDays(room);
  }
}
