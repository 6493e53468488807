/**
 * Editing and deleting messages on the page: a message's Edit and Delete
 * actions, the inline editor (Enter saves, Escape cancels; Up in an empty
 * composer edits my newest message), the delete confirmation, and how a
 * change shows (the "edited" marker with its time, the tombstone). Who may
 * do what, and what a change does to the kept messages: editing.js.
 *
 * DOM hooks: .message[data-rev] (.deleted) > .body > .text, .edited-mark[title],
 *   .message-actions > .edit-button, .delete-button
 *     (confirming: .delete-confirm (.pending) > .confirm-delete, .cancel-delete),
 *   .edit-form (.pending) > .edit-input, .save-edit, .cancel-edit, .edit-error
 */

import * as editing from './editing.js';
import { excerpt, sentence } from './render.js';

const $ = window.jQuery;

export class Editor {
  /** `deps`: {view, send(frame) → bool}. */
  constructor(app, deps) {
    this.app = app;
    this.deps = deps;
  }

  get session() {
    return this.app.session;
  }

  roomOf($li) {
    return this.session.rooms.get($li.closest('.room-pane').attr('data-room'));
  }

  rights(room) {
    return { role: room ? room.role : null, admin: this.session.admin === true };
  }

  /** A message element was built (render.js): show its state and actions. */
  decorate($li, msg) {
    if (!Number.isInteger(msg.id)) return; // mine, still being sent
    if (Number.isInteger(msg.rev)) $li.attr('data-rev', msg.rev);
    if (msg.deleted) this.markDeleted($li);
    else if (Number.isFinite(msg.edited)) this.markEdited($li, msg.edited);
    this.renderActions($li, this.session.rooms.get(msg.room));
  }

  /** Show a change (editing.changeOf) on the room's page; false if not shown. */
  show(room, change) {
    if (!room.$list) return false;
    const $li = room.$list.find(`.message[data-id="${change.id}"]`);
    if (!$li.length || $li.hasClass('deleted')) return false;
    const rev = Number($li.attr('data-rev'));
    if (change.rev !== null && rev >= change.rev) return false; // seen already
    if (change.rev !== null) $li.attr('data-rev', change.rev);
    const hadFocus = $li[0].contains(document.activeElement);
    this.closeEditor($li, false);
    if (change.deleted) {
      this.markDeleted($li);
      if (change.by && !this.deps.view.isMe(change.by)) {
        $li.find('.text').attr('title', `Deleted by ${change.by.name}`);
      }
    } else {
      const { view } = this.deps;
      const own = $li.hasClass('own');
      view.setMentioned($li, view.renderText($li.find('.text'), change.text, own));
      if (change.edited !== null) this.markEdited($li, change.edited);
    }
    this.renderActions($li, room);
    // The focused button may be gone with the change: back to the composer.
    if (hadFocus && !$li[0].contains(document.activeElement)) this.deps.view.focusComposer();
    return true;
  }

  markDeleted($li) {
    $li.addClass('deleted').removeClass('mention');
    $li.find('.mention-badge, .edited-mark, .attachment').remove();
    $li.find('.text').empty().text(editing.DELETED_TEXT);
  }

  markEdited($li, ms) {
    let $mark = $li.find('.edited-mark');
    if (!$mark.length) {
      // After the text, on its last line (chat.css), also in a continued block.
      $mark = $('<span class="edited-mark">').text('(edited)');
      $li.find('.text').after($mark);
    }
    $mark.attr('title', editing.editedTitle(ms));
  }

  /** The Edit and Delete buttons a message gets, for me, in its room. */
  renderActions($li, room) {
    $li.children('.message-actions').remove();
    const msg = { user: { id: $li.attr('data-user-id') }, deleted: $li.hasClass('deleted') };
    const me = this.session.me;
    const short = excerpt($li.find('.text').text(), 40);
    const $actions = $('<span class="message-actions">');
    if (editing.canEdit(msg, me)) {
      $actions.append(
        $('<button type="button" class="link-button edit-button">')
          .attr('aria-label', `Edit “${short}”`)
          .text('Edit'),
      );
    }
    if (editing.canDelete(msg, me, this.rights(room))) {
      $actions.append(
        $('<button type="button" class="link-button delete-button">')
          .attr('aria-label', `Delete “${short}”`)
          .text('Delete'),
      );
    }
    if ($actions.children().length) $li.append($actions);
  }

  /** Who I am, or what I may do in a room, changed: every action again. */
  renderRoom(room) {
    if (!room.$list) return;
    room.$list.find('.message[data-id]').each((_, el) => this.renderActions($(el), room));
  }

  renderAll() {
    this.session.rooms.forEach((room) => this.renderRoom(room));
  }

  // -- editing --------------------------------------------------------------------

  /** Up in an empty composer: edit my newest message in the room, if any. */
  editLast(room) {
    const me = this.session.me;
    if (!room || !room.$list || !me) return false;
    const items = room.$list
      .find('.message[data-id]')
      .toArray()
      .map((el) => ({
        id: Number(el.dataset.id),
        userId: el.dataset.userId,
        deleted: el.classList.contains('deleted'),
      }));
    const id = editing.lastEditable(items, me.id);
    if (id === null) return false;
    this.startEdit(room.$list.find(`.message[data-id="${id}"]`));
    return true;
  }

