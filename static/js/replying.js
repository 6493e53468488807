/**
 * Replies on the page: the Reply action of each message, the reply bar
 * above the composer ("Replying to Ann: …", × to cancel), the quoted line
 * above an answer (a button: it jumps to the original, jump.js), and quotes
 * kept current when their original is edited or deleted.
 *
 * DOM hooks: .message > .body > .meta .reply-button, .quote[data-quote-id]
 *   (.quote-deleted, .quote-gone) > .quote-author, .quote-text;
 *   #reply-bar > #reply-bar-text, #reply-cancel
 */

import { quoteLine } from './jump.js';
import { excerpt } from './render.js';

const $ = window.jQuery;
const QUOTE_CHARS = 140; // as much of the original as the server quotes

export class Replies {
  /** `deps`: {view, jump(roomName, id)}. */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
    this.target = null; // {room, id, author, text}: what the next message answers
  }

  /** A message element was built (render.js): its quote and Reply action. */
  decorate($li, msg) {
    if (msg.reply) {
      const line = quoteLine(msg.reply);
      if (line) $li.find('.body > .text').before(this.buildQuote(msg.reply.id, line));
    }
    if (Number.isInteger(msg.id) && !msg.deleted) {
      const short = excerpt(String(msg.text), 40);
      $li.find('.meta').append(
        $('<button type="button" class="link-button reply-button">')
          .attr('aria-label', `Reply to ${msg.user.name}: “${short}”`)
          .text('Reply'),
      );
    }
  }

  /**
   * The quote of a message shown already (from this device's cache, which
   * keeps no quotes) as the server sends it now.
   */
  showQuote(room, msg) {
    const line = quoteLine(msg.reply);
    if (!room.$list || !line) return;
    const $li = room.$list.find(`.message[data-id="${msg.id}"]`);
    const $quote = $li.find('.body > .quote');
    if ($quote.length) this.fillQuote($quote, line);
    else $li.find('.body > .text').before(this.buildQuote(msg.reply.id, line));
  }

  buildQuote(id, line) {
    const $quote = $('<button type="button" class="quote">').attr('data-quote-id', id);
    this.fillQuote($quote, line);
    return $quote;
  }

  fillQuote($quote, line) {
    $quote
      .empty()
      .removeClass('quote-deleted quote-gone')
      .addClass(line.state === 'kept' ? '' : `quote-${line.state}`)
      .attr('title', 'Go to the message answered')
      .append(
        $('<span class="quote-author">').text(line.author),
        $('<span class="quote-text">').text(line.text),
      );
  }

  /** An edit or a delete of a message: the quotes of it on the page follow. */
  onChange(room, change) {
    if (!room.$list) return;
    room.$list.find(`.quote[data-quote-id="${change.id}"]`).each((_, el) => {
      const $quote = $(el);
      const author = $quote.find('.quote-author').text();
      const text = change.deleted ? '' : change.text.slice(0, QUOTE_CHARS);
      this.fillQuote($quote, quoteLine({ id: change.id, user: { name: author }, text, deleted: change.deleted }));
    });
    if (change.deleted) {
      room.$list.find(`.message[data-id="${change.id}"] .reply-button`).remove();
      const target = this.target;
      if (target && target.room === room.name && target.id === change.id) this.cancel(false);
    }
  }

  /** Reply to this message: the bar shows above the composer. */
  start($li) {
    const room = $li.closest('.room-pane').attr('data-room');
    const id = Number($li.attr('data-id'));
    if (!room || !Number.isInteger(id)) return;
    const author = $li.attr('data-author') || '';
    this.target = { room, id, author, text: $li.find('.body > .text').text() };
    this.render();
    this.deps.view.focusComposer();
  }

  /** Drop the reply under way (the × of the bar, Escape, another room). */
  cancel(refocus = true) {
    if (!this.target) return;
    this.target = null;
    this.render();
    if (refocus) this.deps.view.focusComposer();
  }

  /** The id the message about to be sent in `roomName` answers; the bar closes. */
  take(roomName) {
    const target = this.target;
    if (!target || target.room !== roomName) return null;
    this.cancel(false);
    return target.id;
  }

  /** The active room changed: a reply belongs to the room it was started in. */
  onRoomShown(roomName) {
    if (this.target && this.target.room !== roomName) this.cancel(false);
  }

  render() {
    const target = this.target;
    $('#reply-bar').prop('hidden', !target);
    $('#reply-bar-text')
      .empty()
      .append(
        target ? $('<span class="reply-bar-label">').text(`Replying to ${target.author}: `) : '',
        target ? $('<span class="reply-bar-quote">').text(excerpt(target.text, 80)) : '',
      );
  }

  bind($messages) {
    $messages.on('click', '.reply-button', (event) => {
      this.start($(event.currentTarget).closest('.message'));
    });
    $messages.on('click', '.quote', (event) => {
      const $quote = $(event.currentTarget);
      const room = $quote.closest('.room-pane').attr('data-room');
      this.deps.jump(room, Number($quote.attr('data-quote-id')));
    });
    $('#reply-cancel').on('click', () => this.cancel());
  }
}
