/**
 * A room's messages in id order, each shown once: live ones, pages of
 * history (the first, older ones, gaps left by a replay), and a new epoch
 * when the server says the history we knew is gone (`reset`). History answers carry no request id, but
 * a connection's frames are answered in order: each answer is for the oldest
 * request of its room still open (link.historyRequests).
 */

import { applyToKept, changeOf, newestId } from './editing.js';
import { applyReacted } from './reactions.js';
import { rememberMessage } from './storage.js';

export class Timeline {
  /**
   * `deps`: {view, connection, outbox, onRemembered() (a message to keep),
   * showChange(room, change) (an edit or delete to show, editor.js),
   * showQuote(room, msg) (the quote of a message shown already),
   * showQuoted(room, change) (an edit or delete to show in the quotes of the
   * message, replying.js),
   * showReactions(room, {id, rev, reactions}) (reactions_ui.js) and
   * onCounted(room) (its unread messages changed)}.
   */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
  }

  get requests() {
    return this.app.link.historyRequests;
  }

  /**
   * Show messages in id order, skipping ones already shown; returns how many.
   *
   * A message of mine replaces its outgoing copy (same client_id), wherever
   * it comes from: the acknowledgement, a replay or a page of history.
   * `options`: {live, mine, anchor} (see View.readingPlace).
   */
  add(room, msgs, options) {
    const { view, outbox } = this.deps;
    const follow = room.stuckToBottom || Boolean(options.live && options.mine);
    const place = view.readingPlace(room, follow, options.anchor);
    const fresh = [];
    msgs.forEach((msg) => {
      if (!msg || typeof msg.id !== 'number' || !msg.user) return;
      const sent = msg.client_id && view.isMe(msg.user) ? outbox.settle(msg.client_id) : null;
      if (sent) view.removeEntryElement(sent);
      if (room.ids.has(msg.id)) {
        this.change(room, msg); // already shown: it may have been edited or deleted since
        if (msg.reply && this.deps.showQuote) this.deps.showQuote(room, msg); // and its quote
        if (Number.isInteger(msg.rev) && !msg.deleted) {
          this.react(room, { id: msg.id, rev: msg.rev, reactions: msg.reactions || [] });
        }
        return;
      }
      room.ids.add(msg.id);
      if (!room.epoch) room.epoch = this.app.link.epoch; // the ids' history
      room.lastId = Math.max(room.lastId, newestId(msg)); // an edit's rev is an id too
      room.oldestId = room.oldestId ? Math.min(room.oldestId, msg.id) : msg.id;
      room.reads.note(msg.id, !view.isMe(msg.user), Boolean(msg.deleted));
      if (rememberMessage(room.recent, msg)) this.deps.onRemembered();
      fresh.push(msg);
    });
    view.insertMessages(room, fresh, place);
    if (fresh.length && this.deps.onCounted) this.deps.onCounted(room);
    return fresh.length;
  }

  /**
   * An edit or a delete (an `edited` or `deleted` frame, or a newer state of
   * a message shown): shown, and applied to the messages kept on this
   * device, so a deleted text leaves the cache too.
   */
  change(room, frame) {
    const change = changeOf(frame);
    if (!change) return;
    if (change.rev !== null) room.lastId = Math.max(room.lastId, change.rev);
    if (change.deleted) {
      room.reads.drop(change.id);
      if (this.deps.onCounted) this.deps.onCounted(room);
    }
    if (room.ids.has(change.id)) this.deps.showChange(room, change);
    if (this.deps.showQuoted) this.deps.showQuoted(room, change); // its quotes shown
    if (applyToKept(room.recent, change)) this.deps.onRemembered();
  }

  /**
   * A message's reactions now (a `reacted` frame, or a message shown again
   * in a newer state): shown, and kept on this device.
   */
  react(room, frame) {
    if (!Number.isInteger(frame.id) || !Number.isInteger(frame.rev)) return;
    room.lastId = Math.max(room.lastId, frame.rev); // a toggle's rev is an id too
    if (room.ids.has(frame.id)) this.deps.showReactions(room, frame);
    const me = this.app.session.me ? this.app.session.me.id : null;
    if (applyReacted(room.recent.find((m) => m.id === frame.id), frame, me)) this.deps.onRemembered();
  }

  /** Ask for history; `kind` (initial | older | gap) says what the answer is for. */
  request(room, kind, before, gap) {
    const { config } = this.app;
    const limit = kind === 'gap' ? config.historyPage : config.historyInitial;
    const frame = { type: 'history', room: room.name, limit };
    if (before) frame.before = before;
    if (!this.deps.connection.send(frame)) return false;
    this.requests.push({ room: room.name, kind, gap });
    return true;
  }

  has(room, kind) {
    return this.requests.some((r) => r.room === room.name && r.kind === kind);
  }

  /** A freshly joined room gets its newest page, once. */
  loadInitial(room) {
    if (!room.historyLoaded && !this.has(room, 'initial')) this.request(room, 'initial');
  }

  renderOlder(room) {
    this.deps.view.renderOlder(room, this.has(room, 'older'));
  }

  /** The page of messages above the oldest one shown, if there is one. */
  loadOlder(room) {
    if (!room.hasMore || !room.oldestId || this.has(room, 'older')) return;
    if (this.request(room, 'older', room.oldestId)) this.renderOlder(room);
  }

  /** Messages kept on this device, shown before the connection is up. */
  showKept(room, msgs) {
    this.add(
      room,
      msgs.map((m) => ({ ...m, room: room.name })),
      { live: false },
    );
    room.historyLoaded = true;
    room.hasMore = room.oldestId > 1;
    this.renderOlder(room);
  }

  onHistory(frame) {
    const i = this.requests.findIndex((r) => r.room === frame.room);
    const request = i >= 0 ? this.requests.splice(i, 1)[0] : { kind: 'older' };
    const room = this.app.session.rooms.get(frame.room);
    if (!room) return;
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    if (request.kind === 'gap') {
      this.fillGap(room, request.gap, messages, Boolean(frame.more));
      return;
    }
    room.hasMore = Boolean(frame.more);
    if (request.kind === 'initial') {
      const first = !room.historyLoaded;
      room.historyLoaded = true;
      this.add(room, messages, { live: false });
      if (first) this.deps.view.scrollToBottom(room);
    } else {
      this.add(room, messages, { live: false });
    }
    this.renderOlder(room);
  }

  /** A history request was refused: it is done. */
  onRefused() {
    const request = this.requests.shift();
    const room = this.app.session.rooms.get(request.room);
    if (request.gap) this.deps.view.setGapLoading(request.gap, false);
    if (room) this.renderOlder(room);
  }

  /**
   * `reset`: the history this room's ids came from is gone (the server lost
   * it). What is shown stays, archived above a line; the replay that follows
   * is the room's history now.
   */
  onReset(frame) {
    const room = this.app.session.rooms.get(frame.room);
    if (!room) return;
    this.startNewEpoch(room);
    room.historyLoaded = true;
    room.epoch = typeof frame.epoch === 'string' ? frame.epoch : null;
  }

  /** The connection dropped: no answer will come to what was asked. */
  abandonRequests() {
    this.requests.forEach((request) => {
      if (request.gap) this.deps.view.setGapLoading(request.gap, false);
    });
    this.app.link.historyRequests = [];
  }

  /** The server left out older missed messages: mark the place, to load later. */
  onGap(frame) {
    const room = this.app.session.rooms.get(frame.room);
    const { after, before } = frame;
    if (!room || !Number.isInteger(after) || !Number.isInteger(before) || before <= after + 1) {
      return;
    }
    this.deps.view.insertGap(room, { after, before, loading: false });
  }

  loadGap(room, gap) {
    if (gap.loading || !gap.$el) return;
    if (!this.deps.connection.isConnected()) {
      this.deps.view.showNotice(
        'Not connected; the missing messages load once the connection is back.',
      );
      return;
    }
    if (this.request(room, 'gap', gap.before, gap)) this.deps.view.setGapLoading(gap, true);
  }

  // One page of a gap, newest first: it goes right below the marker, which
  // stays where the reader is looking; the next page is asked for until the
  // gap is closed.
  fillGap(room, gap, messages, more) {
    if (!gap || !gap.$el) return; // the marker is gone (a new epoch)
    const lowest = messages.reduce((low, m) => Math.min(low, m.id), gap.before);
    gap.before = lowest;
    gap.$el.attr('data-before', lowest);
    const added = this.add(room, messages, { live: false, anchor: gap.$el[0] });
    gap.loaded = (gap.loaded || 0) + added;
    if (!more || !messages.length || lowest <= gap.after + 1) {
      this.deps.view.removeGap(room, gap);
      return;
    }
    if (!this.request(room, 'gap', gap.before, gap)) this.deps.view.setGapLoading(gap, false);
  }

  // A new epoch: what is shown stays, above a line, and ids are tracked
  // afresh so new messages are not taken for ones already shown.
  startNewEpoch(room) {
    this.deps.view.archiveMessages(room);
    room.ids.clear();
    room.reads.clearMessages();
    room.recent = [];
    this.deps.onRemembered();
    room.lastId = 0;
    room.oldestId = 0;
    room.hasMore = false;
    room.historyLoaded = false;
    this.renderOlder(room);
  }
}