  startEdit($li) {
    if (!$li.length || $li.hasClass('deleted') || $li.find('.edit-form').length) return;
    const $text = $li.find('.text');
    const $input = $('<textarea class="edit-input" rows="2">')
      .attr('aria-label', 'Edit your message (Enter saves, Escape cancels)')
      .val($text.text());
    const $form = $('<form class="edit-form">').append(
      $input,
      $('<div class="edit-buttons">').append(
        $('<button type="submit" class="button save-edit">').text('Save'),
        $('<button type="button" class="link-button cancel-edit">').text('Cancel'),
        $('<span class="edit-hint">').text('Enter to save · Escape to cancel'),
      ),
      $('<p class="edit-error field-error" role="alert">').prop('hidden', true),
    );
    $form.data('before', $text.text());
    $text.prop('hidden', true).after($form);
    $li.children('.message-actions').prop('hidden', true);
    const end = String($input.val()).length;
    $input.trigger('focus');
    $input[0].setSelectionRange(end, end);
  }

  save($li) {
    const $form = $li.find('.edit-form');
    if (!$form.length || $form.hasClass('pending')) return;
    const room = this.roomOf($li);
    const id = Number($li.attr('data-id'));
    const result = editing.editFrame(
      room ? room.name : '',
      id,
      $form.data('before'),
      $form.find('.edit-input').val(),
      this.app.config.maxText,
    );
    if (result.unchanged) {
      this.closeEditor($li, true);
      return;
    }
    if (result.error) {
      this.showError($form, result.error);
      return;
    }
    if (!this.deps.send(result.frame)) {
      this.showError($form, 'Not connected; try again in a moment.');
      return;
    }
    // Closed when the server's `edited` comes back (show), or reopened by an error.
    $form.addClass('pending').find('.edit-input, button').prop('disabled', true);
  }

  showError($form, text) {
    $form.find('.edit-error').text(text).prop('hidden', false);
    $form.find('.edit-input').trigger('focus');
  }

  closeEditor($li, refocus) {
    const $form = $li.find('.edit-form');
    if (!$form.length) return;
    const hadFocus = $form[0].contains(document.activeElement);
    $form.remove();
    $li.find('.text').prop('hidden', false);
    $li.children('.message-actions').prop('hidden', false);
    if (refocus || hadFocus) this.deps.view.focusComposer();
  }

  // -- deleting -------------------------------------------------------------------

  askDelete($li) {
    const $actions = $li.children('.message-actions');
    if (!$actions.length || $actions.find('.delete-confirm').length) return;
    $actions.children().prop('hidden', true);
    const $confirm = $('<span class="delete-confirm" role="group">')
      .attr('aria-label', 'Delete this message?')
      .append(
        $('<span class="delete-question">').text('Delete this message?'),
        $('<button type="button" class="link-button confirm-delete">').text('Delete'),
        $('<button type="button" class="link-button cancel-delete">').text('Cancel'),
      );
    $actions.append($confirm);
    $confirm.find('.cancel-delete').trigger('focus');
  }

  cancelDelete($li) {
    const $actions = $li.children('.message-actions');
    $actions.find('.delete-confirm').remove();
    $actions.children().prop('hidden', false);
    $actions.find('.delete-button').trigger('focus');
  }

  confirmDelete($li) {
    const $confirm = $li.find('.delete-confirm');
    if ($confirm.hasClass('pending')) return; // asked already
    const room = this.roomOf($li);
    const id = Number($li.attr('data-id'));
    if (!room || !this.deps.send({ type: 'delete', room: room.name, id })) {
      this.deps.view.showNotice('Not connected; try again in a moment.');
      return;
    }
    // Not disabled: the focus stays on the button until the answer comes.
    $confirm.addClass('pending').find('button').attr('aria-disabled', 'true');
  }

  /** The server refused an edit or a delete: say why where it was asked. */
  refused(frame) {
    const text = sentence(frame.message || frame.code || 'That did not work.');
    const $list = this.deps.view.$messages;
    if (frame.ref === 'edit') {
      const $form = $list.find('.edit-form.pending').first();
      if (!$form.length) return false;
      $form.removeClass('pending').find('.edit-input, button').prop('disabled', false);
      this.showError($form, text);
      return true;
    }
    const $pending = $list.find('.delete-confirm.pending').first().closest('.message');
    if (!$pending.length) return false;
    this.cancelDelete($pending);
    this.deps.view.showNotice(text, frame.code);
    return true;
  }

  /** Clicks and keys inside the message lists. */
  bind($messages) {
    const on = (selector, act) =>
      $messages.on('click', selector, (event) => act($(event.currentTarget).closest('.message')));
    on('.edit-button', ($li) => this.startEdit($li));
    on('.cancel-edit', ($li) => this.closeEditor($li, true));
    on('.delete-button', ($li) => this.askDelete($li));
    on('.cancel-delete', ($li) => this.cancelDelete($li));
    on('.confirm-delete', ($li) => this.confirmDelete($li));
    $messages.on('submit', '.edit-form', (event) => {
      event.preventDefault();
      this.save($(event.currentTarget).closest('.message'));
    });
    $messages.on('keydown', '.edit-input', (event) => {
      const $li = $(event.currentTarget).closest('.message');
      const e = event.originalEvent || event;
      if (event.key === 'Escape') {
        event.preventDefault();
        this.closeEditor($li, true);
      } else if (event.key === 'Enter' && !event.shiftKey && !e.isComposing) {
        event.preventDefault();
        this.save($li);
      }
    });
    $messages.on('keydown', '.delete-confirm', (event) => {
      if (event.key === 'Escape') this.cancelDelete($(event.currentTarget).closest('.message'));
    });
  }
}
