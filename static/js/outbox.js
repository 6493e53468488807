/**
 * My messages until the server has them. Each gets a client_id, shows at once
 * (greyed), waits while offline or until its room is joined again, goes out
 * at the pace the server accepts (SendPacer) and is sent again with the same
 * client_id after a drop, so the server acknowledges a stored one instead of
 * storing it twice. Kept in sessionStorage: a reload loses nothing typed.
 */

import { decodeOutbox, encodeOutbox, KEYS } from './storage.js';

function randomHex(bytes) {
  const buf = new Uint8Array(bytes);
  window.crypto.getRandomValues(buf);
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Outbox {
  /**
   * `deps`: {connection, view, tabStore (a safeStorage of sessionStorage),
   * ensureRoom(name), isRoom(name), onChange()}.
   */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
  }

  get entries() {
    return this.app.session.outbox;
  }

  set entries(value) {
    this.app.session.outbox = value;
  }

  get link() {
    return this.app.link;
  }

  find(clientId) {
    return this.entries.find((e) => e.clientId === clientId);
  }

  /**
   * `replyTo`: the id of the message this one answers, if any;
   * `attachment`: an upload's answer (uploads.js), sent with the text.
   */
  queue(room, text, replyTo = null, attachment = null) {
    const entry = {
      clientId: randomHex(8),
      room: room.name,
      text,
      attachment,
      ts: Date.now(),
      status: 'queued',
      replyTo,
      $li: null,
    };
    this.entries.push(entry);
    this.deps.view.appendOutgoing(room, this.deps.view.buildOutgoing(entry));
    this.changed();
    this.flush();
  }

  /** Send what waits, oldest first, for rooms joined on this connection. */
  flush() {
    const { connection, view } = this.deps;
    const link = this.link;
    clearTimeout(link.flushTimer);
    link.flushTimer = null;
    if (!connection.isConnected()) {
      view.renderSendPace(0);
      return;
    }
    let soonest = Infinity;
    for (const entry of this.entries) {
      if (entry.status !== 'queued') continue;
      const room = this.app.session.rooms.get(entry.room);
      if (!room || !room.ready) continue;
      const now = Date.now();
      if (room.flushAfter > now) {
        // Slow mode: the room's next one goes when the server will take it.
        soonest = Math.min(soonest, room.flushAfter);
        continue;
      }
      const wait = link.pacer.take(now);
      if (wait > 0) {
        this.scheduleFlush(wait);
        view.renderSendPace(this.waiting(), link.pacer.rate);
        return;
      }
      const frame = { type: 'message', room: entry.room, text: entry.text, client_id: entry.clientId };
      if (Number.isInteger(entry.replyTo)) frame.reply_to = entry.replyTo;
      if (entry.attachment) frame.attachment = entry.attachment.id;
      if (!connection.send(frame)) return;
      entry.status = 'sending';
      link.inflight.push(entry);
      view.renderEntry(entry);
      if (room.slowMode) room.flushAfter = now + room.slowMode * 1000;
    }
    view.renderSendPace(0);
    if (soonest < Infinity) this.scheduleFlush(soonest - Date.now());
  }

  /** How many of my messages wait to be sent. */
  waiting() {
    return this.entries.filter((e) => e.status === 'queued').length;
  }

  scheduleFlush(ms) {
    clearTimeout(this.link.flushTimer);
    this.link.flushTimer = setTimeout(() => this.flush(), ms);
  }

  /** My message with this client_id reached the server: drop the local copy. */
  settle(clientId) {
    const entry = this.find(clientId);
    if (!entry) return null;
    this.forget(entry);
    this.changed();
    return entry;
  }

  discard(entry) {
    this.forget(entry);
    this.deps.view.removeEntryElement(entry);
    this.changed();
  }

  retry(entry) {
    entry.status = 'queued';
    this.deps.view.renderEntry(entry);
    this.changed();
    this.flush();
  }

  /** The room was left: what waited for it goes too. */
  dropRoom(name) {
    this.entries = this.entries.filter((e) => e.room !== name);
    this.link.inflight = this.link.inflight.filter((e) => e.room !== name);
    this.save();
  }

  /**
   * The connection dropped. What was sent is maybe stored, maybe not: it is
   * sent again after the rejoin, with the same client_id.
   */
  requeueInflight() {
    clearTimeout(this.link.flushTimer);
    this.link.inflight.forEach((entry) => {
      if (entry.status === 'sending') entry.status = 'queued';
      this.deps.view.renderEntry(entry);
    });
    this.link.inflight = [];
  }

  /** A message of mine was refused; returns true if nothing more is to be said. */
  refuse(frame) {
    // Errors name the message by client_id when they can; otherwise frames are
    // answered in order, so a refusal is for the oldest one still in flight.
    // A storage failure always names it: an `internal` error without a
    // client_id is about something else, never taken for one of mine.
    const link = this.link;
    let entry = null;
    if (frame.client_id) entry = this.find(frame.client_id);
    else if (frame.code !== 'internal') entry = link.inflight[0];
    if (!entry) return false;
    link.inflight = link.inflight.filter((e) => e !== entry);
    if (frame.code === 'rate_limited') {
      // Not lost, only early: it goes out again by itself.
      entry.status = 'queued';
      this.deps.view.renderEntry(entry);
      if (typeof frame.retry_after === 'number') {
        // Slow mode: only this room waits, as long as the server says.
        const room = this.app.session.rooms.get(entry.room);
        const until = Date.now() + Number(frame.retry_after) * 1000 + 100;
        if (room) {
          room.flushAfter = Math.max(room.flushAfter, until);
          room.slowUntil = Math.max(room.slowUntil, until);
          this.deps.view.renderSlowMode();
        }
        this.scheduleFlush(until - Date.now());
        return true;
      }
      link.pacer.drain(Date.now());
      this.deps.view.renderSendPace(this.waiting(), link.pacer.rate);
      const wait = /in ([\d.]+) s/.exec(frame.message || '');
      this.scheduleFlush(wait ? parseFloat(wait[1]) * 1000 + 50 : 1000);
      return true;
    }
    entry.status = 'failed';
    this.deps.view.renderEntry(entry);
    this.changed();
    return false;
  }

  /** Written during an outage, then the page was reloaded: show it again. */
  restore() {
    const { tabStore, ensureRoom, isRoom, view } = this.deps;
    decodeOutbox(tabStore.get(KEYS.outbox), isRoom).forEach((item) => {
      if (this.find(item.clientId)) return;
      const room = ensureRoom(item.room);
      const entry = { ...item, $li: null };
      this.entries.push(entry);
      view.appendOutgoing(room, view.buildOutgoing(entry));
    });
  }

  save() {
    this.deps.tabStore.set(KEYS.outbox, encodeOutbox(this.entries));
  }

  forget(entry) {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    this.link.inflight = this.link.inflight.filter((e) => e !== entry);
  }

  changed() {
    this.save();
    this.deps.onChange();
  }
}
