/**
 * Moderation in the page: role badges and a menu of actions on each person in
 * the member list and on the author of each message (also there for someone
 * who has left; with "Remove from this room" for a private room's creator,
 * and "Message privately" for everyone: dm.js), the room's slow-mode control, the moderation log panel for
 * admins and moderators, and the notices that tell a person what a moderator
 * did to them. What may be offered comes from moderation.js; the server
 * decides (a refusal comes back as an `error` and shows as a notice).
 *
 * DOM hooks:
 *   #presence > .member > .role-badge[data-role], .member-actions[aria-expanded]
 *       + .member-menu > button.member-action[data-action]
 *   .message > .body > .meta > .author + .member-actions.author-actions,
 *       .body > .member-menu.author-menu (the same person menu on a message's author)
 *   #moderation-tools (hidden unless I moderate the room) > #slow-form > #slow-select
 *   #modlog-button[aria-expanded] > #modlog-panel > #modlog-list > li, #modlog-older
 */

import {
  authorTarget,
  badge,
  durationText,
  explain,
  logLine,
  menuItems,
  moderates,
  SLOW_CHOICES,
} from './moderation.js';
import { dmItem } from './dm.js';
import { removedText, removeItem } from './private.js';

const $ = window.jQuery;
const REMOVING_MAX = 50; // removals awaiting the server's answer (unanswered ones age out)

export class ModerationUI {
  /**
   * @param app the client's state (state.js)
   * @param view the View (render.js), whose member list this decorates
   * @param send (frame) => whether it went out
   * @param openDm (user) => opens my direct conversation with them
   */
  constructor(app, { view, send, openDm }) {
    this.app = app;
    this.view = view;
    this.send = send;
    this.openDm = openDm;
    this.log = { entries: [], more: false, open: false };
    this.menus = 0;
    this.open = null; // the open person menu: {$button, $menu}
    // Names of the people I asked to remove, for the answer's notice (ids
    // only come back); one entry per click, dropped when answered.
    this.removing = new Map();
    $(document).on('click', (event) => this.onDocumentClick(event));
    view.decorateMember = ($li, user, room) => this.decorate($li, user, room);
    this.buildTools();
  }

  get session() {
    return this.app.session;
  }

  /** Me as the rules see me in `room`: {id, admin, role}. */
  standing(room) {
    const me = this.session.me || {};
    return { id: me.id, admin: Boolean(this.session.admin), role: (room && room.role) || 'member' };
  }

  // -- the person menu: in the member list and on messages -------------------

  decorate($li, user, room) {
    const text = badge(user.role);
    if (text) {
      $li
        .find('.member-name')
        .after($('<span class="role-badge">').attr('data-role', user.role).text(text));
    }
    const menu = this.personMenu(user, room);
    if (menu) $li.append(menu.$button, menu.$menu);
  }

  /** A message was built (render.js): the person menu on its author, if I have one. */
  decorateMessage($li, msg) {
    $li.find('.author-actions, .author-menu').remove();
    const room = msg && this.session.rooms.get(msg.room);
    if (!room || !msg.user) return;
    const menu = this.personMenu(authorTarget(msg.user, room.members), room);
    if (!menu) return;
    menu.$button.addClass('author-actions');
    menu.$menu.addClass('author-menu');
    $li.find('.meta .author').after(menu.$button);
    $li.find('.body').append(menu.$menu);
  }

  /** My standing in a room changed: every message's menu again. */
  renderMessages(room) {
    if (!room || !room.$list) return;
    if (this.open && room.$list[0].contains(this.open.$button[0])) this.closeMenu(false);
    const focused = $(document.activeElement).filter('.author-actions').closest('.message')[0];
    room.$list.find('.message[data-user-id]').each((_, el) => {
      const user = { id: el.dataset.userId, name: el.dataset.author };
      this.decorateMessage($(el), { room: room.name, user });
    });
    if (focused) $(focused).find('.author-actions').trigger('focus');
  }

  renderAllMessages() {
    this.session.rooms.forEach((room) => this.renderMessages(room));
  }

  /** The "⋯" button and its menu for `user` in `room`, or null when I may do nothing. */
  personMenu(user, room) {
    if (!room) return null;
    const items = menuItems(this.standing(room), user, room.name);
    const removal = removeItem(this.session.me && this.session.me.id, user, room);
    if (removal) items.push(removal);
    const moderating = items.length > 0;
    const dm = dmItem(this.session.me && this.session.me.id, user);
    if (dm) items.push(dm);
    if (!items.length) return null;
    this.menus += 1;
    const menuId = `member-menu-${this.menus}`;
    const $button = $('<button type="button" class="member-actions">')
      .attr({
        'aria-expanded': 'false',
        'aria-controls': menuId,
        'aria-label': `${moderating ? 'Moderate' : 'Actions for'} ${user.name}`,
      })
      .append($('<span aria-hidden="true">').text('⋯'));
    const $menu = $('<div class="member-menu">').attr('id', menuId).prop('hidden', true);
    items.forEach((item) => {
      $('<button type="button" class="member-action">')
        .attr('data-action', item.key)
        .text(item.label)
        .on('click', () => {
          if (item.key === 'remove') this.rememberRemoving(user);
          if (item.key === 'dm') {
            this.closeMenu(false);
            this.openDm(user); // the conversation takes the focus
            return;
          }
          this.send(item.frame);
          this.closeMenu(true);
        })
        .appendTo($menu);
    });
    $button.on('click', (event) => {
      event.stopPropagation(); // not an outside click
      if ($button.attr('aria-expanded') === 'true') this.closeMenu(false);
      else this.openMenu($button, $menu);
    });
    $menu.add($button).on('keydown', (event) => {
      if (event.key === 'Escape' && $button.attr('aria-expanded') === 'true') {
        event.stopPropagation();
        this.closeMenu(true);
      }
    });
    return { $button, $menu };
  }

