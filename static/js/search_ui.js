/**
 * Search on the page: the search box in the sidebar, the results (room,
 * author, time, the text with the words marked), "More results", and a
 * result's click, which opens its room at that message (jump.js). Text from
 * the server goes in with .text() only; marks are <mark> elements around
 * parts of it (jump.markedParts).
 *
 * DOM hooks: #search-form > #search-input, #search-status, #search-results
 *   > li > button.search-hit[data-room][data-id] > .hit-meta, .hit-text > mark;
 *   #search-more
 */

import { markedParts } from './jump.js';
import { sentence } from './render.js';

const $ = window.jQuery;
const PAGE = 20;

export class SearchPanel {
  /** `deps`: {send(frame) → bool, open(roomName, id)}. */
  constructor(deps) {
    this.deps = deps;
    this.query = null; // the q of the results shown
    this.next = null; // their cursor for older hits
    this.count = 0;
    this.waiting = false;
  }

  submit() {
    const q = String($('#search-input').val()).trim();
    if (!q) {
      this.status('Type the words to find.');
      return;
    }
    this.query = q;
    this.next = null;
    this.count = 0;
    $('#search-results').empty().prop('hidden', true);
    $('#search-more').prop('hidden', true);
    this.ask({ type: 'search', q, limit: PAGE });
  }

  more() {
    if (!this.query || !this.next || this.waiting) return;
    this.ask({ type: 'search', q: this.query, limit: PAGE, before: this.next });
  }

  ask(frame) {
    if (!this.deps.send(frame)) {
      this.status('Not connected; try again in a moment.');
      return;
    }
    this.waiting = true;
    this.status('Searching…');
  }

  status(text) {
    $('#search-status').text(text);
  }

  onResults(frame) {
    if (frame.q !== this.query) return; // an answer to an earlier search
    this.waiting = false;
    const hits = Array.isArray(frame.hits) ? frame.hits : [];
    const $list = $('#search-results');
    hits.forEach((hit) => {
      if (!hit || !Number.isInteger(hit.id) || !hit.user) return;
      $list.append($('<li>').append(this.buildHit(hit)));
      this.count += 1;
    });
    $list.prop('hidden', this.count === 0);
    this.next = frame.more && typeof frame.next === 'string' ? frame.next : null;
    $('#search-more').prop('hidden', !this.next);
    let text = this.count
      ? `${this.count} ${this.count === 1 ? 'message' : 'messages'} found${this.next ? ' so far' : ''}.`
      : 'No messages found.';
    if (frame.partial) text += ' Only the newest messages were searched.';
    this.status(text);
  }

  buildHit(hit) {
    const date = new Date(hit.ts);
    const when = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    const $text = $('<span class="hit-text">');
    markedParts(String(hit.text), hit.highlight).forEach((part) => {
      $text.append(part.mark ? $('<mark>').text(part.text) : document.createTextNode(part.text));
    });
    return $('<button type="button" class="search-hit">')
      .attr('data-room', hit.room)
      .attr('data-id', hit.id)
      .append(
        $('<span class="hit-meta">').append(
          $('<span class="hit-room">').text(`#${hit.room}`),
          $('<span class="hit-author">').text(hit.user.name),
          $('<time>').attr('datetime', date.toISOString()).text(when),
        ),
        $text,
      );
  }

  /** The server refused a search: say why under the box. */
  refused(frame) {
    this.waiting = false;
    this.status(sentence(frame.message || frame.code || 'The search did not work.'));
  }

  bind() {
    $('#search-form').on('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    $('#search-more').on('click', () => this.more());
    $('#search-results').on('click', '.search-hit', (event) => {
      const $hit = $(event.currentTarget);
      this.deps.open($hit.attr('data-room'), Number($hit.attr('data-id')));
    });
  }
}
