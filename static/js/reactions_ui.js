/**
 * Reactions on the page: the chips under a message (emoji and count, mine
 * pressed; hover, or a long press, says who reacted; a click toggles mine),
 * and the add button with its palette (the six of reactions.PALETTE and a
 * field for any other emoji). What the frames mean: reactions.js.
 *
 * DOM hooks: .message[data-reactions-rev] > .body > .reactions
 *   > .reaction-chip[data-emoji][aria-pressed] > .reaction-emoji, .reaction-count
 *   > .reaction-add (opens) .reaction-picker > .reaction-choice[data-emoji],
 *       .reaction-form > .reaction-input, .reaction-submit, .reaction-error
 *   > .reaction-who (after a long press)
 */

import * as reactions from './reactions.js';
import { excerpt } from './render.js';

const $ = window.jQuery;
const LONG_PRESS_MS = 500;

export class ReactionsUI {
  /** `deps`: {send(frame) → bool, notice(text)}. */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
    this.pressTimer = null;
  }

  get session() {
    return this.app.session;
  }

  /** A message element was built (render.js): its chips and add button. */
  decorate($li, msg) {
    if (!Number.isInteger(msg.id) || msg.deleted) return; // being sent, or gone
    $li.attr('data-reactions-rev', reactions.reactionsRevOf(msg));
    $li.data('mine', reactions.mineAfter(msg.mine, msg, this.meId()));
    this.render($li, reactions.reactionsOf(msg.reactions));
  }

  /** A message's reactions now ({id, rev, reactions}); false if not newer. */
  show(room, frame) {
    if (!room.$list) return false;
    const $li = room.$list.find(`.message[data-id="${frame.id}"]`);
    if (!$li.length || $li.hasClass('deleted')) return false;
    if (Number($li.attr('data-reactions-rev')) >= frame.rev) return false;
    $li.attr('data-reactions-rev', frame.rev);
    $li.data('mine', reactions.mineAfter($li.data('mine'), frame, this.meId()));
    this.render($li, reactions.reactionsOf(frame.reactions));
    return true;
  }

  /** Who I am is known (or changed): every message's chips again. */
  renderAll() {
    $('#messages .message[data-reactions-rev]').each((_, el) => {
      const $li = $(el);
      const list = $li.data('reactions') || [];
      $li.data('mine', reactions.mineAfter($li.data('mine'), { reactions: list }, this.meId()));
      this.render($li, list);
    });
  }

  meId() {
    return this.session.me ? this.session.me.id : null;
  }

  render($li, list) {
    $li.data('reactions', list);
    const me = this.meId();
    const mine = $li.data('mine') || [];
    const short = excerpt($li.find('.text').text(), 40);
    let $row = $li.find('.body > .reactions');
    const hadFocus = $row.length ? $row[0].contains(document.activeElement) : false;
    const focusedEmoji = hadFocus ? $(document.activeElement).attr('data-emoji') : null;
    if (!$row.length) {
      $row = $('<div class="reactions">');
      $li.find('.body').append($row);
    }
    $row.children('.reaction-chip').remove();
    const $add = $row.children('.reaction-add');
    list.forEach((reaction) => {
      const pressed = mine.includes(reaction.emoji);
      const $chip = $('<button type="button" class="reaction-chip">')
        .attr('data-emoji', reaction.emoji)
        .attr('aria-pressed', pressed ? 'true' : 'false')
        .attr('aria-label', reactions.chipLabel(reaction, pressed))
        .attr('title', reactions.whoText(reaction, me))
        .append(
          $('<span class="reaction-emoji">').text(reaction.emoji),
          $('<span class="reaction-count">').text(String(reaction.count)),
        );
      if ($add.length) $add.before($chip);
      else $row.append($chip);
    });
    if (!$add.length) {
      $row.append(
        $('<button type="button" class="reaction-add">')
          .attr('aria-label', `Add a reaction to “${short}”`)
          .attr('aria-expanded', 'false')
          .attr('title', 'Add a reaction')
          .text('☺+'),
      );
    }
    $row.toggleClass('empty', !list.length);
    $row.children('.reaction-who').remove();
    if (focusedEmoji) $row.children(`.reaction-chip[data-emoji="${CSS.escape(focusedEmoji)}"]`).trigger('focus');
  }

  roomOf($li) {
    return $li.closest('.room-pane').attr('data-room');
  }

  toggle($li, emoji) {
    const problem = reactions.emojiProblem(emoji);
    if (problem) return problem;
    if (!$li.is('[data-id]')) return null; // an older era's message: no longer stored
    const frame = reactions.reactFrame(this.roomOf($li), Number($li.attr('data-id')), emoji);
    if (!this.deps.send(frame)) this.deps.notice('Not connected; react again once the connection is back.');
    return null;
  }

  openPicker($li) {
    const $row = $li.find('.body > .reactions');
    if ($row.children('.reaction-picker').length) {
      this.closePicker($li, true);
      return;
    }
    this.closeAll();
    const $picker = $('<div class="reaction-picker" role="group" aria-label="Pick a reaction">');
    reactions.PALETTE.forEach((emoji) => {
      $picker.append(
        $('<button type="button" class="reaction-choice">')
          .attr('data-emoji', emoji)
          .attr('aria-label', `React with ${emoji}`)
          .text(emoji),
      );
    });
    const $form = $('<form class="reaction-form">').append(
      $('<input class="reaction-input" type="text" autocomplete="off" maxlength="32">')
        .attr('aria-label', 'Any other emoji')
        .attr('placeholder', 'Other emoji'),
      $('<button type="submit" class="reaction-submit">').text('React'),
      $('<span class="reaction-error" role="alert">'),
    );
    $picker.append($form);
    $row.append($picker);
    $row.children('.reaction-add').attr('aria-expanded', 'true');
    $picker.find('.reaction-choice').first().trigger('focus');
  }

  closePicker($li, refocus) {
    const $row = $li.find('.body > .reactions');
    $row.children('.reaction-picker').remove();
    const $add = $row.children('.reaction-add').attr('aria-expanded', 'false');
    if (refocus) $add.trigger('focus');
  }

  closeAll() {
    $('.reaction-picker').each((_, el) => this.closePicker($(el).closest('.message'), false));
  }

  showWho($chip) {
    const $row = $chip.closest('.reactions');
    $row.children('.reaction-who').remove();
    $row.append($('<p class="reaction-who" role="status">').text($chip.attr('title')));
  }

  /** Clicks, keys and long presses inside the message lists. */
  bind($messages) {
    const message = (event) => $(event.currentTarget).closest('.message');
    $messages.on('click', '.reaction-chip', (event) => {
      if (this.longPressed) {
        this.longPressed = false;
        return;
      }
      this.toggle(message(event), $(event.currentTarget).attr('data-emoji'));
    });
    $messages.on('click', '.reaction-add', (event) => this.openPicker(message(event)));
    $messages.on('click', '.reaction-choice', (event) => {
      const $li = message(event);
      this.toggle($li, $(event.currentTarget).attr('data-emoji'));
      this.closePicker($li, true);
    });
    $messages.on('submit', '.reaction-form', (event) => {
      event.preventDefault();
      const $li = message(event);
      const $input = $(event.currentTarget).find('.reaction-input');
      const problem = this.toggle($li, String($input.val()).trim());
      if (problem) {
        $(event.currentTarget).find('.reaction-error').text(problem);
        $input.trigger('focus');
        return;
      }
      this.closePicker($li, true);
    });
    $messages.on('keydown', '.reaction-picker', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.closePicker(message(event), true);
      }
    });
    // A long press (touch) says who reacted, as hovering does with a mouse.
    $messages.on('pointerdown', '.reaction-chip', (event) => {
      const $chip = $(event.currentTarget);
      this.longPressed = false;
      clearTimeout(this.pressTimer);
      this.pressTimer = setTimeout(() => {
        this.longPressed = true;
        this.showWho($chip);
      }, LONG_PRESS_MS);
    });
    $messages.on('pointerup pointerleave pointercancel', '.reaction-chip', () => clearTimeout(this.pressTimer));
    $messages.on('contextmenu', '.reaction-chip', (event) => {
      event.preventDefault();
      this.showWho($(event.currentTarget));
    });
  }
}