  /** Open one menu, closing any other: one is open at a time. */
  openMenu($button, $menu) {
    this.closeMenu(false);
    this.open = { $button, $menu };
    $button.attr('aria-expanded', 'true');
    $menu.prop('hidden', false);
    $menu.find('button').first().trigger('focus');
  }

  /** Close the open menu, if any; `refocus`: back to its button. */
  closeMenu(refocus) {
    const open = this.open;
    if (!open) return;
    this.open = null;
    open.$button.attr('aria-expanded', 'false');
    open.$menu.prop('hidden', true);
    if (refocus) open.$button.trigger('focus');
  }

  /** A click outside the open menu closes it. */
  onDocumentClick(event) {
    const open = this.open;
    if (open && !open.$menu[0].contains(event.target)) this.closeMenu(false);
  }

  rememberRemoving(user) {
    if (this.removing.size >= REMOVING_MAX) this.removing.delete(this.removing.keys().next().value);
    this.removing.set(user.id, user.name);
  }

  /** The server took someone out of a private room for me (`removed`). */
  onRemoved(frame) {
    const name = this.removing.get(frame.user);
    this.removing.delete(frame.user);
    const text = removedText(frame, name);
    this.view.showNotice(text, 'removed');
    this.view.announce(text);
  }

  // -- the tools: slow mode and the log ---------------------------------------

  buildTools() {
    const $select = $('#slow-select');
    SLOW_CHOICES.forEach((seconds) => {
      const label = seconds ? `one message every ${durationText(seconds)}` : 'off';
      $('<option>').val(String(seconds)).text(label).appendTo($select);
    });
    $('#slow-form').on('submit', (event) => {
      event.preventDefault();
      const room = this.session.active;
      if (room) this.send({ type: 'slow', room, seconds: Number($select.val()) });
    });
    $('#modlog-button').on('click', () => {
      this.log.open = !this.log.open;
      $('#modlog-button').attr('aria-expanded', String(this.log.open));
      $('#modlog-panel').prop('hidden', !this.log.open);
      if (this.log.open) this.send({ type: 'modlog' });
    });
    $('#modlog-older').on('click', () => {
      const last = this.log.entries.at(-1);
      if (last) this.send({ type: 'modlog', before: last.id });
    });
  }

  /** Show the tools that fit my standing in the active room. */
  render() {
    const room = this.session.rooms.get(this.session.active);
    const standing = this.standing(room);
    const mine = moderates(standing);
    $('#moderation-tools').prop('hidden', !mine);
    if (room) $('#slow-select').val(String(room.slowMode || 0));
  }

  // -- frames ------------------------------------------------------------------

  onModerated(frame) {
    const text = explain(frame);
    this.view.showNotice(text, 'moderated');
    this.view.announce(text);
  }

  onModeration(frame) {
    if (this.log.open && frame.entry) {
      this.log.entries.unshift(frame.entry);
      this.renderLog();
    }
  }

  onModlog(frame) {
    const entries = Array.isArray(frame.entries) ? frame.entries : [];
    const first = entries[0];
    const older = first && this.log.entries.length && first.id < this.log.entries.at(-1).id;
    this.log.entries = older ? this.log.entries.concat(entries) : entries;
    this.log.more = Boolean(frame.more);
    this.renderLog();
  }

  renderLog() {
    $('#modlog-list')
      .empty()
      .append(
        this.log.entries.map((entry) =>
          $('<li class="modlog-entry">')
            .attr('data-id', entry.id)
            .append(
              $('<time>')
                .attr('datetime', new Date(entry.ts).toISOString())
                .text(new Date(entry.ts).toLocaleString()),
              ' ',
              $('<span class="modlog-text">').text(logLine(entry)),
            ),
        ),
      );
    $('#modlog-older').prop('hidden', !this.log.more);
  }

  onSlowMode(frame) {
    const room = this.session.rooms.get(frame.room);
    if (!room) return;
    room.slowMode = Number(frame.seconds) > 0 ? Number(frame.seconds) : 0;
    if (!room.slowMode) room.slowUntil = 0;
    const text = room.slowMode
      ? `Slow mode in #${room.name}: one message every ${durationText(room.slowMode)}.`
      : `Slow mode is off in #${room.name}.`;
    this.view.announce(text);
    if (room.name === this.session.active) this.view.renderActiveRoom();
  }

  onRole(frame) {
    const room = this.session.rooms.get(frame.room);
    if (!room || !frame.user) return;
    const role = frame.role === 'member' ? undefined : frame.role;
    const member = room.members.get(frame.user.id);
    if (member) room.members.set(frame.user.id, { ...member, role });
    if (this.session.me && frame.user.id === this.session.me.id) room.role = frame.role;
    if (room.name === this.session.active) this.view.renderActiveRoom();
    this.renderMessages(room); // their menus follow the new role
  }
}
